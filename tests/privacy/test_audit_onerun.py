"""One-run audit (Steinke, Nasr, Jagielski 2023) of the DP-SGD generators.

Fast tests: canaries, guesses, arguments, the suite kind, the whole audit with black-box scoring
on stand-in synthesizers (one that copies its training rows must be flagged, one that never looks
at the data must not), and a white-box audit beside a second DP-VAE fitted at the same time in
another thread (the audit must score its own generator's model). Slow tests train the DP-VAE once
each, at the level ``ALPHA`` = 1e-4: with DP-SGD's noise removed (a mutant) the canaries it
memorised give a bound far above the claim; the real generator at the claim gives no violation (a
false alarm has probability at most 1e-4 by the bound's guarantee; see
:func:`test_real_dpvae_is_not_flagged`). Only the audit's coins are seeded: DP-SGD's sampling and
noise come from a secure, unseeded source, so each run trains a different model and the bound
varies from run to run.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dpsynth.audit.bounds import NOT_DP_NOTICE
from dpsynth.audit.onerun import (
    METHOD,
    AuditLedger,
    count_correct,
    make_canaries,
    one_run_audit,
    public_base,
)
from dpsynth.exceptions import ParameterError
from dpsynth.schema import Schema
from dpsynth.schema.encode import encode

SCHEMA = Schema.from_domain({f"c{i}": 4 for i in range(8)})
CLAIM = {"claimed_epsilon": 1.0, "claimed_delta": 1e-5}


class CopiesTrainingRows:
    """Broken on purpose: its "synthetic" data is its training table."""

    def __init__(self, *, epsilon: float = 1.0, delta: float = 1e-5):
        self.epsilon, self.delta = epsilon, delta

    def plan(self, schema: Schema) -> list:
        return []

    def fit(self, data: pd.DataFrame, *, schema: Schema, ledger: object) -> CopiesTrainingRows:
        self.rows_ = data.reset_index(drop=True)
        return self

    def sample(self, n_rows: int) -> pd.DataFrame:
        return self.rows_.iloc[np.arange(n_rows) % len(self.rows_)].reset_index(drop=True)


class IgnoresData(CopiesTrainingRows):
    """Samples uniformly from the public domain: 0-DP."""

    def sample(self, n_rows: int, *, random_state: int | None = None) -> pd.DataFrame:
        rng = np.random.default_rng(random_state)
        return pd.DataFrame({c.name: rng.integers(0, c.n_values, n_rows) for c in SCHEMA.columns})


# -- pieces ---------------------------------------------------------------------------------------------


def test_canaries_are_distinct_and_far_from_the_base():
    base = encode(public_base(SCHEMA, 300, seed=3), SCHEMA)
    assert (base < 2).all()  # the lower half of every column's 4 values
    canaries = make_canaries(SCHEMA, base, 500, min_distance=4, seed=3)
    assert canaries.shape == (500, 8) and len({row.tobytes() for row in canaries}) == 500
    nearest = ((canaries[:, None, :] != base[None, :, :]).sum(axis=2)).min(axis=1)
    assert nearest.min() >= 4


def test_too_many_canaries_for_the_domain_is_refused():
    small = Schema.from_domain({"a": 2, "b": 2})
    with pytest.raises(ParameterError, match=r"canaries \(10\)"):
        make_canaries(small, np.zeros((1, 2), dtype=np.int64), 10, min_distance=1)


def test_count_correct_top_in_bottom_out():
    scores = np.array([5.0, 4.0, 3.0, 2.0, 1.0, 0.0])
    included = np.array([True, False, True, False, True, False])
    assert count_correct(scores, included, 1) == 2  # top (5, in) and bottom (0, out)
    assert count_correct(scores, included, 2) == 2  # 4 is out, 1 is in: wrong both
    assert count_correct(scores, included, 3) == 4


def test_audit_ledger_reserves_silently():
    import warnings

    from dpsynth.privacy.events import PrivacyEvent  # noqa: F401 - the ledger takes any events

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        reservation = AuditLedger().reserve(None, [])
    assert reservation.ledger is None and reservation.id is None


# -- bad arguments: refused before anything is fitted -------------------------------------------------------


class Explodes(CopiesTrainingRows):
    def fit(self, *args, **kwargs):  # pragma: no cover - must never be reached
        raise AssertionError("fitted despite bad arguments")


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"canaries": 1}, r"canaries \(1\)"),
    ({"canaries": True}, r"canaries \(True\)"),
    ({"guesses": 3}, r"guesses \(3\)"),
    ({"guesses": 2000}, r"guesses \(2000\)"),
    ({"confidence": 1.0}, r"confidence \(1.0\)"),
    ({"confidence": 0.3}, r"confidence \(0.3\) must be in \[0.5, 0.999999\]"),
    ({"scoring": "magic"}, r"scoring \('magic'\)"),
    ({"scoring": "whitebox"}, r"scoring \('whitebox'\) needs"),
    ({"min_distance": 9}, r"min_distance \(9\)"),
    ({"claimed_epsilon": 0.0}, r"claimed_epsilon"),
    ({"claimed_delta": 1.0}, r"claimed_delta"),
    ({"base": [[0] * 8]}, r"base \(list\)"),
    ({"base_rows": 0}, r"base_rows \(0\)"),
])
def test_bad_arguments_are_refused(kwargs, match):
    args = {**CLAIM, **kwargs}
    with pytest.raises(ParameterError, match=match):
        one_run_audit(Explodes, SCHEMA, **args)


# -- the whole audit, black-box, on stand-ins (fast) ------------------------------------------------------


def test_a_generator_that_copies_its_training_rows_is_flagged():
    r = one_run_audit(CopiesTrainingRows, SCHEMA, canaries=1000, **CLAIM)
    d = r.to_dict()
    assert d["method"] == METHOD and d["trials"] == 1 and d["notice"] == NOT_DP_NOTICE
    assert d["details"]["scoring"] == "blackbox" and d["details"]["canaries"] == 1000
    # included canaries are at distance 0 from the copy, excluded ones are not: every guess is right
    # at every rung but the last (r = m can be perfect only if exactly m/2 are included)
    ladder = d["details"]["ladder"]
    assert all(rung["correct"] == rung["guesses"] for rung in ladder[:-1])
    assert ladder[-1]["correct"] == 1000 - abs(d["details"]["included"] - 500)
    assert r.violation and r.epsilon_lower_bound > 4.0 and r.max_provable_epsilon > 5.0


def test_a_generator_that_ignores_the_data_is_not_flagged():
    r = one_run_audit(IgnoresData, SCHEMA, canaries=1000, **CLAIM)
    assert not r.violation and r.epsilon_lower_bound < 1.0
    assert r.max_provable_epsilon > 1.0  # conclusive: a violation could have been shown


def test_result_holds_no_canary_or_base_values():
    r = one_run_audit(CopiesTrainingRows, SCHEMA, canaries=20, guesses=10, base_rows=30, **CLAIM)
    flat = repr(r.to_dict())
    assert "c0" not in flat and "DataFrame" not in flat
    assert r.details["guesses"] == 10 and len(r.details["ladder"]) == 1


# -- the suite kind ------------------------------------------------------------------------------------


def test_suite_validates_the_onerun_kind(tmp_path):
    from dpsynth.audit.suite import SuiteError, load_suite

    path = tmp_path / "bad.yaml"
    path.write_text("version: 1\ndata: {generator: worst_case_pair, columns: {a: 4, b: 4}}\n"
                    "audits:\n  - {kind: onerun, canaries: 1, guesses: 3, scoring: x, confidence: 2, extra: 1}\n")
    with pytest.raises(SuiteError) as err:
        load_suite(path)
    message = str(err.value)
    for part in ("canaries (1)", "guesses (3)", "scoring ('x')", "confidence (2)", "unknown key(s) extra"):
        assert part in message
    for name in ("dpvae", "dpctgan"):
        suite = load_suite(name)
        assert {a["kind"] for a in suite["audits"]} == {"onerun"}


# -- white-box access: the audited generator only ------------------------------------------------------

SMALL_VAE = {"epochs": 1, "sample_rate": 0.1, "embedding_dim": 8, "compress_dims": (16,), "decompress_dims": (16,),
             "device": "cpu"}


def test_an_audit_sees_only_the_generator_it_audits(monkeypatch):
    """Two DP-VAEs fitted at the same time in two threads, one under a white-box audit: the audit
    scores the model its own generator trained, never the other one. The fits are interleaved on
    purpose: the other generator builds its model while the audited fit is under way (after the
    audit received its model, before the first step). When the audit rebound the ``vae`` module's
    ``private_parts`` for the duration of its fit, the other fit went through the rebinding and
    its model replaced the audited one; the generators' own injection point
    (``observe_training``, set on one instance) is seen by that instance only. Deterministic."""
    pytest.importorskip("opacus")
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from dpsynth import UNTRACKED
    from dpsynth.audit import onerun
    from dpsynth.synth.dpsgd.vae import DPVAE

    audited_built, other_built = threading.Event(), threading.Event()

    class Audited(DPVAE):
        def _spend_dp_sgd(self, plan, odometer):  # right before the first step: the audit has its model
            audited_built.set()
            assert other_built.wait(120), "the other fit never built its model"
            super()._spend_dp_sgd(plan, odometer)

    class Beside(DPVAE):
        def _train(self, *args, **kwargs):  # builds its model only while the audited fit is under way
            assert audited_built.wait(120), "the audited fit never built its model"
            super()._train(*args, **kwargs)

        def _spend_dp_sgd(self, plan, odometer):
            other_built.set()
            super()._spend_dp_sgd(plan, odometer)

    scored = []
    real_scores = onerun._whitebox_scores

    def spy(kind, model, synthesizer, *args):
        scored.append((model.trained, synthesizer))
        return real_scores(kind, model, synthesizer, *args)

    monkeypatch.setattr(onerun, "_whitebox_scores", spy)
    audited = Audited(epsilon=1.0, delta=1e-5, **SMALL_VAE)
    beside = Beside(epsilon=1.0, delta=1e-5, insecure_seed=1, **SMALL_VAE)
    with ThreadPoolExecutor(2) as pool:
        audit = pool.submit(one_run_audit, lambda: audited, SCHEMA, canaries=20, guesses=10, base_rows=30, **CLAIM)
        other = pool.submit(beside.fit, public_base(SCHEMA, 60, seed=9), schema=SCHEMA, ledger=UNTRACKED)
        result, fitted = audit.result(timeout=600), other.result(timeout=600)
    assert result.details["scoring"] == "whitebox" and fitted is beside
    ((trained, synthesizer),) = scored
    assert synthesizer is audited
    # the audited fit's own VAE (10 steps: too few to average, so its decoder is what the fit keeps)
    assert audited.decoder_average * audited.dpsgd_["steps_taken"] <= 1  # decay_for: no average
    assert trained.decoder is audited.decoder_
    assert trained.decoder is not beside.decoder_


# -- DP-VAE: one training run each (slow) ---------------------------------------------------------------

# A configuration where memorisation is visible: a near-autoencoder (reconstruction weighted 20×
# against the KL term), 1,000 steps on 100 base rows plus ~250 of 500 canaries.
#
# Measured on these machines (audits repeated, OMP_NUM_THREADS=1, at confidence 0.95 and δ = 1e-5):
# without noise (75 runs) the bound ranged 2.30–3.91 (median 3.00); the real DP-VAE's 0–0.14 (45
# runs, median 0). With 1,000 canaries the mutant's bound ranged 1.26–2.34 and fell below 1.5 in 5
# of 34 runs, which failed CI once: 1,000 canaries are more than this model memorises, 500 are not.
CANARIES = 500
MEMORISING = {"epochs": 100, "sample_rate": 0.1, "embedding_dim": 16, "learning_rate": 0.01, "loss_factor": 20.0,
              "device": "cpu"}
#: The level of the slow DP-VAE tests: a correct generator is flagged with probability at most ALPHA.
ALPHA = 1e-4
# At that level (claim (1, 1e-10), confidence 1 − 1e-4), measured after issue 18 (6 runs each,
# OMP_NUM_THREADS=1): the mutant's bound 2.30–2.59 (244–247 of 250 right), the real DP-VAE's 0.
#: The claim the slow tests fit and audit at. δ is small so that the bound's δ term (2mδ = 1e-7 with
#: m = 500) stays far below ALPHA / 6 (the ladder's Bonferroni share): at δ = 1e-5 it is 1e-2, and
#: no count of correct guesses could refute anything at that level.
STRICT = {"claimed_epsilon": 1.0, "claimed_delta": 1e-10, "confidence": 1.0 - ALPHA}


def _vae(*, noiseless: bool = False, **params):
    pytest.importorskip("opacus")
    from dpsynth.synth.dpsgd.vae import DPVAE

    cls = _noiseless(DPVAE) if noiseless else DPVAE
    return lambda: cls(epsilon=STRICT["claimed_epsilon"], delta=STRICT["claimed_delta"], **params)


def _noiseless(dpvae: type) -> type:
    """The mutant: σ calibrated and reserved as usual, then 0 given to the optimizer (clipping kept)."""
    import dataclasses

    class NoiselessDPVAE(dpvae):
        def _private_parts(self, module, matrix, plan, randomness, **kwargs):
            silent = dataclasses.replace(plan.calibration, noise_multiplier=0.0)
            return super()._private_parts(module, matrix, dataclasses.replace(plan, calibration=silent), randomness,
                                          **kwargs)

    return NoiselessDPVAE


@pytest.mark.slow
def test_dpvae_without_noise_is_flagged():
    """The audit at level ALPHA still catches a generator that really leaks (the mutant), so the
    test below can fail."""
    r = one_run_audit(_vae(noiseless=True, **MEMORISING), SCHEMA, canaries=CANARIES, base_rows=100, seed=0, **STRICT)
    assert r.details["scoring"] == "whitebox" and r.details["dpsgd"]["steps_taken"] == 1000
    assert r.details["dpsgd"]["noise_multiplier"] > 0  # the reported σ is the calibrated one; 0 was used
    assert r.violation and r.epsilon_lower_bound > 1.0


@pytest.mark.slow
def test_real_dpvae_is_not_flagged():
    """False-failure probability at most ALPHA = 1e-4, by the audit's own guarantee: the fit is
    (1, 1e-10)-DP (its accounting), and the one-run bound (SNJ 2023, Theorem 3.1 with its δ term)
    exceeds the ε of an (ε, δ)-DP fit with probability at most 1 − confidence = ALPHA, the ladder of
    guess counts included (each of its L rungs at ALPHA / L, Bonferroni). The audit's coins are
    seeded, DP-SGD's noise is not: the probability is over the fit's noise and sampling."""
    r = one_run_audit(_vae(**MEMORISING), SCHEMA, canaries=CANARIES, base_rows=100, seed=0, **STRICT)
    assert r.details["scoring"] == "whitebox" and r.confidence == 1.0 - ALPHA
    assert not r.violation and r.epsilon_lower_bound <= 1.0
