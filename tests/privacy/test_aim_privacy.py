"""Statistical and sensitivity tests of AIM's privacy claims.

* Selection: the quality scores move by at most the declared sensitivity between neighbouring
  tables (one row added or removed), for every candidate.
* Measurement: the noise AIM actually adds has the declared discrete-Gaussian scale (pooled
  standardised residuals over a whole fit), and every noise call's scale is the one its
  privacy event declares.
* Preprocessing: DP bin edges are planned, reserved and spent before the rounds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from dpsynth import UNTRACKED
from dpsynth.marginals import marginal_counts
from dpsynth.mechanisms import SeededNoise, noise_source
from dpsynth.privacy import ApproxDP
from dpsynth.privacy.ledger import Ledger
from dpsynth.schema import Schema
from dpsynth.synth import AIM
from dpsynth.synth.aim import candidate_weights, quality_scores

SIZES = {"a": 2, "b": 3, "c": 4, "d": 2}


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 60), add=st.booleans(), sigma=st.floats(0.1, 50.0))
def test_quality_scores_move_by_at_most_the_declared_sensitivity(seed, n, add, sigma):
    rng = np.random.default_rng(seed)
    names, sizes = list(SIZES), list(SIZES.values())
    codes = np.stack([rng.integers(0, k, n) for k in sizes], axis=1)
    if add:
        neighbour = np.vstack([codes, [rng.integers(0, k) for k in sizes]])
    else:
        neighbour = np.delete(codes, rng.integers(0, n), axis=0)
    workload = [("a", "b", "c"), ("b", "c", "d"), ("a", "d")]
    weights = candidate_weights(workload)
    allowed = list(weights)
    # the model's estimates depend only on earlier noisy releases: the same for both tables
    estimates = {cl: rng.uniform(0, n, int(np.prod([SIZES[a] for a in cl]))) for cl in allowed}

    def answers(table):
        return {cl: marginal_counts(table, [names.index(a) for a in cl], sizes).astype(float) for cl in allowed}

    before = quality_scores(allowed, weights, answers(codes), estimates, sigma)
    after = quality_scores(allowed, weights, answers(neighbour), estimates, sigma)
    declared = max(weights.values())
    assert max(abs(x - y) for x, y in zip(before, after, strict=True)) <= declared + 1e-9


def test_declared_sensitivity_is_attained():
    """The bound is tight: a row that lands where the estimate is too high moves a score by wᵣ."""
    workload = [("a", "b")]
    weights = candidate_weights(workload)
    cl = ("a", "b")
    est = {cl: np.full(6, 10.0)}
    x = {cl: np.full(6, 5.0)}
    x_plus = {cl: x[cl] + np.eye(6)[0]}
    diff = quality_scores([cl], weights, x, est, 1.0)[0] - quality_scores([cl], weights, x_plus, est, 1.0)[0]
    assert diff == pytest.approx(weights[cl]) and weights[cl] == max(weights.values())


class RecordingNoise(SeededNoise):
    """Seeded noise that keeps every call's input, scale and output (a record/replay hook)."""

    def __init__(self, seed: int):
        super().__init__(seed, _warn=False)
        self.gaussian: list[tuple[np.ndarray, float, np.ndarray]] = []
        self.gumbel: list[float] = []

    def discrete_gaussian(self, counts, scale):
        out = super().discrete_gaussian(counts, scale)
        self.gaussian.append((np.asarray(counts).copy(), float(scale), np.asarray(out).copy()))
        return out

    def gumbel_argmax(self, scores, scale):
        self.gumbel.append(float(scale))
        return super().gumbel_argmax(scores, scale)


