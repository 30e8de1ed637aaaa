"""The k-way workload error of :mod:`dpsynth.quality.fidelity` as an integer statistic of bounded
sensitivity, ready for the discrete Gaussian mechanism (the DP fidelity check of a release).

``dpsynth eval`` reports ``l1_kway`` = (1/|M|) Σ_{m∈M} L1(c_m/n, s_m/m_S): the mean, over a public
seeded set M of k-way marginals (:func:`dpsynth.quality.fidelity._marginal_sets`, the same sets and
seed), of the L1 distance between the real histogram c_m (n rows) and the synthetic one s_m (m_S
rows). With p = s/m_S fixed (the synthetic table is a DP output, public here),

    f_k(D) = (1/|M|) Σ_m Σ_cells |c(cell) − n·p(cell)| = n · l1_kway,

and this module computes it in exact integer arithmetic as the numerator
T = Σ_m Σ_cells |m_S·c(cell) − n·s(cell)| over the denominator m_S·|M| (f_k = T / (m_S·|M|)).

Sensitivity (add or remove one row x; D' = D + x): for one marginal, the cell x falls in changes by
c → c + 1 and n·p → (n + 1)·p, so |c − np| moves by at most |1 − p_x|; every other cell moves by
at most p(cell) (only n·p changes). The sum moves by at most (1 − p_x) + Σ_{cell≠x} p(cell) =
2·(1 − p_x) ≤ 2, and so does the mean over M (each marginal by at most 2). Removal is the same
inequality read backwards. Hence |f_k(D) − f_k(D')| ≤ 2.

The released integer is g_k = ⌊SCALE·f_k + ½⌋ with an integer SCALE: floor is monotone and
⌊y + t⌋ = ⌊y⌋ + t for an integer t, so |SCALE·f_k(D) − SCALE·f_k(D')| ≤ 2·SCALE gives
|g_k(D) − g_k(D')| ≤ 2·SCALE exactly (rounding to nearest-half-up adds nothing; it is computed
from the integers T, m_S, |M|, so no float rounding enters either). The quantisation error is at
most ½/SCALE in units of f_k (rows), far below the noise at any useful ρ.

Privacy: this module computes exact (not DP) statistics of the real table; only their noisy
release through :mod:`dpsynth.mechanisms` (see :mod:`dpsynth.release.dp_checks`) is DP.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from dpsynth.marginals import paired_counts
from dpsynth.marginals.backend import MarginalCounter
from dpsynth.marginals.numpy_backend import marginal_counts
from dpsynth.quality.fidelity import MAX_MARGINALS, SAMPLE_SEED, _marginal_sets

#: SCALE of the released integer g_k = ⌊SCALE·f_k + ½⌋ (an integer, so that Δ = 2·SCALE is one).
FIDELITY_SCALE = 8
#: |f_k(D) − f_k(D')| ≤ 2 (rows) for add/remove neighbours; see the module docstring.
WORKLOAD_SENSITIVITY = 2


def quantised_sensitivity(scale: int = FIDELITY_SCALE) -> int:
    """L2 (= L1) sensitivity of g_k = ⌊scale·f_k + ½⌋: 2·scale."""
    return WORKLOAD_SENSITIVITY * int(scale)


@dataclass(frozen=True)
class WorkloadStatistic:
    """f_k = numerator / denominator exactly (rows × mean L1), for the marginal sets ``sets``."""

    k: int
    numerator: int
    denominator: int
    n_marginals: int
    sampled: bool

    @property
    def value(self) -> float:
        """f_k = n · l1_kway (float, for tests and reference)."""
        return self.numerator / self.denominator

    def quantised(self, scale: int = FIDELITY_SCALE) -> int:
        """g_k = ⌊scale·f_k + ½⌋, in exact integer arithmetic."""
        return (2 * int(scale) * self.numerator + self.denominator) // (2 * self.denominator)


def workload_statistic(real_codes: np.ndarray, synthetic_codes: np.ndarray, sizes: list[int], k: int, *,
                       max_marginals: int = MAX_MARGINALS, seed: int = SAMPLE_SEED) -> WorkloadStatistic | None:
    """f_k(D) for the encoded real and synthetic tables (``None`` when there are fewer than k columns).

    Uses exactly the marginal sets of :func:`dpsynth.quality.fidelity.workload_errors`, so that
    f_k / n equals the ``l1_kway`` that ``dpsynth eval`` reports.
    """
    d = real_codes.shape[1]
    if k > d:
        return None
    sets, sampled = _marginal_sets(d, k, max_marginals, seed)
    # sparse for a marginal too big for memory
    pairs = (paired_counts(real_codes, synthetic_codes, cols, sizes) for cols in sets)
    return _statistic(k, pairs, len(real_codes), len(synthetic_codes), len(sets), sampled)


def counted_workload_statistic(real: MarginalCounter, synthetic_codes: np.ndarray, k: int, *,
                               max_marginals: int = MAX_MARGINALS,
                               seed: int = SAMPLE_SEED) -> WorkloadStatistic | None:
    """:func:`workload_statistic` with the real table's marginals from a counting backend (DuckDB,
    Spark: the rows stay there; the histograms of the same marginal sets come back dense)."""
    sizes = real.schema.sizes
    d = len(sizes)
    if k > d:
        return None
    sets, sampled = _marginal_sets(d, k, max_marginals, seed)
    counts = real.counts([tuple(cols) for cols in sets])
    n = int(counts[0].sum()) if counts else 0
    pairs = ((c, marginal_counts(synthetic_codes, list(cols), sizes)) for c, cols in zip(counts, sets, strict=True))
    return _statistic(k, pairs, n, len(synthetic_codes), len(sets), sampled)


def _statistic(k: int, pairs: Iterable[tuple[np.ndarray, np.ndarray]], n: int, m_s: int, n_sets: int,
               sampled: bool) -> WorkloadStatistic:
    """T = Σ_m Σ_cells |m_S·c − n·s| over the (real, synthetic) histograms of the marginal sets."""
    if m_s == 0:
        raise ValueError("the synthetic table has no rows")
    # |m_S·c − n·s| per cell is at most n·m_S; per marginal the sum is at most 2·n·m_S (int64-safe
    # below 2^62), and the total over marginals is a Python int.
    exact_int64 = 2 * max(n, 1) * m_s < 2**62
    total = 0
    for c, s in pairs:
        if exact_int64:
            total += int(np.abs(m_s * np.asarray(c, dtype=np.int64) - n * np.asarray(s, dtype=np.int64)).sum())
        else:
            total += sum(abs(m_s * int(a) - n * int(b)) for a, b in zip(c.tolist(), s.tolist(), strict=True))
    return WorkloadStatistic(k=k, numerator=total, denominator=m_s * n_sets, n_marginals=n_sets, sampled=sampled)


__all__ = ["FIDELITY_SCALE", "WORKLOAD_SENSITIVITY", "WorkloadStatistic", "counted_workload_statistic",
           "quantised_sensitivity", "workload_statistic"]
