"""``dpsynth refresh``: three monthly refreshes of the bundled Adult snapshots, end to end.

Acceptance of issue 21: v0001–v0003, the third blocked by the plan's drift ceiling (set below the
planted drift); the ledger's total is the tight composition of every reservation; re-running does
nothing; a refresh whose horizon the budget cannot last is refused before anything is charged.

The drift outcomes are statistical (the synthetic tables are sampled with fresh secure noise). Measured
over 30 pairs of independent MST fits at ε = 1 on these snapshots (``benchmarks/refresh_drift_noise.py``,
benchmarks/RESULTS.md): with no drift the largest column TVD is 0.036 ± 0.005 (at most 0.051); the
planted drift shows as an ``income`` TVD of 0.197 ± 0.003 (at least 0.189). The ceiling of 0.1 is 12
and 32 standard deviations from them: the false-failure probability of each outcome is estimated far
below 1e-6 (a Gaussian tail; the sampling part alone is bounded by the noise floor at α = 1e-4 per
column, 0.048 to 0.065 here).
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from dpsynth.cli import main
from dpsynth.privacy.accounting import zcdp_epsilon
from dpsynth.refresh import refresh
from tests.refresh.conftest import DRIFT_CEILING, Series


def _record(series: Series, label: str) -> dict[str, Any]:
    return json.loads((series.folder / label / "version.json").read_text(encoding="utf-8"))


@pytest.mark.slow
def test_three_refreshes_then_nothing(series: Series, capsys: pytest.CaptureFixture[str]) -> None:
    led = series.register()
    outcomes = []
    for month in (1, 2, 3):
        series.arrive(month)
        outcomes.append(main(["refresh", str(series.plan_path)]))
    assert outcomes == [0, 0, 1]
    assert series.versions() == ["v0001", "v0002", "v0003"]
    first, second, third = (_record(series, v) for v in ("v0001", "v0002", "v0003"))
    assert [r["status"] for r in (first, second, third)] == ["released", "released", "blocked"]
    assert [r["snapshot"]["name"] for r in (first, second, third)] == [p.name for p in series.months]
    assert first["previous"] is None and second["previous"] == "v0001" and third["previous"] == "v0002"
    # the drift: none planted in month 2, a planted one on income in month 3 (DP output only)
    assert first["drift"] is None
    assert second["drift"]["max_tvd"] < DRIFT_CEILING
    assert third["drift"]["where"] == "income" and third["drift"]["max_tvd"] > DRIFT_CEILING
    assert third["drift"]["columns"]["income"]["above_noise"] is True
    assert [c["id"] for c in third["checks"] if c["status"] != "pass"] == ["drift.max_tvd"]
    assert not (series.folder / "v0003" / "publish" / "synthetic.csv").exists()
    assert (series.folder / "v0002" / "publish" / "synthetic.csv").is_file()
    assert (series.folder / "index.html").is_file()
    page = (series.folder / "v0002" / "publish" / "report.html").read_text(encoding="utf-8")
    assert 'id="series"' in page and "privacy budget of the series against the cap" in page
    report = json.loads((series.folder / "v0002" / "publish" / "report.json").read_text(encoding="utf-8"))
    assert report["series"]["version"] == "v0002" and report["series"]["previous"] == "v0001"
    assert report["evidence"]["drift"]["measurements"]["summary"]["compared"] > 0  # MST's noisy measurements

    # the ledger: every reservation completed, its total the tight composition of all of them
    statement = led.statement("adult")
    assert len(statement.reservations) == 6  # each refresh: the fit and its DP checks
    assert {r.status for r in statement.reservations} == {"completed"}
    assert all(r.additive_delta == 0 and r.rdp is None for r in statement.reservations)  # MST: zCDP only
    composed = zcdp_epsilon(math.fsum(r.rho for r in statement.reservations), statement.cap.delta)
    assert composed == pytest.approx(statement.epsilon_spent_tight, rel=1e-9)
    assert statement.epsilon_spent_tight < statement.epsilon_spent_plain_sum
    assert third["budget"]["spent_epsilon"] == pytest.approx(statement.epsilon_spent_tight, rel=1e-12)
    # the forecast: the same plan each time, so one refresh fewer after each version
    lefts = [r["budget"]["forecast_refreshes_left"] for r in (first, second, third)]
    assert lefts[0] - lefts[1] == 1 and lefts[1] - lefts[2] == 1
    assert [r["budget"]["horizon_left"] for r in (first, second, third)] == [2, 1, 0]

    # re-running does nothing and says so
    capsys.readouterr()
    assert main(["refresh", str(series.plan_path)]) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert series.versions() == ["v0001", "v0002", "v0003"]
    assert len(led.statement("adult").reservations) == 6

    # the history lists them newest first
    assert main(["history", "adult", "--releases", str(series.root / "releases"), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [v["label"] for v in listed["versions"]] == ["v0003", "v0002", "v0001"]


@pytest.mark.slow
def test_a_horizon_the_budget_cannot_last_is_refused(series: Series, capsys: pytest.CaptureFixture[str]) -> None:
    led = series.register(epsilon=2.0)
    series.arrive(1)
    series.write_plan(horizon={"refreshes": 12})
    assert main(["refresh", str(series.plan_path)]) == 3
    out = capsys.readouterr().out
    assert "refused" in out and "nothing was charged" in out
    assert led.statement("adult").reservations == []
    assert not series.folder.exists() or series.versions() == []
    refused = list((series.folder / "refused").iterdir())
    assert len(refused) == 1
    report = json.loads((refused[0] / "publish" / "report.json").read_text(encoding="utf-8"))
    check = next(c for c in report["checks"] if c["id"] == "budget.horizon")
    assert check["status"] == "fail" and check["threshold"] == 12 and 0 < check["value"] < 12

    series.write_plan(allow_short_horizon=True)
    result = refresh(series.plan_path, progress=False)
    assert result.status == "released" and result.version == "v0001"
    assert len(led.statement("adult").reservations) == 2


def test_a_bad_snapshot_changes_nothing(series: Series, capsys: pytest.CaptureFixture[str]) -> None:
    led = series.register()
    path = series.arrive(1)
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[5] = lines[5].replace("<=50K", "lots")  # a value the schema does not know
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert main(["refresh", str(series.plan_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "income" in err[0] and "lots" not in err[0]
    assert led.statement("adult").reservations == []
    assert series.versions() == []
    assert not (series.folder / "attempt.json").exists()


def test_a_snapshot_without_a_date_is_refused(series: Series, capsys: pytest.CaptureFixture[str]) -> None:
    series.register()
    (series.snapshots / "adult-latest.csv").write_text("age\n", encoding="utf-8")
    assert main(["refresh", str(series.plan_path)]) == 2
    err = capsys.readouterr().err
    assert "carries no date" in err and "adult-latest.csv" in err
    assert not series.folder.exists()


@pytest.mark.slow
def test_a_series_through_duckdb_on_parquet(series: Series) -> None:
    """The same loop with the snapshots as Parquet files counted in DuckDB, and a horizon by date."""
    import pandas as pd

    series.register()
    series.write_plan(engine="duckdb", snapshots="snapshots/*.parquet",
                      horizon={"until": "2026-12-01", "every": "monthly"})
    results = []
    for month in (1, 2):
        path = series.arrive(month)
        pd.read_csv(path, dtype=str, keep_default_na=False).to_parquet(path.with_suffix(".parquet"))
        path.unlink()
        results.append(refresh(series.plan_path, progress=False))
    assert [(r.status, r.version) for r in results] == [("released", "v0001"), ("released", "v0002")]
    second = _record(series, "v0002")
    assert second["snapshot"]["name"] == "adult-2026-02.parquet"
    assert second["drift"]["max_tvd"] < DRIFT_CEILING
    assert [r.record["budget"]["horizon_left"] for r in results if r.record] == [11, 10]  # Jan and Feb to Dec
