"""MST specifics: named budget splits, selection sensitivity, compression, estimation, sampling."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dpsynth import UNTRACKED
from dpsynth.exceptions import ParameterError
from dpsynth.marginals import marginal_counts
from dpsynth.schema import Schema, encode
from dpsynth.synth import MST, _pgm, _sampling
from dpsynth.synth.mst import edge_scores


def test_budget_splits_are_named_and_proportional(small_schema):
    even = MST(epsilon=1.0, delta=1e-6).plan(small_schema)
    skewed = MST(epsilon=1.0, delta=1e-6, split_one_way=2, split_select=1, split_two_way=1).plan(small_schema)
    d = len(small_schema)
    rho = MST(epsilon=1.0, delta=1e-6).zcdp_budget().rho
    one_way = sum(e.rho for e in skewed if e.label == "one_way_marginal")
    assert one_way == pytest.approx(rho / 2, rel=1e-6)
    assert sum(e.rho for e in even if e.label == "tree_edge") == pytest.approx(rho / 3, rel=1e-6)
    assert len([e for e in even if e.label == "tree_edge"]) == d - 1
    assert len([e for e in even if e.label == "two_way_marginal"]) == d - 1


@pytest.mark.parametrize("field", ["split_one_way", "split_select", "split_two_way"])
def test_bad_split_rejected(field, small_schema):
    with pytest.raises(ParameterError, match=rf"^{field} \(0\) must be a finite number > 0$"):
        MST(epsilon=1.0, delta=1e-6, **{field: 0}).plan(small_schema)


def test_one_column_schema_rejected():
    schema = Schema.from_domain({"a": 3})
    with pytest.raises(ParameterError, match="at least 2"):
        MST(epsilon=1.0, delta=1e-6).plan(schema)


def test_edge_scores_have_sensitivity_one():
    """Adding any one row moves every candidate's score by at most 1 (noise fixed)."""
    rng = np.random.default_rng(0)
    sizes = [3, 4, 2, 5]
    codes = np.stack([rng.integers(0, k, 300) for k in sizes], axis=1)
    probs = [rng.dirichlet(np.ones(k)) for k in sizes]
    base = edge_scores(codes, probs, 300.0, sizes)
    for _ in range(50):
        row = np.array([[rng.integers(0, k) for k in sizes]])
        for neighbour in (np.vstack([codes, row]), codes[1:]):
            moved = edge_scores(neighbour, probs, 300.0, sizes)
            assert max(abs(moved[e] - base[e]) for e in base) <= 1.0 + 1e-9


def test_strong_dependency_is_selected_and_reproduced(small_schema, small_data):
    synth = MST(epsilon=50.0, delta=1e-6, insecure_seed=0).fit(small_data, schema=small_schema, ledger=UNTRACKED)
    assert {"color", "size"} in [set(e) for e in synth.edges_]
    out = synth.sample(4000, random_state=1)
    real = small_data[small_data["color"] != "?"]
    fake = out[out["color"].notna()]
    for color, allowed in (("red", {"S", "M"}), ("blue", {"L", "XL"})):
        share = fake.loc[fake["color"] == color, "size"].isin(allowed).mean()
        assert share > 0.9, (color, share)
        assert real.loc[real["color"] == color, "size"].isin(allowed).all()


def test_compression_merges_rare_values_and_decompresses_into_the_domain():
    schema = Schema.from_domain({"a": 40, "b": 3})
    rng = np.random.default_rng(1)
    a = np.where(rng.random(500) < 0.9, 0, rng.integers(0, 40, 500))
    data = pd.DataFrame({"a": a, "b": rng.integers(0, 3, 500)})
    synth = MST(epsilon=0.5, delta=1e-6, insecure_seed=2).fit(data, schema=schema, ledger=UNTRACKED)
    assert "a" in synth.compression_ and synth.compressed_sizes_["a"] < 40
    out = synth.sample(2000)
    assert out["a"].between(0, 39).all()
    assert out["a"].nunique() > synth.compressed_sizes_["a"]  # the merged code spreads out again


