"""The scheduled example ``examples/refresh/``: its plan validates, its policy loads, every path the plan
names exists once the README's set-up step has run, and the schedules run that plan and tell its exit
codes apart. Fast: nothing is fitted, charged or refreshed here."""

from __future__ import annotations

import datetime as dt
import re
import runpy
import shutil
from pathlib import Path

import pytest
import yaml

from dpsynth.refresh.plan import load_plan
from dpsynth.refresh.snapshots import find_snapshots
from dpsynth.release.policy import load_policy
from dpsynth.schema.schema import load_schema

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "refresh"
#: what the set-up step (``setup_demo.py``) writes beside the plan; the refresh writes ``releases/``
GENERATED = ("incoming", "snapshots", "adult.schema.yaml")


@pytest.fixture(autouse=True)
def _ledger(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # the plan takes its ledger from $DPSYNTH_LEDGER, as the README and the schedules set it
    monkeypatch.setenv("DPSYNTH_LEDGER", f"sqlite:///{tmp_path / 'ledger.db'}")


def test_the_example_plan_validates_and_its_policy_loads() -> None:
    plan = load_plan(EXAMPLE / "plan.yaml")
    assert plan.dataset == "adult" and plan.synthesizer == "mst" and plan.epsilon == 1.0
    assert plan.horizon.until == dt.date(2026, 12, 1) and plan.horizon.every == "monthly"
    assert plan.horizon.left(0, dt.date(2026, 1, 1)) == 12  # the demo's first snapshot: January to December
    assert Path(plan.policy) == EXAMPLE / "policy.yaml"
    policy = load_policy(plan.policy)
    assert policy.drift is not None and policy.drift.max_tvd == 0.1
    assert policy.audit is not None  # a scheduled refresh keeps the canary audit
    # the rest is the shipped default's: only the name, the description and the drift ceiling differ
    ours = yaml.safe_load((EXAMPLE / "policy.yaml").read_text(encoding="utf-8"))
    default = yaml.safe_load((Path(__file__).resolve().parents[2] / "dpsynth" / "release" / "policies"
                              / "default.yaml").read_text(encoding="utf-8"))
    assert sorted(k for k in set(ours) | set(default) if ours.get(k) != default.get(k)) == [
        "description", "drift", "name"]


def test_every_path_of_the_plan_exists_after_the_setup_step(tmp_path: Path) -> None:
    folder = tmp_path / "refresh"
    folder.mkdir()
    for name in ("plan.yaml", "policy.yaml", "setup_demo.py"):
        shutil.copy(EXAMPLE / name, folder / name)
    months = runpy.run_path(str(folder / "setup_demo.py"))["main"](folder)
    assert [p.name for p in months] == ["adult-2026-01.csv", "adult-2026-02.csv", "adult-2026-03.csv"]
    assert all(p.parent == folder / "incoming" for p in months)

    plan = load_plan(folder / "plan.yaml")
    assert plan.schema.is_file() and load_schema(plan.schema).names
    assert Path(plan.snapshots) == folder / "snapshots" and Path(plan.snapshots).is_dir()
    assert Path(plan.policy).is_file()
    assert plan.releases == folder / "releases" and plan.releases.parent.is_dir()  # the refresh makes it

    # a month arrives as the README says (cp incoming/... snapshots/): the plan finds it, dated by its name
    shutil.copy(months[0], Path(plan.snapshots) / months[0].name)
    assert [(s.name, s.date) for s in find_snapshots(plan.snapshots)] == [("adult-2026-01.csv", dt.date(2026, 1, 1))]


def test_what_the_demo_writes_is_ignored_by_git() -> None:
    ignored = {line.strip().strip("/") for line in (EXAMPLE / ".gitignore").read_text(encoding="utf-8").splitlines()
               if line.strip() and not line.startswith("#")}
    assert {*GENERATED, "releases", "ledger.db", "ledger.db.key"} <= ignored


def test_the_cron_line_runs_the_plan_and_tells_the_exit_codes_apart() -> None:
    lines = [line for line in (EXAMPLE / "cron.txt").read_text(encoding="utf-8").splitlines()
             if line.strip() and not line.startswith("#")]
    jobs = [line for line in lines if re.match(r"^(\S+\s+){5}\S", line) and "=" not in line.split()[0]]
    assert len(jobs) == 1
    job = jobs[0]
    assert re.search(r"dpsynth refresh \S*examples/refresh/plan\.yaml", job)
    assert all(f"{code}) " in job for code in range(5)) and "exit $code" in job
    assert "%" not in job  # cron would cut the line at a bare %
    assert any(line.startswith("DPSYNTH_LEDGER=") for line in lines)


def test_the_workflow_runs_the_plan_monthly_and_keeps_the_series_without_internal() -> None:
    workflow = yaml.safe_load((EXAMPLE / "github-actions.yml").read_text(encoding="utf-8"))
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as true
    assert triggers["schedule"][0]["cron"].split()[2:] == ["2", "*", "*"]  # the 2nd of every month
    steps = workflow["jobs"]["refresh"]["steps"]
    runs = "\n".join(s.get("run", "") for s in steps)
    assert "dpsynth refresh examples/refresh/plan.yaml" in runs and "exit $code" in runs
    upload = next(s for s in steps if str(s.get("uses", "")).startswith("actions/upload-artifact"))
    assert upload["if"] == "always()"
    paths = upload["with"]["path"].split()
    assert "examples/refresh/releases/adult/" in paths and "!examples/refresh/releases/adult/**/internal/**" in paths
    assert not (EXAMPLE.parents[1] / ".github" / "workflows" / "github-actions.yml").exists()
