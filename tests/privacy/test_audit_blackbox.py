"""Black-box release audit (membership inference from the synthetic output only).

Fast tests use deliberately leaky "synthesizers" (their leak is caught, deterministically: they are
seeded), MST with seeded noise (deterministic) and bad arguments. The statistical test of the real
MST with secure noise is marked slow and states its false-failure probability.
"""

from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd
import pytest

from dpsynth.audit import max_provable_epsilon
from dpsynth.audit.blackbox import METHOD, auc, blackbox_audit, isolation, roc, tpr_at_fpr
from dpsynth.audit.bounds import NOT_DP_NOTICE
from dpsynth.exceptions import ParameterError
from dpsynth.schema import Schema
from dpsynth.synth import MST

LEVELS = {
    "kind": [f"kq{i}" for i in range(5)],
    "zone": [f"zq{i}" for i in range(4)],
    "flag": ["fyes", "fno"],
    "tier": [f"tq{i}" for i in range(3)],
    "shift": [f"sq{i}" for i in range(3)],
}
SCHEMA = Schema.from_dict({"version": 1, "columns": [
    *({"name": name, "kind": "categorical", "levels": levels} for name, levels in LEVELS.items()),
    {"name": "amount", "kind": "integer", "bounds": [0, 1000], "edges": [0, 100, 200, 500, 1000]},
]})
OUTLIER_POSITION, OUTLIER_AMOUNT = 5, 987


def make_table(n: int = 80, seed: int = 3) -> pd.DataFrame:
    """A small mixed-type table with one planted outlier (the only row at kq4/zq3/tq2/sq2, amount
    987: every other row is at the common levels and amounts below 400)."""
    rng = np.random.default_rng(seed)
    table = pd.DataFrame({
        "kind": rng.choice(LEVELS["kind"][:4], n, p=[0.4, 0.3, 0.2, 0.1]),
        "zone": rng.choice(LEVELS["zone"][:3], n),
        "flag": rng.choice(LEVELS["flag"], n),
        "tier": rng.choice(LEVELS["tier"][:2], n),
        "shift": rng.choice(LEVELS["shift"][:2], n),
        "amount": rng.integers(0, 400, n).astype(str),
    })
    table.iloc[OUTLIER_POSITION] = ["kq4", "zq3", "fyes", "tq2", "sq2", str(OUTLIER_AMOUNT)]
    return table


REAL = make_table()
CLAIM = {"claimed_epsilon": 1.0, "claimed_delta": 1e-5}


class ReturnsTrainingRows:
    """Broken on purpose: its "synthetic" table is the training table."""

    def __init__(self, *, epsilon: float, delta: float):
        self.epsilon, self.delta = epsilon, delta

    def fit(self, data: pd.DataFrame, *, schema: Schema, ledger: object) -> ReturnsTrainingRows:
        self.data_ = data.copy()
        return self

    def sample(self, n_rows: int) -> pd.DataFrame:
        return self.data_.copy()


class CopiesTenPercent:
    """Broken on purpose: copies each training row with probability 0.1 and draws the other rows
    column by column from the training table's marginals (seeded per instance)."""

    _seeds = itertools.count()

    def __init__(self, *, epsilon: float, delta: float):
        self.epsilon, self.delta = epsilon, delta
        self.rng = np.random.default_rng(next(self._seeds))

    def fit(self, data: pd.DataFrame, *, schema: Schema, ledger: object) -> CopiesTenPercent:
        self.data_ = data.reset_index(drop=True)
        return self

    def sample(self, n_rows: int) -> pd.DataFrame:
        copied = self.data_[self.rng.random(len(self.data_)) < 0.1]
        rest = n_rows - len(copied)
        drawn = pd.DataFrame({c: self.data_[c].to_numpy()[self.rng.integers(0, len(self.data_), rest)]
                              for c in self.data_.columns})
        return pd.concat([copied, drawn], ignore_index=True)


