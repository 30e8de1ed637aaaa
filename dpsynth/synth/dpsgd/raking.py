"""Raking a model's candidate rows to DP 1-way marginals (DP-VAE's ``split_marginals``, DP-CTGAN's
``calibration_pool`` over its ``dp_frequencies``).

Post-processing of released quantities only: the candidates come from the trained decoder or generator and the
targets are the DP-measured 1-way frequencies, so nothing here reads the private data or spends
budget. :func:`rake_rows` draws each candidate's code blocks, weights the candidates to the targets
and keeps the rows asked for; :func:`rake_weights` fits a weight per candidate by iterative proportional fitting to
every target marginal; :func:`weighted_without_replacement` keeps rows with probability
proportional to their weight.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from dpsynth.synth.dpsgd.transform import sample_rows

#: rounds of raking (iterative proportional fitting) of the candidates' weights to the marginals
RAKE_ROUNDS = 20
#: output rows raked at a time (their ``pool`` × as many candidates are in memory at once)
RAKE_BLOCK_ROWS = 50_000


def rake_weights(picked: Sequence[np.ndarray], targets: Sequence[np.ndarray], rounds: int = RAKE_ROUNDS
                 ) -> np.ndarray:
    """A weight per candidate such that the weighted frequencies of every ``picked[j]`` (a code per
    candidate) approach ``targets[j]`` (a probability vector over the codes). A code no candidate
    holds keeps its target mass unmatched; one with no target mass gets weight zero."""
    weights = np.ones(len(picked[0]) if picked else 0)
    for _ in range(int(rounds)):
        for idx, target in zip(picked, targets, strict=True):
            current = np.bincount(idx, weights=weights, minlength=len(target)) / max(weights.sum(), 1e-300)
            ratio = np.where(current > 0, target / np.where(current > 0, current, 1.0), 1.0)
            weights = weights * ratio[idx]
    return weights


def weighted_without_replacement(weights: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``k`` rows drawn without replacement with probability ∝ ``weights`` (Gumbel top-k:
    the k largest log-weights plus independent Gumbel keys), in random order. All rows if k ≥ n.

    The Gumbel keys are sampling randomness of post-processing, not privacy noise.
    """
    n = len(weights)
    if k >= n:
        return rng.permutation(n)
    keys = np.log(np.maximum(weights, 1e-300)) + rng.gumbel(size=n)
    return rng.permutation(np.argpartition(-keys, k - 1)[:k])


def rake_rows(draw: Callable[[int], np.ndarray], pool: int, spans: Sequence[Any], targets: Sequence[np.ndarray],
              n_rows: int, rng: np.random.Generator) -> np.ndarray:
    """``n_rows`` rows raked to ``targets`` (one probability vector per code block of ``spans``), in
    blocks of at most :data:`RAKE_BLOCK_ROWS` rows: each block keeps its rows from ``pool`` times as
    many candidates ``draw(m)`` (activated model outputs), so the candidates in memory are bounded
    whatever ``n_rows`` is. Each block is raked to the targets on its own."""
    blocks = [min(RAKE_BLOCK_ROWS, n_rows - start) for start in range(0, n_rows, RAKE_BLOCK_ROWS)] or [0]
    parts = [_rake_block(draw(k * pool), spans, targets, k, rng) for k in blocks]
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def _rake_block(matrix: np.ndarray, spans: Sequence[Any], targets: Sequence[np.ndarray], n_rows: int,
                rng: np.random.Generator) -> np.ndarray:
    """``n_rows`` of the candidate rows ``matrix``: each code block of ``spans`` drawn to one-hot from
    its probabilities, weights raked to ``targets``, rows kept without replacement with probability
    ∝ weight, in random order."""
    picked = []
    for span in spans:
        idx = sample_rows(matrix[:, span.start:span.stop], rng)
        matrix[:, span.start:span.stop] = 0.0
        matrix[np.arange(len(matrix)), span.start + idx] = 1.0
        picked.append(idx)
    return matrix[weighted_without_replacement(rake_weights(picked, targets), n_rows, rng)]
