"""Record/replay checks: run a synthesizer on two neighbouring datasets with the noisy releases
frozen, and check what DP needs from the code rather than from the noise.

The fit on dataset A is recorded (:mod:`dpsynth.audit.transcript`). The fit on its neighbour B (one
row added or removed) is given exactly A's noisy outputs: every Gaussian measurement returns A's
noisy counts and every selection returns A's index. This is the coupling in which B's noise draws
are A's shifted by the difference of the true answers, so the released values are equal and every
computation that is post-processing of them must be equal too. The check then asserts:

* ``noise_drawn``: every privacy event a mechanism spent has exactly one noise draw, and no draw
  happens without an event (noise removed, or drawn outside the accounting, fails here);
* ``declared_scale``: every draw uses the scale its event declares (σ of a Gaussian, 2Δ/ε of a
  selection);
* ``same_events``: both fits spend the same events (kinds, scales, sensitivities, labels, number
  of rounds) and plan the same thing;
* ``same_queries``: every measurement has the same size on both datasets (a domain learned from the
  data changes it) and the replayed fit asks for no other release;
* ``sensitivity``: every Gaussian input moves by at most its declared L2 sensitivity, every score
  vector of a selection by at most its declared sensitivity in L∞;
* ``same_result``: the fitted models are identical (learned state and a seeded sample): nothing
  but the mechanisms' inputs may depend on the data.

A pass is evidence about these pairs of datasets only; it is not a proof of DP. Replay fits read
private data and are NOT differentially private; the report holds no data row.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from dpsynth.audit.bounds import NOT_DP_NOTICE
from dpsynth.audit.transcript import GAUSSIAN, Transcript, record_fit
from dpsynth.mechanisms.noise import NoiseSource, SeededNoise
from dpsynth.schema.schema import Schema

#: Relative slack for float scores (AIM's and MST's scores are sums of floats).
_FLOAT_SLACK = 1e-9
#: Learned attributes that legitimately differ between two fits (wall times, the thread count
#: chosen from the machine's load when each fit started, ledger bookkeeping).
_IGNORED_STATE = {"timings_", "threads_", "ledger_entry_", "dataset_"}


@dataclass(frozen=True)
class Finding:
    """One check's outcome on one neighbouring pair."""
    check: str
    passed: bool
    message: str

    def to_dict(self) -> dict[str, Any]:
        """The finding as JSON-ready values."""
        return {"check": self.check, "passed": self.passed, "message": self.message}


