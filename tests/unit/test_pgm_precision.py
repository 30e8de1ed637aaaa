"""Precision of the graphical-model fit at totals of 10^8 and 10^9 rows.

JAX computes in float32 by default, and mirror descent in float32 stalls at ~3·10⁻⁵ of the total a
cell (at 10⁹ rows: 30,000 counts, against noise of tens), however long it runs. From
``_pgm.FLOAT64_TOTAL`` the fit runs in float64. Deterministic: noise-free measurements of a table
with every cell occupied (the optimum is the truth), or seeded noise; no false-failure probability.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

from dpsynth import UNTRACKED
from dpsynth.marginals import marginal_counts
from dpsynth.marginals.backend import CodesCounter
from dpsynth.schema import Schema
from dpsynth.schema.encode import encode
from dpsynth.synth import AIM, MST, _pgm
from dpsynth.synth._inference import Model

SIZES = [6, 8, 10, 4]
NAMES = ["a", "b", "c", "d"]


def chain_codes(n: int = 5000, seed: int = 0) -> np.ndarray:
    """A Markov chain a → b → c → d whose 1- and 2-way marginals (of the chain) have no empty cell."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, SIZES[0], n)
    b = np.where(rng.random(n) < 0.6, a, rng.integers(0, SIZES[1], n))
    c = np.where(rng.random(n) < 0.6, b, rng.integers(0, SIZES[2], n))
    d = np.where(rng.random(n) < 0.6, c % SIZES[3], rng.integers(0, SIZES[3], n))
    return np.stack([a, b, c, d], axis=1)


CLIQUES = [(0,), (1,), (2,), (3,), (0, 1), (1, 2), (2, 3)]


def exact_measurements(total: float) -> tuple[list, dict[tuple[int, ...], np.ndarray]]:
    """Noise-free measurements of the chain's marginals scaled to ``total`` rows (σ of MST at ε = 1)."""
    codes = chain_codes()
    k = total / len(codes)
    truth = {cl: k * marginal_counts(codes, list(cl), SIZES) for cl in CLIQUES}
    measurements = [_pgm.linear_measurement(truth[cl], tuple(NAMES[i] for i in cl), 20.0 if len(cl) == 1 else 35.0)
                    for cl in CLIQUES]
    assert all((t > 0).all() for t in truth.values())
    return measurements, truth


def max_error(fit: _pgm.ModelFit, truth: dict[tuple[int, ...], np.ndarray]) -> float:
    """The largest error of a cell of the model's cliques (the chain's pairs)."""
    assert set(fit.marginals) == {tuple(NAMES[i] for i in cl) for cl in CLIQUES if len(cl) == 2}
    return max(float(np.abs(fit.marginals[tuple(NAMES[i] for i in cl)].ravel() - truth[cl]).max())
               for cl in CLIQUES if len(cl) == 2)


@pytest.mark.parametrize("total", [1e8, 1e9])
def test_the_fit_converges_at_large_totals(total):
    """float64: the fit reaches the truth to 10⁻⁸ of the total a cell (3·10⁻⁹ observed; float32 stalls
    at ~2-3·10⁻⁵ whatever the iterations), and the model's marginals sum to its total."""
    measurements, truth = exact_measurements(total)
    fit = _pgm.estimate_model(_pgm.make_domain(NAMES, SIZES), measurements, iters=10_000, tol=None)
    assert fit.total == pytest.approx(total, rel=1e-12)
    assert all(abs(m.sum() / total - 1) < 1e-12 for m in fit.marginals.values())
    assert max_error(fit, truth) / total < 1e-8


def test_small_totals_stay_in_float32():
    """Below FLOAT64_TOTAL (the bundled Adult: 32,561 rows) the fit is the one before float64 existed."""
    assert not _pgm.float64_for(32_561) and _pgm.float64_for(_pgm.FLOAT64_TOTAL) and _pgm.float64_for(1e9)
    assert _pgm.FLOAT64_TOTAL == 2**17


class ScaledCounts:
    """A counter whose table holds every row of ``codes`` ``k`` times (a table of k·n rows)."""

    def __init__(self, codes: np.ndarray, schema: Schema, k: int):
        self.inner, self.schema, self.k = CodesCounter(codes, schema), schema, k

    def counts(self, cliques):
        return [self.k * c for c in self.inner.counts(cliques)]


class ScaledSource:
    """A TableSource of ``frame`` repeated ``k`` times, without holding the k·n rows."""

    engine = "fake"

    def __init__(self, frame: pd.DataFrame, k: int):
        self.frame, self.k = frame, k

    def validate(self, schema):
        encode(self.frame, schema)

    def below_counts(self, column, schema, grid):
        raise AssertionError("no DP bins here")

    def fingerprint(self, schema):
        return hashlib.sha256(encode(self.frame, schema).tobytes()).hexdigest()

    def counter(self, schema):
        return ScaledCounts(encode(self.frame, schema), schema, self.k)


def scaled(total: float) -> tuple[ScaledSource, Schema, np.ndarray, int]:
    codes = chain_codes()
    frame = pd.DataFrame({n: codes[:, i].astype(str) for i, n in enumerate(NAMES)})
    columns = [{"name": n, "kind": "categorical", "levels": [str(v) for v in range(s)]}
               for n, s in zip(NAMES, SIZES, strict=True)]
    schema = Schema.from_dict({"version": 1, "columns": columns})
    k = int(total) // len(codes)
    return ScaledSource(frame, k), schema, codes, k


@pytest.mark.parametrize("total", [1e8, 1e9])
def test_mst_on_a_billion_rows_keeps_its_total_and_marginals(total):
    source, schema, codes, k = scaled(total)
    rows = k * len(codes)
    mst = MST(epsilon=1.0, delta=1e-6, insecure_seed=1).fit(source, schema=schema, ledger=UNTRACKED, dataset="t")
    assert not mst.compression_  # every level is frequent: the marginals compare with the truth as they are
    assert abs(mst.total_estimate_ / rows - 1) < 1e-6  # the noise: σ·√cells / n ≈ 10⁻⁸
    for clique, marginal in mst.marginals_.items():
        truth = k * marginal_counts(codes, [NAMES.index(c) for c in clique], SIZES).reshape(marginal.shape)
        assert abs(marginal.sum() / mst.total_estimate_ - 1) < 1e-12
        assert np.abs(marginal - truth).max() / rows < 2e-6  # 3·10⁻⁷ (10⁸) and 4·10⁻⁸ (10⁹) observed


def test_aim_on_a_billion_rows_keeps_its_total():
    """AIM's cells are limited by its iterations (6·10⁻⁵ of the total at its defaults, float32: 2·10⁻⁴),
    not by the precision; its total and the model's sums are exact."""
    source, schema, codes, k = scaled(1e9)
    rows = k * len(codes)
    aim = AIM(epsilon=1.0, delta=1e-6, max_rounds=8, insecure_seed=1).fit(source, schema=schema,
                                                                          ledger=UNTRACKED, dataset="t")
    assert abs(aim.total_estimate_ / rows - 1) < 1e-6
    model = Model(aim.potentials_, dict(zip(NAMES, SIZES, strict=True)))
    for clique in aim.measured_:
        marginal = model.marginal(clique, aim.total_estimate_)
        truth = k * marginal_counts(codes, [NAMES.index(c) for c in clique], SIZES).reshape(marginal.shape)
        assert np.abs(marginal - truth).max() / rows < 1.5e-4
