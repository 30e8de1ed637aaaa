"""The DP forms of the release gate's checks (dpsynth.release.dp_checks): sensitivity, accounting,
accuracy.

(a) Sensitivity. On seeded random small tables (small skewed domains, so that duplicates, matches
    and unique quasi-identifier combinations are common) and random synthetic tables, the exact
    pre-noise statistics of D, of D plus one random row (inserted at a random place) and of D minus
    one random row differ by at most the sensitivity each measurement declares. Deterministic.
(b) Accounting. ρ of plan.events() adds up to at most the plan's ρ, a run spends exactly those
    events, an odometer holding less refuses it, and input errors are raised before any spend.
    Deterministic.
(c)-(e) Accuracy on 5,000 bundled Adult rows with seeded (insecure, exact) noise. Each tolerance is
    derived from the noise scales: every noise Z ~ N_Z(0, σ²) in the assertion is bounded by an
    integer t with P[|Z| ≥ t] = 2·P[Z ≥ t] computed by dpsynth's exact, rounded-up discrete Gaussian
    tail (dpsynth.privacy.accounting.discrete_gaussian_tail); the union bound over the noises of one
    test gives its false-failure probability, asserted ≤ FAILURE = 1e-4 in the test itself. With the
    fixed seeds the tests are deterministic: a correct implementation fails for at most a fraction
    1e-4 of the noise seeds.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

import numpy as np
import pandas as pd
import pytest

from dpsynth.datasets import adult_path, adult_schema_path
from dpsynth.exceptions import DataError, ParameterError, PrivacyAccountingError
from dpsynth.mechanisms import SeededNoise
from dpsynth.pii import dp_replay
from dpsynth.privacy import ZCDP, Odometer, total_rho
from dpsynth.privacy.accounting import discrete_gaussian_tail
from dpsynth.quality import dp_fidelity, dp_utility
from dpsynth.quality.fidelity import fidelity, workload_errors
from dpsynth.release.dp_checks import DPChecksPlan, plan_dp_checks, run_dp_checks
from dpsynth.schema import Schema, encode, load_schema

FAILURE = 1e-4  # per-test false-failure probability of the statistical tests (c)-(e)
ADULT_ROWS = 5000
SEEDS = range(40)

SMALL = Schema.from_dict({
    "version": 1,
    "missing_values": ["?"],
    "columns": [
        {"name": "color", "kind": "categorical", "levels": ["red", "green", "blue"], "nullable": True,
         "quasi_identifier": True},
        {"name": "city", "kind": "categorical", "levels": ["a", "b"], "other": "other"},
        {"name": "age", "kind": "integer", "bounds": [0, 9], "edges": [0, 3, 6, 9], "quasi_identifier": True},
        {"name": "score", "kind": "continuous", "bounds": [0.0, 1.0], "bins": 2},
        {"name": "label", "kind": "categorical", "levels": ["no", "yes"]},
    ],
})


def small_table(rng: np.random.Generator, n: int) -> pd.DataFrame:
    """Skewed small domains: many identical rows; city values c, d lie outside the levels (encoded as
    `other`, compared by their text in replay); ages 10, 11 and score 1.5 are clamped; age -0 is 0."""
    return pd.DataFrame({
        "color": rng.choice(["red", "green", "blue", "?"], n, p=[0.6, 0.2, 0.1, 0.1]),
        "city": rng.choice(["a", "b", "c", "d"], n, p=[0.7, 0.1, 0.1, 0.1]),
        "age": rng.choice(["0", "-0", "1", "5", "10", "11"], n, p=[0.4, 0.1, 0.2, 0.1, 0.1, 0.1]),
        "score": rng.choice(["0.1", "0.5", "0.9", "1.5"], n, p=[0.8, 0.1, 0.05, 0.05]),
        "label": rng.choice(["no", "yes"], n, p=[0.7, 0.3]),
    })


def neighbours(rng: np.random.Generator, d: pd.DataFrame) -> list[pd.DataFrame]:
    """D plus one random row (at a random place) and D minus one random row."""
    x = small_table(rng, 1)
    if rng.random() < 0.5:  # a copy of an existing row: the occurrence rank matters
        x = d.iloc[[int(rng.integers(len(d)))]]
    at = int(rng.integers(len(d) + 1))
    added = pd.concat([d.iloc[:at], x, d.iloc[at:]], ignore_index=True)
    removed = d.drop(index=int(rng.integers(len(d)))).reset_index(drop=True)
    return [added, removed]


def seeded(seed: int) -> SeededNoise:
    return SeededNoise(seed, _warn=False)


def bound(scale: float, prob: float) -> int:
    """An integer t with P[|Z| >= t] <= prob for Z ~ N_Z(0, scale²) (sub-Gaussian start, checked
    against the exact tail)."""
    t = max(1, math.ceil(scale * math.sqrt(2.0 * math.log(2.0 / prob))))
    assert 2.0 * discrete_gaussian_tail(scale, t) <= prob
    return t


def scales(plan: DPChecksPlan) -> dict[str, float]:
    return {m.name: m.mechanism.scale for m in plan.measurements()}


# --------------------------------------------------------------------------- (a) sensitivity


@pytest.mark.parametrize("seed", SEEDS)
def test_fidelity_statistic_sensitivity(seed):
    """|f_k(D) − f_k(D')| ≤ 2 in exact rationals, and the released integer moves by ≤ 2·SCALE."""
    rng = np.random.default_rng(seed)
    d = small_table(rng, int(rng.integers(2, 40)))
    s_codes = encode(small_table(rng, int(rng.integers(1, 30))), SMALL)
    d_codes = encode(d, SMALL)
    for other in neighbours(rng, d):
        o_codes = encode(other, SMALL)
        for k in (1, 2, 3):
            a = dp_fidelity.workload_statistic(d_codes, s_codes, SMALL.sizes, k)
            b = dp_fidelity.workload_statistic(o_codes, s_codes, SMALL.sizes, k)
            assert abs(Fraction(a.numerator, a.denominator) - Fraction(b.numerator, b.denominator)) \
                <= dp_fidelity.WORKLOAD_SENSITIVITY
            for scale in (1, 3, dp_fidelity.FIDELITY_SCALE):
                assert abs(a.quantised(scale) - b.quantised(scale)) <= dp_fidelity.quantised_sensitivity(scale)


def test_fidelity_statistic_is_the_evaluated_workload_error():
    """f_k / n is dpsynth eval's l1_kway: same marginal sets, including the sampled ones (C(20, 3) >
    1000), and the quantised value is within ½/SCALE of SCALE·f_k."""
    rng = np.random.default_rng(3)
    sizes = [int(x) for x in rng.integers(2, 4, 20)]
    r = np.column_stack([rng.integers(0, s, 50) for s in sizes])
    s = np.column_stack([rng.integers(0, s, 30) for s in sizes])
    for k in (1, 2, 3):
        errs, sampled = workload_errors(r, s, sizes, k)
        stat = dp_fidelity.workload_statistic(r, s, sizes, k)
        assert (stat.n_marginals, stat.sampled) == (len(errs), sampled)
        assert stat.value / len(r) == pytest.approx(errs.mean(), rel=1e-12)
        assert abs(stat.quantised() - dp_fidelity.FIDELITY_SCALE * stat.value) <= 0.5
    assert sampled  # the 3-way workload was sampled
    assert dp_fidelity.workload_statistic(r[:, :2], s[:, :2], sizes[:2], 3) is None


@pytest.mark.parametrize("seed", SEEDS)
def test_replay_split_moves_only_the_added_row(seed):
    """The (row, side) multiset of D' is that of D plus (x, side of x): every other row keeps its side;
    the row order does not matter."""
    rng = np.random.default_rng(seed)
    d = small_table(rng, int(rng.integers(2, 60)))

    def sides(table: pd.DataFrame) -> Counter:
        frame = dp_replay.value_frame(table, SMALL, SMALL.names)
        side = dp_replay.baseline_sides(frame, seed=seed)
        return Counter(zip(frame.itertuples(index=False, name=None), side.tolist(), strict=True))

    base = sides(d)
    assert sides(d.sample(frac=1.0, random_state=seed).reset_index(drop=True)) == base
    added, removed = neighbours(rng, d)
    for bigger, smaller in ((sides(added), base), (base, sides(removed))):
        diff = bigger - smaller
        assert sum(diff.values()) == 1 and not (smaller - bigger)


def test_replay_split_share():
    """About HOLDOUT_SHARE of distinct rows go to the baseline (a sanity check of the hash, not a
    privacy property): 20,000 rows, 4.5 binomial standard deviations (false failure < 1e-5)."""
    rng = np.random.default_rng(0)
    n = 20_000
    table = pd.DataFrame({"color": rng.choice(["red", "green"], n), "city": rng.choice(["a", "b"], n),
                          "age": rng.integers(0, 10, n).astype(str), "score": np.round(rng.random(n), 6).astype(str),
                          "label": rng.choice(["no", "yes"], n)})
    share = dp_replay.baseline_sides(dp_replay.value_frame(table, SMALL, SMALL.names), seed=5).mean()
    assert abs(share - dp_replay.HOLDOUT_SHARE) <= 4.5 * math.sqrt(0.2 * 0.8 / n)


def test_replay_counts_sensitivity():
    """(a, d_H) moves by at most 1 in L2 (one of them, by at most 1) and b by at most 1, for both
    checks; d_S does not move (the synthetic sample is fixed). Not vacuous: over the seeds every
    count does move (the small tables produce matches, unique combinations and baseline keys)."""
    assert_replay_sensitivity(lambda d, sample, seed: dp_replay.replay_counts(d, sample, SMALL, dp_replay.CHECKS,
                                                                              seed=seed), SEEDS)


def assert_replay_sensitivity(counts_of: Any, seeds: Sequence[int]) -> None:
    """Over seeded small tables and their neighbours, ``counts_of(d, sample, seed)`` (the replay counts of
    every check) moves within the declared sensitivities, and every count moves somewhere."""
    moves: Counter = Counter()
    for seed in seeds:
        rng = np.random.default_rng(seed)
        d = small_table(rng, int(rng.integers(2, 60)))
        sample = small_table(rng, int(rng.integers(1, 30)))
        base = counts_of(d, sample, seed)
        for other in neighbours(rng, d):
            moved = counts_of(other, sample, seed)
            for check in dp_replay.CHECKS:
                x, y = base[check], moved[check]
                assert x.d_s == y.d_s
                assert np.linalg.norm(x.reference_vector() - y.reference_vector()) <= 1.0, (seed, check)
                assert np.abs(x.baseline_vector() - y.baseline_vector()).sum() <= 1, (seed, check)
                for name in ("a", "b", "d_h"):
                    moves[(check, name)] += getattr(x, name) != getattr(y, name)
    assert all(moves[(c, f)] > 0 for c in dp_replay.CHECKS for f in ("a", "b", "d_h")), moves


@pytest.mark.parametrize("seed", range(4))
def test_utility_counts_sensitivity(seed):
    """The 2×B histogram moves by exactly one row in one cell (L1 = L2² = 1); the multi-class count of
    correct predictions by at most 1. The model is trained on the synthetic table only."""
    rng = np.random.default_rng(seed)
    synthetic = small_table(rng, 150)
    d = small_table(rng, int(rng.integers(2, 60)))
    s_codes = encode(synthetic, SMALL)
    binary = dp_utility.fit_synthetic_model(synthetic, s_codes, SMALL, "label")
    multi = dp_utility.fit_synthetic_model(synthetic, s_codes, SMALL, "color")
    h = dp_utility.score_histogram(binary, d, encode(d, SMALL), 20)
    c = dp_utility.correct_count(multi, d, encode(d, SMALL))
    for other in neighbours(rng, d):
        codes = encode(other, SMALL)
        assert np.abs(dp_utility.score_histogram(binary, other, codes, 20) - h).sum() == 1
        assert np.abs(dp_utility.correct_count(multi, other, codes) - c).sum() <= 1


def test_auc_and_accuracy_from_an_exact_histogram_are_the_binned_scores():
    """Post-processing without noise: the histogram's AUC is sklearn's AUC of the binned scores (ties
    ½), its accuracy that of the ½ threshold."""
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500)
    scores = np.clip(0.3 * y + 0.7 * rng.random(500), 0.0, 1.0)
    bins = dp_utility.score_bins(scores, 20)
    h = np.bincount(y * 20 + bins, minlength=40)
    assert dp_utility.auc_from_histogram(h, 20) == pytest.approx(roc_auc_score(y, bins))
    assert dp_utility.accuracy_from_histogram(h, 20) == pytest.approx(np.mean((scores >= 0.5) == y))


