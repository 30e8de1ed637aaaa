"""Statistical tests of the noise samplers and mechanisms against their stated distributions.

Each test states its false-failure probability under a correct implementation; thresholds are
set so that it is at most about 1e-4 per test.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from scipy import stats

from dpsynth.exceptions import InsecureNoiseWarning, PrivacyAccountingError
from dpsynth.mechanisms import ExponentialSelection, GaussianCounts, OpenDPNoise, SeededNoise, _exact
from dpsynth.privacy import ZCDP, Odometer

ALPHA = 1e-4  # per-test false-failure probability


def discrete_gaussian_pmf(scale: float, support: np.ndarray) -> np.ndarray:
    weights = np.exp(-(support.astype(float) ** 2) / (2 * scale**2))
    full = np.exp(-(np.arange(-40 * math.ceil(scale), 40 * math.ceil(scale) + 1) ** 2) / (2 * scale**2)).sum()
    return weights / full


def chi_square_pvalue(draws: np.ndarray, pmf, lo: int, hi: int) -> float:
    """Goodness of fit with the tails (< lo, > hi) pooled into two cells."""
    support = np.arange(lo, hi + 1)
    p_inner = pmf(support)
    p_low = pmf(np.arange(lo - 10_000, lo)).sum()
    p_high = pmf(np.arange(hi + 1, hi + 10_001)).sum()
    probs = np.concatenate([[p_low], p_inner, [p_high]])
    observed = np.concatenate([[np.sum(draws < lo)], [np.sum(draws == v) for v in support], [np.sum(draws > hi)]])
    expected = probs / probs.sum() * len(draws)
    return float(stats.chisquare(observed, expected).pvalue)


@pytest.mark.parametrize("scale", [0.7, 3.0])
def test_opendp_discrete_gaussian_matches_its_pmf(scale):
    draws = OpenDPNoise().discrete_gaussian(np.zeros(40_000, dtype=np.int64), scale)
    assert draws.dtype == np.int64
    k = math.ceil(2.5 * scale)
    # False failure: P(p < ALPHA) = ALPHA under the null.
    assert chi_square_pvalue(draws, lambda s: discrete_gaussian_pmf(scale, s), -k, k) > ALPHA


@pytest.mark.parametrize("scale", [3.0, 20.0])
def test_opendp_noise_scale(scale):
    n = 50_000
    counts = np.arange(n, dtype=np.int64) % 7
    noise = OpenDPNoise().discrete_gaussian(counts, scale) - counts
    # The discrete Gaussian's variance is within 1e-6 of scale² for scale >= 1 (CKS20 Cor. 9).
    # The sample variance of n draws has relative sd √(2/n) ≈ 0.0063; 4.5 sd: P(fail) < 1e-5.
    assert abs(noise.var() / scale**2 - 1) < 4.5 * math.sqrt(2 / n)
    assert abs(noise.mean()) < 4.5 * scale / math.sqrt(n)


def test_seeded_discrete_gaussian_matches_its_pmf():
    noise = SeededNoise(123, _warn=False)
    draws = noise.discrete_gaussian(np.zeros(15_000, dtype=np.int64), 2.5)
    assert chi_square_pvalue(draws, lambda s: discrete_gaussian_pmf(2.5, s), -6, 6) > ALPHA
    assert abs(draws.var() / 2.5**2 - 1) < 4.5 * math.sqrt(2 / 15_000)


def test_exact_discrete_laplace_matches_its_pmf():
    rng = np.random.default_rng(0)
    draws = np.array([_exact.discrete_laplace(3, lambda n: int(rng.integers(n))) for _ in range(15_000)])
    z = (1 - math.exp(-1 / 3)) / (1 + math.exp(-1 / 3))
    assert chi_square_pvalue(draws, lambda s: z * np.exp(-np.abs(s) / 3), -8, 8) > ALPHA


@pytest.mark.parametrize("gamma", [Fraction(0), Fraction(1, 3), Fraction(1), Fraction(5, 2)])
def test_exact_bernoulli_exp(gamma):
    rng = np.random.default_rng(int(gamma * 6))
    n = 20_000
    hits = sum(_exact.bernoulli_exp_neg(gamma, lambda k: int(rng.integers(k))) for _ in range(n))
    p = math.exp(-float(gamma))
    # Two-sided binomial test at ALPHA.
    assert stats.binomtest(hits, n, p).pvalue > ALPHA


SCORES = [0.0, 1.0, 2.0, 3.5, 3.5]


@pytest.mark.parametrize("source", ["opendp", "seeded"])
def test_selection_probabilities(source):
    noise = OpenDPNoise() if source == "opendp" else SeededNoise(5, _warn=False)
    scale = 2.0
    n = 20_000
    picks = np.bincount([noise.gumbel_argmax(SCORES, scale) for _ in range(n)], minlength=len(SCORES))
    expected = np.exp(np.array(SCORES) / scale)
    expected = expected / expected.sum() * n
    assert stats.chisquare(picks, expected).pvalue > ALPHA


def test_exponential_mechanism_rate():
    """ExponentialSelection at ε picks i ∝ exp(ε·q_i / 2Δ): check the implied ratio."""
    mech = ExponentialSelection(epsilon=1.0, sensitivity=0.5)
    assert mech.gumbel_scale == pytest.approx(1.0)
    noise = SeededNoise(9, _warn=False)
    odometer = Odometer(ZCDP(1.0))
    n = 4_000
    picks = np.bincount([noise.gumbel_argmax([0.0, 1.0], mech.gumbel_scale) for _ in range(n)], minlength=2)
    p = math.e / (1 + math.e)
    assert stats.binomtest(int(picks[1]), n, p).pvalue > ALPHA
    assert mech(SCORES, noise=noise, odometer=odometer) in range(len(SCORES))
    assert odometer.spent.rho == pytest.approx(1.0 / 8)


def test_declared_costs_match_opendps_own_privacy_maps():
    for rho in (1e-4, 0.01, 0.5, 3.0):
        g = GaussianCounts.for_rho(rho)
        assert g.rho <= rho
        assert OpenDPNoise.gaussian_rho(g.scale, 1) == pytest.approx(g.rho, rel=1e-12)
        e = ExponentialSelection.for_rho(rho)
        assert e.rho <= rho
        assert OpenDPNoise.noisy_max_rho(e.gumbel_scale, 1.0) == pytest.approx(e.rho, rel=1e-12)


def test_mechanisms_spend_before_they_release():
    odometer = Odometer(ZCDP(0.1))
    mech = GaussianCounts.for_rho(0.1)
    out = mech(np.array([5, 6, 7]), noise=OpenDPNoise(), odometer=odometer)
    assert out.shape == (3,) and odometer.spent.rho == pytest.approx(0.1, rel=1e-6)
    released = []
    with pytest.raises(PrivacyAccountingError):
        released.append(mech(np.array([1]), noise=OpenDPNoise(), odometer=odometer))
    with pytest.raises(PrivacyAccountingError):
        released.append(ExponentialSelection.for_rho(0.05)([1.0, 2.0], noise=OpenDPNoise(), odometer=odometer))
    assert released == [] and len(odometer.events) == 1


def test_seeded_noise_warns_and_reproduces():
    with pytest.warns(InsecureNoiseWarning, match="insecure_seed=3"):
        a = SeededNoise(3)
    b = SeededNoise(3, _warn=False)
    x = np.arange(20, dtype=np.int64)
    np.testing.assert_array_equal(a.discrete_gaussian(x, 4.0), b.discrete_gaussian(x, 4.0))
    assert a.gumbel_argmax(SCORES, 1.0) == b.gumbel_argmax(SCORES, 1.0)
    assert not a.secure and OpenDPNoise().secure
