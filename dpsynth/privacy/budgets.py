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
        parts = [ZCDP(self.rho * w) for w in _weights(weights)]
        excess = math.fsum(p.rho for p in parts) - self.rho
        if excess > 0:  # floating-point rounding: shave it off the largest part
            i = max(range(len(parts)), key=lambda j: parts[j].rho)
            parts[i] = ZCDP(max(0.0, parts[i].rho - excess))
        return parts

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
        """Split ε and δ in proportion to ``weights`` (basic composition)."""
        ws = _weights(weights)
        return [ApproxDP(self.epsilon * w, self.delta * w) for w in ws]

    def to_zcdp(self) -> ZCDP:
        """The largest ρ whose tight conversion fits inside this (ε, δ) (needs δ > 0 and ε > 0)."""
        epsilon = check.positive_finite("epsilon", self.epsilon)
        delta = check.open_unit("delta", self.delta)
        return ZCDP(accounting.approx_dp_to_rho(epsilon, delta))
