"""DP partition selection (category discovery): its declared cost, the exact tail behind its δ,
and statistical tests of its claim.

Statistical tests state their false-failure probability for a correct implementation: each fails
with probability at most ALPHA = 1e-4 (checks inside one test share it by a Bonferroni split).
Tests on SeededNoise use fixed seeds, so they are deterministic: a correct sampler fails for at
most a fraction ALPHA of seeds. Tests on OpenDPNoise draw fresh secure randomness on every run.
"""

from __future__ import annotations

import math
import warnings
from decimal import Decimal, getcontext
from fractions import Fraction

import numpy as np
import pytest
from scipy import stats

from dpsynth.exceptions import InsecureNoiseWarning, PrivacyAccountingError
from dpsynth.mechanisms import OpenDPNoise, PartitionSelection, SeededNoise
from dpsynth.mechanisms.partition import threshold_for
from dpsynth.privacy import ZCDP, Odometer, PartitionSelectionEvent, total_delta
from dpsynth.privacy.accounting import discrete_gaussian_tail, thresholding_delta

ALPHA = 1e-4


def seeded(seed: int) -> SeededNoise:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InsecureNoiseWarning)
        return SeededNoise(seed)


def exact_tail(scale: float, t: int) -> Decimal:
    """P[Z >= t] for the discrete Gaussian, summed in 60-digit decimals (terms < 1e-300 dropped)."""
    getcontext().prec = 60
    two_s2 = 2 * Decimal(Fraction(scale).numerator) ** 2 / Decimal(Fraction(scale).denominator) ** 2
    half = int(40 * scale) + 60
    terms = {z: (-(Decimal(z) ** 2) / two_s2).exp() for z in range(0, half + 1)}
    norm = terms[0] + 2 * sum(terms[z] for z in range(1, half + 1))
    return sum(terms[z] for z in range(t, half + 1)) / norm


# --------------------------------------------------------------------------- the tail and the costs


@pytest.mark.parametrize(
    "scale,t", [(0.5, 1), (1.0, 1), (1.0, 4), (2.0, 3), (3.7, 20), (10.0, 60), (25.3, 140), (100.0, 10)]
)
def test_tail_is_the_exact_tail_rounded_up(scale, t):
    exact = exact_tail(scale, t)
    computed = Decimal(discrete_gaussian_tail(scale, t))
    assert computed >= exact  # never below the truth: δ is conservative
    assert computed <= exact * Decimal(1 + 3e-9)  # and tight


def test_tail_agrees_with_poisson_summation_for_large_scales():
    # For σ >= 2 the normaliser is σ√(2π) up to e^{-2π²σ²}, so the tail is the sum over z >= t
    # divided by σ√(2π); checked with a direct float sum in the bulk of the distribution.
    for scale, t in [(50.0, 100), (400.0, 2000), (3000.0, 15000)]:
        z = np.arange(t, t + 40 * int(scale))
        reference = np.exp(-(z.astype(float) ** 2) / (2 * scale**2)).sum() / (scale * math.sqrt(2 * math.pi))
        assert discrete_gaussian_tail(scale, t) == pytest.approx(reference, rel=1e-8)
        assert discrete_gaussian_tail(scale, t) >= reference * (1 - 1e-12)


def test_tail_argument_checks():
    for bad in (0, -3, 1.5, True):
        with pytest.raises(ValueError, match="integer >= 1"):
            discrete_gaussian_tail(1.0, bad)
    for bad in (0.0, -1.0, math.inf, math.nan):
        with pytest.raises(ValueError, match="scale"):
            discrete_gaussian_tail(bad, 3)


def test_event_declares_rho_and_delta():
    event = PartitionSelectionEvent(scale=4.0, threshold=20, max_partitions=6, label="levels")
    assert event.rho == pytest.approx(6 / (2 * 16.0))  # Δ₂² / 2σ² with Δ₂ = √L0
    assert event.delta >= 6 * discrete_gaussian_tail(4.0, 20)
    assert event.delta == pytest.approx(6 * float(exact_tail(4.0, 20)), rel=1e-8)
    stored = event.to_dict()
    assert stored["kind"] == "partition_selection" and stored["delta"] == event.delta and stored["rho"] == event.rho
    assert stored["threshold"] == 20 and stored["max_partitions"] == 6 and stored["scale"] == 4.0
    assert total_delta([event, event]) >= 2 * event.delta
    assert PartitionSelectionEvent(scale=1.0, threshold=3, max_partitions=0).delta == 0.0


