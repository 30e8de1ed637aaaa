"""Private selection: the exponential mechanism, run exactly as Gumbel report-noisy-max."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from dpsynth.mechanisms.noise import NoiseSource
from dpsynth.privacy.events import ExponentialEvent
from dpsynth.privacy.odometer import Odometer

_ROUND_DOWN = 1.0 - 1e-9


@dataclass(frozen=True)
class ExponentialSelection:
    """Selects index i with probability ∝ exp(ε · score_i / (2Δ)) (McSherry–Talwar 2007).

    Implemented as the argmax of the scores plus Gumbel noise of scale 2Δ/ε, which has exactly
    that distribution; OpenDP samples the Gumbel comparison exactly.

    Sensitivity: ``sensitivity`` (Δ) bounds how much any single score can change between
    neighbouring datasets (scores may move in different directions).

    Privacy: ε-DP and ε-bounded-range, so (ε²/8)-zCDP (Cesar and Rogers 2021). The cost charged
    is that of the Gumbel scale actually drawn with (:attr:`gumbel_scale`, a float), rounded up as
    OpenDP's map does (:class:`~dpsynth.privacy.events.ExponentialEvent`).
    """

    epsilon: float
    sensitivity: float = 1.0
    label: str = ""

    @classmethod
    def for_rho(cls, rho: float, *, sensitivity: float = 1.0, label: str = "") -> ExponentialSelection:
        """A large ε (rounded down) whose charged cost is at most ``rho``.

        ε = √(8ρ)·(1 − 1e-9). Error analysis (u = 2⁻⁵³, ρ normal): 8ρ is exact and the square
        root, the constant and the product each add a relative error of at most u, so
        ε ≤ √(8ρ)·(1 − 1e-9)(1 + u)³; the Gumbel scale b = fl(2Δ/ε) loses at most u more, and the
        charged cost ⌈⌈⌈2Δ⌉/b⌉²⌉/8 rounds up twice (at most 2u each), so it is at most
        ρ·(1 − 1e-9)²·(1 + 14u) < ρ. Tested as a property over many ρ and sensitivities.
        """
        epsilon = (8.0 * rho) ** 0.5 * _ROUND_DOWN
        return cls(epsilon=epsilon, sensitivity=sensitivity, label=label)

    @property
    def gumbel_scale(self) -> float:
        """The scale of the Gumbel noise, 2Δ/ε: the same float the event's cost is computed from."""
        return self.event.gumbel_scale

    @property
    def event(self) -> ExponentialEvent:
        """The privacy event this mechanism spends per call."""
        return ExponentialEvent(epsilon=self.epsilon, sensitivity=self.sensitivity, label=self.label)

    @property
    def rho(self) -> float:
        """The zCDP cost (ρ) charged per call."""
        return self.event.rho

    def __call__(self, scores: Sequence[float], *, noise: NoiseSource, odometer: Odometer) -> int:
        """Spend this mechanism's ρ from ``odometer``, then return the selected index."""
        if len(scores) == 0:
            raise ValueError("cannot select from an empty set of candidates")
        odometer.spend(self.event)
        return noise.gumbel_argmax(scores, self.gumbel_scale)
