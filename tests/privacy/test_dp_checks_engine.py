"""The release gate's DP checks on a real table held by DuckDB or Spark (dpsynth.release.dp_checks with
an engine source): the same statistics, computed in the engine.

* Rows, fidelity and utility are exact aggregates in every engine, so with the same seeded noise the
  engine's noisy measurements equal the in-memory ones bit for bit (deterministic).
* Replay splits the real rows by the engine's hash, so its counts differ from the in-memory ones; what
  must hold is the sensitivity its measurements declare (deterministic, over seeded neighbours) and
  the split's rule (only the added row's side is new), and that a copy is flagged and an independent
  sample is not (the tolerance argument of tests/privacy/test_dp_checks.py, union bound ≤ 1e-4).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from test_dp_checks import SEEDS, SMALL, adult_tables, assert_replay_sensitivity, scales, seeded, small_table

from dpsynth.marginals.duckdb_backend import DuckDBSource
from dpsynth.marginals.engines import register_frame
from dpsynth.marginals.spark_backend import SparkSource
from dpsynth.pii import dp_replay
from dpsynth.pii.engine_dp_replay import engine_replay_counts
from dpsynth.privacy import ZCDP, Odometer
from dpsynth.privacy.accounting import discrete_gaussian_tail
from dpsynth.quality.fidelity import MAX_MARGINALS, SAMPLE_SEED, _marginal_sets
from dpsynth.release.dp_checks import plan_dp_checks, run_dp_checks

FAILURE = 1e-4


@pytest.fixture(scope="module")
def adult(tmp_path_factory):
    """5,000 Adult rows as a CSV and a Parquet file, and an independent-columns synthetic table."""
    schema, real, indep, columns = adult_tables()
    folder = tmp_path_factory.mktemp("adult")
    real.to_csv(folder / "real.csv", index=False)
    typed = real.copy()
    for col in schema.columns:
        if col.kind != "categorical":
            typed[col.name] = pd.to_numeric(typed[col.name])
    typed.to_parquet(folder / "real.parquet", index=False)
    return schema, real, indep, columns, folder


PLAN = {"rho": 0.05, "fidelity": ("l1_1way", "l1_2way", "l1_3way", "mean_tvd"), "utility": True}


def _same_as_in_memory(source, schema, real, synthetic) -> None:
    plan = plan_dp_checks(**PLAN, schema=schema, target="income")
    mem = run_dp_checks(plan, real, synthetic, schema, target="income", noise=seeded(3), odometer=Odometer(ZCDP(1)))
    eng = run_dp_checks(plan, source, synthetic, schema, target="income", noise=seeded(3),
                        odometer=Odometer(ZCDP(1)))
    assert eng.rows == mem.rows
    assert eng.fidelity == mem.fidelity and eng.fidelity_details == mem.fidelity_details
    assert eng.utility == mem.utility and eng.utility["train_synthetic"]["roc_auc"] is not None
    assert eng.measurements == mem.measurements


@pytest.mark.parametrize("name", ["real.csv", "real.parquet"])
def test_duckdb_gives_the_in_memory_measurements(adult, name):
    schema, real, _, synthetic, folder = adult
    source = DuckDBSource(folder / name)
    try:
        source.validate(schema)
        _same_as_in_memory(source, schema, real, synthetic)
    finally:
        source.close()


def test_spark_gives_the_in_memory_measurements_and_collects_no_row(adult, spark):
    schema, real, _, synthetic, folder = adult
    source = SparkSource(str(folder / "real.parquet"), session=spark)
    try:
        source.validate(schema)
        _same_as_in_memory(source, schema, real, synthetic)
        # aggregates only reached the driver: per fetch at most the public domain's cells of the k-way marginals
        # asked at once (one GROUPING SETS query per k), or one vector per task; never a row
        d = len(schema)
        cells = max(sum(math.prod(schema.sizes[j] for j in cols) for cols in _marginal_sets(d, k, MAX_MARGINALS,
                                                                                            SAMPLE_SEED)[0])
                    for k in (1, 2, 3))
        assert 0 < max(source.fetched_rows) <= cells
    finally:
        source.close()


def _engine_counts(table: pd.DataFrame, sample: pd.DataFrame, seed: int, folder) -> dict:
    path = folder / "d.csv"
    table.to_csv(path, index=False)
    source = DuckDBSource(path)
    try:
        beside = register_frame(source, sample, "?")
        counts = engine_replay_counts(source, beside, SMALL, dp_replay.CHECKS, seed=seed)
        beside.close()
    finally:
        source.close()
    return counts


def test_engine_replay_counts_sensitivity(tmp_path):
    """As tests/privacy/test_dp_checks.py::test_replay_counts_sensitivity, for the counts DuckDB computes:
    (a, d_H) moves by at most 1 in L2, b by at most 1, d_S not at all; every count does move somewhere."""
    assert_replay_sensitivity(lambda d, sample, seed: _engine_counts(d, sample, seed, tmp_path), SEEDS[:15])


def test_engine_replay_counts_agree_with_memory_without_a_baseline_effect(tmp_path):
    """d_S is the same count in both (it reads no split); a + (matches lost to the split) is bounded: with S
    a sample of D, every distinct key of S is in D, so a ≥ d_S − (keys all of whose copies went to H)."""
    rng = np.random.default_rng(7)
    d = small_table(rng, 400)
    sample = d.iloc[:50].reset_index(drop=True)
    mem = dp_replay.replay_counts(d, sample, SMALL, dp_replay.CHECKS, seed=3)
    eng = _engine_counts(d, sample, 3, tmp_path)
    for check in dp_replay.CHECKS:
        assert eng[check].d_s == mem[check].d_s
    assert eng["exact_rows"].a >= eng["exact_rows"].d_s - eng["exact_rows"].d_h


RHO = 2e-3  # the engine's split leaves a copy's count a little lower than numpy's: ρ = 5e-4's box is too wide


def test_duckdb_replay_flags_a_copy_and_not_an_independent_sample(adult):
    """exact_rows at ρ = 2e-3 on the 5,000 Adult rows through DuckDB. A copy (S = D) at alpha = 0.01: the
    noise box of tests/privacy/test_dp_checks.py guarantees the flag once the counts are what they are
    (checked on the exact counts); an independent sample at alpha = 1e-5 is flagged with probability at
    most P[Z ≥ ⌊z·σ_A − a₀⌋ + 1]. Union bound asserted ≤ 1e-4."""
    from statistics import NormalDist

    schema, real, indep, _, folder = adult
    plan = plan_dp_checks(rho=RHO, replay=("exact_rows",))
    sc = scales(plan)
    sigma_a, sigma_b = sc["replay.exact_rows.reference"], sc["replay.exact_rows.baseline"]
    sigma = max(sigma_a, sigma_b)
    t = max(1, math.ceil(sigma * math.sqrt(2.0 * math.log(3.0 / (0.5 * FAILURE)))))
    p_copy = 3 * discrete_gaussian_tail(sigma, t)
    keys_d = dp_replay.row_keys(dp_replay.value_frame(real, schema, schema.names))
    keys_s = np.unique(dp_replay.row_keys(dp_replay.value_frame(indep, schema, schema.names)))
    a0 = int(np.isin(keys_s, keys_d).sum())
    alpha = 1e-5
    p_independent = discrete_gaussian_tail(sigma_a, math.floor(NormalDist().inv_cdf(1 - alpha) * sigma_a - a0) + 1)
    assert p_copy + p_independent <= FAILURE
    source = DuckDBSource(folder / "real.csv")
    try:
        source.validate(schema)
        copy = run_dp_checks(plan, source, real, schema, target=None, noise=seeded(1),
                             odometer=Odometer(ZCDP(RHO)), alpha=0.01)
        rep = copy.replay["exact_rows"]
        picked = real.iloc[dp_replay.synthetic_sample(len(real), rep["synthetic_sample_rows"], copy.seed)]
        beside = register_frame(source, picked.reset_index(drop=True), "?")
        c = engine_replay_counts(source, beside, schema, ("exact_rows",), seed=copy.seed)["exact_rows"]
        beside.close()
        z = NormalDist().inv_cdf(1 - 0.01)
        d_h_lo = max(c.d_h - t, 1)
        r_s_lo, r_h_hi = max((c.a - t) / c.d_s, 0.0), min(max(c.b + t, 0) / d_h_lo, 1.0)
        margin_hi = z * math.sqrt(0.25 * (1 / c.d_s + 1 / d_h_lo) + sigma_a**2 / c.d_s**2 + sigma_b**2 / d_h_lo**2
                                  + r_h_hi**2 * sigma_a**2 / d_h_lo**2)
        assert r_s_lo - r_h_hi > margin_hi  # the flag is guaranteed inside the noise box
        assert rep["flagged"] and rep["synthetic_rate"] > 0.5
        other = run_dp_checks(plan, source, indep, schema, target=None, noise=seeded(2),
                              odometer=Odometer(ZCDP(RHO)), alpha=alpha)
        assert not other.replay["exact_rows"]["flagged"]
    finally:
        source.close()
