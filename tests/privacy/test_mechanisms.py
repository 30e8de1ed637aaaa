"""The mechanisms: their declared cost against OpenDP's privacy maps, their noise against the
distributions they claim, and their spending discipline (spend before release, refuse overdrafts).

Statistical tests: each states its false-failure probability for a correct implementation.
Thresholds are fixed quantiles of the normal / chi-square distributions, set so that a test fails
with probability at most ALPHA = 1e-4 (several checks in one test share ALPHA by a Bonferroni
split). Tests on OpenDPNoise draw fresh, secure randomness on every run; tests on SeededNoise and
dpsynth's exact samplers use fixed seeds, so they are deterministic: their failure probability is
over the choice of seed, i.e. a correct sampler fails for at most a fraction ALPHA of seeds.
"""

from __future__ import annotations

import math
import random
import warnings
from fractions import Fraction

import numpy as np
import pytest
from scipy import stats

from dpsynth.exceptions import InsecureNoiseWarning, PrivacyAccountingError
from dpsynth.mechanisms import (
    ExponentialSelection,
    GaussianCounts,
    OpenDPNoise,
    SeededNoise,
    _exact,
    make_noise,
)
from dpsynth.privacy import ZCDP, ExponentialEvent, GaussianEvent, Odometer

ALPHA = 1e-4  # per-test false-failure probability


def seeded(seed: int) -> SeededNoise:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InsecureNoiseWarning)
        return SeededNoise(seed)


# --------------------------------------------------------------------------- reference distributions


