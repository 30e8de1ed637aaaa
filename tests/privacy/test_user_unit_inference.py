"""DP schema inference at the user privacy unit: the key is left out, each person's rows are bounded at
K before counting, the levels are counted in distinct people, and every mechanism declares a
sensitivity that one person cannot exceed. Deterministic (seeded noise), no failure probability.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from dpsynth import UNTRACKED, PrivacyUnit
from dpsynth.datasets import load_people
from dpsynth.exceptions import DataError, ParameterError
from dpsynth.privacy.budgets import ApproxDP
from dpsynth.privacy.ledger import Ledger
from dpsynth.schema import infer_schema
from dpsynth.schema.infer import _bounded_counts
from dpsynth.schema.infer_counts import FrameCounts, PersonCounts
from dpsynth.schema.infer_hints import parse_hints
from dpsynth.schema.infer_plan import plan_inference

K = 3
UNIT = PrivacyUnit.users("pid", max_rows=K)
HEADER = ["color", "age"]


def tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(4)
    before = pd.DataFrame({"color": rng.choice(["red", "blue", "green"], 80),
                           "age": rng.integers(18, 90, 80).astype(str), "pid": [f"p{i % 25}" for i in range(80)]})
    # one person, more rows than K: a new colour only they hold, the others shared, one age far out
    person = pd.DataFrame({"color": ["violet", "violet", "red", "violet", "red", "violet"], "age": ["150"] * 6,
                           "pid": ["new"] * 6})
    return before, pd.concat([before, person], ignore_index=True)


def counts_of(frame: pd.DataFrame) -> PersonCounts:
    return _bounded_counts(FrameCounts(frame, [""]), HEADER, UNIT, [""])


def test_one_person_moves_every_count_by_at_most_its_declared_sensitivity():
    a, b = (counts_of(t) for t in tables())
    plan = plan_inference(parse_hints(HEADER, None, bins=8).tasks, ApproxDP(1.0, 1e-6), split_kinds=0.1,
                          split_categories=0.6, split_bounds=0.3, split_delta_threshold=0.5, max_rows=K)
    assert plan.kinds.l2_sensitivity == K and plan.bounds.l2_sensitivity == K
    assert plan.levels.max_partitions == K * 2  # both columns may be categorical: K values a person each
    for name in HEADER:
        assert np.linalg.norm(b.cell_counts(name) - a.cell_counts(name)) <= K
        assert np.linalg.norm(b.bounds_histogram(name) - a.bounds_histogram(name)) <= K
    changed = 0
    for name in HEADER:
        va, vb = a.value_counts(name), b.value_counts(name)
        moves = [vb.get(key, 0) - va.get(key, 0) for key in set(va) | set(vb)]
        assert all(abs(m) <= 1 for m in moves)  # distinct people: one person moves a value by one
        changed += sum(m != 0 for m in moves)
    assert 0 < changed <= plan.levels.max_partitions
    assert b.value_counts("color")["violet"] == 1  # a value one person holds counts once, however many rows


def test_a_row_count_of_the_levels_is_caught_as_too_sensitive(monkeypatch):
    """The mutant: levels counted in rows (FrameCounts') instead of people."""
    monkeypatch.setattr(PersonCounts, "value_counts", FrameCounts.value_counts)
    a, b = (counts_of(t) for t in tables())
    va, vb = a.value_counts("color"), b.value_counts("color")
    assert max(abs(vb.get(k, 0) - va.get(k, 0)) for k in set(va) | set(vb)) > 1


def test_the_inferred_schema_leaves_the_key_out_and_declares_the_unit(tmp_path):
    people, _ = load_people()
    ledger = Ledger(f"sqlite:///{tmp_path / 'l.db'}", create=True)
    ledger.create_dataset("people", ApproxDP(5.0, 1e-6), unit="user:4")
    schema = infer_schema(people, epsilon=1.0, delta=1e-8, ledger=ledger, dataset="people", insecure_seed=0,
                          privacy_unit=PrivacyUnit.users("person_id", max_rows=4))
    assert "person_id" not in schema.names and len(schema.names) == 15
    assert schema.privacy_unit == PrivacyUnit.users("person_id", max_rows=4)
    assert schema.to_dict()["privacy_unit"] == {"column": "person_id", "max_rows": 4}
    assert [r.synthesizer for r in ledger.statement("people").reservations] == ["schema_infer"]
    assert {c.name for c in schema.columns if c.kind == "categorical"} >= {"workclass", "sex", "income"}


def test_inference_at_the_user_unit_refuses_what_it_cannot_do_before_any_charge(tmp_path):
    before, _ = tables()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(DataError, match="data has no column 'who'"):
            infer_schema(before, epsilon=1.0, delta=1e-8, ledger=UNTRACKED,
                         privacy_unit=PrivacyUnit.users("who", max_rows=2))
        broken = before.copy()
        broken.loc[4, "pid"] = ""
        with pytest.raises(DataError, match=r"column 'pid', row 5: the person key is missing"):
            infer_schema(broken, epsilon=1.0, delta=1e-8, ledger=UNTRACKED, privacy_unit=UNIT)
        path = tmp_path / "t.csv"
        broken.to_csv(path, index=False)
        with pytest.raises(DataError, match=r"^column 'pid': the person key is missing in 1 row\(s\)"):
            infer_schema(path, epsilon=1.0, delta=1e-8, ledger=UNTRACKED, privacy_unit=UNIT, engine="duckdb")
        with pytest.raises(ParameterError, match="must be a PrivacyUnit"):
            infer_schema(before, epsilon=1.0, delta=1e-8, ledger=UNTRACKED, privacy_unit="user:3")


@pytest.mark.parametrize("engine", ["duckdb", "spark"])
def test_an_engine_bounds_by_the_same_rule_and_infers_the_same_schema(engine, request):
    from dpsynth.datasets import people_path

    if engine == "spark":
        request.getfixturevalue("spark")
    unit = PrivacyUnit.users("person_id", max_rows=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # untracked, seeded: expected here
        schemas = [infer_schema(people_path(), epsilon=1.0, delta=1e-8, ledger=UNTRACKED, insecure_seed=0,
                                privacy_unit=unit, engine=e).to_dict() for e in ("numpy", engine)]
    for s in schemas:
        s.pop("provenance")
    assert schemas[0] == schemas[1] and schemas[0]["privacy_unit"] == {"column": "person_id", "max_rows": 4}


def test_the_cli_infers_a_schema_at_the_user_unit(tmp_path):
    import json
    import subprocess
    import sys

    from dpsynth.datasets import people_path
    from dpsynth.schema import load_schema

    out = tmp_path / "schema.yaml"
    base = [sys.executable, "-m", "dpsynth", "schema", "infer", "--data", str(people_path()), "--no-ledger"]
    proc = subprocess.run([*base, "--out", str(out), "--epsilon", "1", "--delta", "1e-8", "--insecure-seed", "0",
                           "--user-column", "person_id", "--max-rows-per-user", "4", "--json"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["columns"] == 15
    schema = load_schema(out)
    assert schema.privacy_unit == PrivacyUnit.users("person_id", max_rows=4) and "person_id" not in schema.names
    proc = subprocess.run([*base, "--out", str(tmp_path / "p.yaml"), "--public", "--user-column", "person_id",
                           "--max-rows-per-user", "4"], capture_output=True, text=True, timeout=300)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and "--user-column is for a schema inferred with DP" in lines[0]
    assert not (tmp_path / "p.yaml").exists()
