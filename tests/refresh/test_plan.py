"""The refresh plan file, its horizon and the snapshots it names: every problem in one line (exit 2),
before anything is read or charged."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml

from dpsynth.cli import main
from dpsynth.refresh.plan import Horizon, PlanError, load_plan, parse_plan
from dpsynth.refresh.snapshots import find_snapshots, snapshot_date

GOOD = {"version": 1, "dataset": "adult", "ledger": "sqlite:///l.db", "snapshots": "snaps/*.csv",
        "schema": "s.yaml", "synthesizer": "mst", "epsilon": 1.0, "delta": 1e-9, "policy": "default",
        "horizon": {"refreshes": 12}, "releases": "out"}


def test_a_good_plan_resolves_its_paths(tmp_path: Path) -> None:
    plan = parse_plan(GOOD, path=tmp_path / "plan.yaml")
    assert plan.schema == tmp_path / "s.yaml" and plan.series_dir == tmp_path / "out" / "adult"
    assert plan.snapshots == str(tmp_path / "snaps/*.csv")
    assert plan.policy == "default"  # a shipped policy's name stays a name
    assert plan.horizon == Horizon(refreshes=12) and not plan.allow_short_horizon


@pytest.mark.parametrize(("change", "expected"), [
    ({"epsilon": -1}, "epsilon: must be a number > 0"),
    ({"delta": 2}, "delta: must be < 1"),
    ({"horizon": {"refreshes": 0}}, "refreshes: must be an integer >= 1"),
    ({"horizon": {"until": "next year", "every": "monthly"}}, "horizon.until: must be a date"),
    ({"horizon": {"until": "2027-01-01", "every": "fortnightly"}}, "horizon.every: must be one of"),
    ({"horizon": {"refreshes": 3, "until": "2027-01-01"}}, "horizon: give either refreshes or until"),
    ({"dataset": "../etc"}, "dataset: must be a name"),
    ({"rows": 0}, "rows: must be an integer >= 1"),
    ({"colour": "blue"}, "colour: unknown key"),
    ({"privacy_unit": {"column": "id"}}, "privacy_unit: must be {column: NAME, max_rows: K}"),
    ({"allow_short_horizon": "yes"}, "allow_short_horizon: must be true or false"),
])
def test_every_problem_in_one_line(tmp_path: Path, change: dict[str, object], expected: str) -> None:
    with pytest.raises(PlanError) as err:
        parse_plan({**GOOD, **change}, path=tmp_path / "plan.yaml")
    assert expected in str(err.value) and "\n" not in str(err.value)
    assert str(err.value).startswith(f"plan file {str(tmp_path / 'plan.yaml')!r} is invalid: ")


def test_missing_keys_are_named_together(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DPSYNTH_LEDGER", raising=False)
    with pytest.raises(PlanError) as err:
        parse_plan({"version": 1}, path=tmp_path / "p.yaml")
    for key in ("dataset", "ledger", "snapshots", "schema", "synthesizer", "policy", "releases", "horizon"):
        assert f"{key}:" in str(err.value)


def test_the_cli_exits_2_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump({**GOOD, "epsilon": "one"}), encoding="utf-8")
    assert main(["refresh", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "epsilon: must be a number > 0" in err[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plan.yaml"]
    assert main(["refresh", str(tmp_path / "absent.yaml")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_a_plan_file_that_is_not_yaml(tmp_path: Path) -> None:
    path = tmp_path / "plan.yaml"
    path.write_text("version: [1\n", encoding="utf-8")
    with pytest.raises(PlanError):
        load_plan(path)


def test_horizon_left() -> None:
    assert Horizon(refreshes=12).left(0, dt.date(2026, 1, 1)) == 12
    assert Horizon(refreshes=12).left(11, dt.date(2026, 1, 1)) == 1
    assert Horizon(refreshes=12).left(30, dt.date(2026, 1, 1)) == 1  # past the horizon: this one must still fit
    monthly = Horizon(until=dt.date(2026, 12, 1), every="monthly")
    assert monthly.left(0, dt.date(2026, 1, 1)) == 12
    assert monthly.left(0, dt.date(2026, 12, 1)) == 1
    assert monthly.left(0, dt.date(2027, 1, 1)) == 1
    assert Horizon(until=dt.date(2026, 12, 31), every="quarterly").left(0, dt.date(2026, 1, 1)) == 4
    assert Horizon(until=dt.date(2026, 1, 29), every="weekly").left(0, dt.date(2026, 1, 1)) == 5
    assert Horizon(until=dt.date(2026, 1, 10), every="3 days").left(0, dt.date(2026, 1, 1)) == 4


def test_snapshot_dates_come_from_the_names(tmp_path: Path) -> None:
    assert snapshot_date("adult-2026-03.csv") == dt.date(2026, 3, 1)
    assert snapshot_date("adult_20260315.parquet") == dt.date(2026, 3, 15)
    assert snapshot_date("2026-02-30-then-2026-03-02.csv") == dt.date(2026, 3, 2)
    assert snapshot_date("adult.csv") is None
    for name in ("b-2026-02.csv", "a-2026-10.csv", "c-2026-01-15.csv.gz", "notes.txt"):
        (tmp_path / name).write_text("x\n", encoding="utf-8")
    found = find_snapshots(str(tmp_path))
    assert [s.name for s in found] == ["c-2026-01-15.csv.gz", "b-2026-02.csv", "a-2026-10.csv"]
    assert [s.name for s in find_snapshots(str(tmp_path / "*-2026-0*.csv"))] == ["b-2026-02.csv"]
    with pytest.raises(PlanError, match="no snapshot file matches"):
        find_snapshots(str(tmp_path / "*.parquet"))


def test_the_policy_drift_section() -> None:
    from dpsynth.release.policy import PolicyError, parse_policy

    base = {"version": 1, "name": "p", "privacy": {"max_epsilon": 2.0, "max_delta": 1e-6}}
    assert parse_policy(base).drift is None
    rules = parse_policy({**base, "drift": {"max_tvd": 0.1}}).drift
    assert rules is not None and rules.max_tvd == 0.1 and rules.over == ("columns",)
    assert parse_policy({**base, "drift": {"max_tvd": 0.1, "over": ["columns", "pairs"]}}).drift.over == (
        "columns", "pairs")
    for bad, words in (({"max_tvd": 2}, "drift.max_tvd"), ({"over": ["triples"]}, "drift.over"),
                       ({"over": []}, "drift.over"), ({"ceiling": 1}, "drift.ceiling")):
        with pytest.raises(PolicyError, match=words):
            parse_policy({**base, "drift": bad})


def test_a_relative_sqlite_ledger_is_relative_to_the_plan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir("/")
    plan = parse_plan({**GOOD, "ledger": "sqlite:///ledgers/l.db"}, path=tmp_path / "plan.yaml")
    assert plan.ledger == f"sqlite:///{tmp_path / 'ledgers' / 'l.db'}"
    absolute = parse_plan({**GOOD, "ledger": "sqlite:////srv/l.db"}, path=tmp_path / "plan.yaml")
    assert absolute.ledger == "sqlite:////srv/l.db"
    assert parse_plan({**GOOD, "ledger": "postgresql://db/x"}, path=tmp_path / "p.yaml").ledger == "postgresql://db/x"
