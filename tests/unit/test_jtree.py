"""The bitmask junction-tree sizes agree with mbi's ``hypothetical_model_size``."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest

from dpsynth.synth._jtree import SizeOracle

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from mbi import Domain, junction_tree


def _random_cliques(rng, names, n_cliques, max_len):
    out = []
    for _ in range(n_cliques):
        k = int(rng.integers(1, max_len + 1))
        out.append(tuple(rng.choice(names, size=k, replace=False)))
    return out


@pytest.mark.parametrize("seed", range(40))
def test_sizes_match_mbi_on_random_cliques(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 12))
    names = [f"c{i}" for i in range(n)]
    sizes = [int(s) for s in rng.integers(1, 9, size=n)]
    oracle = SizeOracle(names, sizes)
    domain = Domain(names, sizes)
    one_way = [(a,) for a in names] if seed % 2 else []  # AIM always has them; mbi must agree without too
    cliques = one_way + _random_cliques(rng, names, int(rng.integers(1, 10)), min(4, n))
    assert oracle.model_size(cliques) == pytest.approx(junction_tree.hypothetical_model_size(domain, cliques),
                                                       rel=1e-12)


def test_trees_forests_and_ties_match_mbi():
    names = list("abcdef")
    sizes = [3, 3, 3, 3, 3, 3]  # every cost ties: the order must break ties as mbi does
    oracle, domain = SizeOracle(names, sizes), Domain(names, sizes)
    chain = [("a", "b"), ("b", "c"), ("c", "d"), ("d", "e"), ("e", "f")]
    star = [("a", x) for x in "bcdef"]
    cases = [chain, star, chain[:3], chain + [("a", "f")], [tuple("abc"), tuple("cde"), tuple("efa")],
             [(x,) for x in names], list(itertools.combinations(names, 2))]
    for cliques in cases:
        assert oracle.model_size(cliques) == pytest.approx(junction_tree.hypothetical_model_size(domain, cliques))
