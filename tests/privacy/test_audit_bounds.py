"""The statistics of dpsynth's privacy audits: pinned values, closed forms, and false-alarm rates
of the bounds on mechanisms whose privacy is known exactly."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from dpsynth.audit import (
    AuditResult,
    ErrorCounts,
    clopper_pearson_upper,
    epsilon_lower_bound,
    max_provable_epsilon,
    max_provable_mu,
    mu_for_claim,
    mu_from_rho,
    mu_lower_bound,
    one_run_epsilon_lower_bound,
    one_run_p_value,
    split_trials,
    threshold_audit,
)
from dpsynth.exceptions import ParameterError
from dpsynth.privacy.accounting import approx_dp_to_rho


def test_perfect_attack_pinned_values():
    assert max_provable_epsilon(1000, 1000, delta=0.0, confidence=0.95) == pytest.approx(5.60, abs=0.005)
    assert max_provable_epsilon(25, 25, delta=0.0, confidence=0.95) == pytest.approx(1.84, abs=0.005)
    # the same number through the general bound
    perfect = ErrorCounts(0, 1000, 0, 1000)
    assert epsilon_lower_bound(perfect, delta=0.0, confidence=0.95) == max_provable_epsilon(
        1000, 1000, delta=0.0, confidence=0.95)


def test_closed_form_of_a_perfect_attack():
    # zero errors in n trials: the one-sided upper bound is 1 − (α/2)^(1/n)
    n, alpha = 1000, 0.05
    upper = 1 - (alpha / 2) ** (1 / n)
    assert clopper_pearson_upper(0, n, alpha / 2) == pytest.approx(upper, rel=1e-9)
    assert max_provable_epsilon(n, n, delta=1e-3, confidence=0.95) == pytest.approx(
        math.log((1 - 1e-3 - upper) / upper), abs=1e-6)


def test_clopper_pearson_matches_the_binomial_tail():
    for errors, n in [(0, 10), (3, 40), (17, 200), (99, 100)]:
        upper = clopper_pearson_upper(errors, n, 0.025)
        assert stats.binom.cdf(errors, n, upper) == pytest.approx(0.025, rel=1e-6)
    assert clopper_pearson_upper(5, 5, 0.025) == 1.0


def test_mu_of_the_claim_uses_dpsynths_conversion():
    assert mu_for_claim(1.0, 1e-2) == pytest.approx(0.4548, abs=5e-5)
    assert mu_for_claim(1.0, 1e-2) == pytest.approx(math.sqrt(2 * approx_dp_to_rho(1.0, 1e-2)))
    assert mu_from_rho(0.5) == pytest.approx(1.0)


def test_mu_bound_formula():
    counts = ErrorCounts(100, 1000, 200, 1000)
    alpha = 0.05
    fpr = stats.beta.ppf(1 - alpha / 2, 101, 900)
    fnr = stats.beta.ppf(1 - alpha / 2, 201, 800)
    expected = stats.norm.ppf(1 - fpr) - stats.norm.ppf(fnr)
    assert mu_lower_bound(counts, confidence=0.95) == pytest.approx(expected, abs=1e-6)
    assert max_provable_mu(1000, 1000, confidence=0.95) > mu_lower_bound(counts, confidence=0.95)


def test_epsilon_bound_is_zero_for_a_coin_flip_and_uses_both_orientations():
    assert epsilon_lower_bound(ErrorCounts(500, 1000, 500, 1000), delta=0.0, confidence=0.95) == 0.0
    lopsided = ErrorCounts(0, 1000, 600, 1000)  # never a false positive, often a false negative
    flipped = ErrorCounts(600, 1000, 0, 1000)
    assert epsilon_lower_bound(lopsided, delta=0, confidence=0.95) == epsilon_lower_bound(
        flipped, delta=0, confidence=0.95) > 0


def test_delta_lowers_the_bound():
    counts = ErrorCounts(2, 1000, 150, 1000)
    assert epsilon_lower_bound(counts, delta=0.1, confidence=0.95) < epsilon_lower_bound(
        counts, delta=0.0, confidence=0.95)


def test_result_fields_and_violation():
    r = AuditResult(claimed_epsilon=1.0, epsilon_lower_bound=1.5, confidence=0.95, trials=10, method="m",
                    max_provable_epsilon=2.0)
    d = r.to_dict()
    for key in ("claimed_epsilon", "epsilon_lower_bound", "confidence", "trials", "method", "max_provable_epsilon",
                "violation", "notice"):
        assert key in d
    assert d["violation"] is True and "NOT differentially private" in d["notice"]
    ok = AuditResult(claimed_epsilon=1.0, epsilon_lower_bound=0.2, confidence=0.95, trials=10, method="m",
                     max_provable_epsilon=0.5, mu_lower_bound=0.9, claimed_mu=0.45, max_provable_mu=2.0)
    assert ok.violation  # by μ
    assert not AuditResult(claimed_epsilon=1.0, epsilon_lower_bound=0.2, confidence=0.95, trials=10, method="m",
                           max_provable_epsilon=0.5).conclusive


def test_split_is_disjoint_and_complete():
    s0, s1 = np.arange(10.0), np.arange(10.0, 30.0)
    (a0, a1), (b0, b1) = split_trials(s0, s1)
    assert sorted(np.concatenate([a0, b0])) == list(s0) and sorted(np.concatenate([a1, b1])) == list(s1)
    assert len(a0) == 5 and len(a1) == 10
    with pytest.raises(ParameterError, match=r"selection_fraction \(1.0\) must be in the open interval \(0, 1\)"):
        split_trials(s0, s1, selection_fraction=1.0)


def test_threshold_audit_of_a_perfect_separation():
    r = threshold_audit(np.zeros(100), np.ones(100), claimed_epsilon=1.0, claimed_delta=0.0, method="t")
    # threshold chosen on 50 + 50 trials, bound from the other 50 + 50: exactly a perfect attack there
    assert r.epsilon_lower_bound == max_provable_epsilon(50, 50, delta=0.0, confidence=0.95)
    assert r.trials == 200 and r.violation
    fixed = threshold_audit(np.zeros(15), np.ones(15), claimed_epsilon=1.0, claimed_delta=1e-2, method="t",
                            threshold=0.5)
    assert fixed.epsilon_lower_bound == max_provable_epsilon(15, 15, delta=1e-2, confidence=0.95) > 1.0


def test_gaussian_mechanism_mu_is_recovered():
    rng = np.random.default_rng(0)
    mu = 2.0
    r = threshold_audit(rng.normal(0, 1, 20000), rng.normal(mu, 1, 20000), claimed_epsilon=10.0, claimed_delta=0.0,
                        method="t", threshold=mu / 2, claimed_mu=mu)
    # a sound lower bound, and a tight one with this many trials
    assert 1.8 < r.mu_lower_bound <= mu
    assert not r.violation


def _randomized_response_errors(epsilon: float, n: int, rng: np.random.Generator) -> ErrorCounts:
    """The optimal test on ε-DP randomized response: it errs with probability 1/(1+e^ε)."""
    p = 1 / (1 + math.exp(epsilon))
    return ErrorCounts(int(rng.binomial(n, p)), n, int(rng.binomial(n, p)), n)


def test_false_alarm_rate_on_an_exact_mechanism_is_at_most_alpha():
    """Randomized response at exactly ε = 1 meets the (1, 0) claim with equality: the bound must
    exceed 1 in at most 5% of audits. Failure probability of this test: P[Binomial(2000, 0.05)
    > 130] < 1e-6."""
    rng = np.random.default_rng(12345)
    audits = 2000
    alarms = sum(epsilon_lower_bound(_randomized_response_errors(1.0, 500, rng), delta=0.0, confidence=0.95) > 1.0
                 for _ in range(audits))
    assert alarms <= 130


def test_gaussian_false_alarm_rate_of_the_mu_bound():
    """μ-GDP Gaussian scores at exactly the claimed μ: alarms in at most 5% of audits (failure
    probability < 1e-6 for a correct bound)."""
    rng = np.random.default_rng(7)
    mu, n, alarms = 0.4548, 400, 0
    for _ in range(1000):
        false_positives = int((rng.normal(0, 1, n) >= mu / 2).sum())
        counts = ErrorCounts(false_positives, n, int((rng.normal(mu, 1, n) < mu / 2).sum()), n)
        alarms += mu_lower_bound(counts, confidence=0.95) > mu
    assert alarms <= 75


def test_one_run_bound():
    # no δ: the bound is the ε with P[Binomial(r, q) ≥ v] = α, q = e^ε / (1 + e^ε)
    r = one_run_epsilon_lower_bound(1000, 100, 100, claimed_epsilon=1.0, delta=0.0)
    q = 0.05 ** (1 / 100)
    assert r.epsilon_lower_bound == pytest.approx(math.log(q / (1 - q)), abs=1e-5)
    assert r.max_provable_epsilon == r.epsilon_lower_bound and r.violation
    # with δ the bound drops and the p-value at the bound is the confidence level
    with_delta = one_run_epsilon_lower_bound(1000, 100, 90, claimed_epsilon=1.0, delta=1e-5)
    assert 0 < with_delta.epsilon_lower_bound < r.epsilon_lower_bound
    assert one_run_p_value(1000, 100, 90, with_delta.epsilon_lower_bound, 1e-5) < 0.05
    assert one_run_p_value(1000, 100, 90, with_delta.epsilon_lower_bound + 1e-4, 1e-5) >= 0.05
    # half right is what a coin does
    assert one_run_epsilon_lower_bound(1000, 100, 50, claimed_epsilon=1.0, delta=0.0).epsilon_lower_bound == 0.0
    with pytest.raises(ParameterError):
        one_run_epsilon_lower_bound(10, 20, 5, claimed_epsilon=1.0, delta=0.0)


def test_one_run_false_alarm_rate():
    """Canaries through ε-DP randomized response (exactly ε = 1): alarms in at most 5% of runs."""
    rng = np.random.default_rng(3)
    q = math.exp(1) / (1 + math.exp(1))
    alarms = sum(one_run_epsilon_lower_bound(1000, 200, int(rng.binomial(200, q)), claimed_epsilon=1.0,
                                             delta=0.0).violation for _ in range(400))
    assert alarms <= 35  # P[Binomial(400, 0.05) > 35] < 1e-3