def test_a_synthesizer_returning_its_training_rows_is_flagged():
    """Every attack separates the worlds perfectly: AUC 1, TPR 1 at 1% FPR, and the bound is the
    largest that 20 evaluation trials per world can show at 95% with Bonferroni over 3 attacks."""
    calls = []
    r = blackbox_audit(lambda: ReturnsTrainingRows(epsilon=0.5, delta=1e-5), REAL, SCHEMA, claimed_epsilon=0.5,
                       claimed_delta=1e-5, fits_per_world=20, progress=lambda done, total: calls.append((done, total)))
    assert r.violation and r.conclusive
    assert r.auc == 1.0 and r.tpr_at_1pct_fpr == 1.0
    expected = max_provable_epsilon(20, 20, delta=1e-5, confidence=1 - 0.05 / 3)
    assert r.epsilon_lower_bound == expected > 0.5
    assert calls == [(i, 80) for i in range(1, 81)] and r.fits == r.trials == 80
    d = r.to_dict()
    assert d["method"] == METHOD and d["violation"] is True and set(d["attacks"]) == {"counting", "dcr", "domias"}
    assert "Bonferroni over 3 attacks" in d["details"]["multiple_testing"]
    for a in d["attacks"].values():
        assert a["auc"] == 1.0 and a["epsilon_lower_bound"] == expected
        assert len(a["roc"]["fpr"]) == len(a["roc"]["tpr"]) <= 101


@pytest.mark.slow
def test_a_generator_copying_ten_percent_of_the_rows_is_flagged():
    """The acceptance case: a copy of the target appears in ~10% of the world-1 tables and never in
    world 0 (its rare values are absent from world 0's marginals), so the distance-to-closest-record
    attack has FPR 0 and TPR ~0.1; 300 fits per world and target show ε > 1 at 95%. Deterministic
    (the generator is seeded); slow only for its 1,200 fits (~20 ms of scoring each)."""
    r = blackbox_audit(lambda: CopiesTenPercent(epsilon=1.0, delta=1e-5), REAL, SCHEMA, fits_per_world=300,
                       attacks=("dcr",), **CLAIM)
    assert r.violation and r.epsilon_lower_bound > 1.0
    assert 0.05 < r.tpr_at_1pct_fpr < 0.2
    assert r.to_dict()["details"]["multiple_testing"] == "one attack: no correction"


def test_mst_seeded_runs_end_to_end_without_a_violation():
    """Deterministic (seeded noise). With 2 fits per world nothing can be shown (max provable 0),
    which the result must say (conclusive false)."""
    r = blackbox_audit(lambda: MST(epsilon=1.0, delta=1e-5, estimation_iters=50), REAL, SCHEMA, fits_per_world=2,
                       canaries=1, outliers=0, noise="seeded", **CLAIM)
    assert not r.violation and not r.conclusive and r.max_provable_epsilon == 0.0
    assert r.fits == 4 and r.targets == [{"kind": "canary", "index": 0}]
    assert r.to_dict()["details"]["noise"].startswith("seeded")