@pytest.mark.slow
def test_measurement_noise_has_the_declared_scale():
    sizes = {"a": 8, "b": 10, "c": 12, "d": 5}
    schema = Schema.from_domain(sizes)
    residuals = []
    for seed in range(4):
        recorder = RecordingNoise(seed)
        rng = np.random.default_rng(seed)
        a = rng.integers(0, 8, 2000)
        data = pd.DataFrame({"a": a, "b": (a + rng.integers(0, 3, 2000)) % 10,
                             "c": (a * 3 + rng.integers(0, 2, 2000)) % 12,
                             "d": (a + rng.integers(0, 2, 2000)) % 5}).astype(str)
        synth = AIM(epsilon=1.0, delta=1e-6, max_rounds=8, estimation_iters=200)
        with noise_source(recorder):  # the fit draws from the recorder (this thread only)
            synth.fit(data, schema=schema, ledger=UNTRACKED)

        gaussian_events = [e for e in synth.privacy_events_ if e.kind == "gaussian"]
        selection_events = [e for e in synth.privacy_events_ if e.kind == "exponential"]
        assert len(recorder.gaussian) == len(gaussian_events) >= len(sizes) + 1
        assert len(recorder.gumbel) == len(selection_events) >= 1
        for (_, scale, _), event in zip(recorder.gaussian, gaussian_events, strict=True):
            assert scale == event.scale and event.l2_sensitivity == 1
        for scale, event in zip(recorder.gumbel, selection_events, strict=True):
            assert scale == pytest.approx(2 * event.sensitivity / event.epsilon)
            assert event.sensitivity == max(candidate_weights(synth._workload(schema)).values())
        residuals += [(out - counts) / scale for counts, scale, out in recorder.gaussian]
        # the noise really was added to the true marginals AIM measured
        assert all(not np.array_equal(out, counts) for counts, _, out in recorder.gaussian)

    z = np.concatenate(residuals)
    assert len(z) > 500
    # pooled standardised residuals: mean 0, variance 1 (the discrete Gaussian's variance is
    # within 1e-3 of σ² for the scales used here)
    assert abs(z.mean()) < 4 / np.sqrt(len(z))
    lo, hi = stats.chi2.ppf([1e-4, 1 - 1e-4], len(z)) / len(z)
    assert lo < z.var() < hi


def test_aim_plans_reserves_and_spends_dp_bins(tmp_path):
    schema = Schema.from_dict({"columns": [
        {"name": "income", "kind": "continuous", "bounds": [0, 200000], "bins": {"dp_quantiles": 6}},
        {"name": "city", "kind": "categorical", "levels": ["a", "b", "c"]},
        {"name": "n", "kind": "integer", "bounds": [0, 4]},
    ]})
    rng = np.random.default_rng(5)
    data = pd.DataFrame({"income": rng.lognormal(10.5, 0.6, 600).clip(0, 200000).round(2).astype(str),
                         "city": rng.choice(["a", "b", "c"], 600), "n": rng.integers(0, 5, 600).astype(str)})
    ledger = Ledger(f"sqlite:///{tmp_path / 'l.db'}", create=True)
    ledger.create_dataset("d", ApproxDP(5.0, 1e-6))
    synth = AIM(epsilon=1.0, delta=1e-6, max_rounds=6, estimation_iters=200, insecure_seed=3)
    planned = synth.plan(schema)
    quantiles = [e for e in planned if e.label == "dp_quantile"]
    assert len(quantiles) == 5 and planned[:5] == quantiles  # before the rounds
    rho = synth.zcdp_budget().rho
    assert sum(e.rho for e in quantiles) == pytest.approx(0.1 * rho, rel=1e-6)
    assert sum(e.rho for e in planned) == pytest.approx(rho, rel=1e-6)
    synth.fit(data, schema=schema, ledger=ledger, dataset="d")
    (entry,) = ledger.statement("d").reservations
    assert entry.rho == pytest.approx(sum(e.rho for e in planned))
    spent = [e for e in synth.privacy_events_ if e.label == "dp_quantile"]
    assert [e.to_dict() for e in spent] == [e.to_dict() for e in quantiles]
    assert synth.privacy_spent_.rho <= rho * (1 + 1e-9)
    assert synth.schema_["income"].edges_from == "dp_quantiles"