# --------------------------------------------------------------------------- (b) accounting and validation


def test_plan_events_add_up_and_the_odometer_accepts_the_run():
    plan = plan_dp_checks(rho=5e-4, fidelity=("l1_1way", "l1_2way", "l1_3way", "mean_tvd"),
                          replay=("exact_rows", "quasi_identifiers"), utility=True, schema=SMALL, target="label")
    events = plan.events()
    assert total_rho(events) <= plan.rho
    assert total_rho(events) == pytest.approx(plan.rho, rel=1e-6)
    assert events == plan_dp_checks(rho=5e-4, fidelity=("mean_tvd", "l1_3way", "l1_2way", "l1_1way"),
                                    replay=("quasi_identifiers", "exact_rows"), utility=True).events()
    assert [e.label for e in events] == [
        "dp_checks.rows", "dp_checks.fidelity.1way", "dp_checks.fidelity.2way", "dp_checks.fidelity.3way",
        "dp_checks.replay.exact_rows.reference", "dp_checks.replay.exact_rows.baseline",
        "dp_checks.replay.quasi_identifiers.reference", "dp_checks.replay.quasi_identifiers.baseline",
        "dp_checks.utility"]
    rng = np.random.default_rng(1)
    real, synthetic = small_table(rng, 80), small_table(rng, 60)
    for reserved in (ZCDP(plan.rho), ZCDP(total_rho(events))):
        odometer = Odometer(reserved)
        result = run_dp_checks(plan, real, synthetic, SMALL, target="label", noise=seeded(0), odometer=odometer)
        assert odometer.events == events
        assert odometer.spent.rho <= reserved.rho
        out = result.to_dict()
        assert json.loads(json.dumps(out, allow_nan=False)) == out
        assert out["rho"] == pytest.approx(total_rho(events))
        assert {m["label"] for m in out["measurements"]} == {e.label for e in events}
        assert all({"l2_sensitivity", "noise_scale", "rho"} <= set(m) for m in out["measurements"])
        assert set(result.fidelity) == {"l1_1way", "l1_2way", "l1_3way", "mean_tvd"}
        assert set(result.replay) == {"exact_rows", "quasi_identifiers"}
        assert result.utility["metric"] == "roc_auc"
    with pytest.raises(PrivacyAccountingError):
        run_dp_checks(plan, real, synthetic, SMALL, target="label", noise=seeded(0),
                      odometer=Odometer(ZCDP(plan.rho / 2)))


