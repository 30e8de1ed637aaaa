"""Issue 17: ``--rows`` is bounded by what this machine can hold or write, before any charge, and
``fit --out`` streams the synthetic table to disk in chunks (one header, exactly ``--rows`` rows, no
partial file when a chunk fails)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from dpsynth.cli import main
from dpsynth.exceptions import ParameterError
from dpsynth.privacy import ApproxDP
from dpsynth.privacy.ledger import Ledger
from dpsynth.release import release
from dpsynth.synth import streaming
from dpsynth.synth.mst import MST

HUGE = 1_000_000_000_000
SCHEMA = {
    "version": 1,
    "columns": [
        {"name": "region", "kind": "categorical", "levels": ["north", "south", "east", "west"]},
        {"name": "plan", "kind": "categorical", "levels": ["basic", "plus", "pro"]},
        {"name": "spend", "kind": "integer", "bounds": [0, 100000], "edges": [0, 100, 500, 1000, 5000, 100000]},
        {"name": "score", "kind": "continuous", "bounds": [0, 1], "bins": 4, "nullable": True},
    ],
}
#: short checks, as in tests/release/test_release.py
BASE_POLICY = {
    "version": 1, "name": "test", "description": "short checks for tests",
    "privacy": {"max_epsilon": 3.0, "max_delta": 1e-5, "require_secure_noise": False},
    "audit": {"method": "multi_fit", "fits_per_world": 2, "canaries": 1, "outliers": 0, "reference_rows": None},
    "replay": {"checks": ["exact_rows"], "alpha": 0.01},
    "decision": {"private_checks": "dp", "rho": 0.05},
}


def make_table(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    score = rng.uniform(0, 1, n).round(3).astype(object)
    score[::17] = ""
    return pd.DataFrame({"region": rng.choice(["north", "south", "east"], n),
                         "plan": rng.choice(["basic", "plus"], n, p=[0.7, 0.3]),
                         "spend": rng.integers(0, 900, n), "score": score})


@pytest.fixture
def env(tmp_path):
    data = tmp_path / "crm.csv"
    make_table().to_csv(data, index=False)
    schema = tmp_path / "schema.yaml"
    schema.write_text(yaml.safe_dump(SCHEMA), encoding="utf-8")
    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump(BASE_POLICY), encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    Ledger(url, create=True).create_dataset("crm", ApproxDP(4.0, 1e-5))

    class Env:
        root = tmp_path

        @staticmethod
        def fit(out: Path, rows: int, *extra: str) -> list[str]:
            return ["fit", "--data", str(data), "--schema", str(schema), "--epsilon", "1", "--delta", "1e-6",
                    "--rows", str(rows), "--out", str(out), "--ledger", url, "--dataset", "crm",
                    "--insecure-seed", "3", *extra]

        @staticmethod
        def release_args(out: Path, rows: int) -> list[str]:
            return ["release", "--data", str(data), "--schema", str(schema), "--synthesizer", "mst", "--epsilon", "1",
                    "--delta", "1e-6", "--ledger", url, "--dataset", "crm", "--policy", str(policy),
                    "--out", str(out), "--rows", str(rows), "--insecure-seed", "1", "--workers", "1",
                    "--param", "estimation_iters=100"]

        @staticmethod
        def statement() -> dict:
            return Ledger(url, create=True).statement("crm").to_dict()

    Env.data, Env.schema, Env.policy, Env.url = data, schema, policy, url
    return Env()


def _one_line_bad_input(capsys, code: int) -> str:
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def _no_leftovers(folder: Path) -> None:
    assert not [p.name for p in folder.iterdir() if p.name.endswith(".partial")]


def test_fit_with_huge_rows_exits_2_and_charges_nothing(env, capsys):
    before = env.statement()
    out = env.root / "synthetic.csv"
    err = _one_line_bad_input(capsys, main(env.fit(out, HUGE)))
    assert "--rows (1,000,000,000,000) must be at most" in err
    assert env.statement() == before and before["releases"] == 0
    assert not out.exists()
    _no_leftovers(env.root)


def test_fit_with_huge_rows_in_a_subprocess_has_no_traceback(env):
    out = env.root / "synthetic.csv"
    proc = subprocess.run([sys.executable, "-m", "dpsynth", *env.fit(out, HUGE)], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert env.statement()["releases"] == 0 and not out.exists()


def test_fit_rows_are_bounded_by_the_free_disk(env, capsys, monkeypatch):
    monkeypatch.setattr(streaming.shutil, "disk_usage", lambda _: type("U", (), {"free": 10_000})())
    out = env.root / "synthetic.csv"
    err = _one_line_bad_input(capsys, main(env.fit(out, 5_000)))
    assert "--rows (5,000) must be at most" in err and "free disk" in err
    assert env.statement()["releases"] == 0 and not out.exists()


def test_release_with_huge_rows_exits_2_and_charges_nothing(env, capsys):
    before = env.statement()
    out = env.root / "rel"
    err = _one_line_bad_input(capsys, main(env.release_args(out, HUGE)))
    assert "rows (1,000,000,000,000) must be at most" in err
    assert env.statement() == before and before["releases"] == 0
    assert not out.exists() or not any(out.iterdir())


def test_python_release_rows_are_bounded_by_the_free_memory(env, monkeypatch):
    monkeypatch.setattr(streaming, "available_memory", lambda: 1_000_000)
    with pytest.raises(ParameterError, match=r"rows \(5,000\) must be at most .*free memory"):
        release(data=env.data, schema=env.schema, synthesizer="mst", epsilon=1.0, delta=1e-6, ledger=env.url,
                dataset="crm", policy=env.policy, out=env.root / "rel", rows=5_000, insecure_seed=1,
                progress=False, workers=1)
    assert env.statement()["releases"] == 0
    assert not (env.root / "rel").exists() or not any((env.root / "rel").iterdir())


@pytest.mark.parametrize("name", ["synthetic.csv", "synthetic.csv.gz", "synthetic.parquet"])
def test_fit_writes_in_chunks_exactly_rows_with_one_header(env, capsys, monkeypatch, name):
    monkeypatch.setattr(streaming, "CHUNK_ROWS", 7)
    calls: list[int] = []
    original = MST.sample

    def counting(self, n_rows, *, random_state=None):
        calls.append(n_rows)
        return original(self, n_rows, random_state=random_state)

    monkeypatch.setattr(MST, "sample", counting)
    out = env.root / name
    assert main(env.fit(out, 50)) == 0, capsys.readouterr().err
    assert calls == [7] * 7 + [1]
    table = pd.read_parquet(out) if name.endswith(".parquet") else pd.read_csv(out)
    assert len(table) == 50 and list(table.columns) == [c["name"] for c in SCHEMA["columns"]]
    if not name.endswith(".parquet"):
        lines = pd.read_csv(out, header=None, dtype=str)
        assert (lines.iloc[:, 0] == "region").sum() == 1  # one header
        assert set(table["region"]) <= {"north", "south", "east", "west"}
    assert len(table.drop_duplicates()) > 7  # chunks are not copies of one another
    _no_leftovers(env.root)


def test_a_failure_mid_write_leaves_no_partial_file(env, monkeypatch):
    monkeypatch.setattr(streaming, "CHUNK_ROWS", 10)
    original = MST.sample
    calls: list[int] = []

    def fails_second(self, n_rows, *, random_state=None):
        calls.append(n_rows)
        if len(calls) == 2:
            raise RuntimeError("sampling failed")
        return original(self, n_rows, random_state=random_state)

    monkeypatch.setattr(MST, "sample", fails_second)
    out = env.root / "synthetic.csv"
    with pytest.raises(RuntimeError, match="sampling failed"):
        main(env.fit(out, 30))
    assert len(calls) == 2 and not out.exists()
    _no_leftovers(env.root)


def test_write_table_compresses_a_gz_target(tmp_path):
    """The temporary file's .partial suffix must not hide the target's compression from pandas."""
    import gzip

    import pandas as pd

    from dpsynth.io import write_table

    path = write_table(pd.DataFrame({"a": [1, 2]}), tmp_path / "t.csv.gz")
    assert gzip.open(path, "rt").read().splitlines() == ["a", "1", "2"]
