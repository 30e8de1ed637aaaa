"""Privacy budgets as small immutable values, never bare floats."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from dpsynth import _validation as check
from dpsynth.privacy import accounting


def _weights(weights: Sequence[float]) -> list[float]:
    if len(weights) == 0:
        raise check.ParameterError("weights (()) must be a non-empty sequence")
    ws = [check.positive_finite("weight", w) for w in weights]
    total = math.fsum(ws)
    return [w / total for w in ws]


def _at_most(parts: list[float], whole: float) -> list[float]:
    """Shave float rounding off the largest part until the parts add up (exactly) to <= ``whole``.

    One subtraction of the excess can round back up, so repeat, taking at least one ulp each time.
    """
    while (excess := math.fsum(parts) - whole) > 0:
        i = max(range(len(parts)), key=parts.__getitem__)
        parts[i] = max(0.0, min(parts[i] - excess, math.nextafter(parts[i], 0.0)))
    return parts


@dataclass(frozen=True, order=False)
class ZCDP:
    """A ρ-zero-concentrated-DP budget (Bun–Steinke 2016). ρ values add up under composition."""

    rho: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "rho", check.nonnegative_finite("rho", self.rho))

    def __add__(self, other: ZCDP) -> ZCDP:
        if not isinstance(other, ZCDP):
            return NotImplemented
        return ZCDP(self.rho + other.rho)

    def __le__(self, other: ZCDP) -> bool:
        if not isinstance(other, ZCDP):
            return NotImplemented
        return self.rho <= other.rho

    def __lt__(self, other: ZCDP) -> bool:
        if not isinstance(other, ZCDP):
            return NotImplemented
        return self.rho < other.rho

    def split(self, weights: Sequence[float]) -> list[ZCDP]:
        """Split into parts proportional to ``weights``; the parts never add up to more."""
        return [ZCDP(r) for r in _at_most([self.rho * w for w in _weights(weights)], self.rho)]

    def to_approx_dp(self, delta: float) -> ApproxDP:
        """The tightest (ε, δ) this ρ implies at the given δ (Canonne–Kamath–Steinke 2020)."""
        delta = check.open_unit("delta", delta)
        return ApproxDP(accounting.zcdp_epsilon(self.rho, delta), delta)


@dataclass(frozen=True, order=False)
class ApproxDP:
    """An (ε, δ)-DP budget. Under plain composition ε and δ add up."""

    epsilon: float
    delta: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "epsilon", check.nonnegative_finite("epsilon", self.epsilon))
        object.__setattr__(self, "delta", check.half_open_unit("delta", self.delta))

    def __add__(self, other: ApproxDP) -> ApproxDP:
        if not isinstance(other, ApproxDP):
            return NotImplemented
        return ApproxDP(self.epsilon + other.epsilon, self.delta + other.delta)

    def __le__(self, other: ApproxDP) -> bool:
        if not isinstance(other, ApproxDP):
            return NotImplemented
        return self.epsilon <= other.epsilon and self.delta <= other.delta

    def __lt__(self, other: ApproxDP) -> bool:
        if not isinstance(other, ApproxDP):
            return NotImplemented
        return self <= other and self != other

    def split(self, weights: Sequence[float]) -> list[ApproxDP]:
        """Split ε and δ in proportion to ``weights`` (basic composition); the parts never add up to more."""
        ws = _weights(weights)
        epsilons = _at_most([self.epsilon * w for w in ws], self.epsilon)
        deltas = _at_most([self.delta * w for w in ws], self.delta)
        return [ApproxDP(e, d) for e, d in zip(epsilons, deltas, strict=True)]

    def to_zcdp(self) -> ZCDP:
        """The largest ρ whose tight conversion fits inside this (ε, δ) (needs δ > 0 and ε > 0)."""
        epsilon = check.positive_finite("epsilon", self.epsilon)
        delta = check.open_unit("delta", self.delta)
        return ZCDP(accounting.approx_dp_to_rho(epsilon, delta))