@pytest.mark.parametrize("rho,delta,l0", [(0.01, 1e-9, 1), (0.05, 5e-7, 12), (1.0, 1e-3, 3), (0.3, 0.2, 1)])
def test_calibration_is_the_smallest_threshold_within_delta(rho, delta, l0):
    mechanism = PartitionSelection.calibrate(rho, delta, max_partitions=l0)
    assert mechanism.rho <= rho
    assert mechanism.scale >= math.sqrt(l0 / (2 * rho))
    assert mechanism.delta <= delta
    if mechanism.threshold > 1:
        looser = PartitionSelectionEvent(scale=mechanism.scale, threshold=mechanism.threshold - 1, max_partitions=l0)
        assert looser.delta > delta
    assert threshold_for(mechanism.scale, l0, delta) == mechanism.threshold


def test_thresholding_delta_in_an_approx_dp_statement():
    assert thresholding_delta(0.0) == 0.0
    assert thresholding_delta(1e-9) >= 1e-9 / (1 - 1e-9)
    assert thresholding_delta(1e-9) == pytest.approx(1e-9, rel=1e-8)
    assert thresholding_delta(1.0) == math.inf
    with pytest.raises(ValueError):
        thresholding_delta(-1e-9)


# --------------------------------------------------------------------------- spending discipline


def test_spends_rho_and_delta_before_release_and_refuses_overdraft():
    mechanism = PartitionSelection.calibrate(0.5, 1e-6, max_partitions=2, label="levels")
    groups = [{"a": 1000, "b": 2}, {"x": 500}]
    odometer = Odometer(ZCDP(mechanism.rho), mechanism.delta)
    released = mechanism(groups, noise=seeded(1), odometer=odometer)
    assert odometer.events == [mechanism.event]
    assert set(released[0]) == {"a"} and set(released[1]) == {"x"}
    assert all(v > mechanism.threshold for part in released for v in part.values())
    # enough ρ but no δ reserved: refused before any noise is drawn
    odometer = Odometer(ZCDP(1.0))
    with pytest.raises(PrivacyAccountingError, match="delta"):
        mechanism(groups, noise=seeded(1), odometer=odometer)
    assert odometer.events == []
    with pytest.raises(PrivacyAccountingError, match="rho"):
        mechanism(groups, noise=seeded(1), odometer=Odometer(ZCDP(mechanism.rho / 2), 1.0))
    with pytest.raises(ValueError, match="planned for at most 2"):
        mechanism([{}, {}, {}], noise=seeded(1), odometer=Odometer(ZCDP(1.0), 1.0))
    with pytest.raises(ValueError, match="positive counts"):
        mechanism([{"a": 0}], noise=seeded(1), odometer=Odometer(ZCDP(1.0), 1.0))


def test_no_keys_releases_nothing():
    mechanism = PartitionSelection.calibrate(0.5, 1e-6, max_partitions=2)
    assert mechanism([{}, {}], noise=OpenDPNoise(), odometer=Odometer(ZCDP(1.0), 1.0)) == [{}, {}]


# --------------------------------------------------------------------------- statistical tests of the claim


def _singleton_releases(mechanism: PartitionSelection, noise, n: int) -> int:
    """How many of n keys held by one row each are released (independent noise per key)."""
    groups = [{f"k{i}": 1 for i in range(n)}]
    (released,) = mechanism(groups, noise=noise, odometer=Odometer(ZCDP(1e9), 1.0))
    return len(released)


@pytest.mark.parametrize("noise_name", ["seeded", "opendp"])
def test_a_singleton_is_released_with_probability_delta_per_partition(noise_name):
    """The δ_thr of a key only one neighbour holds: P[1 + Z > τ] = δ_thr / L0 (false failure ≤ 1e-4).

    Small σ and τ so that the probability is large enough to measure; the same code computes the
    tiny probabilities of real releases.
    """
    mechanism = PartitionSelection(scale=2.0, threshold=3, max_partitions=4)
    p = mechanism.release_probability
    assert mechanism.delta == pytest.approx(4 * p, rel=1e-12)
    assert p == pytest.approx(float(exact_tail(2.0, 3)), rel=1e-8)
    n = 20_000
    noise = seeded(11) if noise_name == "seeded" else OpenDPNoise()
    hits = _singleton_releases(mechanism, noise, n)
    assert stats.binomtest(hits, n, p).pvalue > ALPHA, (hits, n * p)


def test_release_probability_follows_the_count():
    """A key with count c is released with probability P[Z > τ − c] (false failure ≤ 1e-4)."""
    mechanism = PartitionSelection(scale=3.0, threshold=6, max_partitions=1)
    n = 6000
    counts = {2: n, 6: n, 9: n}
    groups = [{(c, i): c for c, m in counts.items() for i in range(m)}]
    (released,) = mechanism(groups, noise=seeded(5), odometer=Odometer(ZCDP(1e9), 1.0))
    for c in counts:
        hits = sum(1 for key in released if key[0] == c)
        p = discrete_gaussian_tail(3.0, 6 - c + 1) if 6 - c + 1 >= 1 else 1 - discrete_gaussian_tail(3.0, c - 6)
        assert stats.binomtest(hits, n, p).pvalue > ALPHA / len(counts), (c, hits, n * p)


