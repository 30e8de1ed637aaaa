"""Drift between two releases from DP artifacts only (dpsynth.quality.drift): the TVD of every marginal,
its noise floor, the noisy measurements' drift and the summary a gate reads.

The seeded tests that assert "below the noise floor" would fail for a fresh seed with the probability
stated beside each (the floors are tail bounds; the union bound over the statistics checked)."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pandas as pd
import pytest

from dpsynth.datasets import load_adult
from dpsynth.exceptions import ParameterError
from dpsynth.marginals import marginal_counts
from dpsynth.mechanisms import SeededNoise
from dpsynth.quality.drift import measurement_drift, noise_level, sampling_floor, summarise, table_drift
from dpsynth.schema import encode
from dpsynth.synth.measurements import Measurement


@pytest.fixture(scope="module")
def adult():
    return load_adult()


def _entries(drift):
    return [*drift["columns"].values(), *drift["pairs"].values()]


def test_identical_tables_do_not_drift(adult):
    table, schema = adult
    part = table.iloc[:3000]
    drift = table_drift(part, part.copy(), schema)
    assert drift["rows"] == [3000, 3000] and drift["pairs_left_out"] == 0
    assert len(drift["columns"]) == 15 and len(drift["pairs"]) == math.comb(15, 2)
    assert all(e["tvd"] == 0.0 and not e["above_noise"] and e["noise_floor"] > 0 for e in _entries(drift))
    summary = summarise(drift)
    assert summary["max_tvd"] == 0.0 and summary["n_above_noise"] == 0 and summary["statistic"] == "tvd"
    json.dumps(drift), json.dumps(summary)  # plain numbers only


def test_a_planted_shift_is_detected_above_the_noise_floor(adult):
    """Half the rows against the other half, with 15% of one half's ``<=50K`` moved to ``>50K``."""
    table, schema = adult
    before, after = table.iloc[::2], table.iloc[1::2].copy()
    flip = (after["income"] == "<=50K").to_numpy() & (np.arange(len(after)) % 7 == 0)
    after.loc[flip, "income"] = ">50K"
    drift = table_drift(before, after, schema)
    income = drift["columns"]["income"]
    assert income["tvd"] > 0.09 and income["above_noise"] and income["noise_floor"] < 0.05
    assert [n for n, e in drift["columns"].items() if e["above_noise"]] == ["income"]
    assert all("income" in e["columns"] for e in drift["pairs"].values() if e["above_noise"])
    summary = summarise(drift, over=("columns",))
    assert summary["where"] == "income" and summary["kind"] == "column" and summary["above_noise"]
    assert summary["max_excess_where"] == "income" and summary["max_excess"] > 0.04
    both = summarise(drift)
    assert both["max_tvd"] >= summary["max_tvd"] and both["compared"] == 15 + 105


def test_two_samples_of_one_distribution_stay_below_the_floor(adult):
    """Two iid samples (8,000 and 12,000 rows, drawn with replacement from Adult): no marginal above its
    floor at α = 1e-4 / 120 each, so a false failure has probability ≤ 1e-4 over the 120 marginals."""
    table, schema = adult
    rng = np.random.default_rng(2026)
    one = table.iloc[rng.integers(0, len(table), 8000)]
    two = table.iloc[rng.integers(0, len(table), 12000)]
    drift = table_drift(one, two, schema, alpha=1e-4 / 120)
    assert not any(e["above_noise"] for e in _entries(drift))
    assert drift["columns"]["income"]["noise_floor"] < 0.06  # a floor that still detects a real drift


def test_the_sampling_floor_holds_for_many_draws():
    """5,000 pairs of samples of a skewed 6-cell distribution: none above the floor at α = 1e-4 / 5,000
    (a false failure: probability ≤ 1e-4), and the floor within 10 times the largest TVD seen."""
    rng = np.random.default_rng(11)
    p = np.array([0.6, 0.2, 0.1, 0.05, 0.04, 0.01])
    n1, n2, draws = 500, 800, 5000
    a, b = rng.multinomial(n1, p, size=draws), rng.multinomial(n2, p, size=draws)
    tvds = 0.5 * np.abs(a / n1 - b / n2).sum(axis=1)
    floors = np.array([sampling_floor(x + y, n1, n2, 1e-4 / draws) for x, y in zip(a, b, strict=True)])
    assert (tvds < floors).all()
    assert floors.min() < 10 * tvds.max()


def test_the_sampling_floor_refuses_empty_samples_and_a_bad_alpha():
    with pytest.raises(ParameterError, match="non-empty"):
        sampling_floor(np.ones(3), 0, 5)
    with pytest.raises(ParameterError, match=r"alpha \(1\.5\) must be in \(0, 1\)"):
        sampling_floor(np.ones(3), 5, 5, 1.5)


def test_summarise_names_what_it_covers():
    with pytest.raises(ParameterError, match="columns, pairs"):
        summarise({"columns": {}, "pairs": {}}, over=("rows",))
    empty = summarise({"columns": {}, "pairs": {}})
    assert empty["max_tvd"] == 0.0 and empty["where"] is None and empty["compared"] == 0


# -- the noisy measurements ----------------------------------------------------------------------

SIGMA = 39.0  # about MST's 1-way σ at ε = 1 on Adult
MARGINALS = [("income",), ("age",), ("native-country",), ("age", "income"), ("education", "occupation")]