def test_budget_split_by_weights():
    plan = plan_dp_checks(rho=1.0, fidelity=("l1_2way",), replay=("exact_rows",), rows_weight=1.0,
                          fidelity_weight=2.0, replay_weight=1.0)
    rho = {m.name: m.mechanism.rho for m in plan.measurements()}
    assert rho["rows"] == pytest.approx(0.25) and rho["fidelity.2way"] == pytest.approx(0.5)
    assert rho["replay.exact_rows.reference"] == pytest.approx(0.125)
    assert rho["replay.exact_rows.baseline"] == pytest.approx(0.125)
    sens = {m.name: m.mechanism.l2_sensitivity for m in plan.measurements()}
    assert sens == {"rows": 1, "fidelity.2way": 2 * dp_fidelity.FIDELITY_SCALE, "replay.exact_rows.reference": 1,
                    "replay.exact_rows.baseline": 1}


@pytest.mark.parametrize("kwargs", [
    {"rho": 0}, {"rho": float("inf")}, {"rho": 1, "fidelity": ("l1_4way",)}, {"rho": 1, "fidelity": "l1_1way"},
    {"rho": 1, "replay": ("near",)}, {"rho": 1, "replay": ("exact_rows", "exact_rows")}, {"rho": 1, "utility": 1},
    {"rho": 1, "utility_bins": 7}, {"rho": 1, "rows_weight": -1}, {"rho": 1, "measure_rows": False},
    {"rho": 1, "utility": True, "schema": SMALL, "target": "age"},
    {"rho": 1, "utility": True, "schema": SMALL, "target": None},
    {"rho": 1, "utility": True, "schema": SMALL, "target": "nope"},
])
def test_plan_refuses_bad_input(kwargs):
    with pytest.raises(ParameterError):
        plan_dp_checks(**kwargs)


