"""Copy checks (`dpsynth replay`): planted exact and near copies are found; chance matches are not flagged."""

import json

import numpy as np
import pandas as pd
import pytest

from dpsynth.cli import main
from dpsynth.exceptions import DataError, ParameterError
from dpsynth.pii.replay import copy_check
from dpsynth.schema.schema import Schema

SCHEMA = Schema.from_dict({"columns": [
    {"name": "sex", "kind": "categorical", "levels": ["F", "M"], "quasi_identifier": True},
    {"name": "zip", "kind": "categorical", "levels": [f"{z:05d}" for z in range(10000, 10040)],
     "quasi_identifier": True},
    {"name": "age", "kind": "integer", "bounds": [0, 100], "quasi_identifier": True},
    {"name": "income", "kind": "continuous", "bounds": [0, 200000], "bins": 20},
    {"name": "job", "kind": "categorical", "levels": [f"j{i}" for i in range(30)]},
]})


def _table(rng, n):
    return pd.DataFrame({
        "sex": rng.choice(["F", "M"], n), "zip": [f"{z:05d}" for z in rng.integers(10000, 10040, n)],
        "age": rng.integers(18, 90, n).astype(str), "income": rng.uniform(0, 200000, n).round(2).astype(str),
        "job": [f"j{i}" for i in rng.integers(0, 30, n)],
    })


@pytest.fixture(scope="module")
def tables():
    rng = np.random.default_rng(1)
    real, holdout, clean = _table(rng, 3000), _table(rng, 1000), _table(rng, 3000)
    leaky = clean.copy()
    leaky.iloc[:60] = real.iloc[:60].to_numpy()  # 2% exact copies
    near = real.iloc[100:160].copy()
    near["income"] = (near["income"].astype(float) + 150).round(2).astype(str)  # 2% near copies
    leaky.iloc[60:120] = near.to_numpy()
    return real, holdout, clean, leaky


def test_planted_exact_and_near_copies_are_flagged(tables):
    real, holdout, _, leaky = tables
    report = copy_check(real, leaky, SCHEMA, holdout=holdout)
    exact, near = report.rate("exact"), report.rate("near")
    assert exact.synthetic_matches >= 60 and exact.flagged and exact.baseline_matches == 0
    assert near.synthetic_matches >= 120 and near.flagged
    assert report.rate("quasi_identifiers").synthetic_rate >= report.rate("quasi_identifiers").baseline_rate
    assert report.flagged


def test_independent_synthetic_rows_are_not_flagged(tables):
    real, holdout, clean, _ = tables
    report = copy_check(real, clean, SCHEMA, holdout=holdout)
    assert not report.flagged
    # chance matches on the quasi-identifiers exist in this small domain, at the holdout's rate
    qi = report.rate("quasi_identifiers")
    assert qi.synthetic_rate > 0.05 and abs(qi.synthetic_rate - qi.baseline_rate) < 0.05


def test_without_holdout_a_split_of_the_real_table_is_the_baseline(tables):
    real, _, _, leaky = tables
    report = copy_check(real, leaky, SCHEMA)
    assert report.reference_rows == 2400 and report.rate("exact").baseline_rows == 600
    assert report.rate("exact").flagged and "random 20%" in report.baseline


def test_the_report_holds_no_row(tables):
    real, holdout, _, leaky = tables
    text = json.dumps(copy_check(real, leaky, SCHEMA, holdout=holdout).to_dict())
    for value in real["income"].head(200):
        assert value not in text
    assert "NOT differentially private" in text


def test_bad_input(tables):
    real, _, clean, _ = tables
    with pytest.raises(ParameterError, match=r"near_threshold \(1.5\) must be in \[0, 1\)"):
        copy_check(real, clean, SCHEMA, near_threshold=1.5)
    with pytest.raises(DataError, match="the synthetic table has no column\\(s\\) 'job'"):
        copy_check(real, clean.drop(columns="job"), SCHEMA)
    bad = clean.copy()
    bad.loc[0, "age"] = "old"
    with pytest.raises(DataError, match="column 'age': text that is not a number in 1 row"):
        copy_check(real, bad, SCHEMA)


def test_cli_replay(tables, tmp_path, capsys):
    real, holdout, _, leaky = tables
    for name, table in (("real", real), ("holdout", holdout), ("synthetic", leaky)):
        table.to_csv(tmp_path / f"{name}.csv", index=False)
    (tmp_path / "schema.json").write_text(json.dumps(SCHEMA.to_dict()))
    args = ["replay", "--real", str(tmp_path / "real.csv"), "--synthetic", str(tmp_path / "synthetic.csv"),
            "--schema", str(tmp_path / "schema.json"), "--holdout", str(tmp_path / "holdout.csv")]
    assert main(args + ["--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["flagged"] and {c["check"] for c in out["checks"]} >= {"exact", "near", "quasi_identifiers"}
    assert main(args) == 1
    text = capsys.readouterr().out
    assert "NOT differentially private" in text and "FLAGGED" in text
    assert main(["replay", "--real", str(tmp_path / "nope.csv"), "--synthetic", str(tmp_path / "synthetic.csv"),
                 "--schema", str(tmp_path / "schema.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "does not exist" in err
