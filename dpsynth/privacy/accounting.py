"""Conversions between zero-concentrated DP and approximate DP.

The conversion is the tight one of Canonne, Kamath and Steinke (2020, "The Discrete Gaussian
for Differential Privacy", Proposition 12 / Corollary 13): a ρ-zCDP mechanism is (ε, δ)-DP for

    δ = inf_{α > 1}  exp((α − 1)(αρ − ε)) / (α − 1) · (1 − 1/α)^α .

Every function here is pure and rounds toward safety: :func:`zcdp_delta` and
:func:`zcdp_epsilon` never return less than the true value (up to the last bisection step,
which is always taken on the safe side) and :func:`approx_dp_to_rho` never returns more.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache

_BISECTION_STEPS = 200


def _log_delta_at(alpha: float, rho: float, epsilon: float) -> float:
    # log of exp((α−1)(αρ−ε)) / (α−1) · (1−1/α)^α
    return (alpha - 1.0) * (alpha * rho - epsilon) + alpha * math.log1p(-1.0 / alpha) - math.log(
        alpha - 1.0
    )


def _bisect(condition: Callable[[float], bool], lo: float, hi: float) -> tuple[float, float]:
    """Narrow [lo, hi] around where a monotone ``condition`` turns true (false at lo, true at hi).

    Returns the final bracket: callers take ``hi`` for the smallest safe value and ``lo`` for the
    largest, so the result always lies on the safe side of the boundary.
    """
    for _ in range(_BISECTION_STEPS):
        mid = 0.5 * (lo + hi)
        if not lo < mid < hi:  # the bracket is as narrow as floats allow
            break
        if condition(mid):
            hi = mid
        else:
            lo = mid
    return lo, hi


def zcdp_delta(rho: float, epsilon: float) -> float:
    """Smallest δ such that ρ-zCDP implies (ε, δ)-DP (Canonne–Kamath–Steinke 2020).

    Any α > 1 gives a valid δ, so the result is valid however precisely the optimal α is found.
    """
    if rho < 0 or epsilon < 0 or math.isnan(rho) or math.isnan(epsilon):
        raise ValueError("rho and epsilon must be >= 0")
    if rho == 0:
        return 0.0
    # The exponent is convex in α; its derivative (2α−1)ρ − ε + log(1−1/α) is increasing, so
    # bisect on its sign.  The optimum lies below (ε + 1) / (2ρ) + 2.
    lo, hi = 1.0 + 1e-12, (epsilon + 1.0) / (2.0 * rho) + 2.0
    for _ in range(_BISECTION_STEPS):
        mid = 0.5 * (lo + hi)
        if not lo < mid < hi:
            break
        derivative = (2.0 * mid - 1.0) * rho - epsilon + math.log1p(-1.0 / mid)
        if derivative < 0:
            lo = mid
        else:
            hi = mid
    best = min(_log_delta_at(lo, rho, epsilon), _log_delta_at(hi, rho, epsilon))
    return min(1.0, math.exp(best))


@lru_cache(maxsize=4096)
def zcdp_epsilon(rho: float, delta: float) -> float:
    """Smallest ε (rounded up) such that ρ-zCDP implies (ε, δ)-DP."""
    if not (0.0 < delta < 1.0):
        raise ValueError("delta must be in (0, 1)")
    if rho == 0:
        return 0.0
    # ε = ρ + 2·sqrt(ρ·log(1/δ)) is always enough (Bun–Steinke 2016), so it bounds the search.
    _, hi = _bisect(lambda e: zcdp_delta(rho, e) <= delta, 0.0, rho + 2.0 * math.sqrt(rho * math.log(1.0 / delta)))
    return hi


@lru_cache(maxsize=4096)
def approx_dp_to_rho(epsilon: float, delta: float) -> float:
    """Largest ρ (rounded down) such that ρ-zCDP implies (ε, δ)-DP.

    This is how a user's (ε, δ) target becomes the ρ that MST and AIM spend, as Private-PGM's
    ``cdp_rho`` does.
    """
    if not (0.0 < delta < 1.0):
        raise ValueError("delta must be in (0, 1)")
    if epsilon <= 0:
        raise ValueError("epsilon must be > 0")
    lo, _ = _bisect(lambda r: zcdp_delta(r, epsilon) > delta, 0.0, epsilon + 1.0)
    return lo


def pure_dp_to_rho(epsilon: float) -> float:
    """ε-DP implies (ε²/2)-zCDP (Bun–Steinke 2016, Proposition 1.4)."""
    return 0.5 * epsilon * epsilon


def bounded_range_to_rho(epsilon: float) -> float:
    """An ε-bounded-range mechanism (e.g. the exponential mechanism) is (ε²/8)-zCDP.

    Cesar and Rogers 2021, "Bounding, Concentrating, and Truncating: Unifying Privacy Loss
    Composition for Data Analytics", Lemma 3.2.
    """
    return epsilon * epsilon / 8.0
