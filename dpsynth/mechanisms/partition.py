"""DP partition selection: release only the keys whose noisy count exceeds a threshold.

This is how categorical levels are discovered from private data (``dpsynth schema infer``): the set
of values a column holds is itself private (a value that one person alone has reveals them), so a
value becomes a level only if its count, plus exact discrete Gaussian noise, exceeds τ.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from dpsynth.mechanisms.noise import NoiseSource
from dpsynth.privacy.accounting import discrete_gaussian_tail
from dpsynth.privacy.events import PartitionSelectionEvent
from dpsynth.privacy.odometer import Odometer

# Scales are rounded up by this factor so that float rounding can only make noise larger.
_ROUND_UP = 1.0 + 1e-9


def threshold_for(scale: float, max_partitions: int, delta: float) -> int:
    """The smallest integer τ >= 1 with L0 · P[Z >= τ] <= δ (Z ~ N_Z(0, scale²)), computed with
    the same rounded-up tail as :class:`~dpsynth.privacy.events.PartitionSelectionEvent`."""
    if not (0.0 < delta < 1.0):
        raise ValueError("delta must be in (0, 1)")

    def fits(tau: int) -> bool:
        return PartitionSelectionEvent(scale=scale, threshold=tau, max_partitions=max_partitions).delta <= delta

    if fits(1):
        return 1
    lo, hi = 1, 2
    while not fits(hi):  # the tail falls faster than exponentially: a few doublings
        lo, hi = hi, 2 * hi
    while hi - lo > 1:  # fits(hi) and not fits(lo)
        mid = (lo + hi) // 2
        if fits(mid):
            hi = mid
        else:
            lo = mid
    return hi


@dataclass(frozen=True)
class PartitionSelection:
    """Thresholded noisy counts over keys found in the data (Korolova et al. 2009; Gopi et al. 2020;
    Desfontaines et al. 2022), with the exact discrete Gaussian.

    Input: ``groups``, e.g. one per column, each a mapping from the keys the private data holds
    to their (positive) counts. Every observed key gets independent noise N_Z(0, σ²); the key is
    released, with its noisy count, only if count + noise > τ (``threshold``). Keys the data does
    not hold get nothing and are never released.

    Sensitivity: each row contributes to at most one key per group, so adding or removing a row
    changes by one the counts of at most L0 = ``max_partitions`` keys (the number of groups).

    Privacy: δ_thr-approximately ρ-zCDP with ρ = L0 / (2σ²) and δ_thr = L0 · P[1 + Z > τ]
    (:class:`~dpsynth.privacy.events.PartitionSelectionEvent`): on the keys both neighbours hold,
    the noisy counts are a discrete Gaussian mechanism of L2 sensitivity √L0 (CKS20 Theorem 14)
    and thresholding is post-processing; a key only the larger neighbour holds has count 1 and is
    released with probability P[Z >= τ], so at most L0 of them are released with probability at
    most δ_thr (union bound), and nothing else depends on them. Hence (ε(ρ, δ'), δ' + δ_thr/(1 −
    δ_thr))-DP for every δ' (see :func:`dpsynth.privacy.accounting.thresholding_delta`).
    """

    scale: float
    threshold: int
    max_partitions: int
    label: str = ""

    @classmethod
    def calibrate(cls, rho: float, delta: float, *, max_partitions: int, label: str = "") -> PartitionSelection:
        """Nearly the smallest scale (rounded up) whose charged ρ is at most ``rho`` for
        L0 = ``max_partitions``, and the smallest integer threshold whose δ_thr is at most ``delta``.

        σ = √L0 / √(2ρ) · (1 + 1e-9): five correctly rounded operations lose at most a relative
        5·2⁻⁵³, far below the margin, so the exact ρ = L0/(2σ²) is below ``rho`` and so is its
        rounding up (as for :meth:`~dpsynth.mechanisms.GaussianCounts.for_rho`).
        """
        scale = cls.scale_for(rho, max_partitions=max_partitions)
        return cls(
            scale=scale,
            threshold=threshold_for(scale, max_partitions, delta),
            max_partitions=max_partitions,
            label=label,
        )

    @staticmethod
    def scale_for(rho: float, *, max_partitions: int) -> float:
        """The scale :meth:`calibrate` uses: √L0 / √(2ρ) · (1 + 1e-9), whose charged ρ is at most
        ``rho`` (see :meth:`calibrate`)."""
        if max_partitions < 1:
            raise ValueError("max_partitions must be >= 1")
        return math.sqrt(max_partitions) / math.sqrt(2.0 * rho) * _ROUND_UP

    @property
    def event(self) -> PartitionSelectionEvent:
        """The privacy event this mechanism spends per call."""
        return PartitionSelectionEvent(
            scale=self.scale, threshold=self.threshold, max_partitions=self.max_partitions, label=self.label
        )

    @property
    def rho(self) -> float:
        """The zCDP cost (ρ) charged per call."""
        return self.event.rho

    @property
    def delta(self) -> float:
        """The δ charged per call (the chance that a key of one neighbour only passes the threshold)."""
        return self.event.delta

    @property
    def release_probability(self) -> float:
        """P[1 + Z > τ]: the chance that a key held by one row only is released (rounded up)."""
        return discrete_gaussian_tail(self.scale, self.threshold)

    def __call__(
        self, groups: Sequence[Mapping[Hashable, int]], *, noise: NoiseSource, odometer: Odometer
    ) -> list[dict[Hashable, int]]:
        """Spend this mechanism's (ρ, δ_thr) from ``odometer``, then return, per group, the
        released keys with their noisy counts."""
        if len(groups) > self.max_partitions:
            raise ValueError(f"{len(groups)} groups, but the mechanism was planned for at most {self.max_partitions}")
        keys = [list(g) for g in groups]
        counts = np.array([int(g[k]) for g, ks in zip(groups, keys, strict=True) for k in ks], dtype=np.int64)
        if np.any(counts < 1):
            raise ValueError("partition selection needs the positive counts of the keys the data holds")
        odometer.spend(self.event)
        noisy = noise.discrete_gaussian(counts, self.scale) if len(counts) else counts
        released: list[dict[Hashable, int]] = []
        at = 0
        for ks in keys:
            part = noisy[at : at + len(ks)]
            at += len(ks)
            released.append({k: int(v) for k, v in zip(ks, part, strict=True) if v > self.threshold})
        return released
