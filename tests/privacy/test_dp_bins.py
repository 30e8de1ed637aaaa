"""DP quantile bin edges: schema syntax, sensitivity, selection probabilities, and a charged fit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from dpsynth import UNTRACKED
from dpsynth.exceptions import SchemaError
from dpsynth.mechanisms import ExponentialSelection, SeededNoise
from dpsynth.privacy import ZCDP, ApproxDP, Odometer
from dpsynth.privacy.ledger import Ledger
from dpsynth.schema import Schema, dp_bins
from dpsynth.synth import MST

ALPHA = 1e-4

SCHEMA = Schema.from_dict({"columns": [
    {"name": "income", "kind": "continuous", "bounds": [0, 200000], "bins": {"dp_quantiles": 8}},
    {"name": "age", "kind": "integer", "bounds": [0, 100], "bins": {"dp_quantiles": 4}},
    {"name": "city", "kind": "categorical", "levels": ["a", "b"]},
]})


def test_schema_syntax_and_errors():
    assert [c.size for c in SCHEMA.columns] == [8, 4, 2]  # K provisional bins until a fit chooses edges
    assert [c.name for c in dp_bins.dp_binned(SCHEMA)] == ["income", "age"]
    assert dp_bins.n_quantiles(SCHEMA) == 7 + 3
    assert SCHEMA.to_dict()["columns"][0]["bins"] == {"dp_quantiles": 8}
    assert Schema.from_dict(SCHEMA.to_dict()) == SCHEMA
    for spec, message in [
        ({"kind": "continuous", "bounds": [0, 1], "bins": {"dp_quantiles": 1}}, "with K >= 2"),
        ({"kind": "continuous", "bounds": [0, 1], "bins": {"quantiles": 3}}, "with K >= 2"),
        ({"kind": "continuous", "edges": [0, 1], "bins": {"dp_quantiles": 3}}, "give bins or edges, not both"),
        ({"kind": "continuous", "bins": {"dp_quantiles": 3}}, "need public bounds"),
        ({"kind": "datetime", "bounds": ["2024-01-01", "2024-02-01"], "bins": {"dp_quantiles": 3}},
         "not available for datetime"),
    ]:
        with pytest.raises(SchemaError, match=message):
            Schema.from_dict({"columns": [{"name": "x", **spec}]})


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(min_value=0, max_value=100), min_size=1, max_size=60),
       st.floats(min_value=0, max_value=100), st.sampled_from([0.1, 0.25, 0.5, 0.9]))
def test_quantile_scores_have_sensitivity_one(values, extra, q):
    grid = np.linspace(0, 100, 50)
    base = dp_bins.quantile_scores(np.array(values), grid, q)
    for neighbour in (np.array([*values, extra]), np.array(values[1:])):
        if len(neighbour):
            assert np.max(np.abs(dp_bins.quantile_scores(neighbour, grid, q) - base)) <= 1 + 1e-9


def test_selection_probabilities_are_the_exponential_mechanism():
    """The chosen median follows P(c) ∝ exp(ε·score(c)/2) over the public grid (false failure ≤ 1e-4)."""
    schema = Schema.from_dict({"columns": [
        {"name": "n", "kind": "integer", "bounds": [0, 10], "bins": {"dp_quantiles": 2}}]})
    data = pd.DataFrame({"n": ["2", "3", "3", "8", "9"]})
    mechanism = ExponentialSelection(epsilon=1.0)
    grid = dp_bins.candidate_grid(schema["n"])
    np.testing.assert_array_equal(grid, np.arange(1, 11))
    scores = dp_bins.quantile_scores(np.array([2, 3, 3, 8, 9.0]), grid, 0.5)
    expected = np.exp(0.5 * scores)
    expected /= expected.sum()
    noise = SeededNoise(3, _warn=False)
    n = 4000
    picks = []
    for _ in range(n):
        resolved = dp_bins.resolve(data, schema, [mechanism], noise=noise, odometer=Odometer(ZCDP(1.0)))
        picks.append(resolved["n"].edges[1])
    observed = np.array([picks.count(float(c)) for c in grid])
    assert stats.chisquare(observed, expected * n).pvalue > ALPHA


def test_edges_track_the_quantiles_at_large_epsilon():
    rng = np.random.default_rng(0)
    income = rng.lognormal(10.5, 0.6, 5000).clip(0, 200000)
    data = pd.DataFrame({"income": income.round(2).astype(str), "age": rng.integers(18, 90, 5000).astype(str),
                         "city": rng.choice(["a", "b"], 5000)})
    mechanisms = [ExponentialSelection(epsilon=5.0)] * dp_bins.n_quantiles(SCHEMA)
    resolved = dp_bins.resolve(data, SCHEMA, mechanisms, noise=SeededNoise(1, _warn=False),
                               odometer=Odometer(ZCDP(100.0)))
    edges = np.array(resolved["income"].edges)
    assert resolved["income"].edges_from == "dp_quantiles" and edges[0] == 0 and edges[-1] == 200000
    assert np.all(np.diff(edges) > 0)
    true = np.quantile(income, np.arange(1, 8) / 8)
    # each DP edge lies within one grid step (≈ 195) of a rank within ±1% of the target quantile
    lo, hi = np.quantile(income, np.arange(1, 8) / 8 - 0.01), np.quantile(income, np.arange(1, 8) / 8 + 0.01)
    assert np.all((edges[1:-1] >= lo - 200) & (edges[1:-1] <= hi + 200)), (edges, true)
    # and the bins now hold roughly equal shares of the rows, unlike uniform bins
    shares = np.bincount(np.searchsorted(edges[1:-1], income, side="right"), minlength=8) / len(income)
    assert shares.max() < 0.2


def test_mst_charges_the_quantiles_and_fits_on_dp_edges(tmp_path):
    rng = np.random.default_rng(2)
    data = pd.DataFrame({"income": rng.lognormal(10.5, 0.6, 800).clip(0, 200000).round(2).astype(str),
                         "age": rng.integers(18, 90, 800).astype(str), "city": rng.choice(["a", "b"], 800)})
    ledger = Ledger(f"sqlite:///{tmp_path / 'l.db'}", create=True)
    ledger.create_dataset("d", ApproxDP(5.0, 1e-6))
    synth = MST(epsilon=1.0, delta=1e-6, insecure_seed=4)
    planned = synth.plan(SCHEMA)
    assert [e.label for e in planned[:10]] == ["dp_quantile"] * 10
    rho = synth.zcdp_budget().rho
    assert sum(e.rho for e in planned[:10]) == pytest.approx(0.1 * rho, rel=1e-6)
    assert sum(e.rho for e in planned) <= rho
    synth.fit(data, schema=SCHEMA, ledger=ledger, dataset="d")
    assert [e.to_dict() for e in synth.privacy_events_] == [e.to_dict() for e in planned]
    assert synth.schema_["income"].edges_from == "dp_quantiles"
    (entry,) = ledger.statement("d").reservations
    assert entry.rho == pytest.approx(sum(e.rho for e in planned))
    out = synth.sample(300)
    assert pd.to_numeric(out["income"]).between(0, 200000).all() and out["age"].between(0, 100).all()
    # a schema without DP bins spends nothing on preprocessing
    plain = Schema.from_dict({"columns": [SCHEMA.columns[2].to_dict(), {"name": "n", "kind": "integer",
                                                                        "bounds": [0, 5]}]})
    assert not [e for e in MST(epsilon=1.0, delta=1e-6).plan(plain) if e.label == "dp_quantile"]
    assert MST(epsilon=1.0, delta=1e-6).fit(
        data.assign(n="1")[["city", "n"]], schema=plain, ledger=UNTRACKED).privacy_spent_.rho == pytest.approx(
        MST(epsilon=1.0, delta=1e-6).zcdp_budget().rho, rel=1e-6)