def _measure(codes, schema, noise, marginals=MARGINALS, sigma=SIGMA):
    names, sizes = schema.names, schema.sizes
    out = []
    for cols in marginals:
        idx = [names.index(c) for c in cols]
        y = noise.discrete_gaussian(marginal_counts(codes, idx, sizes), sigma)
        out.append(Measurement.of(cols, y, sigma, shape=[sizes[i] for i in idx]))
    return out


def test_two_noisy_measurements_of_the_same_counts_stay_below_the_noise_level(adult):
    """Same counts (Adult), independent discrete Gaussian noise (σ = 39): none of the 5 marginals above its
    noise level at α = 1e-4 / 5 (a false failure: probability ≤ 1e-4), for 4 seeds (≤ 4e-4 in all)."""
    table, schema = adult
    codes = encode(table, schema)
    for seed in range(4):
        first = _measure(codes, schema, SeededNoise(2 * seed, _warn=False))
        second = _measure(codes, schema, SeededNoise(2 * seed + 1, _warn=False))
        drift = measurement_drift(first, second, alpha=1e-4 / len(MARGINALS), sampling=False)
        assert set(drift["measurements"]) == {"income", "age", "native-country", "age × income",
                                              "education × occupation"}
        for entry in drift["measurements"].values():
            assert entry["tvd"] < entry["noise_level"] and not entry["above_noise"]
            assert entry["expected_noise"] < entry["noise_linear"] < entry["noise_level"]
        assert drift["unmatched"] == {"previous": [], "current": []}
    json.dumps(drift)


def test_a_planted_shift_shows_in_the_measurements(adult):
    table, schema = adult
    before, after = table.iloc[::2], table.iloc[1::2].copy()
    flip = (after["income"] == "<=50K").to_numpy() & (np.arange(len(after)) % 4 == 0)
    after.loc[flip, "income"] = ">50K"
    first = _measure(encode(before, schema), schema, SeededNoise(5, _warn=False))
    second = _measure(encode(after, schema), schema, SeededNoise(6, _warn=False))
    drift = measurement_drift(first, second)
    assert drift["sampling"] and drift["measurements"]["income"]["above_noise"]
    assert drift["measurements"]["income"]["tvd"] == pytest.approx(0.19, abs=0.02)
    assert not drift["measurements"]["age"]["above_noise"]
    summary = summarise({"columns": {}, "pairs": {}}, measurements=drift)["measurements"]
    assert summary["max_excess_where"] == "income" and summary["n_above_noise"] == 1


def test_the_noise_level_formula():
    """One cell a side, s = σ/N: expected ½√(2/π)·√2·s; the linear level adds ½√2·s·√(2 ln(1/α))."""
    s = np.array([0.01])
    expected, linear, level = noise_level(s, s, 1e-4)
    assert expected == pytest.approx(0.5 * math.sqrt(2 / math.pi) * math.sqrt(2) * 0.01)
    assert linear == pytest.approx(expected + 0.5 * math.sqrt(2) * 0.01 * math.sqrt(2 * math.log(1e4)))
    assert level > linear


def test_measurements_on_different_compressions_are_compared_on_their_common_cells():
    """MST's 2-way measurements are on compressed domains that differ between fits: compared on the
    coarsest cells both refine, every cell a sum of measured cells (its noise variance σ² × their number)."""
    counts = np.arange(8, dtype=float).reshape(4, 2) * 100  # 4 codes of "a" × 2 of "b"
    first = Measurement.of(("a", "b"), np.add.reduceat(counts, [0, 1, 2], axis=0), 10.0, shape=(3, 2),
                           compression=[np.array([0, 1, 2, 2]), None])  # codes 2 and 3 merged
    second = Measurement.of(("b", "a"), np.add.reduceat(counts, [0, 2, 3], axis=0).T, 20.0, shape=(2, 3),
                            compression=[None, np.array([0, 0, 1, 2])])  # codes 0 and 1 merged; axes swapped
    drift = measurement_drift([first], [second], sampling=False)
    entry = drift["measurements"]["a × b"]
    assert entry["cells"] == 4 and entry["tvd"] == pytest.approx(0.0) and entry["totals"] == [2800.0, 2800.0]


def test_a_measurement_round_trips_through_json_and_dicts_compare_too():
    m = Measurement.of(("a", "b"), np.array([3, -1, 4, 1, 5, 9]), 2.5, shape=(3, 2),
                       compression=[np.array([0, 1, 2, 2]), None])
    back = Measurement.from_dict(json.loads(json.dumps(m.to_dict())))
    assert back == m and back.total == 21.0
    same = measurement_drift([m.to_dict()], [back], sampling=False)["measurements"]["a × b"]
    assert same["tvd"] == 0.0
    with pytest.raises(ParameterError, match="needs 6 values"):
        Measurement.of(("a", "b"), np.arange(5), 1.0, shape=(3, 2))
    with pytest.raises(ParameterError, match="not a measurement"):
        Measurement.from_dict({"columns": ["a"]})


def test_every_pair_up_to_the_cap(adult):
    table, schema = adult
    drift = table_drift(table.iloc[:500], table.iloc[500:1000], schema, max_pairs=10)
    assert len(drift["pairs"]) == 10 and drift["pairs_left_out"] == 95
    first = list(itertools.combinations(schema.names, 2))[0]
    assert drift["pairs"][" × ".join(first)]["columns"] == list(first)
    assert isinstance(pd.DataFrame(_entries(drift)), pd.DataFrame)