def test_a_plan_built_directly_is_validated_too():
    assert DPChecksPlan(rho=1, fidelity=["l1_2way", "l1_1way"]).fidelity == ("l1_1way", "l1_2way")
    for bad in ({"rho": -1}, {"rho": 1, "replay": ("near_copies",)}, {"rho": 1, "utility_weight": 0.0},
                {"rho": 1, "fidelity_scale": 0}):
        with pytest.raises(ParameterError):
            DPChecksPlan(**bad)


def test_plan_refuses_quasi_identifiers_without_them():
    schema = Schema.from_dict({"version": 1, "columns": [{"name": "x", "kind": "categorical", "levels": ["a"]}]})
    with pytest.raises(ParameterError, match="quasi_identifier"):
        plan_dp_checks(rho=1, replay=("quasi_identifiers",), schema=schema)


@pytest.mark.parametrize("problem", ["numeric target", "no target", "bad alpha", "empty synthetic", "bad data",
                                     "no rows estimate"])
def test_run_refuses_bad_input_before_spending(problem):
    rng = np.random.default_rng(0)
    real, synthetic = small_table(rng, 30), small_table(rng, 30)
    plan = plan_dp_checks(rho=1.0, fidelity=("l1_1way",), utility=True,
                          measure_rows=problem != "no rows estimate")
    kwargs = {"target": "label", "alpha": 0.01}
    if problem == "numeric target":
        kwargs["target"] = "age"
    elif problem == "no target":
        kwargs["target"] = None
    elif problem == "bad alpha":
        kwargs["alpha"] = 1.5
    elif problem == "empty synthetic":
        synthetic = synthetic.iloc[:0]
    elif problem == "bad data":
        real = real.assign(label="maybe")
    odometer = Odometer(ZCDP(1.0))
    with pytest.raises(DataError if problem == "bad data" else ParameterError):
        run_dp_checks(plan, real, synthetic, SMALL, noise=seeded(0), odometer=odometer, **kwargs)
    assert odometer.events == []


