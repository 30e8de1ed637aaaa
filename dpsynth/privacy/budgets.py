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


#: RDP values are capped here (a value this large converts to an unusable ε anyway), so curves
#: stay finite in JSON and sums of curves never overflow.
RDP_CAP = 1e300


@dataclass(frozen=True)
class RDP:
    """A Rényi-DP curve: ε_α at each order α of ``orders`` (Mironov 2017).

    Curves add up order by order under composition (on the orders both have); a ρ-zCDP budget is
    the curve ρα (:meth:`from_zcdp`). :meth:`to_approx_dp` is the improved conversion of Balle et
    al. (2020), minimised over the orders.
    """

    orders: tuple[float, ...]
    epsilons: tuple[float, ...]

    def __post_init__(self) -> None:
        orders = tuple(float(a) for a in self.orders)
        values = tuple(min(RDP_CAP, check.nonnegative_or_infinite("rdp", e)) for e in self.epsilons)
        if not orders or len(orders) != len(values):
            raise check.ParameterError(f"rdp orders ({len(orders)}) must be as many as its values ({len(values)}) "
                                       "and at least one")
        if any(not (math.isfinite(a) and a > 1.0) for a in orders) or list(orders) != sorted(set(orders)):
            raise check.ParameterError("rdp orders must be finite, > 1 and strictly increasing")
        object.__setattr__(self, "orders", orders)
        object.__setattr__(self, "epsilons", values)

    @classmethod
    def from_zcdp(cls, rho: float, orders: Sequence[float] = accounting.RDP_ORDERS) -> RDP:
        """The curve ρα of a ρ-zCDP mechanism (Bun–Steinke 2016, Definition 1.1)."""
        return cls(tuple(orders), tuple(rho * a for a in orders))

    @classmethod
    def zero(cls, orders: Sequence[float] = accounting.RDP_ORDERS) -> RDP:
        """The curve of no privacy loss at ``orders``."""
        return cls(tuple(orders), tuple(0.0 for _ in orders))

    @staticmethod
    def total(curves: Sequence[RDP]) -> RDP | None:
        """The composition of ``curves`` (None when there are none)."""
        if not curves:
            return None
        total = curves[0]
        for curve in curves[1:]:
            total = total + curve
        return total

    def __add__(self, other: RDP) -> RDP:
        if not isinstance(other, RDP):
            return NotImplemented
        if self.orders == other.orders:
            pairs = list(zip(self.orders, self.epsilons, other.epsilons, strict=True))
        else:  # compose on the common orders only: a valid (if less tight) curve
            theirs = dict(zip(other.orders, other.epsilons, strict=True))
            pairs = [(a, e, theirs[a]) for a, e in zip(self.orders, self.epsilons, strict=True) if a in theirs]
            if not pairs:
                raise check.ParameterError("rdp curves have no order in common")
        # Round each sum up: a float addition may round down.
        return RDP(tuple(a for a, _, _ in pairs),
                   tuple(math.nextafter(x + y, math.inf) if x + y > 0 else 0.0 for _, x, y in pairs))

    def __le__(self, other: RDP) -> bool:
        """Pointwise at most ``other`` on every order ``other`` has (and having all of them)."""
        if not isinstance(other, RDP):
            return NotImplemented
        mine = dict(zip(self.orders, self.epsilons, strict=True))
        return all(a in mine and mine[a] <= e for a, e in zip(other.orders, other.epsilons, strict=True))

    def epsilon(self, delta: float) -> float:
        """The smallest ε (rounded up) this curve implies at ``delta``."""
        delta = check.open_unit("delta", delta)
        return accounting.rdp_epsilon(self.orders, self.epsilons, delta)

    def to_approx_dp(self, delta: float) -> ApproxDP:
        """The (ε, δ) this curve implies at ``delta``."""
        return ApproxDP(self.epsilon(delta), delta)

    def to_dict(self) -> dict[str, list[float]]:
        """The curve as stored in a ledger entry: ``{"orders": [...], "rdp": [...]}``."""
        return {"orders": list(self.orders), "rdp": list(self.epsilons)}

    @classmethod
    def from_dict(cls, data: dict[str, list[float]]) -> RDP:
        """The curve :meth:`to_dict` stored."""
        return cls(tuple(data["orders"]), tuple(data["rdp"]))
