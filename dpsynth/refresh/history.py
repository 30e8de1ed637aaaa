"""The reading side of a refresh series: every version of ``ROOT/<dataset>/`` and the interrupted attempts.

A series lives in ``ROOT/<dataset>/``: one folder per version (``v0001``, ``v0002``, …) holding what
``dpsynth release`` writes (``publish/``, ``internal/``) and ``version.json``, the version's publishable
summary (format ``dpsynth-refresh-version/1``); and ``interrupted.jsonl``, one JSON object a line for a
refresh that was killed before it wrote its version (its reservation stays spent).

:func:`read_history` reads and validates every ``version.json``, newest first; a version folder without
one (a refresh that stopped before writing it) is an ``"incomplete"`` record, not an error.
:func:`read_interrupted` reads ``interrupted.jsonl``. What is malformed raises
:class:`~dpsynth.exceptions.ParameterError` with one line naming the file and the key. Nothing here
reads ``internal/``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from dpsynth.exceptions import ParameterError

__all__ = [
    "FORMAT",
    "HISTORY_COLUMNS",
    "INCOMPLETE",
    "STATUSES",
    "InterruptedAttempt",
    "VersionRecord",
    "check_counts",
    "drift_text",
    "format_history",
    "history_rows",
    "pending_text",
    "read_history",
    "read_interrupted",
    "read_pending",
    "series_folder",
]

#: The ``format`` of a ``version.json`` this reader understands.
FORMAT = "dpsynth-refresh-version/1"
#: The statuses a written version can have.
STATUSES = ("released", "blocked", "refused")
#: The status of a version folder without ``version.json``.
INCOMPLETE = "incomplete"
CHECK_STATUSES = ("pass", "fail", "error", "not_run")
VERSION_DIR = re.compile(r"v(\d{4,})")
INTERRUPTED_FILE = "interrupted.jsonl"
ATTEMPT_FILE = "attempt.json"
_DATASET = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,199}")
#: Characters of a value quoted in an error message.
_QUOTE = 60


@dataclass(frozen=True)
class VersionRecord:
    """One version of a series, as its ``version.json`` says (``status == "incomplete"``: the folder has
    no ``version.json``, and every field but ``dataset``, ``version``, ``label`` and ``path`` is empty).

    The fields are the keys of ``version.json``; ``path`` is the version's folder.
    """

    path: Path
    dataset: str
    version: int
    label: str
    status: str
    format: str = FORMAT
    created_at: str | None = None
    snapshot: dict[str, str] = field(default_factory=dict)
    previous: str | None = None
    synthesizer: str | None = None
    epsilon: float | None = None
    delta: float | None = None
    epsilon_total: float | None = None
    rows: int | None = None
    ledger_entries: tuple[int, ...] = ()
    reasons: tuple[str, ...] = ()
    checks: tuple[dict[str, Any], ...] = ()
    drift: dict[str, Any] | None = None
    budget: dict[str, Any] | None = None

    @property
    def complete(self) -> bool:
        """Whether the version wrote its ``version.json``."""
        return self.status != INCOMPLETE

    @property
    def snapshot_name(self) -> str | None:
        """The snapshot's file name (None for an incomplete folder)."""
        return self.snapshot.get("name")

    def to_dict(self) -> dict[str, Any]:
        """The record as JSON-ready data: the keys of ``version.json`` and ``path`` (an incomplete folder:
        only ``dataset``, ``version``, ``label``, ``status`` and ``path``)."""
        if not self.complete:
            return {"dataset": self.dataset, "version": self.version, "label": self.label, "status": self.status,
                    "path": str(self.path)}
        return {"format": self.format, "dataset": self.dataset, "version": self.version, "label": self.label,
                "status": self.status, "created_at": self.created_at, "snapshot": dict(self.snapshot),
                "previous": self.previous, "synthesizer": self.synthesizer, "epsilon": self.epsilon,
                "delta": self.delta, "epsilon_total": self.epsilon_total, "rows": self.rows,
                "ledger_entries": list(self.ledger_entries), "reasons": list(self.reasons),
                "checks": [dict(c) for c in self.checks], "drift": self.drift, "budget": self.budget,
                "path": str(self.path)}


