"""The release gate on a private table held by DuckDB or Spark (``release(engine=...)``,
``dpsynth release --engine``): the same decision road with the rows left in the engine.

With the same seeded noise, the fit (exact marginal counts in every engine) and the DP checks whose
statistics are exact aggregates (rows, fidelity, utility) give the in-memory figures exactly; the
replay checks split the real rows by the engine's hash, so their figures differ (the DP form's
guarantee is tested in tests/privacy/test_dp_checks_engine.py). Deterministic.
"""
# ruff: noqa: F811 (the env fixture of test_release is imported, and named by the tests' parameters)

from __future__ import annotations

import json

import pandas as pd
import pytest
from test_release import OUTLIER, _check, _files, _no_real_row, env, make_table  # noqa: F401 (env: a fixture)

from dpsynth.cli import main
from dpsynth.exceptions import DataError, ParameterError
from dpsynth.privacy import ApproxDP
from dpsynth.privacy.ledger import Ledger


def _policy(env):
    return env.policy(utility={"target": "churn", "min_score": 0.0}, audit={"fits_per_world": 2, "canaries": 1,
                                                                            "outliers": 0})


def _second_dataset(env) -> None:
    Ledger(env.url).create_dataset("crm2", ApproxDP(4.0, 1e-5))


def _dp(report: dict) -> dict:
    return report["evidence"]["dp_checks"]


@pytest.mark.parametrize("engine", ["duckdb", "spark"])
def test_an_engine_release_gives_the_in_memory_decision_and_figures(env, engine, request):
    if engine == "spark":
        request.getfixturevalue("spark")
    _second_dataset(env)
    policy = _policy(env)
    mem = env.run(out="mem", target="churn", policy=policy, engine="numpy")
    eng = env.run(out="eng", target="churn", policy=policy, engine=engine, dataset="crm2",
                  spark_master="local[1]" if engine == "spark" else None)
    assert mem.status == eng.status == "released"
    pd.testing.assert_frame_equal(pd.read_csv(mem.publish / "synthetic.csv"),
                                  pd.read_csv(eng.publish / "synthetic.csv"))
    a, b = _dp(mem.report), _dp(eng.report)
    assert (a["rows"], a["fidelity"], a["utility"]) == (b["rows"], b["fidelity"], b["utility"])
    assert [m["rho"] for m in a["measurements"]] == [m["rho"] for m in b["measurements"]]
    # the exact internal figures: counts over every row are the in-memory ones
    fa, fb = mem.report["evidence"]["fidelity"], eng.report["evidence"]["fidelity"]
    for key in ("l1_1way", "l1_2way", "l1_3way"):
        assert fa[key] == pytest.approx(fb[key], abs=1e-12)
    assert fa["marginals"] == fb["marginals"]
    assert fb["engine"] == engine and "ks" not in fb["sample"]["exact"]
    assert eng.report["evidence"]["replay"]["engine"]["engine"] == engine
    # the engine's account is internal (under auto it follows the file's size)
    assert eng.report["release"]["engine"]["engine"] == engine and "engine" not in mem.report["release"]
    public = json.loads((eng.publish / "report.json").read_text(encoding="utf-8"))
    assert "engine" not in public["release"]
    assert Ledger(env.url).statement("crm2").to_dict()["releases"] == 2
    _no_real_row(eng.out)


def test_a_parquet_folder_is_released_through_duckdb(env):
    folder = env.root / "parts"
    folder.mkdir()
    table = make_table()
    for i in range(3):
        table.iloc[i::3].to_parquet(folder / f"part-{i}.parquet", index=False)
    result = env.run(data=folder, policy=_policy(env), target="churn")  # auto: a folder goes to DuckDB
    assert result.status == "released" and result.report["release"]["engine"]["engine"] == "duckdb"
    assert result.report["inputs"]["data"]["name"] == "parts"


def test_copies_of_real_rows_are_blocked_by_the_engine_replay_check(env, monkeypatch):
    """A generator whose output is the real table (a fit in an engine never sees a row, so its sample is
    patched to return them) is blocked by the DP replay check computed in DuckDB."""
    from dpsynth.synth.mst import MST

    monkeypatch.setattr(MST, "sample", lambda self, n_rows: make_table())
    result = env.run(engine="duckdb", rows=400, policy=env.policy(audit=None, fidelity=None))
    assert result.status == "blocked"
    check = _check(result, "replay.exact_rows")
    assert check["status"] == "fail" and check["reads"] == "private_dp"
    assert not (result.publish / "synthetic.csv").exists()


@pytest.mark.parametrize(("kind", "error", "words"), [
    ("level", DataError, "'plan'"),
    ("frame", ParameterError, "in memory already"),
    ("dpsgd", ParameterError, "counts marginals only"),
])
def test_bad_input_in_an_engine_charges_and_writes_nothing(env, kind, error, words):
    kwargs: dict = {"engine": "duckdb"}
    if kind == "level":
        table = make_table()
        table.loc[3, "plan"] = "platinum"
        kwargs["data"] = env.root / "bad.parquet"
        table.to_parquet(kwargs["data"], index=False)
    elif kind == "frame":
        kwargs["data"] = make_table()
    else:
        kwargs.update(synthesizer="dpvae", synthesizer_params={}, rows=10)
    policy = env.policy()
    before = _files(env.root)
    with pytest.raises(error) as info:
        env.run(policy=policy, **kwargs)
    assert words in str(info.value) and "platinum" not in str(info.value)
    assert env.releases() == 0 and _files(env.root) == before


def test_cli_release_with_an_engine(env, capsys):
    policy = str(env.policy(audit=None))
    argv = ["release", "--data", str(env.data), "--schema", str(env.schema), "--synthesizer", "mst", "--delta", "1e-6",
            "--ledger", env.url, "--dataset", "crm", "--insecure-seed", "3", "--param", "estimation_iters=100",
            "--epsilon", "1", "--policy", policy, "--out", str(env.root / "a"), "--engine", "duckdb", "--json"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "released" and {c["id"] for c in out["checks"]} >= {"replay.exact_rows",
                                                                                "fidelity.l1_1way"}
    bad = env.root / "bad.csv"
    table = make_table().astype({"spend": object})
    table.loc[5, "spend"] = "lots"
    table.to_csv(bad, index=False)
    argv[argv.index(str(env.data))] = str(bad)
    argv[argv.index(str(env.root / "a"))] = str(env.root / "b")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'spend'" in err and "lots" not in err and str(OUTLIER["spend"]) not in err
    assert not (env.root / "b").exists() and env.releases() == 2


def test_under_auto_a_files_size_never_picks_the_engine_of_a_release(env, monkeypatch):
    """The DP replay split is the engine's hash, so the engine changes a published noisy figure: a file's
    size (a function of its rows) must not choose it. ``fit`` may still follow the size."""
    from dpsynth.marginals import engines

    monkeypatch.setattr(engines, "IN_MEMORY_BYTES", 10)  # every file is "large"
    assert engines.choose_engine("auto", env.data, fits_on_marginals=True) == "duckdb"  # fit: by size
    result = env.run(policy=env.policy(audit=None))
    assert result.status == "released" and "engine" not in result.report["release"]  # release: in memory
