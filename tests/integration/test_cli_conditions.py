"""``dpsynth fit --condition COLUMN=VALUE --mix COLUMN=VALUE:SHARE,...`` (issue 21 item 5): the written
table meets the conditions; a condition outside the schema exits 2 with one line before anything is
charged."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from dpsynth.cli.fit import fit_conditions
from dpsynth.exceptions import ParameterError
from dpsynth.privacy import ApproxDP
from dpsynth.privacy.ledger import Ledger

SCHEMA = {
    "version": 1,
    "columns": [
        {"name": "region", "kind": "categorical", "levels": ["north", "south", "east"]},
        {"name": "plan", "kind": "categorical", "levels": ["basic", "plus"]},
        {"name": "age", "kind": "integer", "bounds": [0, 89], "edges": [0, 30, 60, 89]},
    ],
}


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dpsynth", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


@pytest.fixture
def env(tmp_path: Path):
    table = pd.DataFrame({"region": ["north", "south", "east"] * 40, "plan": ["basic", "plus"] * 60,
                          "age": [i % 90 for i in range(120)]})
    table.to_csv(tmp_path / "data.csv", index=False)
    (tmp_path / "schema.yaml").write_text(yaml.safe_dump(SCHEMA), encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    Ledger(url, create=True).create_dataset("crm", ApproxDP(4.0, 1e-5))
    return tmp_path, url


def fit(root: Path, url: str, *extra: str) -> subprocess.CompletedProcess:
    return run("fit", "--data", "data.csv", "--schema", "schema.yaml", "--epsilon", "1", "--delta", "1e-6",
               "--rows", "101", "--out", "out.csv", "--ledger", url, "--dataset", "crm", *extra, cwd=root)


def test_fit_writes_a_table_meeting_the_conditions_and_the_mix(env):
    root, url = env
    proc = fit(root, url, "--condition", "plan=plus", "--condition", "age=10", "--condition", "age=70",
               "--mix", "region=north:0.5,east:0.5", "--json")
    assert proc.returncode == 0, proc.stderr
    out = pd.read_csv(root / "out.csv")
    assert len(out) == 101 and set(out["plan"]) == {"plus"}
    assert ((out["age"] < 30) | (out["age"] >= 60)).all()  # the bins holding 10 and 70
    assert out["region"].value_counts().to_dict() == {"north": 51, "east": 50}  # 50.5 + 50.5: ties to the first
    assert '"conditions"' in proc.stdout


@pytest.mark.parametrize("extra,message", [
    (["--condition", "plan=gold"], "conditions: column 'plan': value ('gold') must be one of its levels: basic, plus"),
    (["--condition", "age=95"], "conditions: column 'age': value ('95') must lie within its bounds [0, 89]"),
    (["--mix", "region=north:0.5,east:0.4"],
     "conditions: column 'region': the mix's shares must sum to 1 (they sum to 0.9)"),
])
def test_a_bad_condition_exits_2_in_one_line_before_any_charge(env, extra, message):
    root, url = env
    proc = fit(root, url, *extra)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr
    assert Ledger(url).statement("crm").reservations == []  # nothing charged
    assert not (root / "out.csv").exists()


def _args(condition=(), mix=()):
    return argparse.Namespace(condition=list(condition), mix=list(mix))


def test_condition_options_become_the_conditions_of_sample():
    assert fit_conditions(_args()) is None
    assert fit_conditions(_args(["income=>50K", "race=Black", "race=Other"])) == {
        "income": [">50K"], "race": ["Black", "Other"]}  # a value may hold '=': split at the first
    assert fit_conditions(_args(mix=["income=<=50K:0.7,>50K:0.3"])) == {"income": {"<=50K": 0.7, ">50K": 0.3}}
    for bad, message in [
        (_args(mix=["income=a:x"]), "the share 'x' is not a number"),
        (_args(mix=["income=a:0.5,a:0.5"]), "the value 'a' is given twice"),
        (_args(["income=a"], ["income=a:1"]), "column 'income' is given twice"),
        (_args(mix=["=a:1"]), "must be COLUMN=VALUE:SHARE"),
        (_args(mix=["region=north"]), "each part must be VALUE:SHARE"),
        (_args(["plan"]), r"--condition \('plan'\) must be COLUMN=VALUE"),
    ]:
        with pytest.raises(ParameterError, match=message):
            fit_conditions(bad)
