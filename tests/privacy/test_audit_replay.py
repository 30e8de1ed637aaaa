"""Record/replay checks: the real MST and AIM pass; deliberately broken versions of them fail.

The mutants are the broken mechanisms of DESIGN.md rule 7 (noise removed, sensitivity halved,
domain learned from the data), plus noise drawn below its declared scale and a statistic of the
data kept outside the mechanisms. Deterministic (seeded noise), no statistical failure probability.
"""

from __future__ import annotations

import numpy as np
import pytest

from dpsynth.audit.replay import neighbouring_pairs, replay_check
from dpsynth.audit.transcript import record_fit
from dpsynth.mechanisms import GaussianCounts, SeededNoise
from dpsynth.schema import Schema
from dpsynth.synth import AIM, MST

SCHEMA = Schema.from_domain({"a": 2, "b": 3, "c": 2})


def make_mst():
    return MST(epsilon=1.0, delta=1e-2, estimation_iters=100)


def make_aim():
    return AIM(epsilon=1.0, delta=1e-2, max_rounds=6, estimation_iters=50)


FACTORIES = {"mst": make_mst, "aim": make_aim}
ONE_PAIR = {"constant_plus_outlier": neighbouring_pairs(SCHEMA)["constant_plus_outlier"]}


def failed_checks(report):
    return {f.check for findings in report.pairs.values() for f in findings if not f.passed}


@pytest.mark.parametrize("name", ["mst", "aim"])
def test_real_synthesizers_pass(name):
    report = replay_check(FACTORIES[name], SCHEMA)
    assert report.passed, report.failures()
    assert set(report.pairs) == {"constant_plus_outlier", "outlier_removed", "random_plus_row"}
    d = report.to_dict()
    assert d["violation"] is False and "NOT differentially private" in d["notice"]


def test_transcript_pairs_every_draw_with_its_event():
    t = record_fit(make_mst(), *ONE_PAIR["constant_plus_outlier"][:1], SCHEMA, noise=SeededNoise(1, _warn=False))
    assert t.complete and not t.unpaired_events and not t.unaccounted_calls
    assert [c.kind for c in t.calls] == ["gaussian"] * 3 + ["selection"] * 2 + ["gaussian"] * 2
    assert all(c.event is not None and c.scale == pytest.approx(c.declared_scale) for c in t.calls)


@pytest.mark.parametrize("name", ["mst", "aim"])
def test_noise_removed_fails(name, monkeypatch):
    def no_noise(self, counts, *, noise, odometer):
        odometer.spend(self.event)
        return np.asarray(counts, dtype=np.int64)

    monkeypatch.setattr(GaussianCounts, "__call__", no_noise)
    report = replay_check(FACTORIES[name], SCHEMA, pairs=ONE_PAIR)
    assert not report.passed
    assert "noise_drawn" in failed_checks(report)


@pytest.mark.parametrize("name", ["mst", "aim"])
def test_noise_below_the_declared_scale_fails(name, monkeypatch):
    def half_sigma(self, counts, *, noise, odometer):
        odometer.spend(self.event)
        return noise.discrete_gaussian(counts, self.scale / 2)

    monkeypatch.setattr(GaussianCounts, "__call__", half_sigma)
    report = replay_check(FACTORIES[name], SCHEMA, pairs=ONE_PAIR)
    assert "declared_scale" in failed_checks(report)


@pytest.mark.parametrize("name", ["mst", "aim"])
def test_sensitivity_halved_fails(name, monkeypatch):
    """Counts doubled: the declared sensitivity 1 is half the real one."""
    import dpsynth.synth.aim as aim_module
    import dpsynth.synth.mst as mst_module

    module = mst_module if name == "mst" else aim_module
    original = module.marginal_counts
    monkeypatch.setattr(module, "marginal_counts", lambda codes, cols, sizes: 2 * original(codes, cols, sizes))
    report = replay_check(FACTORIES[name], SCHEMA, pairs=ONE_PAIR)
    assert "sensitivity" in failed_checks(report)
    assert any("> declared sensitivity" in line for line in report.failures())


@pytest.mark.parametrize("name", ["mst", "aim"])
def test_domain_learned_from_the_data_fails(name, monkeypatch):
    """The mutant replaces the public domain by the levels present in the data (np.unique)."""
    cls = MST if name == "mst" else AIM
    original = cls._fit_codes

    def learned_domain(self, codes, schema, odometer, noise):
        levels = [np.unique(codes[:, i]) for i in range(codes.shape[1])]
        remapped = np.stack([np.searchsorted(lv, codes[:, i]) for i, lv in enumerate(levels)], axis=1)
        learned = Schema.from_domain({n: len(lv) for n, lv in zip(schema.names, levels, strict=True)})
        return original(self, remapped, learned, odometer, noise)

    monkeypatch.setattr(cls, "_fit_codes", learned_domain)
    report = replay_check(FACTORIES[name], SCHEMA, pairs=ONE_PAIR)
    assert "same_queries" in failed_checks(report)
    assert any("depends on the data" in line for line in report.failures())


def test_a_statistic_kept_outside_the_mechanisms_fails(monkeypatch):
    original = MST._fit_codes

    def leaky(self, codes, schema, odometer, noise):
        original(self, codes, schema, odometer, noise)
        self.rows_seen_ = int(codes.shape[0])  # an exact count of the private rows

    monkeypatch.setattr(MST, "_fit_codes", leaky)
    report = replay_check(make_mst, SCHEMA, pairs=ONE_PAIR)
    assert failed_checks(report) == {"same_result"}
    assert any("rows_seen_" in line for line in report.failures())
