"""Raking decoded candidates to DP 1-way marginals (``dpsynth.synth.dpsgd.raking``): post-processing.

Deterministic (seeded generators): no false-failure probability.
"""

from __future__ import annotations

import numpy as np

from dpsynth.synth.dpsgd import raking
from dpsynth.synth.dpsgd.raking import rake_rows, rake_weights, weighted_without_replacement


def test_raked_weights_reproduce_every_target_marginal():
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 3, size=5000), rng.integers(0, 4, size=5000)
    targets = [np.array([0.6, 0.3, 0.1]), np.array([0.1, 0.2, 0.3, 0.4])]
    w = rake_weights([a, b], targets)
    for idx, target in zip([a, b], targets, strict=True):
        assert np.allclose(np.bincount(idx, weights=w, minlength=len(target)) / w.sum(), target, atol=1e-6)


def test_a_code_with_no_target_mass_gets_weight_zero_and_a_code_no_candidate_holds_is_left_alone():
    idx = np.array([0, 0, 1, 1])
    w = rake_weights([idx], [np.array([1.0, 0.0, 0.0])])
    assert w[2] == w[3] == 0.0 and w[0] > 0 and w[1] > 0


def test_rows_are_drawn_without_replacement_and_never_a_zero_weight_row():
    rng = np.random.default_rng(1)
    weights = np.r_[np.zeros(50), np.ones(50)]
    kept = weighted_without_replacement(weights, 40, rng)
    assert len(kept) == len(set(kept.tolist())) == 40 and kept.min() >= 50
    assert sorted(weighted_without_replacement(weights, 200, rng).tolist()) == list(range(100))


def test_heavier_rows_are_kept_more_often():
    """Weights 1 and 9 for two halves, keep 10 of 1000 a time, 200 times: the heavy half holds
    90% of the keys' mass; seeded, so the count is a fixed number (observed about 1,800 of 2,000)."""
    rng = np.random.default_rng(2)
    weights = np.r_[np.ones(500), np.full(500, 9.0)]
    heavy = sum(int((weighted_without_replacement(weights, 10, rng) >= 500).sum()) for _ in range(200))
    assert 1700 <= heavy <= 1900


def test_rows_are_raked_in_blocks_so_the_candidates_in_memory_are_bounded(monkeypatch):
    """Blocks of at most RAKE_BLOCK_ROWS output rows, each from pool × as many candidates, each raked
    to the targets: 20 rows at pool 3 in blocks of 7 draw 21, 21 and 18 candidates."""
    monkeypatch.setattr(raking, "RAKE_BLOCK_ROWS", 7)
    rng = np.random.default_rng(3)
    sizes: list[int] = []

    def draw(m: int) -> np.ndarray:
        sizes.append(m)
        return np.eye(3)[rng.integers(0, 3, m)]

    out = rake_rows(draw, 3, [slice(0, 3)], [np.array([0.5, 0.3, 0.2])], 20, rng)
    assert sizes == [21, 21, 18] and out.shape == (20, 3) and (out.sum(axis=1) == 1).all()
    sizes.clear()
    assert rake_rows(draw, 3, [slice(0, 3)], [np.array([0.5, 0.3, 0.2])], 0, rng).shape == (0, 3) and sizes == [0]
