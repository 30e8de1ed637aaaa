"""The Gaussian mechanism on integer counts, with an exact discrete Gaussian sampler."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from dpsynth.mechanisms.noise import NoiseSource
from dpsynth.privacy.events import GaussianEvent
from dpsynth.privacy.odometer import Odometer

# Scales are rounded up by this factor so that float rounding can only make noise larger.
_ROUND_UP = 1.0 + 1e-9


@dataclass(frozen=True)
class GaussianCounts:
    """Adds discrete Gaussian noise N_Z(0, scale²) to every cell of a vector of counts.

    Sensitivity: ``l2_sensitivity`` is the L2 norm by which the whole count vector can move
    between neighbouring datasets; a histogram (marginal) of one table under add/remove-one-row
    has L2 sensitivity 1 (one cell moves by one).

    Privacy: (Δ₂² / 2·scale²)-zCDP (Canonne, Kamath, Steinke 2020, Theorem 14); the same as the
    continuous Gaussian, and exact: the sampler has no floating-point error.
    """

    scale: float
    l2_sensitivity: int = 1
    label: str = ""

    @classmethod
    def for_rho(cls, rho: float, *, l2_sensitivity: int = 1, label: str = "") -> GaussianCounts:
        """The smallest scale (rounded up) whose cost is at most ``rho``."""
        scale = l2_sensitivity / math.sqrt(2.0 * rho) * _ROUND_UP
        return cls(scale=scale, l2_sensitivity=l2_sensitivity, label=label)

    @property
    def event(self) -> GaussianEvent:
        return GaussianEvent(scale=self.scale, l2_sensitivity=self.l2_sensitivity, label=self.label)

    @property
    def rho(self) -> float:
        return self.event.rho

    def __call__(self, counts: np.ndarray, *, noise: NoiseSource, odometer: Odometer) -> np.ndarray:
        """Spend this mechanism's ρ from ``odometer``, then return the noisy counts (int64)."""
        odometer.spend(self.event)
        return noise.discrete_gaussian(counts, self.scale)