@pytest.mark.slow
def test_correct_mst_at_small_epsilon_is_not_flagged_and_its_auc_is_near_half():
    """MST at (0.1, 1e-5): 12 fits per world for 1 canary + 1 outlier (48 fits), seeded noise
    (``noise="seeded"``: ``SeededNoise``, exact samplers on a seeded stream, one seed per fit), so CI draws the
    same fits on every run and this test cannot fail by chance (false-failure probability 0 in CI).

    On fresh noise, if MST is (0.1, 1e-5)-DP: the violation at most 1 − 0.995 = 0.5%
    (the audit's confidence; its max provable ε is above 0.1, checked, so the check can fail).
    AUC: for every target the claim keeps the expected AUC (P[score₁ > score₀] + ½P[tie], targets
    pooled with equal numbers in both worlds) in [1 − e^0.1/2 − δ, e^0.1/2 + δ] ≈ [0.447, 0.553];
    the van Dantzig bound θ(1 − θ)/24 gives a standard deviation at most 0.102 with 24 trials per
    world, so leaving [0.1, 0.9] is a 3.4 σ event: ≤ 3.1e-4 per side and attack by the normal
    approximation, ≤ 0.2% in all. Together at most ~0.7%."""
    r = blackbox_audit(lambda: MST(epsilon=0.1, delta=1e-5, estimation_iters=50), REAL, SCHEMA,
                       claimed_epsilon=0.1, claimed_delta=1e-5, fits_per_world=12, confidence=0.995,
                       noise="seeded", seed=0)
    assert r.conclusive and r.max_provable_epsilon > 0.1
    assert not r.violation
    for name, attack in r.attacks.items():
        assert 0.1 <= attack.auc <= 0.9, name


class NoiseProbe:
    """Records which noise source a dpsynth synthesizer's fit would draw from."""

    seen: list[object] = []

    def __init__(self, *, epsilon: float, delta: float):
        self.epsilon, self.delta = epsilon, delta

    def fit(self, data: pd.DataFrame, *, schema: Schema, ledger: object) -> NoiseProbe:
        import dpsynth.synth.base as base

        self.seen.append(base.make_noise(None))
        self.data_ = data
        return self

    def sample(self, n_rows: int) -> pd.DataFrame:
        return self.data_.iloc[:n_rows].copy()


@pytest.mark.parametrize(("noise", "cls"), [("secure", "OpenDPNoise"), ("seeded", "SeededNoise")])
def test_fits_draw_secure_or_seeded_noise(noise, cls):
    NoiseProbe.seen.clear()
    blackbox_audit(lambda: NoiseProbe(epsilon=1.0, delta=1e-5), REAL, SCHEMA, fits_per_world=2, outliers=0,
                   attacks="counting", noise=noise, **CLAIM)
    assert [type(s).__name__ for s in NoiseProbe.seen] == [cls] * 4


def _leaves(value):
    if isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from _leaves(v)
    elif isinstance(value, list):
        for v in value:
            yield from _leaves(v)
    else:
        yield value


def test_the_result_never_holds_a_real_row():
    """The JSON of the result holds no value of an outlier row: no categorical level of it (they
    are unique tokens), not its amount, not the row as a list."""
    r = blackbox_audit(lambda: ReturnsTrainingRows(epsilon=1.0, delta=1e-5), REAL, SCHEMA, fits_per_world=2,
                       canaries=1, outliers=2, **CLAIM)
    text = json.dumps(r.to_dict(), allow_nan=False)
    outliers = [t for t in r.targets if t["kind"] == "outlier"]
    assert len(outliers) == 2 and outliers[0]["index"] == OUTLIER_POSITION and outliers[0]["nn_distance"] > 0
    leaves = list(_leaves(json.loads(text)))
    for target in outliers:
        row = REAL.iloc[target["index"]]
        assert not set(row.iloc[:5]) & {v for v in leaves if isinstance(v, str)}
        assert json.dumps([str(v) for v in row]) not in text and json.dumps(list(row.iloc[:5])) not in text
    assert OUTLIER_AMOUNT not in leaves and str(OUTLIER_AMOUNT) not in leaves
    assert r.to_dict()["notice"] == NOT_DP_NOTICE


def test_isolation_finds_the_planted_outlier():
    d = isolation(REAL, SCHEMA)
    assert int(np.argmax(d)) == OUTLIER_POSITION
    duplicated = pd.concat([REAL, REAL.iloc[[OUTLIER_POSITION]]], ignore_index=True)
    assert isolation(duplicated, SCHEMA)[OUTLIER_POSITION] == 0.0


