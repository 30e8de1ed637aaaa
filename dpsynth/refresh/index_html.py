"""``ROOT/<dataset>/index.html``: the history of a refresh series as one self-contained page.

Every version newest first (status, snapshot, ε and the composed total, checks, drift, links to its
publishable report and to the previous version), the interrupted attempts, and the budget over time
as an inline SVG plot (:func:`~dpsynth.release.html.series.budget_svg`, the plot a version's report
draws too). The page uses the release report's style and chart helpers (``dpsynth.release.html``):
inline CSS, no script, no external resource, a Content-Security-Policy that forbids both, everything
escaped.

Only publishable content is shown: each version's ``version.json`` and links into its ``publish/``
folder. Nothing is read from ``internal/``.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from dpsynth.refresh.history import (
    InterruptedAttempt,
    VersionRecord,
    check_counts,
    drift_text,
    pending_text,
    read_history,
    read_interrupted,
    read_pending,
    series_folder,
)
from dpsynth.release.html.markup import as_dict, as_float, data_table, esc, fmt, kv_table, section
from dpsynth.release.html.series import budget_svg
from dpsynth.release.html.style import document

__all__ = ["INDEX_FILE", "PUBLISHED", "render_index", "write_index"]

INDEX_FILE = "index.html"
#: The files of a version's ``publish/`` folder the page links to, when they exist.
PUBLISHED = ("report.html", "report.json", "manifest.json", "synthetic.csv")
_BADGE = {"released": "pass", "blocked": "fail", "refused": "error", "incomplete": "unknown"}
_EXTRA_CSS = """
.links a { margin-right: 6px; white-space: nowrap; }
.drift.above { color: var(--bad); font-weight: 600; }
"""


# -- the page -------------------------------------------------------------------------------------------


def _published(record: VersionRecord) -> list[tuple[str, str]]:
    """(link text, relative URL) of each publishable file of a version that exists."""
    publish = record.path / "publish"
    return [(name, f"{quote(record.label)}/publish/{quote(name)}") for name in PUBLISHED
            if (publish / name).is_file()]


def _links(record: VersionRecord) -> tuple[str, str]:
    links = "".join(f'<a href="{esc(url)}">{esc(text)}</a>' for text, url in _published(record))
    return ("html", f'<span class="links">{links}</span>' if links else '<span class="muted">no published file</span>')


def _status(record: VersionRecord) -> tuple[str, str]:
    return ("html", f'<span class="badge {_BADGE.get(record.status, "unknown")}">{esc(record.status.upper())}</span>')


def _previous(record: VersionRecord, labels: set[str]) -> Any:
    if record.previous is None:
        return "—" if record.complete else ""
    if record.previous in labels:
        return ("html", f'<a href="#{esc(record.previous)}">{esc(record.previous)}</a>')
    return f"{record.previous} (not in this folder)"


def _checks_cell(record: VersionRecord) -> Any:
    if not record.complete:
        return ""
    passed, failed, not_run = check_counts(record)
    text = f"{passed} passed, {len(failed)} failed" + (f", {not_run} not run" if not_run else "")
    if failed:
        text += ": " + ", ".join(failed)
    return text


def _drift_cell(record: VersionRecord) -> Any:
    drift = record.drift or {}
    tvd, threshold = as_float(drift.get("max_tvd")), as_float(drift.get("threshold"))
    above = tvd is not None and threshold is not None and tvd > threshold
    return ("html", f'<span class="{"drift above" if above else "drift"}">{esc(drift_text(record))}</span>')


def _epsilon_cell(record: VersionRecord) -> Any:
    if not record.complete:
        return ""
    return f"{fmt(record.epsilon)} (total {fmt(record.epsilon_total)})"


def _versions_table(records: Sequence[VersionRecord]) -> str:
    labels = {r.label for r in records if r.complete}
    rows = [(("html", f'<a id="{esc(r.label)}" href="#{esc(r.label)}{"-detail" if r.complete else ""}">'
                      f"{esc(r.label)}</a>"), _status(r),
             r.created_at or "", r.snapshot_name or ("(no version.json: the refresh stopped before writing it)"
                                                     if not r.complete else ""),
             _epsilon_cell(r), _checks_cell(r), _drift_cell(r), _previous(r, labels), _links(r)) for r in records]
    return data_table(["version", "status", "created", "snapshot", "ε (composed total)", "checks", "drift (max TVD)",
                       "previous", "published files"], rows, numeric=(4,),
                       row_class=lambda i: {"blocked": "fail", "refused": "error"}.get(records[i].status, ""))


def _version_detail(record: VersionRecord) -> str:
    """The details of one version: its parameters, reasons, checks and drift per column."""
    rows: list[tuple[str, Any]] = [
        ("Status", record.status), ("Created", record.created_at), ("Snapshot", record.snapshot_name),
        ("Snapshot fingerprint", record.snapshot.get("fingerprint")), ("Synthesizer", record.synthesizer),
        ("ε of the table", record.epsilon), ("δ", record.delta),
        ("ε of the table and the decision, composed", record.epsilon_total), ("Rows (public)", record.rows),
        ("Ledger entries", list(record.ledger_entries)), ("Compared with", record.previous)]
    out = [kv_table(rows)]
    if record.reasons:
        out.append("<ul>" + "".join(f"<li>{esc(r)}</li>" for r in record.reasons) + "</ul>")
    if record.checks:
        out.append(data_table(["check", "status", "value", "threshold"], [
            (c.get("id"), c.get("status"), c.get("value"),
             None if c.get("threshold") is None else f"{c.get('comparison') or ''} {fmt(c.get('threshold'))}".strip())
            for c in record.checks], numeric=(2, 3),
            row_class=lambda i: str(record.checks[i].get("status")) if record.checks[i].get("status") in
            ("fail", "error") else ""))
    out.append(_drift_detail(record.drift))
    return (f'<section id="{esc(record.label)}-detail"><h3>{esc(record.label)} · {esc(record.status)}</h3>'
            + "".join(out) + "</section>")


def _drift_detail(drift: dict[str, Any] | None) -> str:
    if not drift:
        return "<p class=muted>No drift measured (the first release, or nothing to compare with).</p>"
    head = (f"<p>Drift from the previous release ({esc(drift.get('statistic', 'TVD'))}): max "
            f"{esc(fmt(drift.get('max_tvd'), 3))} at {esc(drift.get('where') or '—')}, threshold "
            f"{esc(fmt(drift.get('threshold'), 3))}, noise floor {esc(fmt(drift.get('noise_floor'), 3))}.</p>")
    rows = []
    for kind in ("columns", "pairs"):
        for name, item in as_dict(drift.get(kind)).items():
            item = as_dict(item)
            rows.append((name, kind[:-1], as_float(item.get("tvd")), as_float(item.get("noise_floor")),
                         item.get("above_noise")))
    rows.sort(key=lambda r: -(r[2] or 0.0))
    table = data_table(["column or pair", "kind", "TVD", "noise floor", "above noise"], rows, numeric=(2, 3))
    return head + (table if rows else "")


def _interrupted_table(attempts: Sequence[InterruptedAttempt], pending: dict[str, Any] | None) -> str:
    note = f'<p class="note">{esc(pending_text(pending))}.</p>' if pending is not None else ""
    if not attempts:
        return note + "<p class=muted>No refresh of this series was interrupted.</p>"
    return (note + "<p>Refreshes killed before they wrote their version. Their ledger reservations stay spent "
            "(a reservation is final), so the budget counts them.</p>"
            + data_table(["snapshot", "would have been", "started", "detected", "ledger entries", "note"], [
                (a.snapshot.get("name") or "(unknown)", a.label, a.started_at, a.detected_at, list(a.ledger_entries),
                 a.note or "—") for a in attempts]))


def _budget_section(records: Sequence[VersionRecord]) -> str:
    done = [r for r in records if r.complete]
    newest = next((r.budget for r in done if r.budget), None)
    spent = [(r.label, v) for r in reversed(done) if (v := as_float(as_dict(r.budget).get("spent_epsilon")))
             is not None]
    if newest is None and not spent:
        return "<p class=muted>No version records a budget yet.</p>"
    budget = as_dict(newest)
    summary = kv_table([("Cap ε", budget.get("cap_epsilon")), ("Cap δ", budget.get("cap_delta")),
                        ("ε spent", budget.get("spent_epsilon")), ("ε remaining", budget.get("remaining_epsilon")),
                        ("Refreshes the cap still allows (forecast)", budget.get("forecast_refreshes_left")),
                        ("Refreshes the plan's horizon still needs", budget.get("horizon_left"))])
    return summary + budget_svg(budget, spent)


def render_index(dataset: str, records: Sequence[VersionRecord], interrupted: Sequence[InterruptedAttempt],
                 pending: dict[str, Any] | None = None) -> str:
    """The history page of a series as one self-contained HTML document (``pending``: a refresh that has not
    finished, :func:`~dpsynth.refresh.history.read_pending`)."""
    done = [r for r in records if r.complete]
    sub = (f"{len(done)} version(s)" + (f", newest {done[0].label} ({done[0].status})" if done else "")
           + (f"; {len(records) - len(done)} incomplete" if len(done) < len(records) else "")
           + (f"; {len(interrupted)} interrupted attempt(s)" if interrupted else ""))
    sections = [
        section("Versions, newest first", "versions",
                lambda: _versions_table(records) if records else "<p class=muted>No version yet.</p>"),
        section("Privacy budget over time", "budget", lambda: _budget_section(records)),
        section("Interrupted attempts", "interrupted", lambda: _interrupted_table(interrupted, pending)),
        section("Each version", "details", lambda: "".join(_version_detail(r) for r in done)
                or "<p class=muted>No version yet.</p>"),
        section("What this page shows", "notice", lambda: (
            "<p>Only publishable content: each version's <code>version.json</code> (its decision, its privacy "
            "parameters, its checks and its drift, measured on released DP artifacts only) and links into its "
            "<code>publish/</code> folder. Nothing here was read from a version's <code>internal/</code> "
            "folder.</p>")),
    ]
    header = f"<header><h1>dpsynth release history: {esc(dataset)}</h1><p class=sub>{esc(sub)}</p></header>"
    return document(f"dpsynth release history · {esc(dataset)}", header + "\n" + "\n".join(sections),
                    extra_css=_EXTRA_CSS)


def write_index(root: str | Path, dataset: str) -> Path:
    """Write ``ROOT/<dataset>/index.html`` from the series' versions and interrupted attempts, atomically
    (a temporary file in the same folder, then :func:`os.replace`), and return its path.

    Raises:
        ParameterError: the folder does not exist or holds a malformed ``version.json`` or
            ``interrupted.jsonl`` (nothing is written then).
    """
    folder = series_folder(root, dataset)
    page = render_index(dataset, read_history(root, dataset), read_interrupted(root, dataset),
                        read_pending(root, dataset))
    target = folder / INDEX_FILE
    fd, tmp = tempfile.mkstemp(prefix=".index.", suffix=".html.tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(page)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
