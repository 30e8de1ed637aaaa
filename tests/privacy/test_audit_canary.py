"""The release gate's canary audit (dpsynth.audit.canary).

Fast tests: the tables it generates (reserved values only in their key canary, the public domain
only, the probabilities of bound 2), the arithmetic of both bounds, arguments, and stand-in
generators (one that ignores its data is never flagged, one that returns its training rows always
is). Slow test: dpsynth's MST at its claim is not flagged at confidence 1 − 1e-4 (so a false failure
has probability at most 1e-4 by the bound's own guarantee, MST being DP). The plain-contract mutants
are caught in tests/release/test_release_mutants.py.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pandas as pd
import pytest

from dpsynth.audit.canary import METHOD, _copy_bound, _make_run, canary_audit
from dpsynth.audit.whitebox import AuditError
from dpsynth.datasets import load_adult
from dpsynth.exceptions import ParameterError
from dpsynth.schema import Schema
from dpsynth.schema.encode import encode

SMALL = Schema.from_dict({"version": 1, "columns": [
    {"name": "a", "kind": "categorical", "levels": [f"a{i}" for i in range(6)]},
    {"name": "b", "kind": "categorical", "levels": ["x", "y"]},
    {"name": "n", "kind": "integer", "bounds": [0, 1000], "edges": [0, 10, 100, 1000]},
]})
#: wide integer columns: a row's exact values are a secret of about 40 bits (bound 2 has power)
WIDE = Schema.from_dict({"version": 1, "columns": [
    {"name": "a", "kind": "categorical", "levels": [f"a{i}" for i in range(20)]},
    {"name": "b", "kind": "categorical", "levels": ["x", "y"]},
    {"name": "n1", "kind": "integer", "bounds": [0, 1000000], "edges": [0, 1000000]},
    {"name": "n2", "kind": "integer", "bounds": [0, 1000000], "edges": [0, 1000000]},
]})
CLAIM = {"claimed_epsilon": 1.0, "claimed_delta": 1e-6}


class IgnoresData:
    """0-DP: samples the public domain uniformly, whatever it was fitted on."""

    def __init__(self, *, epsilon: float, delta: float, schema: Schema = SMALL):
        self.schema = schema

    def fit(self, data: pd.DataFrame, *, schema: Schema) -> IgnoresData:
        return self

    def sample(self, n_rows: int) -> pd.DataFrame:
        from dpsynth.schema.encode import decode

        rng = np.random.default_rng()
        codes = np.stack([rng.integers(0, c.n_values, n_rows) for c in self.schema.columns], axis=1)
        return decode(codes, self.schema, rng)


class ReturnsTraining(IgnoresData):
    """Broken: its output is its training table."""

    def fit(self, data: pd.DataFrame, *, schema: Schema) -> ReturnsTraining:
        self.rows = data.reset_index(drop=True)
        return self

    def sample(self, n_rows: int) -> pd.DataFrame:
        return self.rows.iloc[np.arange(n_rows) % len(self.rows)].reset_index(drop=True)


# -- the tables ---------------------------------------------------------------------------------------


def test_reserved_values_appear_only_in_their_key_canary():
    _, schema = load_adult()
    run = _make_run(schema, 500, np.random.default_rng(3))
    assert encode(run.table, schema).tolist() == run.codes.tolist()  # the table fits the public schema
    singles = [(cols[0], vals[0]) for cols, vals in run.keys]
    assert len(singles) == len(set(singles)) == sum(c.n_values // 2 for c in schema.columns if c.n_values >= 3)
    canary_rows = set(run.canary[run.included].tolist())
    assert set(run.canary[~run.included].tolist()) == {-1} and -1 not in canary_rows
    assert len(run.table) == 500 + int(run.included.sum())
    for i, (j, v) in enumerate(singles):
        holders = set(np.flatnonzero(run.codes[:, j] == v).tolist())
        assert holders == ({int(run.canary[i])} if run.included[i] else set())


def test_pairs_and_triples_key_the_canaries_of_a_schema_with_few_reserved_values():
    run = _make_run(SMALL, 100, np.random.default_rng(0))
    sizes = [len(cols) for cols, _ in run.keys]
    assert sizes.count(1) == 3 + 1  # a: 3 of 6 values, n: 1 of 3 bins
    assert sizes.count(2) == 3 and sizes.count(3) == 0  # a × n: 3 × 1; no third column to reserve in
    assert len(set(run.keys)) == len(run.keys)
    wider = Schema.from_domain({"p": 4, "q": 4, "r": 4})
    sizes = [len(cols) for cols, _ in _make_run(wider, 50, np.random.default_rng(0)).keys]
    assert (sizes.count(1), sizes.count(2), sizes.count(3)) == (6, 12, 8)  # 2 of 4 reserved per column


def test_row_probabilities_of_bound_2_are_exact():
    run = _make_run(SMALL, 50, np.random.default_rng(1))
    base = ~np.isin(np.arange(len(run.table)), run.canary)
    widths = {0: 10, 1: 90, 2: 901}  # [0, 9], [10, 99], [100, 1000]
    for i in np.flatnonzero(base)[:10]:
        # a: 3 unreserved levels; b: 2 levels (none reserved); n: 2 unreserved bins, then the bin's integers
        expected = -math.log(3) - math.log(2) - math.log(2) - math.log(widths[int(run.codes[i, 2])])
        assert run.log_q[i] == pytest.approx(expected)


def test_copy_bound_arithmetic():
    log_q = [np.full(100, math.log(1e-9)), np.full(50, math.log(1e-9))]
    out = _copy_bound(1, log_q, [500, 400], epsilon=1.0, delta=1e-6, level=0.025)
    mass = 100 * 500 * 1e-9 + 50 * 400 * 1e-9
    assert out["p_value_bound"] == pytest.approx(math.e * mass + 150 * 1e-6)
    assert out["refutes_claim"] and out["rows_checked"] == 150
    assert out["epsilon_lower_bound"] == pytest.approx(math.log((0.025 - 150e-6) / mass), abs=1e-5)
    none = _copy_bound(0, log_q, [500, 400], epsilon=1.0, delta=1e-6, level=0.025)
    assert not none["refutes_claim"] and none["epsilon_lower_bound"] == 0.0
    too_big_delta = _copy_bound(3, log_q, [500, 400], epsilon=1.0, delta=1e-3, level=0.025)
    assert not too_big_delta["refutes_claim"]  # 150 rows × δ = 0.15 > 0.025: a copy proves nothing


# -- arguments and stand-ins ---------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs, message", [
    ({"fits": 4}, "fits (4) must be an integer from 1 to 3"),
    ({"fits": 0}, "fits (0)"),
    ({"base_rows": 0}, "base_rows"),
    ({"sample_factor": 0}, "sample_factor"),
    ({"confidence": 1.0}, "confidence (1.0)"),
    ({"claimed_epsilon": 0.0}, "claimed_epsilon"),
    ({"seed": "x"}, "seed ('x')"),
])
def test_bad_arguments_fit_nothing(kwargs, message):
    calls = []

    def make():
        calls.append(1)
        return IgnoresData(epsilon=1.0, delta=1e-6)

    with pytest.raises(ParameterError, match=message.replace("(", r"\(").replace(")", r"\)")):
        canary_audit(make, SMALL, **{**CLAIM, **kwargs})
    assert calls == []


def test_a_schema_without_a_column_of_three_values_is_refused():
    with pytest.raises(ParameterError, match="at least 3 values"):
        canary_audit(IgnoresData, Schema.from_domain({"x": 2, "y": 2}), **CLAIM)


def test_a_generator_that_ignores_its_data_is_not_flagged_and_one_that_returns_it_is():
    ok = canary_audit(functools.partial(IgnoresData, epsilon=1.0, delta=1e-6), SMALL, **CLAIM, base_rows=200)
    # a domain this small is reproduced by chance (copies > 0), and bound 2 says that proves nothing
    assert not ok.violation and not ok.copy_test["refutes_claim"] and ok.fits == 3
    d = ok.to_dict()
    assert d["method"] == METHOD and d["caught_by"] is None and "public schema" in d["notice"]
    small = canary_audit(functools.partial(ReturnsTraining, epsilon=1.0, delta=1e-6), SMALL, **CLAIM, base_rows=200)
    assert not small.conclusive and not small.copy_test["refutes_claim"]  # 21 canaries, ~12 bits a row: no power
    bad = canary_audit(functools.partial(ReturnsTraining, epsilon=1.0, delta=1e-6, schema=WIDE), WIDE, **CLAIM,
                       base_rows=200)
    assert bad.violation and bad.caught_by == "copies"
    assert bad.copy_test["copies"] == 3 * 200 + bad.to_dict()["details"]["included"]


def test_a_failing_fit_is_an_audit_error_in_one_line():
    class Fails(IgnoresData):
        def fit(self, data, *, schema):
            raise RuntimeError("boom\nsecond line")

    with pytest.raises(AuditError) as err:
        canary_audit(functools.partial(Fails, epsilon=1.0, delta=1e-6), SMALL, **CLAIM, fits=1, base_rows=50)
    assert str(err.value) == "fit 1 of the canary audit failed: RuntimeError: boom"


def test_an_output_outside_the_schema_is_an_audit_error():
    class Wrong(IgnoresData):
        def sample(self, n_rows):
            return pd.DataFrame({"a": ["zzz"] * n_rows, "b": ["x"] * n_rows, "n": [1] * n_rows})

    with pytest.raises(AuditError, match="does not fit the schema"):
        canary_audit(functools.partial(Wrong, epsilon=1.0, delta=1e-6), SMALL, **CLAIM, fits=1, base_rows=50)


# -- statistical: correct MST, and the mutants -----------------------------------------------------------


@pytest.mark.slow
def test_mst_at_its_claim_is_not_flagged_and_the_audit_is_conclusive():
    """False-failure probability at most 1e-4: the audit runs at confidence 1 − 1e-4, and MST
    satisfies its claim, so the bound exceeds the claim with probability at most 1e-4. The claim's
    δ is 1e-9: at a test level of 1e-4 / 48, the one-run bound's δ term (2·m·δ times a binomial
    tail, m = 234) leaves no power at δ = 1e-6 (docs/audit.md)."""
    from dpsynth.synth.mst import MST

    _, schema = load_adult()
    make = functools.partial(MST, epsilon=1.0, delta=1e-9)
    result = canary_audit(make, schema, claimed_epsilon=1.0, claimed_delta=1e-9, confidence=1 - 1e-4, seed=11)
    assert not result.violation, result.to_dict()["scores"]
    assert result.conclusive and result.max_provable_epsilon > 2.8  # 2.855: a function of the canaries only


def test_the_one_run_bound_needs_a_small_delta():
    """At the default 95% the Adult schema's 234 canaries can show ε ≈ 3.5 for δ up to 1e-5; the
    bound's δ term (2·m·δ times a binomial tail) takes all its power by δ = 1e-3."""
    from dpsynth.audit.canary import _one_run

    perfect = np.arange(234, dtype=float)
    included = perfect >= 117
    top = [_one_run(perfect, included, epsilon=1.0, delta=d, level=0.05 / 2 / 24, seed=0)["max_provable_epsilon"]
           for d in (1e-9, 1e-6, 1e-5, 1e-4, 1e-3)]
    assert top[0] > 3.5 and top[1] > 3.5 and top[2] > 3.4 and 1.0 < top[3] < 2.0 and top[4] == 0.0