def test_rows_estimate_replaces_the_row_measurement():
    rng = np.random.default_rng(0)
    plan = plan_dp_checks(rho=1.0, fidelity=("l1_1way",), measure_rows=False)
    assert [m.name for m in plan.measurements()] == ["fidelity.1way"]
    odometer = Odometer(ZCDP(1.0))
    result = run_dp_checks(plan, small_table(rng, 30), small_table(rng, 30), SMALL, target=None, noise=seeded(0),
                           odometer=odometer, rows_estimate=31.0)
    assert result.rows == 31.0 and result.rows_source == "given" and len(odometer.events) == 1
    with pytest.raises(ParameterError, match="rows_estimate"):
        run_dp_checks(plan_dp_checks(rho=1.0, fidelity=("l1_1way",)), small_table(rng, 30), small_table(rng, 30),
                      SMALL, target=None, noise=seeded(0), odometer=Odometer(ZCDP(1.0)), rows_estimate=31.0)


# --------------------------------------------------------------------------- (c)-(e) accuracy on Adult


@pytest.fixture(scope="module")
def adult():
    """See :func:`adult_tables`."""
    return adult_tables()


def adult_tables() -> tuple[Schema, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """D: the first 5,000 Adult rows. S_indep: the next 5,000 (an independent sample of the same
    population, standing in for a good generator). S_columns: S_indep with every column permuted
    independently (an independent-columns synthetic table)."""
    schema = load_schema(adult_schema_path())
    df = pd.read_csv(adult_path(), dtype=str, keep_default_na=False, nrows=2 * ADULT_ROWS)
    real = df.iloc[:ADULT_ROWS].reset_index(drop=True)
    indep = df.iloc[ADULT_ROWS:].reset_index(drop=True)
    rng = np.random.default_rng(0)
    columns = pd.DataFrame({c: indep[c].to_numpy()[rng.permutation(len(indep))] for c in indep.columns})
    return schema, real, indep, columns


def _fidelity_tolerances(plan: DPChecksPlan, n: int, exact: dict[str, float]) -> tuple[dict[str, float], float]:
    """|l̂_k − l_k| ≤ ((½ + t_g)/SCALE + l_k·t_n) / (n − t_n) when |Z_n| < t_n and |Z_g| < t_g (l̂ =
    ĝ/(SCALE·n̂), ĝ = SCALE·f + q + Z_g with |q| ≤ ½; clipping to [0, 2] only shrinks the error);
    mean_tvd is half of l1_1way. Returns the tolerances and the union-bound failure probability."""
    sc = scales(plan)
    keys = [f"fidelity.{k}way" for k in (1, 2, 3)]
    per = FAILURE / (1 + len(keys))
    t_n = bound(sc["rows"], per)
    tol, prob = {}, 2 * discrete_gaussian_tail(sc["rows"], t_n)
    for k, key in zip((1, 2, 3), keys, strict=True):
        t_g = bound(sc[key], per)
        prob += 2 * discrete_gaussian_tail(sc[key], t_g)
        tol[f"l1_{k}way"] = ((0.5 + t_g) / plan.fidelity_scale + exact[f"l1_{k}way"] * t_n) / (n - t_n)
    tol["mean_tvd"] = 0.5 * tol["l1_1way"]
    return tol, prob


@pytest.mark.parametrize("rho", [5e-4, 5.0])
def test_dp_fidelity_is_close_to_the_exact_fidelity(adult, rho):
    """The DP l1_1way/2way/3way and mean_tvd against dpsynth.quality.fidelity on 5,000 Adult rows and
    an independent-columns synthetic table. Tolerance from the noise scales (see
    _fidelity_tolerances): at ρ = 5e-4 about 0.11–0.14 (noise sd ≈ 0.025 of L1), at ρ = 5 about
    0.001. False failure ≤ 1e-4 (asserted)."""
    schema, real, _, synthetic = adult
    ex = fidelity(real, synthetic, schema)
    exact = {k: ex[k] for k in ("l1_1way", "l1_2way", "l1_3way")}
    exact["mean_tvd"] = float(np.mean(list(ex["tvd"].values())))
    assert exact["mean_tvd"] == pytest.approx(0.5 * exact["l1_1way"], rel=1e-12)  # derived for free
    plan = plan_dp_checks(rho=rho, fidelity=("l1_1way", "l1_2way", "l1_3way", "mean_tvd"))
    tol, prob = _fidelity_tolerances(plan, len(real), exact)
    assert prob <= FAILURE
    result = run_dp_checks(plan, real, synthetic, schema, target=None, noise=seeded(11),
                           odometer=Odometer(ZCDP(rho)))
    for key, value in exact.items():
        assert abs(result.fidelity[key] - value) <= tol[key], (key, result.fidelity[key], value, tol[key])
    if rho >= 1:
        assert max(tol.values()) < 2e-3


def test_dp_replay_flags_a_copy_and_not_an_independent_sample(adult):
    """exact_rows at ρ = 5e-4 on 5,000 Adult rows.

    Copy (S = D), at the default alpha = 0.01: given the row count (hence the synthetic sample), the
    test first checks that the flag is guaranteed whenever Z_a > −t, Z_b < t and Z_dH > −t (r_S, r_H
    and the margin at their worst in that box; p̄(1 − p̄) ≤ ¼), then that it is flagged: false failure
    ≤ 3·P[Z ≥ t].
    Independent sample, at alpha = 1e-5: a flag needs r_S − r_H > margin ≥ z·σ_A/d_S with r_H ≥ 0,
    i.e. Z_a > z·σ_A − a₀, a₀ being at most the number of distinct S keys found anywhere in D
    (computed exactly): false failure ≤ P[Z ≥ ⌊z·σ_A − a₀⌋ + 1] (≈ alpha).
    Both together asserted ≤ 1e-4."""
    from statistics import NormalDist

    schema, real, indep, _ = adult
    plan = plan_dp_checks(rho=5e-4, replay=("exact_rows",))
    sc = scales(plan)
    sigma_a, sigma_b = sc["replay.exact_rows.reference"], sc["replay.exact_rows.baseline"]
    sigma = max(sigma_a, sigma_b)
    t = max(1, math.ceil(sigma * math.sqrt(2.0 * math.log(3.0 / (0.5 * FAILURE)))))
    p_copy = 3 * discrete_gaussian_tail(sigma, t)

    z = NormalDist().inv_cdf(1 - 0.01)
    copy = run_dp_checks(plan, real, real, schema, target=None, noise=seeded(1), odometer=Odometer(ZCDP(5e-4)),
                         alpha=0.01)
    rep = copy.replay["exact_rows"]
    sample = real.iloc[dp_replay.synthetic_sample(len(real), rep["synthetic_sample_rows"], copy.seed)]
    c = dp_replay.replay_counts(real, sample.reset_index(drop=True), schema, ("exact_rows",), seed=copy.seed)[
        "exact_rows"]
    d_h_lo = max(c.d_h - t, 1)
    r_s_lo = max((c.a - t) / c.d_s, 0.0)
    r_h_hi = min(max(c.b + t, 0) / d_h_lo, 1.0)
    margin_hi = z * math.sqrt(0.25 * (1 / c.d_s + 1 / d_h_lo) + sigma_a**2 / c.d_s**2 + sigma_b**2 / d_h_lo**2
                              + r_h_hi**2 * sigma_a**2 / d_h_lo**2)
    assert r_s_lo - r_h_hi > margin_hi  # the flag is guaranteed inside the box
    assert rep["flagged"] and rep["synthetic_rate"] > 0.5

    alpha = 1e-5
    z = NormalDist().inv_cdf(1 - alpha)
    keys_d = dp_replay.row_keys(dp_replay.value_frame(real, schema, schema.names))
    keys_s = np.unique(dp_replay.row_keys(dp_replay.value_frame(indep, schema, schema.names)))
    a0 = int(np.isin(keys_s, keys_d).sum())
    p_independent = discrete_gaussian_tail(sigma_a, math.floor(z * sigma_a - a0) + 1)
    assert p_copy + p_independent <= FAILURE
    other = run_dp_checks(plan, real, indep, schema, target=None, noise=seeded(2), odometer=Odometer(ZCDP(5e-4)),
                          alpha=alpha)
    assert not other.replay["exact_rows"]["flagged"]


def _auc_error_bound(hist: np.ndarray, bins: int, t: int) -> float:
    """|AUC(h + noise) − AUC(h)| when every cell's noise is below t in absolute value.

    With P, N the positive and negative rows, A[b, b'] = 1 (b' < b), ½ (b' = b), U = Pᵀ A N and
    AUC = U / (ΣP·ΣN), the noisy numerator minus AUC times the noisy denominator is exactly
    eᵀ(AN − AUC·ΣN·1) + (AᵀP − AUC·ΣP·1)ᵀf + eᵀ(A − AUC·11ᵀ)f for noises e (positives), f
    (negatives); bound each term by t·‖·‖₁ (t² for the last) and the denominator from below."""
    h = np.asarray(hist, dtype=float).reshape(2, bins)
    neg, pos = h[0], h[1]
    a = np.tril(np.ones((bins, bins)), -1) + 0.5 * np.eye(bins)
    auc = float(pos @ a @ neg) / (pos.sum() * neg.sum())
    w_e = a @ neg - auc * neg.sum()
    w_f = a.T @ pos - auc * pos.sum()
    m = a - auc
    numerator = t * np.abs(w_e).sum() + t * np.abs(w_f).sum() + t * t * np.abs(m).sum()
    denominator = (pos.sum() - bins * t) * (neg.sum() - bins * t)
    assert denominator > 0
    return numerator / denominator


def test_dp_utility_auc_is_close_to_the_exact_auc(adult):
    """The DP train-synthetic-test-real ROC-AUC (target income) against sklearn's roc_auc_score of the
    same classifier on the same 5,000 real rows (S = the independent Adult sample; AUC ≈ 0.91).

    At ρ = 5 the noise bound of _auc_error_bound (all 40 cells below t; false failure ≤ 40·P[|Z| ≥ t]
    ≤ 1e-4, asserted) plus the exact binning error (20 bins: about 0.01) is the tolerance. At
    ρ = 5e-4 (σ ≈ 37 per cell) the same rigorous bound is vacuous; that case is only required to
    give an AUC (its measured error is in the module's report, about 0.02–0.04)."""
    from sklearn.metrics import roc_auc_score

    schema, real, indep, _ = adult
    plan = plan_dp_checks(rho=5.0, utility=True, schema=schema, target="income")
    bins = plan.utility_bins
    r_codes, s_codes = encode(real, schema), encode(indep, schema)
    model = dp_utility.fit_synthetic_model(indep, s_codes, schema, "income")
    y = r_codes[:, schema.names.index("income")]
    exact_auc = roc_auc_score(y, model.proba(real, r_codes)[:, 1])
    hist = dp_utility.score_histogram(model, real, r_codes, bins)
    binning = abs(dp_utility.auc_from_histogram(hist, bins) - exact_auc)
    assert binning < 0.02
    sigma = scales(plan)["utility"]
    t = bound(sigma, FAILURE / (2 * bins))
    tol = binning + _auc_error_bound(hist, bins, t)
    assert tol < 0.02
    result = run_dp_checks(plan, real, indep, schema, target="income", noise=seeded(3), odometer=Odometer(ZCDP(5.0)))
    assert result.utility["metric"] == "roc_auc"
    assert abs(result.utility["train_synthetic"]["roc_auc"] - exact_auc) <= tol

    small = plan_dp_checks(rho=5e-4, utility=True, schema=schema, target="income")
    low = run_dp_checks(small, real, indep, schema, target="income", noise=seeded(4), odometer=Odometer(ZCDP(5e-4)))
    assert 0.0 <= low.utility["train_synthetic"]["roc_auc"] <= 1.0


def test_dp_multiclass_accuracy_is_close_to_the_exact_accuracy():
    """Multi-class target: accuracy = noisy #correct / n̂. |â − acc| ≤ (t_c + acc·t_n)/(n − t_n) when
    |Z_c| < t_c and |Z_n| < t_n; false failure ≤ 1e-4 (asserted). Small table, ρ = 1."""
    rng = np.random.default_rng(5)
    real, synthetic = small_table(rng, 400), small_table(rng, 300)
    plan = plan_dp_checks(rho=1.0, utility=True, schema=SMALL, target="color")
    sc = scales(plan)
    t_n, t_c = bound(sc["rows"], FAILURE / 2), bound(sc["utility"], FAILURE / 2)
    model = dp_utility.fit_synthetic_model(synthetic, encode(synthetic, SMALL), SMALL, "color")
    acc = dp_utility.correct_count(model, real, encode(real, SMALL))[0] / len(real)
    result = run_dp_checks(plan, real, synthetic, SMALL, target="color", noise=seeded(6), odometer=Odometer(ZCDP(1.0)))
    assert result.utility["metric"] == "accuracy"
    assert abs(result.utility["train_synthetic"]["accuracy"] - acc) <= (t_c + acc * t_n) / (len(real) - t_n)
