"""The Gaussian mechanism on integer counts, with an exact discrete Gaussian sampler."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from dpsynth.mechanisms.noise import NoiseSource
from dpsynth.privacy.events import GaussianEvent
from dpsynth.privacy.odometer import Odometer

# Scales are rounded up by this factor so that float rounding can only make noise larger (and the
# cost, computed exactly and rounded up, stays below the target: see GaussianCounts.for_rho).
_ROUND_UP = 1.0 + 1e-9


@dataclass(frozen=True)
class GaussianCounts:
    """Adds discrete Gaussian noise N_Z(0, scale²) to every cell of a vector of counts.

    Sensitivity: ``l2_sensitivity`` is the L2 norm by which the whole count vector can move
    between neighbouring datasets; a histogram (marginal) of one table under add/remove-one-row
    has L2 sensitivity 1 (one cell moves by one).

    Privacy: (Δ₂² / 2·scale²)-zCDP (Canonne, Kamath, Steinke 2020, Theorem 14); the same as the
    continuous Gaussian, and exact: the sampler has no floating-point error. The cost charged is
    that value computed exactly and rounded up (:class:`~dpsynth.privacy.events.GaussianEvent`),
    equal to OpenDP's privacy map.
    """

    scale: float
    l2_sensitivity: int = 1
    label: str = ""

    @classmethod
    def for_rho(cls, rho: float, *, l2_sensitivity: int = 1, label: str = "") -> GaussianCounts:
        """Nearly the smallest scale (rounded up) whose charged cost is at most ``rho``.

        σ = Δ₂ / √(2ρ) · (1 + 1e-9). Error analysis (Δ₂ an integer, exact as a float; ρ normal):
        2ρ is exact and the square root, the division and the product each add a relative error
        of at most 2⁻⁵³, so σ ≥ Δ₂/√(2ρ) · (1 + 1e-9)(1 − 2⁻⁵³)⁴ and the exact cost Δ₂²/(2σ²) is
        at most ρ·(1 − 1.9e-9). Rounding that up to a float cannot pass ρ, itself a float above it.
        Tested as a property over many ρ and sensitivities.
        """
        scale = l2_sensitivity / math.sqrt(2.0 * rho) * _ROUND_UP
        return cls(scale=scale, l2_sensitivity=l2_sensitivity, label=label)

    @property
    def event(self) -> GaussianEvent:
        """The privacy event this mechanism spends per call."""
        return GaussianEvent(scale=self.scale, l2_sensitivity=self.l2_sensitivity, label=self.label)

    @property
    def rho(self) -> float:
        """The zCDP cost (ρ) charged per call."""
        return self.event.rho

    def __call__(self, counts: np.ndarray, *, noise: NoiseSource, odometer: Odometer) -> np.ndarray:
        """Spend this mechanism's ρ from ``odometer``, then return the noisy counts (int64)."""
        odometer.spend(self.event)
        return noise.discrete_gaussian(counts, self.scale)
