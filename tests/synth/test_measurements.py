"""The noisy measurements MST and AIM publish (``measurements_``): what was measured, with which σ, on
which cells, and that two fits can be compared on them (dpsynth.quality.drift.measurement_drift)."""

from __future__ import annotations

import json

import numpy as np

from dpsynth import UNTRACKED
from dpsynth.quality.drift import measurement_drift
from dpsynth.synth import AIM, MST
from dpsynth.synth.measurements import Measurement


def test_mst_publishes_its_one_way_and_tree_measurements(small_schema, small_data):
    mst = MST(epsilon=2.0, delta=1e-6, estimation_iters=100, insecure_seed=3).fit(
        small_data, schema=small_schema, ledger=UNTRACKED)
    names, sizes = small_schema.names, small_schema.sizes
    ms = mst.measurements_
    assert [m.columns for m in ms] == [(n,) for n in names] + [tuple(e) for e in mst.edges_]
    scales = {e.label: e.scale for e in mst.privacy_events_ if hasattr(e, "scale")}
    assert {m.sigma for m in ms[: len(names)]} == {scales["one_way_marginal"]}
    assert {m.sigma for m in ms[len(names):]} == {scales["two_way_marginal"]}
    for m, size in zip(ms, sizes, strict=False):  # 1-way: on the original codes, a noisy total near n
        assert m.shape == (size,) and m.compression == (None,) and abs(m.total - len(small_data)) < 8 * m.sigma * size
    for m in ms[len(names):]:  # 2-way: on the compressed cells, with each column's compression
        for col, cells, groups in zip(m.columns, m.shape, m.compression, strict=True):
            assert cells == mst.compressed_sizes_[col]
            expected = mst.compression_.get(col)
            assert (groups is None) == (expected is None)
            assert groups is None or list(groups) == expected.tolist()
    assert [Measurement.from_dict(json.loads(json.dumps(m.to_dict()))) for m in ms] == ms


def test_aim_publishes_every_round_on_the_original_codes(small_schema, small_data):
    aim = AIM(epsilon=2.0, delta=1e-6, max_rounds=6, estimation_iters=50, insecure_seed=4).fit(
        small_data, schema=small_schema, ledger=UNTRACKED)
    ms = aim.measurements_
    names = small_schema.names
    assert [m.columns for m in ms[: len(names)]] == [(n,) for n in names]
    assert [list(m.columns) for m in ms[len(names):]] == [r["clique"] for r in aim.rounds_]
    assert [m.sigma for m in ms[len(names):]] == [r["sigma"] for r in aim.rounds_]
    size = dict(zip(names, small_schema.sizes, strict=True))
    assert all(m.shape == tuple(size[c] for c in m.columns) and set(m.compression) == {None} for m in ms)


def test_two_fits_on_one_table_do_not_drift_in_their_measurements(small_schema, small_data):
    """Same table, different noise (and maybe different compressions and trees): every shared marginal
    within its noise level (α = 1e-4 each)."""
    fits = [MST(epsilon=2.0, delta=1e-6, estimation_iters=100, insecure_seed=s).fit(
        small_data, schema=small_schema, ledger=UNTRACKED) for s in (5, 6)]
    drift = measurement_drift(fits[0].measurements_, fits[1].measurements_, sampling=False)
    assert set(small_schema.names) <= set(drift["measurements"])
    assert not any(e["above_noise"] for e in drift["measurements"].values())
    assert all(np.isfinite(e["tvd"]) for e in drift["measurements"].values())