def discrete_gaussian_pmf(scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Support and pmf of N_Z(0, scale²): P[x] ∝ exp(−x²/2σ²) on the integers (tails < 1e-80 dropped)."""
    half = int(math.ceil(20 * scale)) + 10
    support = np.arange(-half, half + 1)
    weights = np.exp(-(support.astype(float) ** 2) / (2.0 * scale**2))
    return support, weights / weights.sum()


def discrete_laplace_pmf(scale: int) -> tuple[np.ndarray, np.ndarray]:
    """Support and pmf of P[x] ∝ exp(−|x|/scale) on the integers (tails < 1e-80 dropped)."""
    half = 200 * scale
    support = np.arange(-half, half + 1)
    weights = np.exp(-np.abs(support).astype(float) / scale)
    return support, weights / weights.sum()


def chi_square_statistic(draws: np.ndarray, support: np.ndarray, pmf: np.ndarray, lo: int, hi: int):
    """Pearson statistic of the draws against a pmf, cells lo..hi plus two pooled tail cells.

    Returns (statistic, degrees of freedom). lo/hi are chosen so every expected count is >= 20.
    """
    n = len(draws)
    inner = (support >= lo) & (support <= hi)
    expected = np.concatenate([[pmf[support < lo].sum()], pmf[inner], [pmf[support > hi].sum()]]) * n
    observed = np.concatenate(
        [
            [np.sum(draws < lo)],
            np.bincount(draws[(draws >= lo) & (draws <= hi)] - lo, minlength=hi - lo + 1),
            [np.sum(draws > hi)],
        ]
    )
    assert observed.sum() == n
    assert expected.min() >= 20, "choose lo/hi so that the chi-square approximation holds"
    return float(((observed - expected) ** 2 / expected).sum()), len(expected) - 1


def check_moments(draws: np.ndarray, scale: float, alpha: float) -> None:
    """Mean ≈ 0 and mean square ≈ the exact variance of N_Z(0, scale²), each two-sided at alpha/2.

    CLT: mean ~ N(0, var/n); mean of x² ~ N(var, (μ4 − var²)/n), with μ4 the exact 4th moment.
    Failure probability of this check for a correct sampler: <= alpha.
    """
    support, pmf = discrete_gaussian_pmf(scale)
    var = float((support.astype(float) ** 2 * pmf).sum())
    mu4 = float((support.astype(float) ** 4 * pmf).sum())
    n = len(draws)
    z = stats.norm.isf(alpha / 4)  # two checks, two-sided each
    x = draws.astype(float)
    assert abs(x.mean()) <= z * math.sqrt(var / n), f"mean {x.mean()} too far from 0"
    second = float((x**2).mean())
    assert abs(second - var) <= z * math.sqrt((mu4 - var**2) / n), (
        f"empirical std {math.sqrt(second):.4f} vs exact {math.sqrt(var):.4f} (scale {scale})"
    )


# --------------------------------------------------------------------------- declared cost vs OpenDP


RHOS = [1e-5, 1e-3, 0.05, 0.5, 1.0, 10.0]


@pytest.mark.parametrize("l2_sensitivity", [1, 2, 5])
@pytest.mark.parametrize("rho", RHOS)
def test_gaussian_for_rho_stays_within_rho_and_agrees_with_opendp(rho, l2_sensitivity):
    mech = GaussianCounts.for_rho(rho, l2_sensitivity=l2_sensitivity, label="m")
    assert mech.rho <= rho
    assert mech.rho >= rho * (1 - 1e-6)  # rounded up only by float slack, not wastefully
    assert mech.event == GaussianEvent(scale=mech.scale, l2_sensitivity=l2_sensitivity, label="m")
    # The closed form Δ²/(2σ²) from CKS20 Theorem 14 ...
    assert mech.rho == pytest.approx(l2_sensitivity**2 / (2 * mech.scale**2), rel=1e-15)
    # ... is charged rounded up: never below OpenDP's own privacy map of the measurement that
    # draws the noise (the same exact value rounded up once: equal to the last bit) ...
    opendp_rho = OpenDPNoise.gaussian_rho(mech.scale, l2_sensitivity)
    assert mech.rho >= opendp_rho
    assert mech.rho == opendp_rho
    # ... and the calibration leaves even OpenDP's figure within the target.
    assert opendp_rho <= rho


@pytest.mark.parametrize("sensitivity", [0.5, 1.0, 3.0])
@pytest.mark.parametrize("rho", RHOS)
def test_selection_for_rho_stays_within_rho_and_agrees_with_opendp(rho, sensitivity):
    mech = ExponentialSelection.for_rho(rho, sensitivity=sensitivity, label="s")
    assert mech.rho <= rho
    assert mech.rho >= rho * (1 - 1e-6)
    assert mech.rho == pytest.approx(mech.epsilon**2 / 8, rel=1e-15)  # ε-bounded range → ε²/8-zCDP
    assert mech.gumbel_scale == pytest.approx(2 * sensitivity / mech.epsilon, rel=1e-15)
    assert mech.event == ExponentialEvent(epsilon=mech.epsilon, sensitivity=sensitivity, label="s")
    assert mech.gumbel_scale == mech.event.gumbel_scale  # the cost is that of the scale drawn with
    opendp_rho = OpenDPNoise.noisy_max_rho(mech.gumbel_scale, sensitivity)
    assert mech.rho >= opendp_rho  # rounded up as OpenDP's map is, step for step
    assert mech.rho == opendp_rho
    assert opendp_rho <= rho


# --------------------------------------------------------------------------- (a) OpenDP discrete Gaussian


@pytest.mark.parametrize("scale", [3.0, 20.0])
def test_opendp_discrete_gaussian_moments(scale):
    """50k draws: integers, mean ≈ 0, std ≈ the exact discrete-Gaussian std. P[false failure] <= 1e-4."""
    noisy = OpenDPNoise().discrete_gaussian(np.zeros(50_000, dtype=np.int64), scale)
    assert noisy.dtype == np.int64 and noisy.shape == (50_000,)
    check_moments(noisy, scale, ALPHA)


def test_opendp_discrete_gaussian_matches_pmf():
    """Chi-square goodness of fit of 50k draws at scale 3 to the exact pmf. P[false failure] <= 1e-4."""
    scale = 3.0
    draws = OpenDPNoise().discrete_gaussian(np.zeros(50_000, dtype=np.int64), scale)
    support, pmf = discrete_gaussian_pmf(scale)
    statistic, df = chi_square_statistic(draws, support, pmf, -9, 9)
    assert statistic <= stats.chi2.isf(ALPHA, df), f"chi2={statistic:.1f} on {df} df"


def test_opendp_noise_is_added_to_the_counts():
    """Noise is centred on each count, whatever its shape. P[false failure] <= 1e-4."""
    counts = np.arange(40_000, dtype=np.int64).reshape(200, 200) * 7
    noisy = OpenDPNoise().discrete_gaussian(counts, 3.0)
    assert noisy.shape == counts.shape and noisy.dtype == np.int64
    check_moments((noisy - counts).ravel(), 3.0, ALPHA)


def test_opendp_noise_is_not_reproducible():
    """Secure noise is fresh every time: two runs of 200 draws agree with probability < 0.14**200."""
    noise = OpenDPNoise()
    assert noise.secure is True
    zeros = np.zeros(200, dtype=np.int64)
    assert not np.array_equal(noise.discrete_gaussian(zeros, 3.0), noise.discrete_gaussian(zeros, 3.0))


# --------------------------------------------------------------------------- (b) dpsynth's exact samplers


@pytest.mark.parametrize(("scale", "seed"), [(3.0, 11), (20.0, 12)])
def test_seeded_discrete_gaussian_moments(scale, seed):
    """20k draws from SeededNoise: mean and std. Fails for <= 1e-4 of seeds."""
    noisy = seeded(seed).discrete_gaussian(np.zeros(20_000, dtype=np.int64), scale)
    assert noisy.dtype == np.int64
    check_moments(noisy, scale, ALPHA)


def test_seeded_discrete_gaussian_matches_pmf():
    """Chi-square of 20k SeededNoise draws at scale 3 against the exact pmf. Fails for <= 1e-4 of seeds."""
    scale = 3.0
    draws = seeded(2024).discrete_gaussian(np.zeros(20_000, dtype=np.int64), scale)
    support, pmf = discrete_gaussian_pmf(scale)
    statistic, df = chi_square_statistic(draws, support, pmf, -8, 8)
    assert statistic <= stats.chi2.isf(ALPHA, df), f"chi2={statistic:.1f} on {df} df"


def test_seeded_discrete_gaussian_with_non_integer_scale():
    """A scale whose square is not an integer (σ² = 6.25): chi-square, 20k draws. Fails for <= 1e-4 of seeds."""
    scale = 2.5
    draws = seeded(77).discrete_gaussian(np.zeros(20_000, dtype=np.int64), scale)
    support, pmf = discrete_gaussian_pmf(scale)
    statistic, df = chi_square_statistic(draws, support, pmf, -7, 7)
    assert statistic <= stats.chi2.isf(ALPHA, df), f"chi2={statistic:.1f} on {df} df"


@pytest.mark.parametrize(("scale", "lo", "hi"), [(1, -4, 4), (3, -11, 11)])
def test_exact_discrete_laplace_matches_pmf(scale, lo, hi):
    """Chi-square of 20k draws of CKS20 Algorithm 2 against exp(−|x|/t). Fails for <= 1e-4 of seeds."""
    rng = random.Random(1000 + scale)
    draws = np.array([_exact.discrete_laplace(scale, rng.randrange) for _ in range(20_000)])
    support, pmf = discrete_laplace_pmf(scale)
    statistic, df = chi_square_statistic(draws, support, pmf, lo, hi)
    assert statistic <= stats.chi2.isf(ALPHA, df), f"chi2={statistic:.1f} on {df} df"


BERNOULLI_GAMMAS = [Fraction(1, 3), Fraction(1), Fraction(3, 2), Fraction(5, 2), Fraction(7, 2)]


def test_exact_bernoulli_exp_neg_frequency():
    """20k draws per gamma (incl. gamma > 1): exact binomial test against exp(−gamma).

    Each of the 5 gammas is tested two-sided at ALPHA/5, so P[false failure] <= 1e-4 over seeds.
    """
    rng = random.Random(99)
    n = 20_000
    for gamma in BERNOULLI_GAMMAS:
        hits = sum(_exact.bernoulli_exp_neg(gamma, rng.randrange) for _ in range(n))
        p_value = stats.binomtest(hits, n, math.exp(-float(gamma))).pvalue
        assert p_value >= ALPHA / len(BERNOULLI_GAMMAS), f"gamma={gamma}: {hits}/{n} vs {math.exp(-gamma):.4f}"


def test_exact_bernoulli_edge_cases():
    rng = random.Random(5)
    assert all(_exact.bernoulli_exp_neg(Fraction(0), rng.randrange) for _ in range(1000))  # exp(0) = 1
    assert all(_exact.bernoulli(Fraction(1), rng.randrange) for _ in range(1000))
    assert not any(_exact.bernoulli(Fraction(0), rng.randrange) for _ in range(1000))


# --------------------------------------------------------------------------- (c) selection

SCORES = [0.0, 1.0, 2.0, 3.5]
SELECTION_SCALE = 2.0


def selection_chi_square(picks: list[int]) -> tuple[float, int]:
    counts = np.bincount(np.asarray(picks), minlength=len(SCORES))
    logits = np.asarray(SCORES) / SELECTION_SCALE
    probabilities = np.exp(logits - logits.max())
    probabilities /= probabilities.sum()
    expected = probabilities * len(picks)
    return float(((counts - expected) ** 2 / expected).sum()), len(SCORES) - 1


def test_opendp_gumbel_argmax_is_softmax():
    """20k OpenDP report-noisy-max selections vs softmax(scores/scale): chi-square. P[false failure] <= 1e-4."""
    noise = OpenDPNoise()
    picks = [noise.gumbel_argmax(SCORES, SELECTION_SCALE) for _ in range(20_000)]
    statistic, df = selection_chi_square(picks)
    assert statistic <= stats.chi2.isf(ALPHA, df), f"chi2={statistic:.1f} on {df} df"


def test_seeded_gumbel_argmax_is_softmax():
    """20k SeededNoise selections vs softmax(scores/scale): chi-square. Fails for <= 1e-4 of seeds."""
    noise = seeded(31)
    picks = [noise.gumbel_argmax(SCORES, SELECTION_SCALE) for _ in range(20_000)]
    statistic, df = selection_chi_square(picks)
    assert statistic <= stats.chi2.isf(ALPHA, df), f"chi2={statistic:.1f} on {df} df"


def test_selection_with_unsorted_negative_scores():
    """Scores need not be sorted or positive; the best index wins most (deterministic with a seed).

    softmax([−5, 4, −1]/1) puts 0.9932 on index 1; with 2,000 draws the count of other picks is
    Binomial(2000, 0.0068), mean 13.6; more than 60 has probability < 1e-15 (Chernoff).
    """
    noise = seeded(8)
    picks = [noise.gumbel_argmax([-5.0, 4.0, -1.0], 1.0) for _ in range(2_000)]
    assert sum(p != 1 for p in picks) <= 60
    picks = [OpenDPNoise().gumbel_argmax([-5.0, 4.0, -1.0], 1.0) for _ in range(2_000)]
    assert sum(p != 1 for p in picks) <= 60


# --------------------------------------------------------------------------- (d) spending discipline


class SpyNoise:
    """A noise source that records, at each draw, how many events the odometer already holds."""

    secure = True

    def __init__(self, odometer: Odometer):
        self.odometer = odometer
        self.draws: list[tuple[str, int]] = []

    def discrete_gaussian(self, counts, scale):
        self.draws.append(("gaussian", len(self.odometer.events)))
        return np.asarray(counts, dtype=np.int64) + 1

    def gumbel_argmax(self, scores, scale):
        self.draws.append(("gumbel", len(self.odometer.events)))
        return 0


def test_gaussian_mechanism_spends_before_drawing_and_refuses_overdraft():
    mech = GaussianCounts.for_rho(0.1, label="marginal")
    odometer = Odometer(ZCDP(0.15))
    spy = SpyNoise(odometer)
    out = mech(np.array([3, 4, 5]), noise=spy, odometer=odometer)
    assert out.tolist() == [4, 5, 6]
    assert spy.draws == [("gaussian", 1)]  # the event was recorded before the noise was drawn
    assert odometer.events == [mech.event]

    result = None
    with pytest.raises(PrivacyAccountingError, match="marginal"):
        result = mech(np.array([3, 4, 5]), noise=spy, odometer=odometer)
    assert result is None  # no noisy value came out
    assert spy.draws == [("gaussian", 1)]  # no noise was even drawn
    assert odometer.events == [mech.event]  # and nothing more was recorded


def test_selection_spends_before_drawing_and_refuses_overdraft():
    mech = ExponentialSelection.for_rho(0.02, label="edge")
    odometer = Odometer(ZCDP(0.05))
    spy = SpyNoise(odometer)
    assert mech([1.0, 2.0], noise=spy, odometer=odometer) == 0
    assert mech([1.0, 2.0], noise=spy, odometer=odometer) == 0
    assert spy.draws == [("gumbel", 1), ("gumbel", 2)]
    result = None
    with pytest.raises(PrivacyAccountingError, match="edge"):
        result = mech([1.0, 2.0], noise=spy, odometer=odometer)
    assert result is None
    assert len(spy.draws) == 2 and len(odometer.events) == 2


def test_refusal_with_real_noise_sources():
    odometer = Odometer(ZCDP(0.01))
    big = GaussianCounts.for_rho(0.02)
    for noise in (OpenDPNoise(), seeded(1)):
        result = None
        with pytest.raises(PrivacyAccountingError):
            result = big(np.zeros(3, dtype=np.int64), noise=noise, odometer=odometer)
        assert result is None
    assert odometer.events == []


def test_empty_selection_spends_nothing():
    odometer = Odometer(ZCDP(1.0))
    with pytest.raises(ValueError):
        ExponentialSelection(epsilon=1.0)([], noise=OpenDPNoise(), odometer=odometer)
    assert odometer.events == []


def test_exponential_selection_uses_the_stated_gumbel_scale():
    """P[i] ∝ exp(ε·s_i/(2Δ)) is Gumbel argmax at scale 2Δ/ε."""
    mech = ExponentialSelection(epsilon=1.0, sensitivity=0.5)
    assert mech.gumbel_scale == 1.0
    odometer = Odometer(ZCDP(mech.rho))
    spy = SpyNoise(odometer)
    seen = {}

    def record(scores, scale):
        seen["scale"] = scale
        return 1

    spy.gumbel_argmax = record  # type: ignore[method-assign]
    assert mech([0.0, 1.0], noise=spy, odometer=odometer) == 1
    assert seen["scale"] == 1.0


# --------------------------------------------------------------------------- (e) seeded noise


def test_seeded_noise_warns():
    with pytest.warns(InsecureNoiseWarning, match="insecure_seed=7"):
        noise = SeededNoise(7)
    assert noise.secure is False
    with pytest.warns(InsecureNoiseWarning):
        made = make_noise(7)
    assert isinstance(made, SeededNoise) and made.secure is False


def test_secure_default_does_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error", InsecureNoiseWarning)
        noise = make_noise(None)
    assert isinstance(noise, OpenDPNoise) and noise.secure is True


def test_seeded_noise_reproduces():
    """Same seed, same draws; a different seed gives different draws (equal by chance: < 0.14**300)."""
    zeros = np.zeros(300, dtype=np.int64)
    a, b, c = seeded(42), seeded(42), seeded(43)
    first, second, other = (n.discrete_gaussian(zeros, 3.0) for n in (a, b, c))
    assert np.array_equal(first, second)
    assert not np.array_equal(first, other)
    picks_a = [a.gumbel_argmax(SCORES, 2.0) for _ in range(200)]
    picks_b = [b.gumbel_argmax(SCORES, 2.0) for _ in range(200)]
    assert picks_a == picks_b
