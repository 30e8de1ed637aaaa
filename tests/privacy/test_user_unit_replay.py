"""The record/replay audit at a user privacy unit: by default its neighbours differ by one whole person
with more rows than K (``neighbouring_people``). Deterministic (seeded noise)."""

from __future__ import annotations

import pytest

from dpsynth import PrivacyUnit
from dpsynth.audit.replay import neighbouring_people, replay_check
from dpsynth.schema import Schema
from dpsynth.synth import AIM, MST

SCHEMA = Schema.from_domain({"a": 2, "b": 3, "c": 2}).with_unit(PrivacyUnit.users("person", max_rows=3))


def test_the_default_pairs_differ_by_one_person_with_more_rows_than_k():
    pairs = neighbouring_people(SCHEMA, rows=10)
    small, large = pairs["person_of_identical_rows_added"]
    assert len(large) - len(small) == 5 and set(large["person"]) - set(small["person"]) == {"new"}
    assert large.iloc[10:].drop(columns="person").drop_duplicates().shape[0] == 1  # identical rows
    big, less = pairs["person_removed"]
    assert len(set(big["person"]) - set(less["person"])) == 1 and set(less["person"]) < set(big["person"])
    with pytest.raises(ValueError, match="needs a schema with a user privacy unit"):
        neighbouring_people(Schema.from_domain({"a": 2}))


@pytest.mark.parametrize("make", [lambda: MST(epsilon=1.0, delta=1e-2, estimation_iters=50),
                                  lambda: AIM(epsilon=1.0, delta=1e-2, max_rounds=6, estimation_iters=30)],
                         ids=["mst", "aim"])
def test_replay_at_the_user_unit_passes_and_catches_unscaled_noise(make, monkeypatch):
    assert replay_check(make, SCHEMA).passed
    monkeypatch.setattr(PrivacyUnit, "sensitivity", property(lambda self: 1))
    report = replay_check(make, SCHEMA)
    assert not report.passed and any("exceed their sensitivity" in f for f in report.failures())