@dataclass
class ReplayReport:
    """The outcome of the record/replay checks on one or more neighbouring pairs."""

    synthesizer: str
    pairs: dict[str, list[Finding]] = field(default_factory=dict)
    noise: str = ""
    notice: str = NOT_DP_NOTICE

    @property
    def passed(self) -> bool:
        """Whether some pair was checked and every check of every pair passed."""
        return bool(self.pairs) and all(f.passed for findings in self.pairs.values() for f in findings)

    def failures(self) -> list[str]:
        """Every failed check, one line each (``pair: check: message``)."""
        return [f"{pair}: {f.check}: {f.message}" for pair, fs in self.pairs.items() for f in fs if not f.passed]

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready values (holds no data row)."""
        return {
            "method": "record_replay",
            "synthesizer": self.synthesizer,
            "passed": self.passed,
            "violation": not self.passed,
            "noise": self.noise,
            "pairs": {name: [f.to_dict() for f in fs] for name, fs in self.pairs.items()},
            "failures": self.failures(),
            "notice": self.notice,
        }


# -- neighbouring datasets ---------------------------------------------------------------------------


def _decode(codes: np.ndarray, schema: Schema, seed: int) -> pd.DataFrame:
    from dpsynth.schema.encode import decode

    return decode(np.asarray(codes, dtype=np.int64), schema, np.random.default_rng(seed))


Pair = tuple[pd.DataFrame, pd.DataFrame]


def neighbouring_pairs(schema: Schema, *, rows: int = 10, seed: int = 0) -> dict[str, Pair]:
    """Synthetic neighbouring pairs (no real data) that exercise what the checks look for.

    * ``constant_plus_outlier``: ``rows`` rows at every column's first value, and the same plus
      one row at every column's last value (a value that is absent from the smaller table, which
      exposes a domain read from the data);
    * ``outlier_removed``: the same pair in the other direction;
    * ``random_plus_row``: random rows, and the same plus one more random row.
    """
    sizes = np.asarray(schema.sizes)
    rng = np.random.default_rng(seed)
    zeros = np.zeros((rows, len(sizes)), dtype=np.int64)
    outlier = (sizes - 1)[None, :]
    random_rows = rng.integers(0, sizes, size=(rows, len(sizes)))
    extra = rng.integers(0, sizes, size=(1, len(sizes)))
    constant, with_outlier = _decode(zeros, schema, seed), _decode(np.vstack([zeros, outlier]), schema, seed)
    return {
        "constant_plus_outlier": (constant, with_outlier),
        "outlier_removed": (with_outlier, constant),
        "random_plus_row": (_decode(random_rows, schema, seed), _decode(np.vstack([random_rows, extra]), schema, seed)),
    }


def neighbouring_people(schema: Schema, *, rows: int = 10, seed: int = 0) -> dict[str, Pair]:
    """Synthetic pairs that differ by one whole person, for a schema whose privacy unit is a user with
    at most K rows (no real data; the key column is the unit's).

    * ``person_of_identical_rows_added``: ``rows`` people of one random row each, and the same plus one
      person with K + 2 identical rows at every column's last value (more rows than K, all in one cell
      of every marginal: the worst case for the sensitivities, and what bounding must cut to K);
    * ``person_removed``: people of 1 to K + 2 random rows, and the same less one of them.
    """
    unit = schema.privacy_unit
    if unit.column is None:
        raise ValueError("neighbouring_people needs a schema with a user privacy unit (its key column)")
    sizes = np.asarray(schema.sizes)
    rng = np.random.default_rng(seed)
    many = unit.max_rows + 2

    def table(codes: np.ndarray, people: list[str]) -> pd.DataFrame:
        frame = _decode(codes, schema, seed)
        frame[unit.column] = people
        return frame

    singles = rng.integers(0, sizes, size=(rows, len(sizes)))
    ids = [f"p{i}" for i in range(rows)]
    worst = np.repeat((sizes - 1)[None, :], many, axis=0)
    counts = rng.integers(1, many + 1, size=rows)
    grouped = rng.integers(0, sizes, size=(int(counts.sum()), len(sizes)))
    owners = [f"p{i}" for i, c in enumerate(counts) for _ in range(c)]
    last = int(counts[-1])
    return {
        "person_of_identical_rows_added": (table(singles, ids),
                                           table(np.vstack([singles, worst]), [*ids, *["new"] * many])),
        "person_removed": (table(grouped, owners), table(grouped[:-last], owners[:-last])),
    }


# -- comparisons -------------------------------------------------------------------------------------


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        return a.shape == b.shape and bool(np.array_equal(a, b, equal_nan=a.dtype.kind == "f"))
    if isinstance(a, pd.DataFrame) and isinstance(b, pd.DataFrame):
        return a.equals(b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if hasattr(a, "__dict__") and type(a) is type(b) and not isinstance(a, type):
        return _same(vars(a), vars(b))
    if hasattr(a, "values") and hasattr(b, "values") and not callable(a.values):  # mbi Factor-like
        return _same(a.values, b.values)
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 - an incomparable object counts as different
        return False


def _learned_state(model: Any) -> dict[str, Any]:
    return {k: v for k, v in vars(model).items()
            if k.endswith("_") and not k.startswith("_") and k not in _IGNORED_STATE}


def _event_signature(transcript: Transcript) -> list[dict[str, Any] | str]:
    return [e.to_dict() if hasattr(e, "to_dict") else repr(e) for e in transcript.events]


def _check_transcript(name: str, t: Transcript) -> list[Finding]:
    findings = []
    if not t.calls:
        findings.append(Finding("noise_drawn", False, f"the fit on {name} drew no noise through dpsynth.mechanisms"
                                + (f" ({t.error})" if t.error else "")))
    elif t.unpaired_events or t.unaccounted_calls:
        parts = []
        if t.unpaired_events:
            labels = sorted({t.events[i].label or t.events[i].kind for i in t.unpaired_events})
            parts.append(f"{len(t.unpaired_events)} spent event(s) without a noise draw ({', '.join(labels)})")
        if t.unaccounted_calls:
            parts.append(f"{len(t.unaccounted_calls)} noise draw(s) without a spent event")
        findings.append(Finding("noise_drawn", False, f"on {name}: " + "; ".join(parts)))
    else:
        findings.append(Finding("noise_drawn", True, f"{len(t.calls)} draws, each paired with its event"))
    wrong = [(i, c.scale, c.declared_scale) for i, c in enumerate(t.calls)
             if c.declared_scale is not None and not math.isclose(c.scale, c.declared_scale, rel_tol=1e-9)]
    if wrong:
        i, used, declared = wrong[0]
        findings.append(Finding("declared_scale", False, f"on {name}: {len(wrong)} draw(s) at a scale other than "
                                f"declared (first: call {i} drew at {used:.6g}, its event declares {declared:.6g})"))
    else:
        findings.append(Finding("declared_scale", True, "every draw at its declared scale"))
    return findings


def _sensitivity_finding(a: Transcript, b: Transcript) -> Finding:
    """Whether every compared input moved by at most its declared sensitivity (L2 or L∞)."""
    worst: list[str] = []
    checked = 0
    for i, (ca, cb) in enumerate(zip(a.calls, b.calls, strict=False)):
        if ca.input.shape != cb.input.shape or ca.declared_sensitivity is None:
            continue
        checked += 1
        diff = cb.input.astype(float) - ca.input.astype(float)
        if ca.kind == GAUSSIAN:
            moved, bound, norm = float(np.sqrt(np.sum(diff**2))), ca.declared_sensitivity, "L2"
        else:
            moved, bound, norm = float(np.max(np.abs(diff), initial=0.0)), ca.declared_sensitivity, "L∞"
        if moved > bound * (1 + _FLOAT_SLACK) + _FLOAT_SLACK:
            label = ca.event.label if ca.event is not None else ca.kind
            worst.append(f"call {i} ({label}) input moved by {moved:.6g} in {norm} > declared sensitivity {bound:.6g}")
    if worst:
        return Finding("sensitivity", False, f"{len(worst)} call(s) exceed their sensitivity; first: {worst[0]}")
    if checked == 0:
        return Finding("sensitivity", False, "no noise call could be compared between the datasets")
    return Finding("sensitivity", True, f"{checked} calls within their declared sensitivity")


def compare_transcripts(a: Transcript, b: Transcript, model_a: Any = None, model_b: Any = None) -> list[Finding]:
    """The checks of one recorded fit (``a``) against its replay on the neighbour (``b``)."""
    findings = _check_transcript("dataset A", a)
    findings += [f for f in _check_transcript("dataset B", b) if not f.passed]
    # events, plan, rounds
    if _event_signature(a) != _event_signature(b) or [e.to_dict() for e in a.planned] != [
            e.to_dict() for e in b.planned]:
        findings.append(Finding("same_events", False, f"the fits spent different events ({len(a.events)} on A, "
                                f"{len(b.events)} on B) or planned differently"))
    else:
        findings.append(Finding("same_events", True, f"{len(a.events)} identical events"))
    # queries
    if b.error and b.error.startswith("replay diverged"):
        findings.append(Finding("same_queries", False, b.error))
    elif len(a.calls) != len(b.calls) or a.complete != b.complete:
        findings.append(Finding("same_queries", False, f"the fit on A drew {len(a.calls)} times, the replay on B "
                                f"{len(b.calls)} times" + (f" ({b.error or a.error})" if (b.error or a.error) else "")))
    else:
        findings.append(Finding("same_queries", True, "every measurement of the same size on both datasets"))
    findings.append(_sensitivity_finding(a, b))
    # the fitted models
    if a.complete and b.complete and model_a is not None and model_b is not None:
        state_a, state_b = _learned_state(model_a), _learned_state(model_b)
        differing = sorted(k for k in state_a.keys() | state_b.keys()
                           if k not in state_a or k not in state_b or not _same(state_a[k], state_b[k]))
        same_sample = True
        try:
            same_sample = model_a.sample(50, random_state=0).equals(model_b.sample(50, random_state=0))
        except Exception as exc:  # noqa: BLE001 - a sampler that fails is reported, not raised
            differing.append(f"sample() failed: {type(exc).__name__}")
        if differing or not same_sample:
            what = ", ".join(differing) or "a seeded sample"
            findings.append(Finding("same_result", False, f"the fitted models differ although every noisy release "
                                    f"was the same: {what} depend(s) on the data outside the mechanisms"))
        else:
            findings.append(Finding("same_result", True, f"identical fitted state ({len(state_a)} attributes) "
                                    "and seeded sample"))
    elif a.complete:
        findings.append(Finding("same_result", False, "the replayed fit did not complete"
                                + (f" ({b.error})" if b.error else "")))
    return findings


def replay_check(
    make_synthesizer: Callable[[], Any],
    schema: Schema,
    *,
    pairs: dict[str, Pair] | None = None,
    noise: Callable[[int], NoiseSource] | None = None,
    seed: int = 0,
    name: str | None = None,
) -> ReplayReport:
    """Run the record/replay checks for a synthesizer on neighbouring pairs.

    Args:
        make_synthesizer: returns a fresh, unfitted synthesizer (called twice per pair).
        schema: the public schema of the pairs.
        pairs: named (A, B) neighbouring tables; default :func:`neighbouring_pairs` of the schema, or
            :func:`neighbouring_people` at a user privacy unit.
        noise: builds the noise source of the recorded fit from a seed; default seeded noise
            (:class:`~dpsynth.mechanisms.SeededNoise`, insecure and fine here: the checks do not
            depend on the noise values and nothing is released).
        seed: seeds the default pairs and the noise (pair k draws from ``seed + k``).
        name: the synthesizer's name in the report; default its ``name`` attribute (or class name).
    """
    if pairs is None:  # at a user privacy unit the neighbours differ by one whole person
        people = schema.privacy_unit.column is not None
        pairs = neighbouring_people(schema, seed=seed) if people else neighbouring_pairs(schema, seed=seed)
    make_noise = noise or (lambda s: SeededNoise(s, _warn=False))
    first = make_synthesizer()
    report = ReplayReport(synthesizer=str(name or getattr(first, "name", type(first).__name__)))
    for k, (pair, (data_a, data_b)) in enumerate(pairs.items()):
        model_a = first if k == 0 else make_synthesizer()
        source = make_noise(seed + k)
        report.noise = "secure" if getattr(source, "secure", False) else "seeded (insecure, audit only)"
        recorded = record_fit(model_a, data_a, schema, noise=source)
        model_b = make_synthesizer()
        replayed = record_fit(model_b, data_b, schema, replay=recorded)
        if recorded.error:
            report.pairs[pair] = [Finding("fit", False, f"the recorded fit failed: {recorded.error}")]
            continue
        report.pairs[pair] = compare_transcripts(recorded, replayed, model_a, model_b)
    return report
