"""White-box transcript audit of MST (and AIM) on the worst-case pair: ten all-zero rows versus
the same plus one all-ones row over three binary columns.

Fast tests use seeded noise (deterministic: no failure probability); the statistical ones are
marked slow and state their failure probability.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from dpsynth.audit import max_provable_epsilon
from dpsynth.audit.replay import neighbouring_pairs
from dpsynth.audit.transcript import record_fit
from dpsynth.audit.whitebox import ScaledNoise, ZeroNoise, transcript_scores, whitebox_audit
from dpsynth.mechanisms import SeededNoise
from dpsynth.schema import Schema
from dpsynth.synth import AIM, MST

SCHEMA = Schema.from_domain({"a": 2, "b": 2, "c": 2})
ZEROS, WITH_ONES = neighbouring_pairs(SCHEMA, rows=10)["constant_plus_outlier"]
CLAIM = {"claimed_epsilon": 1.0, "claimed_delta": 1e-2}


def make_mst():
    return MST(epsilon=1.0, delta=1e-2)


def make_aim():
    return AIM(epsilon=1.0, delta=1e-2, max_rounds=2, estimation_iters=10)


def test_worst_case_pair():
    assert len(ZEROS) == 10 and len(WITH_ONES) == 11
    assert (WITH_ONES.iloc[:10].to_numpy() == ZEROS.to_numpy()).all()


def test_correct_mst_is_not_flagged():
    r = whitebox_audit(make_mst, SCHEMA, ZEROS, WITH_ONES, trials_per_world=15, noise="seeded", **CLAIM)
    assert not r.violation and r.epsilon_lower_bound < 1.0
    assert r.details["noise"].startswith("seeded") and r.details["transcript_truncated_after_calls"] == 7
    assert r.claimed_mu == pytest.approx(0.4548, abs=1e-4)


def test_mst_with_the_noise_removed_is_flagged_with_30_fits():
    r = whitebox_audit(make_mst, SCHEMA, ZEROS, WITH_ONES, trials_per_world=15,
                       make_noise=lambda seed: ZeroNoise(), **CLAIM)
    assert r.violation and r.epsilon_lower_bound > 1.0
    # no errors at all: the bound is the largest that 15 + 15 trials can show (Bonferroni half-α)
    assert r.epsilon_lower_bound == max_provable_epsilon(15, 15, delta=1e-2, confidence=0.975)


def test_gaussian_score_has_the_distribution_the_mu_comparison_assumes():
    """Mean ∓V/2 and variance V in the two worlds (seeded; deterministic). V = 2ρ of MST's
    Gaussian measurements (two thirds of ρ)."""
    from dpsynth.privacy.accounting import approx_dp_to_rho

    rho = approx_dp_to_rho(1.0, 1e-2)
    per_world = {0: [], 1: []}
    for t in range(150):
        for world, data, other in ((0, ZEROS, WITH_ONES), (1, WITH_ONES, ZEROS)):
            rec = record_fit(make_mst(), data, SCHEMA, noise=SeededNoise(10_000 + 2 * t + world, _warn=False),
                             stop_after=7)
            rep = record_fit(make_mst(), other, SCHEMA, replay=rec, stop_after=7)
            _, gaussian, variance = transcript_scores(rec, rep, world)
            assert variance == pytest.approx(2 * rho * 2 / 3, rel=1e-6)
            per_world[world].append(gaussian)
    v = 2 * rho * 2 / 3
    for world, sign in ((0, -1), (1, 1)):
        x = np.asarray(per_world[world])
        assert abs(x.mean() - sign * v / 2) < 4 * math.sqrt(v / len(x))
        assert 0.7 * v < x.var() < 1.3 * v


@pytest.mark.slow
def test_mst_with_sigma_halved_is_flagged_by_the_mu_test():
    """σ halved doubles μ of the Gaussian part: √(2·(2/3)ρ)·2 = 0.74 > claimed 0.4548. Power of the μ
    test (2,000 simulated audits of the Gaussian score, ``audit-results/README.md``): 0.96 with 1,000
    transcripts per world, 1.0 with 2,000 (used here: a miss has probability < 1e-3 on fresh noise).
    The noise is seeded per transcript (``SeededNoise``: exact samplers on a seeded stream), so CI draws the
    same transcripts on every run and this test cannot fail by chance (false-failure probability 0
    in CI; ``test_simulated_power_of_the_mu_test_against_sigma_halved`` covers the power itself)."""
    r = whitebox_audit(make_mst, SCHEMA, ZEROS, WITH_ONES, trials_per_world=2000,
                       make_noise=lambda seed: ScaledNoise(SeededNoise(seed, _warn=False), 0.5), **CLAIM)
    assert r.violation and r.mu_lower_bound > r.claimed_mu


@pytest.mark.slow
def test_correct_mst_false_alarm_rate_over_repeated_audits():
    """100 independent audits (25 transcripts per world, secure noise) of the correct MST: at most
    α = 5% may be flagged; the bound allows 15 (false-failure probability
    P[Binomial(100, 0.05) > 15] = 3.7e-5; a broken MST is flagged in nearly every audit)."""
    alarms = sum(whitebox_audit(make_mst, SCHEMA, ZEROS, WITH_ONES, trials_per_world=25, seed=1000 * k,
                                **CLAIM).violation for k in range(100))
    assert alarms <= 15


@pytest.mark.slow
def test_aim_with_the_noise_removed_is_flagged_and_the_real_one_is_not():
    broken = whitebox_audit(make_aim, SCHEMA, ZEROS, WITH_ONES, trials_per_world=15,
                            make_noise=lambda seed: ZeroNoise(), **CLAIM)
    assert broken.violation
    real = whitebox_audit(make_aim, SCHEMA, ZEROS, WITH_ONES, trials_per_world=5, noise="seeded", **CLAIM)
    assert not real.violation


@pytest.mark.slow
def test_correct_aim_false_alarm_rate_over_repeated_audits(monkeypatch):
    """10 independent audits of the correct AIM (10 transcripts per world, secure noise; in 2 spawned
    processes, one thread each: ~95 CPU-s in all). At 10 per world an audit can show μ up to 0.745,
    above the claim's μ = 0.4548, so each one could raise an alarm; at most α = 5% may be flagged:
    the bound allows 4 (false-failure probability P[Binomial(10, 0.05) > 4] = 6.4e-5). The K = 80 run of
    ``benchmarks/audit_false_alarms.py`` is in ``audit-results/README.md``."""
    import concurrent.futures
    import functools
    import multiprocessing

    for key in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        monkeypatch.setenv(key, "1")
    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
    make = functools.partial(AIM, epsilon=1.0, delta=1e-2, max_rounds=2, estimation_iters=10)  # = make_aim
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(whitebox_audit, make, SCHEMA, ZEROS, WITH_ONES, trials_per_world=10, seed=20 * k,
                               **CLAIM) for k in range(10)]
        results = [f.result() for f in futures]
    assert all(r.details["noise"].startswith("secure") for r in results)
    assert all(r.conclusive and r.max_provable_mu > r.claimed_mu for r in results)  # an alarm was possible
    assert sum(r.violation for r in results) <= 4


def test_simulated_power_of_the_mu_test_against_sigma_halved():
    """The power table in audit-results/README.md: the audit's Gaussian score is N(∓V/2, V); with σ halved
    V is four times MST's. 200 simulated audits of 2,000 transcripts per world: all flag σ halved,
    none flags the correct V (each would fail with probability < 1e-3 at the true power)."""
    from dpsynth.audit import ErrorCounts, mu_for_claim, mu_lower_bound
    from dpsynth.privacy.accounting import approx_dp_to_rho

    rng = np.random.default_rng(0)
    claim, v_correct, n = mu_for_claim(1.0, 1e-2), 2 / 3 * 2 * approx_dp_to_rho(1.0, 1e-2), 2000

    def flags(v):
        fp = int((rng.normal(-v / 2, math.sqrt(v), n) >= 0).sum())
        fn = int((rng.normal(v / 2, math.sqrt(v), n) < 0).sum())
        return mu_lower_bound(ErrorCounts(fp, n, fn, n), confidence=0.975) > claim

    assert sum(flags(4 * v_correct) for _ in range(200)) >= 195
    assert sum(flags(v_correct) for _ in range(200)) == 0
