"""The audits inject their noise source per context (``dpsynth.mechanisms.noise_source``), never by
rebinding a library global: a fit in another thread during an audit keeps its own noise, and the
audit's recorder sees only the audit's draws. Deterministic (seeded noise and events between the
threads), no statistical failure probability.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

import dpsynth.synth.base as base
from dpsynth.audit.replay import neighbouring_pairs
from dpsynth.audit.transcript import AuditLedger, Transcript, record_fit
from dpsynth.mechanisms import OpenDPNoise, SeededNoise, make_noise, noise_source
from dpsynth.schema import Schema
from dpsynth.synth import MST

SCHEMA = Schema.from_domain({"a": 2, "b": 3, "c": 2})
AUDITED, OTHER = neighbouring_pairs(SCHEMA, rows=20, seed=3)["random_plus_row"]
WAIT_S = 120.0


def make_mst(insecure_seed: int | None = None) -> MST:
    return MST(epsilon=1.0, delta=1e-2, estimation_iters=50, insecure_seed=insecure_seed)


def test_make_noise_returns_the_injected_source_in_this_context_only():
    mine = SeededNoise(1, _warn=False)
    inner = SeededNoise(2, _warn=False)
    seen_in_thread: list[Any] = []
    assert isinstance(make_noise(None), OpenDPNoise)
    with noise_source(mine) as given:
        assert given is mine and make_noise(None) is mine and make_noise(5) is mine
        assert base.make_noise(None) is mine  # what a synthesizer's fit obtains
        with noise_source(inner):
            assert make_noise(None) is inner
        assert make_noise(None) is mine
        thread = threading.Thread(target=lambda: seen_in_thread.append(make_noise(None)))
        thread.start()
        thread.join()
    assert isinstance(seen_in_thread[0], OpenDPNoise)  # another thread starts with its own context
    assert isinstance(make_noise(None), OpenDPNoise)
    assert isinstance(make_noise(4), SeededNoise) and make_noise(4).seed == 4


def test_leaving_the_context_by_an_exception_restores_the_source():
    with pytest.raises(RuntimeError), noise_source(SeededNoise(1, _warn=False)):
        raise RuntimeError("a fit failed")
    assert isinstance(make_noise(None), OpenDPNoise)


class Gate:
    """The audit's noise source: on its first draw it lets the other thread fit, and waits until
    that fit is over, so the whole other fit runs while the audit is recording."""

    secure = False

    def __init__(self, inner: SeededNoise, audit_drawing: threading.Event, other_done: threading.Event):
        self.inner, self.audit_drawing, self.other_done = inner, audit_drawing, other_done

    def _wait(self) -> None:
        if not self.audit_drawing.is_set():
            self.audit_drawing.set()
            assert self.other_done.wait(WAIT_S), "the other thread's fit did not finish"

    def discrete_gaussian(self, counts: np.ndarray, scale: float) -> np.ndarray:
        self._wait()
        return self.inner.discrete_gaussian(counts, scale)

    def gumbel_argmax(self, scores: Any, scale: float) -> int:
        self._wait()
        return self.inner.gumbel_argmax(scores, scale)


def _in_thread(target: Callable[[], Any], errors: list[BaseException]) -> threading.Thread:
    def run() -> None:
        try:
            target()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def _outputs(transcript: Transcript) -> list[Any]:
    return [np.asarray(c.output).tolist() for c in transcript.calls]


def test_a_fit_in_another_thread_during_a_recording_draws_its_own_noise():
    """Thread 1 records an audit fit; while the recorder is injected there, thread 2 fits a seeded
    MST. Thread 2's model is the one it fits alone (its own seeded noise, no draw from the
    recorder), and the recording holds exactly the draws of the audit fit alone."""
    alone = make_mst(insecure_seed=11).fit(OTHER, schema=SCHEMA, ledger=AuditLedger())
    alone_transcript = record_fit(make_mst(), AUDITED, SCHEMA, noise=SeededNoise(5, _warn=False))
    assert alone_transcript.complete and alone_transcript.calls

    audit_drawing, other_done = threading.Event(), threading.Event()
    recorded: list[Transcript] = []
    other: list[MST] = []
    errors: list[BaseException] = []

    def audit() -> None:
        gate = Gate(SeededNoise(5, _warn=False), audit_drawing, other_done)
        recorded.append(record_fit(make_mst(), AUDITED, SCHEMA, noise=gate))

    def other_fit() -> None:
        try:
            assert audit_drawing.wait(WAIT_S), "the audit fit drew no noise"
            other.append(make_mst(insecure_seed=11).fit(OTHER, schema=SCHEMA, ledger=AuditLedger()))
        finally:
            other_done.set()

    threads = [_in_thread(audit, errors), _in_thread(other_fit, errors)]
    for thread in threads:
        thread.join(2 * WAIT_S)
    if errors:
        raise errors[0]
    (transcript,) = recorded
    (model,) = other
    assert transcript.complete and transcript.error is None
    assert len(transcript.calls) == len(alone_transcript.calls)  # only the audit fit's draws
    assert _outputs(transcript) == _outputs(alone_transcript)
    assert transcript.events == alone_transcript.events
    pd.testing.assert_frame_equal(model.sample(200, random_state=0), alone.sample(200, random_state=0))
