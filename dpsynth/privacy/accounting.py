"""Conversions between zero-concentrated DP and approximate DP.

The conversion is the tight one of Canonne, Kamath and Steinke (2020, "The Discrete Gaussian
for Differential Privacy", Proposition 12 / Corollary 13): a ρ-zCDP mechanism is (ε, δ)-DP for

    δ = inf_{α > 1}  exp((α − 1)(αρ − ε)) / (α − 1) · (1 − 1/α)^α .

Every function here is pure and rounds toward safety: :func:`zcdp_delta` and
:func:`zcdp_epsilon` never return less than the true value (up to the last bisection step,
which is always taken on the safe side) and :func:`approx_dp_to_rho` never returns more.

The costs that are charged (the ρ of a mechanism and sums of ρ) are computed exactly in rational
arithmetic and rounded up to the next float (:func:`round_up`, :func:`sum_up`,
:func:`gaussian_rho`, :func:`noisy_max_rho`): a charged ρ is never below the exact one. They live
in :mod:`~dpsynth.privacy.mechanism_costs` and are re-exported here.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache

import numpy as np

from dpsynth.privacy.mechanism_costs import (
    bounded_range_to_rho,
    gaussian_rho,
    gaussian_rho_squared,
    noisy_max_rho,
    pure_dp_to_rho,
    round_up,
    sum_up,
)

__all__ = ["RDP_ORDERS", "approx_dp_to_rho", "bounded_range_to_rho", "composed_epsilon", "composed_epsilon_within",
           "discrete_gaussian_tail", "epsilon_left", "epsilon_within", "gaussian_rho", "gaussian_rho_squared",
           "noisy_max_rho", "pure_dp_to_rho", "rdp_epsilon", "rdp_epsilon_at", "rho_within", "rho_within_claims",
           "rho_within_rdp", "round_up", "sum_up", "thresholding_delta", "total_epsilon_within", "zcdp_delta",
           "zcdp_epsilon"]

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


# -- thresholding (partition selection) --------------------------------------------------------

# Relative safety margin on the computed tail: far above the float error of the sums (pairwise
# summation of positive terms, ~1e-14 relative), so the result is never below the true tail.
_TAIL_MARGIN = 1.0 + 1e-9
_TAIL_CHUNK = 1 << 20
_TAIL_CUTOFF = 46.0  # stop summing once a term is below e^-46 (~1e-20) of the first


def _gauss_series(start: int, two_sigma_squared: float) -> tuple[float, float]:
    """S = Σ_{k≥0} exp(−(2·start·k + k²) / 2σ²) as (partial sum, upper bound of what was left out).

    The terms decrease; summing stops once a term is below e^-46 of the first, and the rest is
    bounded by a geometric series (each later ratio is at most the last one).
    """
    total = 0.0
    k0 = 0
    while True:
        k = np.arange(k0, k0 + _TAIL_CHUNK, dtype=np.float64)
        exponent = (2.0 * start * k + k * k) / two_sigma_squared
        terms = np.exp(-exponent)
        total += float(terms.sum())
        if exponent[-1] > _TAIL_CUTOFF:
            last = k0 + _TAIL_CHUNK - 1
            ratio = math.exp(-(2.0 * start + 2.0 * last + 1.0) / two_sigma_squared)
            rest = float(terms[-1]) * ratio / (1.0 - ratio)
            return total, rest
        k0 += _TAIL_CHUNK


def discrete_gaussian_tail(scale: float, t: int) -> float:
    """P[Z ≥ t] for Z ~ N_Z(0, scale²), the discrete Gaussian of CKS20, rounded UP.

    P[Z = z] = exp(−z²/2σ²) / Σ_y exp(−y²/2σ²). The tail is summed term by term (with a geometric
    bound on what is left out), the normaliser is summed from below (truncation only lowers it),
    and the ratio is raised by a relative margin of 1e-9: the result is an upper bound of the true
    tail and within about 1e-9 (relative) of it. Needs an integer ``t`` >= 1.
    """
    if isinstance(t, bool) or int(t) != t or t < 1:
        raise ValueError("t must be an integer >= 1")
    if not (scale > 0 and math.isfinite(scale)):
        raise ValueError("scale must be a finite number > 0")
    return _tail(float(scale), int(t))


@lru_cache(maxsize=1024)
def _tail(scale: float, t: int) -> float:
    two_s2 = 2.0 * scale**2
    head, rest = _gauss_series(t, two_s2)
    log_tail = -(t * t) / two_s2 + math.log(head + rest)
    ones, _ = _gauss_series(1, two_s2)
    log_norm = math.log1p(2.0 * math.exp(-1.0 / two_s2) * ones)
    p = math.exp(log_tail - log_norm) * _TAIL_MARGIN
    return min(1.0, math.nextafter(p, math.inf))


def thresholding_delta(additive_delta: float) -> float:
    """The δ that thresholding events with total additive δ ``p`` add to an (ε, δ) statement.

    Each such event is p-approximately ρ-zCDP: outside an event of probability at most p (a key
    that only one of two neighbouring tables holds is released) the output is ρ-zCDP. Converted to
    (ε, δ): in one direction the bad event adds p, in the other it scales the conditioned
    probabilities by 1/(1 − p), which adds at most p / (1 − p). This returns p / (1 − p), rounded
    up (0 for p = 0, infinity for p >= 1).
    """
    p = float(additive_delta)
    if math.isnan(p) or p < 0:
        raise ValueError("additive delta must be >= 0")
    if p == 0.0:
        return 0.0
    if p >= 1.0:
        return math.inf
    return math.nextafter(p / (1.0 - p), math.inf)


def rho_within(epsilon: float, delta: float, additive_delta: float) -> float:
    """Largest ρ such that ρ-zCDP plus thresholding of total additive δ ``additive_delta`` is
    (ε, δ)-DP: approx_dp_to_rho(ε, δ − p/(1−p)); 0 when the additive δ alone reaches δ."""
    rest = delta - thresholding_delta(additive_delta)
    if not rest > 0:
        return 0.0
    return approx_dp_to_rho(epsilon, rest)


def epsilon_within(rho: float, delta: float, additive_delta: float) -> float:
    """Smallest ε such that ρ-zCDP plus thresholding of total additive δ is (ε, δ)-DP
    (infinity when the additive δ alone reaches δ)."""
    rest = delta - thresholding_delta(additive_delta)
    if not rest > 0:
        return math.inf
    return zcdp_epsilon(rho, rest)


# -- Rényi DP (DP-SGD) -------------------------------------------------------------------------

#: The fixed grid of Rényi orders at which RDP curves are stored and added up: Opacus's default
#: orders (1.1 … 10.9, 12 … 63) and larger ones, which small ε at small δ needs. Any order gives a
#: valid conversion, so a coarser grid only loses tightness, never validity.
RDP_ORDERS: tuple[float, ...] = tuple(
    [1.0 + x / 10.0 for x in range(1, 100)]
    + [float(a) for a in range(12, 64)]
    + [64.0, 72.0, 80.0, 96.0, 112.0, 128.0, 160.0, 192.0, 256.0, 320.0, 384.0, 512.0, 768.0, 1024.0]
)

# Relative margin on a converted ε: far above the float error of the few operations per order.
_EPSILON_MARGIN = 1.0 + 1e-12


def rdp_epsilon_at(order: float, rdp: float, delta: float) -> float:
    """ε that one point (α, ε_α) of an RDP curve gives at ``delta`` (not rounded).

    ε = ε_α + log(1 − 1/α) − (log δ + log α) / (α − 1)  (Balle et al. 2020, "Hypothesis testing
    interpretations and Rényi differential privacy", Theorem 21; the same bound as Canonne, Kamath
    and Steinke 2020, Proposition 12, which :func:`zcdp_delta` evaluates for the curve ρα).
    """
    if math.isinf(rdp):
        return math.inf
    return rdp + math.log1p(-1.0 / order) - (math.log(delta) + math.log(order)) / (order - 1.0)


def rdp_epsilon(orders: tuple[float, ...] | list[float], rdp: tuple[float, ...] | list[float], delta: float) -> float:
    """Smallest ε (rounded up) that an RDP curve given at ``orders`` implies at ``delta``.

    Minimised over the given orders (every order gives a valid ε, so the minimum is valid); never
    below 0. Infinity when every order is infinite.
    """
    if not (0.0 < delta < 1.0):
        raise ValueError("delta must be in (0, 1)")
    if len(orders) != len(rdp) or not orders:
        raise ValueError("orders and rdp must be non-empty and of the same length")
    best = min(rdp_epsilon_at(float(a), float(r), delta) for a, r in zip(orders, rdp, strict=True))
    if math.isinf(best):
        return math.inf
    return max(0.0, math.nextafter(best * _EPSILON_MARGIN if best > 0 else best, math.inf))


def composed_epsilon(rho: float, orders: tuple[float, ...], rdp: tuple[float, ...] | None, delta: float) -> float:
    """ε at ``delta`` of ρ-zCDP composed with an RDP curve (the curve ρα + rdp(α), rounded up).

    Without an RDP curve this is the continuous-order CKS20 conversion (:func:`zcdp_epsilon`), so
    pure-zCDP totals keep their figures; with one, the improved RDP conversion over ``orders``.
    """
    if rdp is None:
        return zcdp_epsilon(rho, delta) if rho > 0 else 0.0
    return rdp_epsilon(orders, [rho * a + r for a, r in zip(orders, rdp, strict=True)], delta)


def composed_epsilon_within(
    rho: float, orders: tuple[float, ...], rdp: tuple[float, ...] | None, delta: float, additive_delta: float
) -> float:
    """:func:`composed_epsilon` at ``delta`` less the part that thresholding's additive δ takes
    (see :func:`thresholding_delta`); infinity when the additive δ alone reaches ``delta``."""
    rest = delta - thresholding_delta(additive_delta)
    if not rest > 0:
        return math.inf
    return composed_epsilon(rho, orders, rdp, rest)


def rho_within_rdp(
    epsilon: float, delta: float, additive_delta: float, orders: tuple[float, ...], rdp: tuple[float, ...] | None
) -> float:
    """Largest ρ (rounded down) such that ρ-zCDP composed with the RDP curve ``rdp`` and
    thresholding of total additive δ is (ε, δ)-DP; 0 when nothing more fits (the curve alone may
    already exceed it). Equals :func:`rho_within` when there is no curve."""
    if rdp is None:
        return rho_within(epsilon, delta, additive_delta)
    rest = delta - thresholding_delta(additive_delta)
    if not rest > 0 or rdp_epsilon(orders, rdp, rest) > epsilon:
        return 0.0
    lo, _ = _bisect(lambda r: composed_epsilon(r, orders, rdp, rest) > epsilon, 0.0, epsilon + 1.0)
    return lo


# -- (ε, δ) claims (basic composition) ----------------------------------------------------------


def epsilon_left(cap_epsilon: float, additive_epsilon: float) -> float:
    """The largest ε' (a float >= 0) with ``additive_epsilon`` + ε' <= ``cap_epsilon`` exactly: the ε
    that a cap leaves to the zCDP and Rényi-DP part once the additive ε of (ε, δ) claims is taken
    (0 when the claims alone reach the cap)."""
    cap, spent = float(cap_epsilon), float(additive_epsilon)
    if math.isnan(cap) or math.isnan(spent) or spent < 0:
        raise ValueError("epsilon values must be numbers, the additive epsilon >= 0")
    if spent == 0:
        return max(0.0, cap)
    left = cap - spent
    while left > 0 and sum_up([spent, left]) > cap:  # the subtraction rounded up: step down
        left = math.nextafter(left, 0.0)
    return max(0.0, left)


def total_epsilon_within(
    additive_epsilon: float, rho: float, orders: tuple[float, ...], rdp: tuple[float, ...] | None, delta: float,
    additive_delta: float,
) -> float:
    """ε at ``delta`` of everything: (ε, δ) claims composed with ρ-zCDP, an RDP curve and thresholding.

    The claims compose with the rest by basic composition (Dwork and Roth 2014, Theorem 3.16): their
    ε add up (``additive_epsilon``) and their δ are part of ``additive_delta``. The result is
    ``additive_epsilon`` + :func:`composed_epsilon_within` (ρ, curve) at ``delta`` less the part that
    the additive δ takes, the sum rounded up. The additive δ is converted as thresholding's is
    (p/(1 − p), :func:`thresholding_delta`), which for the δ of a claim is an upper bound of p, so
    the result stays valid. With no ρ and no curve there is nothing to convert: the result is the
    additive ε when the additive δ is at most ``delta`` (the claims alone, by basic composition),
    infinity otherwise.
    """
    epsilon = float(additive_epsilon)
    if math.isnan(epsilon) or epsilon < 0:
        raise ValueError("additive epsilon must be >= 0")
    if rdp is None and rho <= 0:
        return epsilon if additive_delta <= delta else math.inf
    return sum_up([epsilon, composed_epsilon_within(rho, orders, rdp, delta, additive_delta)])


def rho_within_claims(
    epsilon: float, delta: float, additive_epsilon: float, additive_delta: float, orders: tuple[float, ...],
    rdp: tuple[float, ...] | None,
) -> float:
    """Largest ρ (rounded down) that fits in (ε, δ) beside (ε, δ) claims of total additive ε
    ``additive_epsilon``, the additive δ and the RDP curve ``rdp``: :func:`rho_within_rdp` at the ε
    the claims leave (:func:`epsilon_left`); 0 when nothing more fits."""
    left = epsilon_left(epsilon, additive_epsilon)
    if not left > 0:
        return 0.0
    return rho_within_rdp(left, delta, additive_delta, orders, rdp)
