"""Recording the privacy transcript of a fit: every noise call with its input, declared scale and
output, paired with the privacy event the mechanism spent for it.

The hook needs no change to the synthesizers: :func:`record_fit` injects a :class:`RecordingNoise`
as the noise source a fit obtains from :func:`~dpsynth.mechanisms.make_noise` (with
:func:`~dpsynth.mechanisms.noise_source`: in the recording thread only), and passes a ledger
stand-in (:class:`RecordingLedger`) whose odometer reports every spent event.
A recorder can also *replay* another transcript: it returns that transcript's outputs (the same
noisy counts, the same selected indices) instead of drawing, so that a second fit on a
neighbouring dataset sees exactly the same released values and everything computed from them
must be identical (Re:cord-play, Annamalai et al.).

A recorded transcript contains the true counts and scores that were fed to the mechanisms, i.e.
private data: it exists in memory during an audit only and is never written out. Audits are NOT
differentially private.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from dpsynth.mechanisms.noise import NoiseSource, noise_source
from dpsynth.privacy.events import PrivacyEvent
from dpsynth.privacy.ledger import Reservation, Untracked
from dpsynth.privacy.odometer import Odometer
from dpsynth.schema.schema import Schema

GAUSSIAN = "gaussian"
SELECTION = "selection"


class ReplayDivergence(Exception):
    """A replayed fit asked for a different release than the recorded one (a different number of
    calls, a different kind, or an input of another shape): something that must not depend on the
    data did."""


class TranscriptComplete(BaseException):
    """Raised by a recorder once the requested number of noise calls is recorded, to stop a fit
    whose remaining work is post-processing the audit does not need."""


@dataclass
class NoiseCall:
    """One draw: its input (true counts or scores: private), the scale it was drawn at, the output
    and the event spent for it (``None`` when none was)."""

    kind: str
    input: np.ndarray
    scale: float
    output: np.ndarray | int
    event: PrivacyEvent | None

    @property
    def declared_scale(self) -> float | None:
        """The noise scale the paired event declares (Gumbel scale 2Δ/ε for a selection)."""
        if self.event is None:
            return None
        if self.kind == GAUSSIAN:
            return getattr(self.event, "scale", None)
        epsilon, sensitivity = getattr(self.event, "epsilon", None), getattr(self.event, "sensitivity", None)
        return None if epsilon is None or sensitivity is None else 2.0 * sensitivity / epsilon

    @property
    def declared_sensitivity(self) -> float | None:
        """The sensitivity the paired event declares (L2 of a Gaussian, Δ of a selection)."""
        if self.event is None:
            return None
        name = "l2_sensitivity" if self.kind == GAUSSIAN else "sensitivity"
        value = getattr(self.event, name, None)
        return None if value is None else float(value)


@dataclass
class Transcript:
    """Everything one fit released through dpsynth's mechanisms, in order."""

    calls: list[NoiseCall] = field(default_factory=list)
    events: list[PrivacyEvent] = field(default_factory=list)
    #: events spent with no noise drawn for them before the next event (indices into ``events``)
    unpaired_events: list[int] = field(default_factory=list)
    #: noise calls drawn without an event spent for them (indices into ``calls``)
    unaccounted_calls: list[int] = field(default_factory=list)
    planned: list[PrivacyEvent] = field(default_factory=list)
    complete: bool = False
    error: str | None = None
    secure_noise: bool = False

    def gaussian(self) -> list[NoiseCall]:
        """The Gaussian measurements, in order."""
        return [c for c in self.calls if c.kind == GAUSSIAN]

    def selections(self) -> list[NoiseCall]:
        """The selections, in order."""
        return [c for c in self.calls if c.kind == SELECTION]


