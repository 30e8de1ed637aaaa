"""`dpsynth fit --engine`: the same seeded fit gives the same synthetic table whichever engine counts the
table (numpy in memory, DuckDB, Spark local mode), and the engine's mistakes exit 2 with one line.

Deterministic: the noise is seeded (``--insecure-seed``), so no test here can fail by chance.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from dpsynth.datasets import adult_path, adult_schema_path

ROWS = 6_000  # a slice of the bundled Adult keeps the three fits quick; the engines see the same file


def run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "dpsynth", *args], capture_output=True, text=True, timeout=600,
                          env=env)


@pytest.fixture(scope="module")
def adult_slice(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("engines")
    data = pd.read_csv(adult_path(), dtype=str, keep_default_na=False).head(ROWS)
    path = folder / "adult.csv"
    data.to_csv(path, index=False)
    return path


def fit(data: Path, out: Path, engine: str, *extra: str, synthesizer: str = "mst") -> subprocess.CompletedProcess:
    return run("fit", "--data", str(data), "--schema", str(adult_schema_path()), "--synthesizer", synthesizer,
               "--epsilon", "1", "--delta", "1e-6", "--rows", "500", "--out", str(out), "--insecure-seed", "7",
               *(["--param", "estimation_iters=150"] if synthesizer == "mst" else []), "--engine", engine, "--json",
               *extra)


def spark_available() -> bool:
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return False
    return shutil.which("java") is not None


needs_spark = pytest.mark.skipif(not spark_available() and os.environ.get("DPSYNTH_REQUIRE_SPARK") != "1",
                                 reason="pyspark or a Java runtime is missing (DPSYNTH_REQUIRE_SPARK=1: a failure)")


def test_duckdb_fit_gives_the_numpy_fit(tmp_path, adult_slice):
    outs = {}
    for engine in ("numpy", "duckdb"):
        outs[engine] = tmp_path / f"{engine}.csv"
        proc = fit(adult_slice, outs[engine], engine, "--no-ledger")
        assert proc.returncode == 0, proc.stderr
        assert f'"engine": "{engine}"' in proc.stdout
    assert outs["numpy"].read_bytes() == outs["duckdb"].read_bytes()
    parquet = tmp_path / "duckdb.parquet"  # the same table, written in chunks as Parquet of the schema's types
    proc = fit(adult_slice, parquet, "duckdb", "--no-ledger")
    assert proc.returncode == 0, proc.stderr
    from dpsynth.io import read_table
    from dpsynth.schema import load_schema
    from dpsynth.schema.encode import encode

    schema = load_schema(adult_schema_path())
    assert (encode(read_table(parquet), schema) == encode(read_table(outs["duckdb"]), schema)).all()


@needs_spark
def test_spark_fit_gives_the_numpy_fit(tmp_path, adult_slice):
    numpy_out, spark_out = tmp_path / "numpy.csv", tmp_path / "spark.csv"
    assert fit(adult_slice, numpy_out, "numpy", "--no-ledger").returncode == 0
    proc = fit(adult_slice, spark_out, "spark", "--no-ledger", "--spark-master", "local[1]")
    assert proc.returncode == 0, proc.stderr
    assert numpy_out.read_bytes() == spark_out.read_bytes()


def test_a_folder_of_parquet_files_is_counted_by_duckdb_under_auto(tmp_path, adult_slice):
    data = pd.read_csv(adult_slice, dtype=str, keep_default_na=False)
    folder = tmp_path / "parts"
    folder.mkdir()
    for i, part in enumerate((data.iloc[: ROWS // 2], data.iloc[ROWS // 2:])):
        part.to_parquet(folder / f"part-{i}.parquet", index=False)
    out = tmp_path / "auto.csv"
    proc = fit(folder, out, "auto", "--no-ledger")
    assert proc.returncode == 0, proc.stderr
    assert '"engine": "duckdb"' in proc.stdout
    reference = tmp_path / "numpy.csv"
    assert fit(adult_slice, reference, "numpy", "--no-ledger").returncode == 0
    assert out.read_bytes() == reference.read_bytes()  # text cells from Parquet encode as from the CSV


def test_engine_mistakes_exit_2_with_one_line_and_cost_nothing(tmp_path, adult_slice):
    ledger = tmp_path / "ledger.db"
    url = f"sqlite:///{ledger}"
    created = run("ledger", "create", "--ledger", url, "--dataset", "d", "--epsilon", "10", "--delta", "1e-5")
    assert created.returncode == 0, created.stderr
    folder = tmp_path / "parts"
    folder.mkdir()
    pd.read_csv(adult_slice, dtype=str, keep_default_na=False).to_parquet(folder / "p.parquet", index=False)
    cases = [
        (fit(adult_slice, tmp_path / "a.csv", "duckdb", "--ledger", url, "--dataset", "d", synthesizer="dpvae"),
         "trains on rows"),
        (fit(folder, tmp_path / "b.csv", "numpy", "--ledger", url, "--dataset", "d"), "folder or glob"),
    ]
    bad = pd.read_csv(adult_slice, dtype=str, keep_default_na=False)
    bad.loc[3, "age"] = "xyzzy"
    bad_path = tmp_path / "input-bad.csv"
    bad.to_csv(bad_path, index=False)
    messages = {}
    for engine in ("numpy", "duckdb"):
        proc = fit(bad_path, tmp_path / f"c-{engine}.csv", engine, "--ledger", url, "--dataset", "d")
        cases.append((proc, "'age'"))
        messages[engine] = proc.stderr
    for proc, expected in cases:
        assert proc.returncode == 2, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1 and expected in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr and "xyzzy" not in proc.stderr
    assert messages["numpy"] == messages["duckdb"]  # the same words from the same counts
    assert not list(tmp_path.glob("[abc]*.csv"))
    with sqlite3.connect(ledger) as con:  # the dataset's registration only: nothing was reserved
        kinds = [r[0] for r in con.execute("SELECT kind FROM dpsynth_ledger_entries")]
    assert "reserve" not in kinds, kinds


def infer(data: Path, out: Path, engine: str, *extra: str) -> subprocess.CompletedProcess:
    return run("schema", "infer", "--data", str(data), "--out", str(out), "--epsilon", "1", "--delta", "1e-6",
               "--no-ledger", "--insecure-seed", "5", "--engine", engine, "--json", *extra)


def test_schema_infer_gives_the_same_schema_in_every_engine(tmp_path, adult_slice):
    folder = tmp_path / "parts"
    folder.mkdir()
    frame = pd.read_csv(adult_slice, dtype=str, keep_default_na=False)
    for i, part in enumerate((frame.iloc[: ROWS // 2], frame.iloc[ROWS // 2:])):
        part.to_parquet(folder / f"p{i}.parquet", index=False)
    runs = {"numpy": (adult_slice, "numpy"), "duckdb": (adult_slice, "duckdb"), "folder": (folder, "auto")}
    if spark_available() or os.environ.get("DPSYNTH_REQUIRE_SPARK") == "1":
        runs["spark"] = (adult_slice, "spark")
    texts = {}
    for name, (data, engine) in runs.items():
        proc = infer(data, tmp_path / f"{name}.yaml", engine)
        assert proc.returncode == 0, proc.stderr
        texts[name] = (tmp_path / f"{name}.yaml").read_text()
    assert len(set(texts.values())) == 1, {k: len(v) for k, v in texts.items()}
    mistake = infer(folder, tmp_path / "x.yaml", "numpy")
    assert mistake.returncode == 2 and "folder or glob" in mistake.stderr and not (tmp_path / "x.yaml").exists()


def test_eval_in_an_engine_gives_the_exact_marginal_figures_and_states_its_sample(tmp_path, adult_slice):
    other = pd.read_csv(adult_path(), dtype=str, keep_default_na=False).iloc[ROWS:ROWS + 3_000]
    synthetic = tmp_path / "synthetic.csv"
    other.to_csv(synthetic, index=False)
    base = ("eval", "--real", str(adult_slice), "--synthetic", str(synthetic), "--schema", str(adult_schema_path()),
            "--json")
    reports = {}
    engines = ["numpy", "duckdb"] + (["spark"] if spark_available() or os.environ.get("DPSYNTH_REQUIRE_SPARK") == "1"
                                     else [])
    for engine in engines:
        proc = run(*base, "--engine", engine, *(["--sample-rows", "100000"] if engine != "numpy" else []))
        assert proc.returncode == 0, proc.stderr
        reports[engine] = json.loads(proc.stdout)
    want = reports["numpy"]
    for engine in engines[1:]:
        got = reports[engine]
        for key in ("real_rows", "synthetic_rows", "l1_1way", "l1_2way", "l1_3way", "n_3way", "tvd"):
            assert got[key] == want[key], (engine, key)
        assert got["sample"]["rows"] == {"real": ROWS, "synthetic": 3_000}  # the whole tables: at most 100000 rows
        for name, entry in want["columns"].items():  # the sample is every row (in another order)
            assert got["columns"][name]["tvd"] == entry["tvd"]
            for metric in ("ks", "wasserstein"):
                if entry.get(metric) is not None:
                    assert got["columns"][name][metric] == pytest.approx(entry[metric], abs=1e-12), (engine, name)
        assert got["association"]["mean"] == pytest.approx(want["association"]["mean"], abs=1e-9)
    small = run(*base, "--engine", "duckdb", "--sample-rows", "500")
    assert small.returncode == 0 and json.loads(small.stdout)["sample"]["rows"] == {"real": 500, "synthetic": 500}
    mistake = run(*base, "--engine", "numpy", "--sample-rows", "500")
    assert mistake.returncode == 2 and "--sample-rows" in mistake.stderr and len(mistake.stderr.splitlines()) == 1
