"""Exact samplers driven by a source of uniform random integers.

These follow Canonne, Kamath and Steinke (2020), "The Discrete Gaussian for Differential
Privacy", Algorithms 1–3: every probability is a rational number handled with
:class:`fractions.Fraction`, so no floating-point rounding enters the distribution. The only
thing taken from outside is ``randbelow(n)``, a uniform integer in ``[0, n)``.

They back :class:`~dpsynth.mechanisms.noise.SeededNoise` (the insecure, reproducible noise for
tests) and serve as an independent check of OpenDP's samplers in the statistical tests.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from fractions import Fraction

RandBelow = Callable[[int], int]


def bernoulli(p: Fraction, randbelow: RandBelow) -> bool:
    """True with probability exactly ``p`` (0 <= p <= 1)."""
    return randbelow(p.denominator) < p.numerator


def bernoulli_exp_neg(gamma: Fraction, randbelow: RandBelow) -> bool:
    """True with probability exactly exp(−gamma), gamma >= 0 (CKS20 Algorithm 1)."""
    while gamma > 1:
        if not bernoulli_exp_neg(Fraction(1), randbelow):
            return False
        gamma -= 1
    k = 1
    while bernoulli(gamma / k, randbelow):
        k += 1
    return k % 2 == 1


def discrete_laplace(scale: int, randbelow: RandBelow) -> int:
    """P[X = x] ∝ exp(−|x| / scale) on the integers, for an integer ``scale`` >= 1 (CKS20 Alg. 2)."""
    while True:
        u = randbelow(scale)
        if not bernoulli_exp_neg(Fraction(u, scale), randbelow):
            continue
        v = 0
        while bernoulli_exp_neg(Fraction(1), randbelow):
            v += 1
        magnitude = u + scale * v
        negative = randbelow(2) == 1
        if negative and magnitude == 0:
            continue
        return -magnitude if negative else magnitude


def discrete_gaussian(sigma_squared: Fraction, randbelow: RandBelow) -> int:
    """P[X = x] ∝ exp(−x² / (2σ²)) on the integers (CKS20 Algorithm 3)."""
    t = _isqrt_floor(sigma_squared) + 1
    while True:
        y = discrete_laplace(t, randbelow)
        gamma = (abs(y) - sigma_squared / t) ** 2 / (2 * sigma_squared)
        if bernoulli_exp_neg(gamma, randbelow):
            return y


def _isqrt_floor(x: Fraction) -> int:
    """floor(sqrt(x)) for a non-negative rational."""
    from math import isqrt

    n = isqrt(x.numerator // x.denominator)
    while Fraction((n + 1) ** 2) <= x:
        n += 1
    return n


def exponential_mechanism(
    scores: Sequence[float], epsilon: float, sensitivity: float, randbelow: RandBelow
) -> int:
    """Index i with probability ∝ exp(ε·scores[i] / (2Δ)), exactly.

    Rejection sampling: propose i uniformly and accept with probability
    exp(−ε(max − scores[i]) / (2Δ)); the accepted index has exactly the target distribution and
    the expected number of proposals is at most ``len(scores)``.
    """
    exact = [Fraction(s) for s in scores]
    best = max(exact)
    rate = Fraction(epsilon) / (2 * Fraction(sensitivity))
    while True:
        i = randbelow(len(exact))
        if bernoulli_exp_neg(rate * (best - exact[i]), randbelow):
            return i