class RecordingNoise:
    """A noise source that records every call and delegates the draw to ``inner`` (or, with
    ``replay``, returns the recorded outputs of another transcript)."""

    def __init__(self, inner: NoiseSource | None, *, replay: Transcript | None = None, stop_after: int | None = None):
        if inner is None and replay is None:
            raise ValueError("a recorder needs a noise source to draw from, or a transcript to replay")
        self.inner = inner
        self.replay = replay
        self.stop_after = stop_after
        self.secure = bool(getattr(inner, "secure", False)) if replay is None else bool(replay.secure_noise)
        self.transcript = Transcript(secure_noise=self.secure)
        self._pending: PrivacyEvent | None = None
        self._pending_index = -1

    # -- the odometer side ------------------------------------------------------------------------
    def on_spend(self, event: PrivacyEvent) -> None:
        """Note an event the fit's odometer spent: the next draw is paired with it."""
        if self._pending is not None:
            self.transcript.unpaired_events.append(self._pending_index)
        self.transcript.events.append(event)
        self._pending, self._pending_index = event, len(self.transcript.events) - 1

    def finish(self) -> None:
        """Close the recording: an event still waiting for its draw is unpaired."""
        if self._pending is not None:
            self.transcript.unpaired_events.append(self._pending_index)
            self._pending = None

    def _take_event(self) -> PrivacyEvent | None:
        event, self._pending = self._pending, None
        if event is None:
            self.transcript.unaccounted_calls.append(len(self.transcript.calls))
        return event

    def _recorded(self, kind: str, shape: tuple[int, ...]) -> NoiseCall:
        assert self.replay is not None
        i = len(self.transcript.calls)
        calls = self.replay.calls
        if i >= len(calls):
            raise ReplayDivergence(f"noise call {i} ({kind}) was not in the recorded fit ({len(calls)} calls)")
        rec = calls[i]
        if rec.kind != kind:
            raise ReplayDivergence(f"noise call {i} is a {kind} draw; the recorded fit drew a {rec.kind} there")
        if rec.input.shape != shape:
            raise ReplayDivergence(
                f"noise call {i} ({kind}) has an input of shape {shape}; the recorded fit's had shape "
                f"{rec.input.shape}: the size of what is measured depends on the data"
            )
        return rec

    def _after(self, call: NoiseCall) -> None:
        self.transcript.calls.append(call)
        if self.stop_after is not None and len(self.transcript.calls) >= self.stop_after:
            raise TranscriptComplete()

    # -- the NoiseSource protocol ---------------------------------------------------------------
    def discrete_gaussian(self, counts: np.ndarray, scale: float) -> np.ndarray:
        """Record a Gaussian measurement (drawn by ``inner``, or the replayed transcript's output)."""
        event = self._take_event()
        values = np.array(counts, dtype=np.int64, copy=True)
        if self.replay is not None:
            out = np.array(self._recorded(GAUSSIAN, values.shape).output, dtype=np.int64, copy=True)
        else:
            assert self.inner is not None
            out = np.asarray(self.inner.discrete_gaussian(counts, scale), dtype=np.int64)
        self._after(NoiseCall(GAUSSIAN, values, float(scale), out.copy(), event))
        return out

    def gumbel_argmax(self, scores: Sequence[float], scale: float) -> int:
        """Record a selection (drawn by ``inner``, or the replayed transcript's index)."""
        event = self._take_event()
        values = np.array([float(s) for s in scores], dtype=np.float64)
        if self.replay is not None:
            index = int(self._recorded(SELECTION, values.shape).output)
        else:
            assert self.inner is not None
            index = int(self.inner.gumbel_argmax(scores, scale))
        self._after(NoiseCall(SELECTION, values, float(scale), index, event))
        return index


class _RecordingOdometer(Odometer):
    def __init__(self, recorder: RecordingNoise, *args: Any):
        super().__init__(*args)
        self._recorder = recorder

    def spend(self, event: PrivacyEvent) -> None:
        super().spend(event)
        self._recorder.on_spend(event)


class AuditLedger(Untracked):
    """The ledger of an audit fit: records nothing and does not warn (an audit fit is internal
    evidence, never released or charged; the audit's result says so)."""

    def __repr__(self) -> str:
        return "dpsynth.audit.AuditLedger"

    def reserve(self, dataset: str | None, events: Sequence[PrivacyEvent], **_: Any) -> Reservation:
        """An unrecorded reservation of ``events`` (no warning: the audit's result says it is internal)."""
        return Reservation.unrecorded(list(events))


class RecordingLedger(AuditLedger):
    """An audit ledger that also reports every spent event to the recorder."""

    def __init__(self, recorder: RecordingNoise):
        self.recorder = recorder

    def __repr__(self) -> str:
        return "dpsynth.audit.RecordingLedger"

    def reserve(self, dataset: str | None, events: Sequence[PrivacyEvent], **_: Any) -> Reservation:
        """An unrecorded reservation whose odometer reports every spent event to the recorder."""
        events = list(events)
        self.recorder.transcript.planned = events
        reservation = super().reserve(dataset, events)
        reservation.odometer = _RecordingOdometer(
            self.recorder, reservation.reserved, reservation.reserved_delta, reservation.reserved_rdp,
            reservation.reserved_epsilon)
        return reservation


def record_fit(
    synthesizer: Any,
    data: pd.DataFrame,
    schema: Schema,
    *,
    noise: NoiseSource | None = None,
    replay: Transcript | None = None,
    stop_after: int | None = None,
) -> Transcript:
    """Fit ``synthesizer`` on ``data`` and return the transcript of its noise calls.

    ``noise`` is the source the draws are delegated to (``None`` with ``replay``); ``stop_after``
    ends the fit once that many noise calls are recorded (``complete`` stays False). An exception
    from the fit is caught and recorded in ``error`` (a :class:`ReplayDivergence` included).
    """
    recorder = RecordingNoise(noise, replay=replay, stop_after=stop_after)
    with noise_source(recorder):  # this thread's fits only: a fit elsewhere keeps its own noise
        try:
            synthesizer.fit(data, schema=schema, ledger=RecordingLedger(recorder))
            recorder.transcript.complete = True
        except TranscriptComplete:
            pass
        except ReplayDivergence as exc:
            recorder.transcript.error = f"replay diverged: {exc}"
        except Exception as exc:  # noqa: BLE001 - an audited fit may fail in any way; the audit reports it
            recorder.transcript.error = f"{type(exc).__name__}: {exc}"
    recorder.finish()
    return recorder.transcript