def test_subsample_and_held_out_reference_are_reported():
    big = make_table(n=300, seed=9)
    r = blackbox_audit(lambda: ReturnsTrainingRows(epsilon=1.0, delta=1e-5), big, SCHEMA, fits_per_world=2,
                       reference_rows=100, attacks=["domias"], **CLAIM)
    d = r.to_dict()
    assert d["reference_rows"] == 100 and d["details"]["audited_rows"] == 100
    assert "100 of the 300" in d["details"]["subsample"]
    assert "100 held-out real rows" in d["details"]["domias_reference"]
    small = blackbox_audit(lambda: ReturnsTrainingRows(epsilon=1.0, delta=1e-5), REAL, SCHEMA, fits_per_world=2,
                           reference_rows=None, attacks="counting", **CLAIM)
    assert "uniform" in small.details["domias_reference"] and small.details["audited_rows"] == len(REAL)


def test_roc_auc_and_tpr_at_low_fpr():
    s0, s1 = np.array([0.0, 1.0, 2.0, 3.0]), np.array([2.0, 4.0, 5.0, 6.0])
    assert auc(s0, s1) == pytest.approx((2.5 + 12) / 16)
    fpr, tpr = roc(s0, s1)
    assert fpr[0] == tpr[0] == 0.0 and fpr[-1] == tpr[-1] == 1.0
    assert tpr_at_fpr(fpr, tpr) == 0.75
    assert auc(s1, s0) == pytest.approx(1 - auc(s0, s1))