def test_fast_estimation_matches_mbi_estimate():
    """dpsynth's jitted use of mbi's estimator hooks gives mbi's own answer."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from mbi import estimation

    rng = np.random.default_rng(3)
    domain = _pgm.make_domain(["a", "b", "c"], [3, 4, 2])
    truth = rng.dirichlet(np.ones(24)).reshape(3, 4, 2) * 1000
    # Test inputs with Gaussian perturbation (test data, not privacy noise).
    ms = [
        _pgm.linear_measurement(truth.sum(axis=(1, 2)) + rng.normal(0, 5, 3), ("a",), 5.0),
        _pgm.linear_measurement(truth.sum(axis=2).ravel() + rng.normal(0, 5, 12), ("a", "b"), 5.0),
        _pgm.linear_measurement(truth.sum(axis=0).ravel() + rng.normal(0, 5, 8), ("b", "c"), 5.0),
    ]
    ours, total = _pgm.estimate_marginals(domain, ms, iters=2000, tol=None)
    model = estimation.MirrorDescent().estimate(domain, ms, iters=2000)
    for clique in (("a", "b"), ("b", "c")):
        theirs = np.asarray(model.project(clique).datavector(flatten=False))
        np.testing.assert_allclose(ours[clique], theirs, rtol=1e-3, atol=1e-2)
    assert total == pytest.approx(float(model.total))


def test_tree_sampling_follows_the_model_marginals():
    rng = np.random.default_rng(4)
    joint_ab = rng.dirichlet(np.ones(12)).reshape(3, 4) * 10_000
    cond_bc = rng.dirichlet(np.ones(5), size=4)
    joint_bc = joint_ab.sum(axis=0)[:, None] * cond_bc
    marginals = {("a", "b"): joint_ab, ("b", "c"): joint_bc}
    codes = _sampling.sample_tree(["a", "b", "c"], [3, 4, 5], [("a", "b"), ("b", "c")], marginals, 10_000, rng)
    for (x, y), m in marginals.items():
        got = marginal_counts(codes, ["abc".index(x), "abc".index(y)], [3, 4, 5]).reshape(m.shape)
        # systematic rounding: each cell within a few units of the model (iid sampling would be ~±50)
        assert np.abs(got - m).max() <= 8


def test_systematic_round_sums_exactly():
    rng = np.random.default_rng(5)
    expected = rng.random((50, 7))
    totals = rng.integers(0, 100, 50)
    counts = _sampling.systematic_round(expected, totals, rng)
    assert (counts.sum(axis=1) == totals).all()
    assert (counts >= 0).all()
    target = expected / expected.sum(axis=1, keepdims=True) * totals[:, None]
    assert np.abs(counts - target).max() < 1.0 + 1e-9


def test_fit_does_not_learn_the_domain_from_data(small_schema, small_data):
    """Levels absent from the data still exist in the model (the domain is the schema's)."""
    only_red = small_data[small_data["color"] == "red"]
    synth = MST(epsilon=1.0, delta=1e-6, insecure_seed=6, compress=False)
    synth.fit(only_red, schema=small_schema, ledger=UNTRACKED)
    assert synth.compressed_sizes_ == dict(zip(small_schema.names, small_schema.sizes, strict=True))
    codes = encode(only_red, small_schema)
    assert codes.shape == (len(only_red), 4)


def test_mst_on_a_table_with_dates():
    schema = Schema.from_dict({"columns": [
        {"name": "day", "kind": "datetime", "bounds": ["2024-01-01", "2024-12-31"], "bins": 12},
        {"name": "kind", "kind": "categorical", "levels": ["x", "y"]},
    ]})
    rng = np.random.default_rng(8)
    days = pd.to_datetime("2024-01-01") + pd.to_timedelta(rng.integers(0, 366, 500), unit="D")
    data = pd.DataFrame({"day": days.strftime("%Y-%m-%d"), "kind": np.where(days.month <= 6, "x", "y")})
    out = MST(epsilon=20.0, delta=1e-6, insecure_seed=1).fit(data, schema=schema, ledger=UNTRACKED).sample(400)
    parsed = pd.to_datetime(out["day"], format="%Y-%m-%d")
    assert parsed.between("2024-01-01", "2024-12-31").all()
    assert ((parsed.dt.month <= 6) == (out["kind"] == "x")).mean() > 0.9
