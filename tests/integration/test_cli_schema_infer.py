"""`dpsynth schema infer` end to end: a DP schema charged to the ledger, the loud --public opt-in,
bad input (exit 2, one line, nothing charged or written), and a DP schema followed by an MST fit on
the same ledger whose total charge composes within the cap.

Noise is seeded where outputs are checked (deterministic); see tests/unit/test_schema_infer.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dpsynth.privacy import ApproxDP, approx_dp_to_rho, zcdp_epsilon
from dpsynth.privacy.accounting import thresholding_delta
from dpsynth.privacy.ledger import Ledger
from dpsynth.schema import encode, load_schema

OPT_IN = "schema_read_from_data_without_privacy"
SECRET = "SECRET-PERSON-42"


def dpsynth(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "DPSYNTH_LEDGER"}
    return subprocess.run(
        [sys.executable, "-m", "dpsynth", *args], capture_output=True, text=True, timeout=300, env=env
    )


@pytest.fixture
def raw(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    n = 3000
    job = rng.choice(["clerk", "nurse", "farmer", "?"], size=n, p=[0.5, 0.3, 0.15, 0.05]).astype(object)
    job[11] = SECRET
    table = pd.DataFrame(
        {
            "job": job,
            "sex": rng.choice(["F", "M"], size=n),
            "age": rng.integers(18, 80, size=n),
            "hours": np.clip(rng.normal(40, 8, size=n), 1, 99).round().astype(int),
            "income": np.round(rng.lognormal(10, 0.6, size=n), 2),
        }
    )
    path = tmp_path / "raw.csv"
    table.to_csv(path, index=False)
    return path


@pytest.fixture
def ledger_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    Ledger(url, create=True).create_dataset("people", ApproxDP(4.0, 1e-6))
    return url


def infer_args(raw: Path, out: Path, ledger_url: str, *extra: str) -> list[str]:
    return [
        "schema",
        "infer",
        "--data",
        str(raw),
        "--out",
        str(out),
        "--epsilon",
        "2",
        "--delta",
        "2e-7",
        "--ledger",
        ledger_url,
        "--dataset",
        "people",
        *extra,
    ]


def test_dp_schema_then_mst_fit_compose_within_the_cap(tmp_path, raw, ledger_url):
    hints = tmp_path / "hints.yaml"
    hints.write_text("missing_values: ['?']\ncolumns:\n  - {name: sex, kind: categorical, levels: [F, M]}\n")
    out = tmp_path / "schema.yaml"
    proc = dpsynth(*infer_args(raw, out, ledger_url, "--hints", str(hints), "--insecure-seed", "5", "--json"))
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["method"] == "dp" and result["ledger_entry"] == 2 and result["dataset"] == "people"
    assert result["kinds"] == {"categorical": 2, "integer": 2, "continuous": 1} and result["opt_ins"] == []
    assert result["levels"] == {"job": 3, "sex": 2}
    assert "WARNING: noise is seeded" in proc.stderr  # the insecure seed is loud too
    schema = load_schema(out)
    assert schema["sex"].levels == ("F", "M") and schema["sex"].other is None  # declared in the hints
    assert set(schema["job"].levels) == {"clerk", "farmer", "nurse"} and schema["job"].other == "<other>"
    assert SECRET not in out.read_text()
    assert schema["age"].kind == "integer" and schema["income"].kind == "continuous"
    assert schema.provenance["ledger_entry"] == 2 and schema.provenance["method"] == "dp"
    encode(pd.read_csv(raw, dtype=str, keep_default_na=False), schema)  # the private table fits its schema

    # the same ledger charges the fit on that schema; the totals compose (ρ and δ) within the cap
    fit = dpsynth(
        "fit",
        "--data",
        str(raw),
        "--schema",
        str(out),
        "--epsilon",
        "1",
        "--delta",
        "1e-7",
        "--rows",
        "200",
        "--out",
        str(tmp_path / "synthetic.csv"),
        "--ledger",
        ledger_url,
        "--dataset",
        "people",
        "--json",
    )
    assert fit.returncode == 0, fit.stderr
    fitted = json.loads(fit.stdout)
    assert fitted["opt_ins"] == [] and fitted["ledger_entry"] == 4
    synthetic = pd.read_csv(tmp_path / "synthetic.csv", keep_default_na=False)
    assert set(synthetic["job"]) <= {"clerk", "farmer", "nurse", "<other>", "?"}
    low, high = schema["age"].bounds
    ages = pd.to_numeric(synthetic["age"], errors="coerce")  # a nullable column: "?" where missing
    assert ages.dropna().between(low, high).all() and ages.notna().mean() > 0.9

    st = Ledger(ledger_url, create=True).statement("people")
    infer_entry, fit_entry = st.reservations
    assert infer_entry.synthesizer == "schema_infer" and fit_entry.synthesizer == "mst"
    assert st.rho_spent == pytest.approx(result["rho"] + fitted["rho"], rel=1e-9)
    assert st.delta_spent == pytest.approx(result["additive_delta"]) and 0 < st.delta_spent <= 1e-7
    rest = 1e-6 - thresholding_delta(st.delta_spent)
    assert st.rho_spent <= approx_dp_to_rho(4.0, rest)
    assert st.epsilon_spent_tight == pytest.approx(zcdp_epsilon(st.rho_spent, rest), rel=1e-9)
    assert st.epsilon_spent_tight < 4.0 and st.epsilon_spent_plain_sum == pytest.approx(3.0)
    shown = dpsynth("ledger", "show", "--ledger", ledger_url)
    assert shown.returncode == 0 and "schema_infer" in shown.stdout and "additive delta=" in shown.stdout
    as_json = json.loads(dpsynth("ledger", "show", "--ledger", ledger_url, "--json").stdout)
    assert as_json["datasets"][0]["spent"]["additive_delta"] == pytest.approx(st.delta_spent)
    assert dpsynth("ledger", "verify", "--ledger", ledger_url).returncode == 0


def test_public_schema_is_a_loud_opt_in_that_the_fit_reports(tmp_path, raw, ledger_url):
    out = tmp_path / "public.yaml"
    proc = dpsynth("schema", "infer", "--data", str(raw), "--out", str(out), "--public")
    assert proc.returncode == 0, proc.stderr
    assert "WARNING: the schema was read from the data without privacy" in proc.stderr
    assert "read WITHOUT privacy" in proc.stdout
    schema = load_schema(out)
    assert schema.provenance == {"method": "public", "opt_in": OPT_IN} and schema.opt_ins == [OPT_IN]
    assert SECRET in schema["job"].levels  # the leak the opt-in names
    table = pd.read_csv(raw)
    assert schema["age"].bounds == (table["age"].min(), table["age"].max())
    assert Ledger(ledger_url, create=True).statement("people").reservations == []  # nothing charged, no ledger needed

    fit = dpsynth(
        "fit",
        "--data",
        str(raw),
        "--schema",
        str(out),
        "--epsilon",
        "1",
        "--delta",
        "1e-7",
        "--rows",
        "50",
        "--out",
        str(tmp_path / "synthetic.csv"),
        "--ledger",
        ledger_url,
        "--dataset",
        "people",
        "--json",
    )
    assert fit.returncode == 0, fit.stderr
    assert json.loads(fit.stdout)["opt_ins"] == [OPT_IN]
    assert f"WARNING: this release is built on a schema with the opt-in {OPT_IN}" in fit.stderr
    (entry,) = Ledger(ledger_url, create=True).statement("people").reservations
    assert entry.opt_ins == [OPT_IN] and entry.detail["opt_ins"] == [OPT_IN]
    assert f"opt-ins: {OPT_IN}" in dpsynth("ledger", "show", "--ledger", ledger_url).stdout


def assert_bad_input(proc: subprocess.CompletedProcess, message: str, code: int = 2) -> None:
    assert proc.returncode == code, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_bad_input_exits_2_charges_nothing_and_writes_nothing(tmp_path, raw, ledger_url):
    out = tmp_path / "schema.yaml"
    hints = tmp_path / "hints.yaml"
    hints.write_text("columns:\n  - {name: salary, kind: integer}\n")
    cases = [
        (infer_args(tmp_path / "absent.csv", out, ledger_url), "data file"),
        (infer_args(raw, out, ledger_url, "--hints", str(hints)), "column 'salary' is not in the data"),
        (infer_args(raw, out, ledger_url, "--epsilon", "0"), "epsilon (0.0) must be a finite number > 0"),
        (infer_args(raw, out, ledger_url, "--split-bounds", "2"), "split_bounds (2.0) must be at most 1"),
        (infer_args(raw, out, ledger_url, "--split-delta-threshold", "1.5"), "split_delta_threshold (1.5) must be"),
        (infer_args(raw, tmp_path / "schema.txt", ledger_url), "must end in .yaml, .yml or .json"),
        (infer_args(raw, tmp_path / "no-dir" / "s.yaml", ledger_url), "must be in an existing directory"),
        (
            ["schema", "infer", "--data", str(raw), "--out", str(out), "--epsilon", "1", "--delta", "1e-7"],
            "schema infer needs --ledger URL --dataset NAME",
        ),
        (["schema", "infer", "--data", str(raw), "--out", str(out)], "schema infer needs --epsilon E --delta D"),
        (
            ["schema", "infer", "--data", str(raw), "--out", str(out), "--public", "--epsilon", "1"],
            "give it without --epsilon",
        ),
        (infer_args(raw, out, ledger_url, "--dataset", "unknown"), "dataset 'unknown' is not registered"),
    ]
    for args, message in cases:
        assert_bad_input(dpsynth(*args), message)
    # an overdraft: exit 3, both numbers, nothing charged
    assert_bad_input(dpsynth(*infer_args(raw, out, ledger_url, "--epsilon", "30")), "exceeds the remaining rho=", 3)
    assert not out.exists() and not list(tmp_path.glob("*.yaml.*"))
    ledger = Ledger(ledger_url, create=True)
    assert ledger.statement("people").reservations == [] and ledger.verify().entries == 1