def _roc_by_definition(s0: np.ndarray, s1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ROC curve counted threshold by threshold (the audit's own code before scikit-learn's)."""
    thresholds = np.unique(np.concatenate([s0, s1]))[::-1]
    fpr = np.concatenate([[0.0], [(s0 >= t).mean() for t in thresholds]])
    tpr = np.concatenate([[0.0], [(s1 >= t).mean() for t in thresholds]])
    return fpr, tpr


def test_roc_is_exactly_the_counted_curve_and_auc_agrees_with_sklearn_on_ties():
    """scikit-learn's curve (every threshold kept) is the counted one point for point, ties
    included, so TPR at 1% FPR and the reported curve are unchanged. Its roc_auc_score agrees with
    the rank AUC only to rounding (trapezoid sums): the rank formula stays, and this pins both."""
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    for case in range(100):
        n0, n1 = int(rng.integers(1, 40)), int(rng.integers(1, 40))
        levels = int(rng.integers(1, 5))  # few distinct scores: many ties, within and across worlds
        s0 = rng.integers(0, levels, n0).astype(float)
        s1 = rng.integers(0, levels, n1).astype(float) + (case % 2)
        fpr, tpr = roc(s0, s1)
        want_fpr, want_tpr = _roc_by_definition(s0, s1)
        assert np.array_equal(fpr, want_fpr) and np.array_equal(tpr, want_tpr)
        assert tpr_at_fpr(fpr, tpr) == tpr_at_fpr(want_fpr, want_tpr)
        sk = roc_auc_score(np.r_[np.zeros(n0), np.ones(n1)], np.r_[s0, s1])
        assert auc(s0, s1) == pytest.approx(sk, rel=0, abs=1e-12)
    # all tied: the curve is the diagonal's two ends and the AUC exactly one half
    fpr, tpr = roc(np.ones(5), np.ones(3))
    assert fpr.tolist() == [0.0, 1.0] and tpr.tolist() == [0.0, 1.0] and auc(np.ones(5), np.ones(3)) == 0.5


def make_leaky() -> ReturnsTrainingRows:
    return ReturnsTrainingRows(epsilon=1.0, delta=1e-5)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"fits_per_world": 1}, "fits_per_world (1) must be an integer >= 2"),
    ({"fits_per_world": 2.5}, "fits_per_world"),
    ({"attacks": ("dcr", "shadow")}, "unknown attack 'shadow'"),
    ({"attacks": ()}, "attacks"),
    ({"attacks": ("dcr", "dcr")}, "twice"),
    ({"canaries": 0, "outliers": 0}, "at least 1 target"),
    ({"canaries": -1}, "canaries (-1) must be an integer >= 0"),
    ({"outliers": 79}, "outliers (79)"),
    ({"reference_rows": 5}, "reference_rows (5)"),
    ({"reference_rows": 10}, "reference_rows (10) must be an integer >= 20 or null"),  # the policy's bound
    ({"confidence": 1.0}, "confidence"),
    ({"confidence": 0.3}, "confidence (0.3) must be in [0.5, 0.999999]"),
    ({"noise": "none"}, "noise ('none')"),
    ({"claimed_epsilon": 0.0}, "claimed_epsilon"),
    ({"claimed_delta": 1.0}, "claimed_delta"),
    ({"progress": 3}, "progress"),
    ({"seed": -2}, "seed"),
])
def test_bad_arguments_are_refused_before_any_fit(kwargs, message):
    fitted = []

    def make():
        fitted.append(1)
        return make_leaky()

    args = {**CLAIM, **kwargs}
    with pytest.raises(ParameterError) as info:
        blackbox_audit(make, REAL, SCHEMA, **args)
    assert message in str(info.value) and not fitted


def test_bad_make_real_and_schema():
    with pytest.raises(ParameterError, match="make"):
        blackbox_audit("mst", REAL, SCHEMA, **CLAIM)
    with pytest.raises(ParameterError, match="real"):
        blackbox_audit(make_leaky, REAL.to_numpy(), SCHEMA, **CLAIM)
    with pytest.raises(ParameterError, match="schema"):
        blackbox_audit(make_leaky, REAL, {"kind": 5}, **CLAIM)


# -- the suite kind ------------------------------------------------------------------------------------

BLACKBOX_SUITE = """
version: 1
data: {generator: worst_case_pair, columns: {a: 2, b: 2, c: 2}, rows: 10}
audits:
  - kind: blackbox
    fits_per_world: 10
    reference_rows: 200
    attacks: [dcr]
"""

COPYING_MODULE = '''
from dpsynth.synth.mst import MST


class CopyingMST(MST):
    """MST's plan, but its "synthetic" table is the training table (broken on purpose)."""

    def fit(self, data, *, schema, ledger=None, **_):
        self.data_ = data.copy()
        return self

    def sample(self, n_rows, **_):
        return self.data_.copy()
'''


def test_suite_blackbox_kind_runs_on_the_bundled_adult(tmp_path, monkeypatch):
    from dpsynth.audit.suite import load_suite, run_suite

    (tmp_path / "copying_synths.py").write_text(COPYING_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    path = tmp_path / "suite.yaml"
    path.write_text(BLACKBOX_SUITE)
    suite = load_suite(path)
    assert suite["audits"][0] | {} == {"kind": "blackbox", "dataset": "adult", "fits_per_world": 10, "canaries": 1,
                                      "outliers": 1, "reference_rows": 200, "seed": 0,
                                      "attacks": ["dcr"], "confidence": 0.95,
                                      "noise": "secure", "workers": 1}
    summary = run_suite("copying_synths:CopyingMST", epsilon=0.3, delta=1e-5, suite=suite)
    (audit,) = summary["audits"]
    assert summary["violation"] and audit["method"] == METHOD and audit["auc"] == 1.0
    assert summary["epsilon_lower_bound"] == audit["epsilon_lower_bound"] > 0.3
    assert audit["reference_rows"] == 200 and audit["details"]["audited_rows"] == 200
    assert audit["dataset"].startswith("adult")


def test_suite_blackbox_kind_lists_every_problem(tmp_path):
    from dpsynth.audit.suite import SuiteError, load_suite

    path = tmp_path / "bad.yaml"
    path.write_text("version: 1\ndata: {generator: worst_case_pair, columns: {a: 2, b: 2}}\naudits:\n"
                    "  - kind: blackbox\n    dataset: census\n    fits_per_world: 1\n    attacks: [dcr, shadow]\n"
                    "    reference_rows: 3\n    noise: loud\n    extra: 1\n")
    with pytest.raises(SuiteError) as info:
        load_suite(path)
    message = str(info.value)
    for part in ("audits[0].dataset ('census')", "audits[0].fits_per_world (1)", "audits[0].attacks",
                 "audits[0].reference_rows (3)", "audits[0].noise ('loud')", "unknown key(s) extra"):
        assert part in message


def test_reference_suite_file_is_valid():

    from dpsynth.audit.suite import load_suite

    suite = load_suite("mst_blackbox")
    assert [a["kind"] for a in suite["audits"]] == ["blackbox"]


# -- parallel fits (workers) -------------------------------------------------------------------------

CHEAP_MODULE = '''
import warnings

import numpy as np

import dpsynth.synth.base as base
from dpsynth.schema.encode import decode, encode


class NoisyMarginals:
    """Cheap: independent 1-way marginals, discrete Gaussian noise drawn through dpsynth (so the
    audit's seeded noise reaches it), sampled with its random_state. Prints and warns in fit."""

    def __init__(self, *, epsilon, delta, scale=2.0):
        self.epsilon, self.delta, self.scale = epsilon, delta, scale

    def fit(self, data, *, schema, ledger):
        print("fitting NoisyMarginals")
        warnings.warn("NoisyMarginals is a test double", UserWarning)
        noise = base.make_noise(None)
        codes = encode(data, schema)
        self.schema_ = schema
        self.marginals_ = []
        for j, size in enumerate(schema.sizes):
            counts = np.bincount(codes[:, j], minlength=size).astype(np.int64)
            noisy = np.maximum(np.asarray(noise.discrete_gaussian(counts, self.scale), dtype=float), 0.0) + 0.5
            self.marginals_.append(noisy / noisy.sum())
        return self

    def sample(self, n_rows, random_state=None):
        rng = np.random.default_rng(random_state)
        codes = np.stack([rng.choice(len(p), n_rows, p=p) for p in self.marginals_], axis=1)
        return decode(codes, self.schema_, rng)
'''


@pytest.fixture
def cheap_module(tmp_path, monkeypatch):
    """A module the spawned workers can import (the parent's sys.path travels with them)."""
    (tmp_path / "bb_cheap_synths.py").write_text(CHEAP_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib

    return importlib.import_module("bb_cheap_synths")


def _figures(result) -> dict:
    d = result.to_dict()
    d.pop("seconds")
    d["details"].pop("workers")
    return d


def test_workers_give_the_serial_result_with_seeded_noise(cheap_module, capfd):
    """Same seeds, scores gathered in the serial order: every figure of the result (AUCs, ROC
    curves, thresholds, error counts, bounds) is identical; only seconds and details.workers differ.
    The workers print nothing (the synthesizer's print goes to their null device), its warning comes
    back once, and progress is called in this process as fits complete."""
    import functools

    make = functools.partial(cheap_module.NoisyMarginals, epsilon=1.0, delta=1e-5, scale=1.0)
    kwargs = dict(fits_per_world=6, canaries=2, outliers=1, noise="seeded", seed=7, **CLAIM)
    with pytest.warns(UserWarning, match="test double"):
        serial = blackbox_audit(make, REAL, SCHEMA, **kwargs)
    capfd.readouterr()
    calls = []
    with pytest.warns(UserWarning, match="test double") as caught:
        parallel = blackbox_audit(make, REAL, SCHEMA, workers=2, progress=lambda d, t: calls.append((d, t)), **kwargs)
    out, err = capfd.readouterr()
    assert out == "" and err == ""
    assert len([w for w in caught if "test double" in str(w.message)]) == 1
    assert calls == [(i, 36) for i in range(1, 37)]
    assert _figures(parallel) == _figures(serial)
    # the figures are not all trivially equal: the seeded noise varies across fits
    roc = serial.attacks["domias"].roc_fpr
    assert len(roc) > 3
    assert serial.details["workers"].startswith("1 ") and parallel.details["workers"].startswith("2 spawned")
    # another seed gives other figures (the comparison can fail)
    with pytest.warns(UserWarning, match="test double"):
        other = blackbox_audit(make, REAL, SCHEMA, **(kwargs | {"seed": 8}))
    assert _figures(other) != _figures(serial)


def test_an_unpicklable_make_with_workers_is_refused_before_any_fit():
    """Documented choice: a ParameterError naming make and workers (never a silent serial run)."""
    fitted = []

    def make():
        fitted.append(1)
        return ReturnsTrainingRows(epsilon=1.0, delta=1e-5)

    for bad in (make, lambda: make()):
        with pytest.raises(ParameterError, match=r"^make \(.*\) cannot be pickled for workers=2 .*functools\.partial"):
            blackbox_audit(bad, REAL, SCHEMA, fits_per_world=2, workers=2, **CLAIM)
    assert fitted == []
    for workers in (0, -1, 1.5, True, "2"):
        with pytest.raises(ParameterError, match=r"^workers \("):
            blackbox_audit(make, REAL, SCHEMA, fits_per_world=2, workers=workers, **CLAIM)
    assert fitted == []
    # workers=1 and None run it in this process, lambda included
    r = blackbox_audit(lambda: make(), REAL, SCHEMA, fits_per_world=2, outliers=0, attacks="dcr", workers=1, **CLAIM)
    assert r.fits == 4 and len(fitted) == 4


def test_a_class_a_worker_cannot_import_is_an_audit_error():
    """Picklable by reference here (its module lives only in this process's sys.modules) but not
    importable in a fresh worker: the audit stops with an AuditError saying what to do."""
    import sys
    import types

    from dpsynth.audit.whitebox import AuditError

    module = types.ModuleType("bb_only_in_this_process")

    class Local(ReturnsTrainingRows):
        pass

    Local.__module__ = module.__name__
    Local.__qualname__ = "Local"
    module.Local = Local
    sys.modules[module.__name__] = module
    try:
        with pytest.raises(AuditError, match="worker process of the audit stopped.*workers=1"):
            blackbox_audit(Local, REAL, SCHEMA, fits_per_world=2, outliers=0, attacks="dcr", workers=2,
                           claimed_epsilon=1.0, claimed_delta=1e-5)
    finally:
        del sys.modules[module.__name__]


@pytest.mark.slow
def test_mst_with_workers_gives_the_serial_result_and_the_suite_passes_workers(tmp_path, monkeypatch):
    """The real MST (JAX inside, seeded noise through dpsynth.mechanisms, random_state in sample):
    serial and workers=2 give identical figures. And a suite's ``workers`` key reaches the audit
    (its make is a picklable functools.partial of the user's class)."""
    import functools

    from dpsynth.audit.suite import load_suite, run_suite

    make = functools.partial(MST, epsilon=1.0, delta=1e-5, estimation_iters=50)
    kwargs = dict(fits_per_world=2, canaries=1, outliers=1, noise="seeded", **CLAIM)
    assert _figures(blackbox_audit(make, REAL, SCHEMA, workers=2, **kwargs)) == \
        _figures(blackbox_audit(make, REAL, SCHEMA, **kwargs))

    (tmp_path / "copying_synths.py").write_text(COPYING_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    path = tmp_path / "suite.yaml"
    path.write_text(BLACKBOX_SUITE + "    workers: 2\n")
    suite = load_suite(path)
    assert suite["audits"][0]["workers"] == 2
    (audit,) = run_suite("copying_synths:CopyingMST", epsilon=0.3, delta=1e-5, suite=suite)["audits"]
    assert audit["violation"] and audit["auc"] == 1.0 and audit["details"]["workers"].startswith("2 spawned")
