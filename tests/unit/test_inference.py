"""Variable elimination in numpy: exact marginals, with an order that keeps factors small."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from dpsynth.synth._inference import Model


def brute_force(log_potentials, sizes, query):
    names = list(sizes)
    joint = np.zeros([sizes[a] for a in names])
    for cl, table in log_potentials.items():
        shape = [sizes[a] if a in cl else 1 for a in names]
        moved = np.transpose(table, [cl.index(a) for a in names if a in cl])
        joint = joint + moved.reshape(shape)
    p = np.exp(joint - joint.max())
    p /= p.sum()
    axes = tuple(i for i, a in enumerate(names) if a not in query)
    out = p.sum(axis=axes)
    kept = [a for a in names if a in query]
    return np.transpose(out, [kept.index(a) for a in query])


@pytest.mark.parametrize("seed", range(5))
def test_marginals_are_exact(seed):
    rng = np.random.default_rng(seed)
    sizes = {a: int(rng.integers(2, 4)) for a in "abcdef"}
    cliques = [("a", "b", "c"), ("c", "d"), ("d", "e", "f"), ("b", "f"), ("a",)]
    pots = {cl: rng.normal(size=[sizes[a] for a in cl]) for cl in cliques}
    model = Model(pots, sizes)
    for query in [("a",), ("f", "a"), ("e", "b", "c"), ("d", "a", "f"), tuple("abcdef")]:
        np.testing.assert_allclose(model.marginal(query, 1.0), brute_force(pots, sizes, query), rtol=1e-9, atol=1e-12)


def test_far_apart_query_on_a_long_chain_stays_small():
    """A chain of 24 variables with 8 values each, asked for its two ends and its middle: the greedy
    order eliminates along the chain (factors of at most 8^3 cells), where a poor fixed order would
    need 8^24."""
    names = [f"x{i:02d}" for i in range(24)]
    sizes = dict.fromkeys(names, 8)
    rng = np.random.default_rng(0)
    pots = {(a, b): rng.normal(size=(8, 8)) for a, b in itertools.pairwise(names)}
    model = Model(pots, sizes)
    order = model.elimination_order(("x00", "x12", "x23"))
    assert sorted(order) == sorted(set(names) - {"x00", "x12", "x23"})
    out = model.marginal(("x00", "x12", "x23"), 100.0)
    assert out.shape == (8, 8, 8) and out.sum() == pytest.approx(100.0)