@dataclass(frozen=True)
class InterruptedAttempt:
    """A refresh killed before it wrote its version (a line of ``interrupted.jsonl``); its ledger
    entries stay spent."""

    snapshot: dict[str, str | None]
    started_at: str | None
    detected_at: str
    ledger_entries: tuple[int, ...]
    note: str
    line: int
    label: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The attempt as JSON-ready data (the keys of its line, and its line number)."""
        return {"snapshot": dict(self.snapshot), "started_at": self.started_at, "detected_at": self.detected_at,
                "ledger_entries": list(self.ledger_entries), "note": self.note, "label": self.label,
                "line": self.line}


def _quote(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _QUOTE else text[: _QUOTE - 1] + "…"


class _Reader:
    """Typed reads of one JSON object, each failure one line naming ``where`` and the key."""

    def __init__(self, where: str, obj: Any, prefix: str = ""):
        self.where, self.prefix = where, prefix
        if not isinstance(obj, dict):
            raise self.fail(prefix.rstrip(".") or "the top level", obj, "a JSON object")
        self.obj: dict[str, Any] = obj

    def fail(self, key: str, value: Any, constraint: str) -> ParameterError:
        return ParameterError(f"{self.where}: key {key!r} ({_quote(value)}) must be {constraint}")

    def get(self, key: str, *, required: bool) -> Any:
        if key not in self.obj:
            if required:
                raise ParameterError(f"{self.where}: key {self.prefix + key!r} is missing")
            return None
        return self.obj[key]

    def text(self, key: str, *, required: bool = True, nullable: bool = False) -> str | None:
        value = self.get(key, required=required)
        if value is None and (nullable or not required):
            return None
        if not isinstance(value, str) or not value:
            raise self.fail(self.prefix + key, value, "a non-empty string")
        return value

    def number(self, key: str, *, required: bool = True, nullable: bool = False, least: float = 0.0) -> float | None:
        value = self.get(key, required=required)
        if value is None and (nullable or not required):
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                or value < least:
            raise self.fail(self.prefix + key, value, f"a finite number >= {least:g}")
        return float(value)

    def integer(self, key: str, *, required: bool = True, nullable: bool = False, least: int = 0) -> int | None:
        value = self.get(key, required=required)
        if value is None and (nullable or not required):
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise self.fail(self.prefix + key, value, f"an integer >= {least}")
        return value

    def choice(self, key: str, choices: Sequence[str]) -> str:
        value = self.get(key, required=True)
        if value not in choices:
            raise self.fail(self.prefix + key, value, "one of " + ", ".join(choices))
        return str(value)

    def timestamp(self, key: str, *, required: bool = True, nullable: bool = False) -> str | None:
        value = self.text(key, required=required, nullable=nullable)
        if value is not None:
            try:
                datetime.fromisoformat(value)
            except ValueError:
                raise self.fail(self.prefix + key, value, "an ISO 8601 time") from None
        return value

    def entries(self, key: str) -> tuple[int, ...]:
        value = self.get(key, required=True)
        if not isinstance(value, list) or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in value):
            raise self.fail(self.prefix + key, value, "a list of ledger entry numbers (integers >= 1)")
        return tuple(value)

    def texts(self, key: str) -> tuple[str, ...]:
        value = self.get(key, required=True)
        if not isinstance(value, list) or any(not isinstance(v, str) for v in value):
            raise self.fail(self.prefix + key, value, "a list of strings")
        return tuple(value)

    def child(self, key: str, *, nullable: bool = False) -> _Reader | None:
        value = self.get(key, required=not nullable)
        if value is None and nullable:
            return None
        if not isinstance(value, dict):
            raise self.fail(self.prefix + key, value, "a JSON object" + (" or null" if nullable else ""))
        return _Reader(self.where, value, f"{self.prefix}{key}.")


def series_folder(root: str | Path, dataset: str) -> Path:
    """``ROOT/<dataset>``, checked: ``dataset`` is a plain name and the folder exists."""
    if not isinstance(dataset, str) or not _DATASET.fullmatch(dataset) or dataset in (".", ".."):
        raise ParameterError(f"dataset ({_quote(dataset)}) must be a plain name (letters, digits, '_', '-', '.')")
    base = Path(root)
    if not base.is_dir():
        raise ParameterError(f"releases folder {str(base)!r} does not exist or is not a folder")
    folder = base / dataset
    if not folder.is_dir():
        raise ParameterError(f"no series of dataset {dataset!r} in {str(base)!r} (no folder {str(folder)!r})")
    return folder


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ParameterError(f"{path}: not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise ParameterError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    except OSError as exc:
        raise ParameterError(f"{path}: cannot be read ({exc.strerror or type(exc).__name__})") from None


def _snapshot(reader: _Reader) -> dict[str, str]:
    snap = reader.child("snapshot")
    assert snap is not None
    return {"name": str(snap.text("name")), "fingerprint": str(snap.text("fingerprint"))}


def _checks(reader: _Reader) -> tuple[dict[str, Any], ...]:
    value = reader.get("checks", required=True)
    if not isinstance(value, list):
        raise reader.fail("checks", value, "a list of checks")
    out = []
    for i, item in enumerate(value):
        check = _Reader(reader.where, item, f"checks[{i}].")
        check.text("id")
        check.choice("status", CHECK_STATUSES)
        check.get("comparison", required=False)
        out.append(dict(check.obj))
    return tuple(out)


def _drift(reader: _Reader) -> dict[str, Any] | None:
    drift = reader.child("drift", nullable=True)
    if drift is None:
        return None
    drift.number("max_tvd", nullable=True)
    drift.number("threshold", required=False, nullable=True)
    drift.number("noise_floor", required=False, nullable=True)
    drift.text("where", required=False, nullable=True)
    for key in ("columns", "pairs"):
        part = drift.child(key, nullable=True) if key in drift.obj else None
        for name, item in (part.obj.items() if part else ()):
            entry = _Reader(drift.where, item, f"{drift.prefix}{key}.{name}.")
            entry.number("tvd", nullable=True)
            entry.number("noise_floor", required=False, nullable=True)
    return dict(drift.obj)


def _budget(reader: _Reader) -> dict[str, Any] | None:
    budget = reader.child("budget", nullable=True)
    if budget is None:
        return None
    for key in ("cap_epsilon", "spent_epsilon", "remaining_epsilon"):
        budget.number(key, required=False, nullable=True, least=-math.inf if key == "remaining_epsilon" else 0.0)
    for key in ("forecast_refreshes_left", "horizon_left"):
        budget.integer(key, required=False, nullable=True)
    curve = budget.get("curve", required=False)
    if curve is not None:
        if not isinstance(curve, list):
            raise budget.fail(budget.prefix + "curve", curve, "a list of points")
        for i, point in enumerate(curve):
            p = _Reader(budget.where, point, f"{budget.prefix}curve[{i}].")
            p.integer("refreshes")
            p.number("epsilon")
    return dict(budget.obj)


def _version(path: Path, dataset: str, number: int) -> VersionRecord:
    """The record of one version folder (incomplete when it has no ``version.json``)."""
    label = path.name
    file = path / "version.json"
    if not file.is_file():
        return VersionRecord(path=path, dataset=dataset, version=number, label=label, status=INCOMPLETE)
    r = _Reader(str(file), _load_json(file))
    fmt = r.get("format", required=True)
    if fmt != FORMAT:
        raise r.fail("format", fmt, repr(FORMAT) + " (written by another dpsynth?)")
    if r.get("dataset", required=True) != dataset:
        raise r.fail("dataset", r.obj["dataset"], f"{dataset!r}, the series' folder")
    if r.integer("version", least=1) != number:
        raise r.fail("version", r.obj["version"], f"{number}, the number of its folder {label!r}")
    if r.text("label") != label:
        raise r.fail("label", r.obj["label"], f"{label!r}, the name of its folder")
    previous = r.text("previous", nullable=True)
    if previous is not None and not VERSION_DIR.fullmatch(previous):
        raise r.fail("previous", previous, "a version label such as 'v0001', or null")
    return VersionRecord(
        path=path, dataset=dataset, version=number, label=label, status=r.choice("status", STATUSES),
        created_at=r.timestamp("created_at"), snapshot=_snapshot(r), previous=previous,
        synthesizer=r.text("synthesizer"), epsilon=r.number("epsilon"), delta=r.number("delta"),
        epsilon_total=r.number("epsilon_total", nullable=True), rows=r.integer("rows", nullable=True),
        ledger_entries=r.entries("ledger_entries"), reasons=r.texts("reasons"), checks=_checks(r),
        drift=_drift(r), budget=_budget(r))


def read_history(root: str | Path, dataset: str) -> list[VersionRecord]:
    """Every version of ``ROOT/<dataset>``, newest (highest number) first.

    A version folder is named ``v`` and at least four digits; anything else in the series folder
    (``index.html``, ``interrupted.jsonl``, a temporary folder) is not a version. A version folder
    without ``version.json`` is an ``"incomplete"`` record.

    Raises:
        ParameterError: the folder does not exist, or a ``version.json`` is malformed (one line naming
            the file and the key).
    """
    folder = series_folder(root, dataset)
    found: dict[int, Path] = {}
    for child in folder.iterdir():
        match = VERSION_DIR.fullmatch(child.name)
        if match is None or not child.is_dir():
            continue
        number = int(match.group(1))
        if number < 1 or number in found:
            raise ParameterError(f"{child}: a version folder must be v and a number >= 1, each number once "
                                 f"({found.get(number, child).name!r} and {child.name!r})")
        found[number] = child
    return [_version(found[n], dataset, n) for n in sorted(found, reverse=True)]


def _attempt(where: str, obj: Any, line: int) -> InterruptedAttempt:
    """One line of ``interrupted.jsonl``. Its snapshot may be unknown (the record of the attempt was lost
    with the kill): a missing or empty ``snapshot`` reads as unknown, not as an error."""
    r = _Reader(where, obj)
    note = r.get("note", required=False)
    if note is not None and not isinstance(note, str):
        raise r.fail("note", note, "a string")
    snap = r.child("snapshot", nullable=True) if "snapshot" in r.obj else None
    snapshot = {"name": snap.text("name", required=False, nullable=True) if snap else None,
                "fingerprint": snap.text("fingerprint", required=False, nullable=True) if snap else None}
    label = r.text("label", required=False, nullable=True)
    if label is not None and not VERSION_DIR.fullmatch(label):
        raise r.fail("label", label, "a version label such as 'v0001', or null")
    return InterruptedAttempt(snapshot=snapshot, started_at=r.timestamp("started_at", required=False),
                              detected_at=str(r.timestamp("detected_at")), ledger_entries=r.entries("ledger_entries"),
                              note=note or "", line=line, label=label)


def read_interrupted(root: str | Path, dataset: str) -> list[InterruptedAttempt]:
    """The interrupted attempts of ``ROOT/<dataset>`` (``interrupted.jsonl``), newest (last written)
    first; none when the file does not exist. Blank lines are skipped.

    Raises:
        ParameterError: the folder does not exist, or a line is malformed (one line naming the file, the
            line number and the key).
    """
    file = series_folder(root, dataset) / INTERRUPTED_FILE
    if not file.is_file():
        return []
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ParameterError(f"{file}: cannot be read as UTF-8 text ({type(exc).__name__})") from None
    attempts = []
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        where = f"{file} line {number}"
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ParameterError(f"{where}: not valid JSON ({exc.msg})") from None
        attempts.append(_attempt(where, obj, number))
    return attempts[::-1]


# -- summaries shared by the text, the JSON and the HTML page ---------------------------------------------


def check_counts(record: VersionRecord) -> tuple[int, list[str], int]:
    """(checks passed, ids of the checks that failed or errored, checks not run) of a version."""
    passed = sum(1 for c in record.checks if c.get("status") == "pass")
    failed = [str(c.get("id")) for c in record.checks if c.get("status") in ("fail", "error")]
    not_run = sum(1 for c in record.checks if c.get("status") == "not_run")
    return passed, failed, not_run


def _g(value: Any, digits: int = 4) -> str:
    return "—" if value is None else f"{value:.{digits}g}"


def drift_text(record: VersionRecord) -> str:
    """The drift from the previous release as a short line: max TVD, where, against the threshold, and
    whether it is above the noise floor."""
    drift = record.drift
    if not drift:
        return "—" if record.complete else ""
    tvd, threshold, floor = drift.get("max_tvd"), drift.get("threshold"), drift.get("noise_floor")
    text = f"{_g(tvd, 3)}"
    if drift.get("where"):
        text += f" at {drift['where']}"
    if threshold is not None and tvd is not None:
        text += f" {'>' if tvd > threshold else '<='} {_g(threshold, 3)}"
    elif threshold is None:
        text += " (no threshold)"
    if floor is not None and tvd is not None:
        text += " (above noise)" if tvd > floor else " (within noise)"
    return text


#: The columns of :func:`history_rows`.
HISTORY_COLUMNS = ("version", "status", "created", "snapshot", "epsilon total", "checks failed", "drift (max TVD)")


def _printable(text: str) -> str:
    """``text`` with control characters shown as escapes (a name cannot rewrite the terminal)."""
    return text if text.isprintable() else text.encode("unicode_escape").decode("ascii")


def history_rows(records: Sequence[VersionRecord]) -> list[tuple[str, ...]]:
    """One row of text per version (the columns of :data:`HISTORY_COLUMNS`), in the order given."""
    rows: list[tuple[str, ...]] = []
    for rec in records:
        if not rec.complete:
            rows.append((rec.label, INCOMPLETE, "—", "(no version.json: the refresh stopped before writing it)",
                         "—", "—", ""))
            continue
        _passed, failed, _not_run = check_counts(rec)
        rows.append((rec.label, rec.status, str(rec.created_at), _printable(rec.snapshot_name or ""),
                     _g(rec.epsilon_total), ", ".join(_printable(f) for f in failed) or "none",
                     _printable(drift_text(rec))))
    return rows


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
            for row in [tuple(headers), *rows]]


def _attempt_line(a: InterruptedAttempt) -> str:
    entries = ", ".join(str(e) for e in a.ledger_entries) or "none"
    name = _printable(a.snapshot.get("name") or "(snapshot unknown)")
    would = f" (would have been {a.label})" if a.label else ""
    note = f": {_printable(a.note)}" if a.note else ""
    return f"  {name}{would}: started {a.started_at or '—'}, detected {a.detected_at}, ledger entries {entries}{note}"


def pending_text(pending: dict[str, Any]) -> str:
    """The line about a refresh that started and has not finished (:func:`read_pending`)."""
    if pending.get("unreadable"):
        return f"a refresh started and has not finished ({ATTEMPT_FILE} is unreadable): running now, or killed"
    what = ", ".join(f"{k.replace('_', ' ')} {_printable(str(v))}" for k, v in pending.items() if v is not None)
    return (f"a refresh started and has not finished ({what or ATTEMPT_FILE}): running now, or killed (the next "
            "dpsynth refresh records it as interrupted)")


def read_pending(root: str | Path, dataset: str) -> dict[str, Any] | None:
    """The refresh of the series that started and has not finished (its ``attempt.json``: running now, or
    killed and not yet seen by the next refresh), as ``label``, ``snapshot`` (its name) and ``started_at``;
    ``{"unreadable": True}`` when the file cannot be read; None when there is none. Never raises on its
    content (it may be half-written)."""
    file = series_folder(root, dataset) / ATTEMPT_FILE
    if not file.is_file():
        return None
    try:
        obj = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"unreadable": True}
    if not isinstance(obj, dict):
        return {"unreadable": True}
    snapshot = obj.get("snapshot")
    name = snapshot.get("name") if isinstance(snapshot, dict) else None
    out = {"label": obj.get("label"), "snapshot": name, "started_at": obj.get("started_at")}
    return {k: (v if isinstance(v, str) else None) for k, v in out.items()}


def format_history(dataset: str, records: Sequence[VersionRecord], interrupted: Sequence[InterruptedAttempt] = (),
                   pending: dict[str, Any] | None = None) -> str:
    """The history as text: a line per version, newest first, the interrupted attempts, a refresh that has
    not finished (``pending``, :func:`read_pending`) and the budget."""
    done = [r for r in records if r.complete]
    lines = [f"history of {dataset!r}: {len(done)} version(s)"
             + (f", newest {done[0].label} ({done[0].status})" if done else "")
             + (f", {len(records) - len(done)} incomplete" if len(done) < len(records) else "")]
    if records:
        lines += _table(HISTORY_COLUMNS, history_rows(records))
    if interrupted:
        lines.append(f"interrupted attempts (killed before writing their version; their reservations stay spent): "
                     f"{len(interrupted)}")
        lines += [_attempt_line(a) for a in interrupted]
    if pending is not None:
        lines.append(pending_text(pending))
    budget = next((r.budget for r in done if r.budget), None)
    if budget:
        lines.append(f"budget: spent epsilon {_g(budget.get('spent_epsilon'))} of cap {_g(budget.get('cap_epsilon'))}"
                     f", remaining {_g(budget.get('remaining_epsilon'))}; forecast: "
                     f"{budget.get('forecast_refreshes_left', '—')} more refresh(es) fit, horizon "
                     f"{budget.get('horizon_left', '—')} left")
    return "\n".join(lines)
