"""The DP measurements for choosing K (``dpsynth.schema.contributions``): what they read moves by at most
their declared sensitivity between tables that differ by one person, and what they estimate is right
when the noise is small. Deterministic (seeded noise), no statistical failure probability.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import dpsynth.schema.contributions as contributions
from dpsynth import UNTRACKED, PrivacyUnit
from dpsynth.datasets import load_people
from dpsynth.exceptions import DataError, ParameterError
from dpsynth.marginals.bounding import bound_contributions
from dpsynth.mechanisms import SeededNoise
from dpsynth.privacy.budgets import ApproxDP
from dpsynth.privacy.ledger import Ledger, LedgerError
from dpsynth.schema import Schema
from dpsynth.schema.encode import encode


class Recorder(SeededNoise):
    """Seeded noise that keeps every input it noised and its scale."""

    def __init__(self, seed: int):
        super().__init__(seed, _warn=False)
        self.calls: list[tuple[np.ndarray, float]] = []

    def discrete_gaussian(self, counts, scale):
        self.calls.append((np.asarray(counts).copy(), float(scale)))
        return super().discrete_gaussian(counts, scale)


def recorded(monkeypatch, run):
    recorder = Recorder(0)
    monkeypatch.setattr(contributions, "make_noise", lambda seed: recorder)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # untracked: expected here
        run()
    return recorder.calls


BASE = Schema.from_domain({"a": 3, "b": 2})
SCHEMA = BASE.with_unit(PrivacyUnit.users("pid", max_rows=4))


def tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(2)
    before = pd.DataFrame({"a": rng.integers(0, 3, 60).astype(str), "b": rng.integers(0, 2, 60).astype(str),
                           "pid": [f"p{i % 17}" for i in range(60)]})
    person = pd.DataFrame({"a": ["2"] * 11, "b": ["1"] * 11, "pid": ["new"] * 11})  # more rows than any K
    return before, pd.concat([before, person], ignore_index=True)


def test_the_histogram_of_rows_per_person_moves_by_one_person_in_one_bucket(monkeypatch):
    before, after = tables()
    calls = [recorded(monkeypatch, lambda t=t: contributions.contribution_profile(
        t, "pid", epsilon=1.0, delta=1e-9, ledger=UNTRACKED, exact_up_to=4, max_rows=8))[0][0] for t in (before, after)]
    diff = calls[1] - calls[0]
    assert np.abs(diff).sum() == 1 and diff[-1] == 1  # 11 rows: the last bucket (9 or more)
    assert contributions.buckets(4, 8) == [(1, 1), (2, 2), (3, 3), (4, 4), (5, 8), (9, None)]


@pytest.mark.parametrize("bounded", [True, False], ids=["bounded", "mutant_unbounded"])
def test_the_truncation_marginals_move_by_at_most_k_a_person(monkeypatch, bounded):
    if not bounded:  # a mutant that forgets to bound each person at K: must exceed the declared sensitivity
        monkeypatch.setattr(contributions, "bound_contributions", lambda keys, codes, k: np.arange(len(codes)))
    before, after = tables()
    ks = [1, 2, 4]
    runs = [recorded(monkeypatch, lambda t=t: contributions.truncation_profile(
        t, SCHEMA, ks, epsilon=1.0, delta=1e-9, ledger=UNTRACKED)) for t in (before, after)]
    moved = [float(np.linalg.norm(b[0] - a[0])) for a, b in zip(*runs, strict=True)]
    declared = [k for k in ks for _ in BASE.columns]
    assert len(moved) == len(declared) == 6
    within = all(m <= k for m, k in zip(moved, declared, strict=True))
    assert within == bounded
    assert all(m == k for m, k in zip(moved, declared, strict=True)) or not bounded  # the worst case is reached


def test_the_estimates_are_right_when_the_noise_is_small():
    people, schema = load_people()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        profile = contributions.contribution_profile(people, "person_id", epsilon=1e4, delta=1e-9, ledger=UNTRACKED,
                                                     insecure_seed=1)
    counts = people["person_id"].value_counts()
    assert profile.people == pytest.approx(len(counts), abs=20)
    codes = encode(people, schema)
    for k in (1, 4, 16):
        kept = len(bound_contributions(people["person_id"], codes, k))
        assert kept == int(counts.clip(upper=k).sum())
        assert profile.rows_kept(k) == pytest.approx(kept, abs=50)
    assert profile.kept_share(16) == pytest.approx(counts.clip(upper=16).sum() / len(people), abs=0.03)
    with pytest.raises(ParameterError, match=r"k \(17\) must be at most exact_up_to \(16\)"):
        profile.rows_kept(17)


def test_both_are_charged_to_the_ledger_at_a_user_unit_and_refuse_bad_input(tmp_path):
    before, _ = tables()
    ledger = Ledger(f"sqlite:///{tmp_path / 'l.db'}", create=True)
    ledger.create_dataset("people", ApproxDP(5.0, 1e-6), unit="user:4")
    ledger.create_dataset("rows", ApproxDP(5.0, 1e-6))
    contributions.contribution_profile(before, "pid", epsilon=0.5, delta=1e-9, ledger=ledger, dataset="people")
    contributions.truncation_profile(before, SCHEMA, [1, 4], epsilon=0.5, delta=1e-9, ledger=ledger, dataset="people")
    assert [r.synthesizer for r in ledger.statement("people").reservations] == ["contribution-profile",
                                                                                "truncation-profile"]
    with pytest.raises(LedgerError, match="registered with privacy unit 'row'"):
        contributions.contribution_profile(before, "pid", epsilon=0.5, delta=1e-9, ledger=ledger, dataset="rows")
    with pytest.raises(LedgerError, match="at most the registered one"):
        contributions.truncation_profile(before, SCHEMA, [1, 8], epsilon=0.5, delta=1e-9, ledger=ledger,
                                         dataset="people")
    broken = before.copy()
    broken.loc[7, "pid"] = None
    with pytest.raises(DataError, match=r"column 'pid', row 8: the person key is missing"):
        contributions.contribution_profile(broken, "pid", epsilon=0.5, delta=1e-9, ledger=ledger, dataset="people")
    with pytest.raises(ParameterError, match="at least two values of K"):
        contributions.truncation_profile(before, SCHEMA, [4], epsilon=0.5, delta=1e-9, ledger=ledger, dataset="people")
    assert len(ledger.statement("people").reservations) == 2 and ledger.statement("rows").reservations == []
