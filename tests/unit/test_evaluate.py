"""`dpsynth eval`'s distribution distances, association matrices and TSTR utility."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from dpsynth.exceptions import ParameterError
from dpsynth.quality import evaluate
from dpsynth.schema import Schema

SCHEMA = Schema.from_dict({"columns": [
    {"name": "group", "kind": "categorical", "levels": ["a", "b", "c"]},
    {"name": "label", "kind": "categorical", "levels": ["no", "yes"]},
    {"name": "x", "kind": "continuous", "bounds": [0.0, 10.0], "bins": 10},
    {"name": "y", "kind": "continuous", "bounds": [0.0, 10.0], "bins": 10},
]})


def table(n: int, seed: int, shift: float = 0.0, shuffle_label: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    group = rng.choice(["a", "b", "c"], n)
    label = np.where(group == "a", "yes", "no")  # label is a function of group
    if shuffle_label:
        label = rng.permutation(label)
    x = np.clip(rng.normal(5 + shift, 1.5, n), 0, 10)
    y = np.clip(x + rng.normal(0, 0.5, n), 0, 10)  # strongly correlated with x
    return pd.DataFrame({"group": group, "label": label, "x": x.round(4).astype(str), "y": y.round(4).astype(str)})


def test_a_copy_is_perfect():
    real = table(2000, 0)
    report = evaluate(real, real.copy(), SCHEMA)
    assert report["l1_2way"] == 0.0
    for c in report["columns"].values():
        assert c["tvd"] == 0.0 and c.get("ks", 0.0) == 0.0 and c.get("wasserstein", 0.0) == 0.0
    assert report["association"]["mean"] == 0.0


def test_distances_see_a_shift_and_broken_associations():
    real = table(4000, 1)
    shifted = table(4000, 2, shift=2.0)
    report = evaluate(real, shifted, SCHEMA)
    assert report["columns"]["x"]["ks"] > 0.4  # N(5, 1.5) vs N(7, 1.5): KS ≈ 0.49
    assert report["columns"]["x"]["wasserstein"] == pytest.approx(0.2, abs=0.03)  # shift 2 over range 10
    assert report["columns"]["group"].get("ks") is None
    broken = table(4000, 3, shuffle_label=True)
    assoc = evaluate(real, broken, SCHEMA)["association"]
    # group–label: Cramér's V is 1 in the real table and ~0 after shuffling
    assert assoc["max"] > 0.9 and set(assoc["max_pair"]) == {"group", "label"}


def test_utility_detects_a_synthetic_table_that_lost_the_signal():
    real = table(3000, 4)
    good = evaluate(real, table(3000, 5), SCHEMA, target="label")["utility"]
    assert good["metric"] == "accuracy" and good["train_real"]["accuracy"] > 0.99
    assert good["train_synthetic"]["accuracy"] > 0.99 and good["train_synthetic"]["roc_auc"] > 0.99
    assert abs(good["gap"]) < 0.01
    bad = evaluate(real, table(3000, 6, shuffle_label=True), SCHEMA, target="label")["utility"]
    assert bad["gap"] > 0.2
    assert good["holdout_rows"] == 600 and "20% split" in good["holdout_source"]


def test_numeric_target_uses_r2_and_an_explicit_holdout():
    real, holdout = table(3000, 7), table(1000, 8)
    u = evaluate(real, table(3000, 9), SCHEMA, target="y", holdout=holdout)["utility"]
    assert u["metric"] == "r2" and u["holdout_rows"] == 1000 and u["holdout_source"] == "the holdout table"
    assert u["train_real"]["r2"] > 0.8 and u["train_synthetic"]["r2"] > 0.8


def test_unknown_target():
    with pytest.raises(ParameterError, match=r"^target \('income'\) must be one of the schema's columns"):
        evaluate(table(50, 0), table(50, 1), SCHEMA, target="income")


def test_cli_eval_json_keys_and_bad_target(tmp_path):
    real, fake = tmp_path / "real.csv", tmp_path / "fake.csv"
    table(600, 10).to_csv(real, index=False)
    table(600, 11).to_csv(fake, index=False)
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps(SCHEMA.to_dict()))
    base = [sys.executable, "-m", "dpsynth", "eval", "--real", str(real), "--synthetic", str(fake), "--schema",
            str(schema)]
    proc = subprocess.run([*base, "--target", "label", "--json"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert {"l1_1way", "l1_2way", "l1_3way", "tvd", "columns", "association", "utility"} <= set(report)
    assert {"train_real", "train_synthetic", "metric", "gap", "target"} <= set(report["utility"])
    proc = subprocess.run([*base, "--target", "salary"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "target ('salary') must be one of" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