def _pmf(scale: float) -> tuple[np.ndarray, np.ndarray]:
    half = int(math.ceil(20 * scale)) + 10
    support = np.arange(-half, half + 1)
    weights = np.exp(-(support.astype(float) ** 2) / (2.0 * scale**2))
    return support, weights / weights.sum()


@pytest.mark.parametrize("noise_name", ["seeded", "opendp"])
def test_noise_on_released_counts_is_the_declared_discrete_gaussian(noise_name):
    """Noisy − true counts of always-released keys follow N_Z(0, σ²) (false failure ≤ 1e-4)."""
    mechanism = PartitionSelection.calibrate(0.02, 1e-6, max_partitions=1)  # σ ≈ 5
    sigma = mechanism.scale
    n = 20_000
    groups = [{i: 10_000 for i in range(n)}]
    noise = seeded(3) if noise_name == "seeded" else OpenDPNoise()
    (released,) = mechanism(groups, noise=noise, odometer=Odometer(ZCDP(1.0), 1.0))
    assert len(released) == n
    errors = np.array(list(released.values())) - 10_000
    support, pmf = _pmf(sigma)
    lo, hi = -12, 12
    inner = (support >= lo) & (support <= hi)
    expected = np.concatenate([[pmf[support < lo].sum()], pmf[inner], [pmf[support > hi].sum()]]) * n
    observed = np.concatenate(
        [
            [np.sum(errors < lo)],
            np.bincount(errors[(errors >= lo) & (errors <= hi)] - lo, minlength=hi - lo + 1),
            [np.sum(errors > hi)],
        ]
    )
    statistic = float(((observed - expected) ** 2 / expected).sum())
    assert stats.chi2.sf(statistic, len(expected) - 1) > ALPHA / 2
    # and the variance is that of the discrete Gaussian with this σ (≈ σ² for σ >= 1)
    variance = float((support.astype(float) ** 2 * pmf).sum())
    assert variance == pytest.approx(sigma**2, rel=1e-6)
    z = (errors.var() - variance) / (variance * math.sqrt(2.0 / n))
    assert abs(z) < stats.norm.isf(ALPHA / 4)


@pytest.mark.slow
def test_neighbouring_tables_release_probabilities_within_the_claim():
    """The claim on a pair of neighbours D = D' + one row holding the key 'solo' (false failure
    ≤ 1e-4): the key only D holds is released with probability δ_thr (D' never releases it), and
    outside that event both tables give the same distribution on the shared key 'a', so that
    P_D({'a'}) = (1 − δ_thr) · P_D'({'a'}): the 1/(1 − δ_thr) that the ledger's conversion
    (thresholding_delta) accounts for."""
    mechanism = PartitionSelection(scale=1.5, threshold=2, max_partitions=1)
    noise = seeded(21)
    n = 30_000
    solo_hits = 0
    a_only = {"D": 0, "D'": 0}
    for name, group in (("D", {"a": 3, "solo": 1}), ("D'", {"a": 3})):
        # n independent runs at once: one group per run would need L0 = n; keys are independent
        # anyway, so run the keys of all runs in one call and read each run's keys back.
        keys = {(run, k): c for run in range(n) for k, c in group.items()}
        (released,) = mechanism([keys], noise=noise, odometer=Odometer(ZCDP(1e9), 1.0))
        per_run: dict[int, set[str]] = {}
        for run, k in released:
            per_run.setdefault(run, set()).add(k)
        if name == "D":
            solo_hits = sum(1 for ks in per_run.values() if "solo" in ks)
        a_only[name] = sum(1 for run in range(n) if per_run.get(run) == {"a"})
    p_solo = mechanism.release_probability
    assert stats.binomtest(solo_hits, n, p_solo).pvalue > ALPHA / 2
    # Conditioned on the solo key not being released, D and D' give {'a'} with the same
    # probability (the noise on 'a' is the same mechanism): P_D({'a'}) = (1 − p) · P_D'({'a'}).
    ratio_expected = 1 - p_solo
    p_a = a_only["D'"] / n
    se = math.sqrt(p_a * (1 - p_a) / n) * math.sqrt(2) / p_a
    ratio = (a_only["D"] / n) / p_a
    assert abs(ratio - ratio_expected) < stats.norm.isf(ALPHA / 4) * se
