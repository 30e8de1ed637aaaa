"""The costs that are charged, computed exactly in rational arithmetic and rounded up to the next float.

The ρ of a mechanism and sums of ρ (:func:`round_up`, :func:`sum_up`, :func:`gaussian_rho`,
:func:`noisy_max_rho`, and the conversions of pure DP and bounded range to ρ) are never below the
exact value, and agree to the last bit with OpenDP's privacy maps where OpenDP has one.
:mod:`~dpsynth.privacy.accounting` re-exports every name here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from fractions import Fraction
from functools import lru_cache

from dpsynth.exceptions import InternalError

__all__ = ["bounded_range_to_rho", "gaussian_rho", "gaussian_rho_squared", "noisy_max_rho", "pure_dp_to_rho",
           "round_up", "sum_up"]


def round_up(value: Fraction | int) -> float:
    """The smallest float that is >= the exact rational ``value`` (infinity above the largest float).

    ``float(Fraction)`` divides two integers, which Python rounds correctly to the nearest float;
    the result is then moved up one step when it fell below the exact value.
    """
    exact = Fraction(value)
    try:
        nearest = float(exact)
    except OverflowError:
        return math.inf if exact > 0 else -math.inf  # -inf only for values below -max float
    if Fraction(nearest) < exact:
        return math.nextafter(nearest, math.inf)
    return nearest


def sum_up(values: Iterable[float]) -> float:
    """The exact sum of ``values`` rounded up to the next float: the sum to charge for costs.

    ``math.fsum`` returns the correctly rounded (nearest) sum s; a second correctly rounded sum of
    the values and −s has the sign of the exact error, so s is moved up one step exactly when it
    lies below the true sum. The result does not depend on the order of the values. A NaN among
    the values gives infinity (an unknown cost is never read as a small one).
    """
    terms = [float(v) for v in values]
    if any(math.isnan(t) for t in terms):
        return math.inf
    total = math.fsum(terms)
    if math.isinf(total):
        return total
    if math.fsum([*terms, -total]) > 0:
        return math.nextafter(total, math.inf)
    return total


def _cost_argument(name: str, value: float) -> Fraction | None:
    """``value`` (a float, or an int taken exactly) as an exact rational; None for +infinity.
    Raises on NaN or a negative value."""
    if isinstance(value, int) and value >= 0:
        return Fraction(value)
    value = float(value)
    if math.isnan(value) or value < 0:
        raise ValueError(f"{name} ({value!r}) must be a number >= 0")
    return None if math.isinf(value) else Fraction(value)


@lru_cache(maxsize=65536)
def gaussian_rho(scale: float, l2_sensitivity: float) -> float:
    """ρ = Δ₂² / (2σ²) of the (discrete) Gaussian mechanism, exact and rounded up once.

    This is OpenDP's privacy map for ``then_gaussian`` (its ``NoisePrivacyMap`` for the Gaussian
    computes (d_in / scale)² / 2 in exact rationals and rounds up once), so the two agree to the
    last bit. 0 for Δ₂ = 0; infinity for σ = 0 (with Δ₂ > 0) or Δ₂ = ∞; 0 for σ = ∞.

    Privacy: (Δ₂² / 2σ²)-zCDP (Canonne, Kamath, Steinke 2020, Theorem 14); the value returned is
    never below it.
    """
    delta2 = _cost_argument("l2_sensitivity", l2_sensitivity)
    return _gaussian_rho(_cost_argument("scale", scale), None if delta2 is None else delta2 * delta2)


@lru_cache(maxsize=65536)
def gaussian_rho_squared(scale: float, l2_squared: float) -> float:
    """:func:`gaussian_rho` given the *square* Δ₂² of the L2 sensitivity (e.g. L0 keys that each
    move by one, Δ₂² = L0, whose square root is not a float): Δ₂² / (2σ²), exact, rounded up."""
    squared = _cost_argument("l2_squared", l2_squared)
    return _gaussian_rho(_cost_argument("scale", scale), squared)


def _edge_cost(sensitivity: Fraction | None, scale: Fraction | None) -> float | None:
    """The cost at the edges (None elsewhere): 0 for no sensitivity or infinite noise, infinity
    for no noise or an unbounded sensitivity."""
    if sensitivity == 0:
        return 0.0
    if sensitivity is None or scale == 0:
        return math.inf
    if scale is None:
        return 0.0
    return None


def _gaussian_rho(sigma: Fraction | None, delta2_squared: Fraction | None) -> float:
    edge = _edge_cost(delta2_squared, sigma)
    if edge is not None:
        return edge
    if sigma is None or delta2_squared is None:  # _edge_cost answered both
        raise InternalError("the Gaussian cost reached its exact formula with an infinite scale or sensitivity")
    return round_up(delta2_squared / (2 * sigma * sigma))


@lru_cache(maxsize=65536)
def noisy_max_rho(scale: float, sensitivity: float) -> float:
    """ρ of report-noisy-max with Gumbel noise of ``scale`` on scores of L∞ sensitivity Δ
    (scores may move in different directions), rounded up exactly as OpenDP's map does.

    The range of the score changes is 2Δ, so the selection is ε = 2Δ/scale bounded-range and
    ρ = ε²/8. OpenDP's map for ``make_noisy_max`` (zero-concentrated divergence, non-monotonic
    L∞ metric) computes it as ⌈⌈⌈⌈2Δ⌉ / scale⌉²⌉ / 8⌉, each ⌈·⌉ the exact result rounded up to a
    float; this is the same computation, step for step, in exact rationals, so the two agree to
    the last bit, and every step only raises the value: the result is never below the exact ρ.
    0 for Δ = 0; infinity for scale = 0 (with Δ > 0) or Δ = ∞; 0 for scale = ∞.

    Privacy: ε-bounded range with ε = 2Δ/scale, hence (ε²/8)-zCDP (Cesar and Rogers 2021).
    """
    delta = _cost_argument("sensitivity", sensitivity)
    b = _cost_argument("scale", scale)
    edge = _edge_cost(delta, b)
    if edge is not None:
        return edge
    if delta is None or b is None:  # _edge_cost answered both
        raise InternalError("the noisy-max cost reached its exact formula with an infinite scale or sensitivity")
    range_ = round_up(2 * delta)
    epsilon = round_up(Fraction(range_) / b)
    squared = round_up(Fraction(epsilon) ** 2)
    return round_up(Fraction(squared) / 8)


def pure_dp_to_rho(epsilon: float) -> float:
    """ε-DP implies (ε²/2)-zCDP (Bun–Steinke 2016, Proposition 1.4); exact, rounded up."""
    eps = _cost_argument("epsilon", epsilon)
    return math.inf if eps is None else round_up(eps * eps / 2)


def bounded_range_to_rho(epsilon: float) -> float:
    """An ε-bounded-range mechanism (e.g. the exponential mechanism) is (ε²/8)-zCDP; exact,
    rounded up.

    Cesar and Rogers 2021, "Bounding, Concentrating, and Truncating: Unifying Privacy Loss
    Composition for Data Analytics", Lemma 3.2.
    """
    eps = _cost_argument("epsilon", epsilon)
    return math.inf if eps is None else round_up(eps * eps / 8)
