"""``report.html``: a self-contained rendering of a release report for people.

:func:`render_html` turns the canonical report (the JSON object that validates against
``report.schema.json``) into one HTML document: inline CSS, inline SVG plots drawn here, no
JavaScript, no external URL of any kind (a Content-Security-Policy in the page forbids scripts and
every fetch, as a second line of defence), readable on screen and in print.

Order: the verdict and its reasons; opt-ins (loudly, when any); the privacy claim and the budget over
time; every check with its value, threshold and status; fidelity (real against synthetic marginals);
the audits (ROC curves, the ε lower bound against the claim); PII findings (masked examples only, as
the scan gives them); replay rates against their baseline; provenance (versions, input and policy
hashes, artifacts); the not-DP notice.

Everything taken from the report is escaped (text and attributes, SVG ``<text>`` included): a
column or level named ``<script>`` renders as text. The renderer never raises on a report with
missing or malformed evidence: a section it cannot draw says so in the page.
"""

from __future__ import annotations

import html
import json
import math
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

__all__ = ["render_html"]

#: A column with more levels than MAX_FULL is drawn as its MAX_BARS largest levels (in the schema's
#: order) and one "other" bar summing the rest.
MAX_BARS = 12
MAX_FULL = 16
#: Points kept per ROC curve (the curve is thinned evenly beyond this).
MAX_ROC_POINTS = 400
#: Characters of a level or column name shown in a plot (the full name is in the tooltip).
MAX_LABEL = 26

_REAL, _SYNTH = "#4c72b0", "#dd8452"
_PALETTE = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c")
_CAP, _OK, _BAD, _WARN = "#c0392b", "#1e8449", "#c0392b", "#b9770e"

_VERDICTS = {
    "released": ("RELEASED", "released", "Every check passed; the synthetic table was written."),
    "blocked": ("BLOCKED", "blocked", "The policy blocked this release; no synthetic table was written."),
    "refused": ("REFUSED", "refused",
                "The ledger refused the budget; nothing was computed from the private data."),
}
_STATUS = {"pass": ("PASS", "pass"), "fail": ("FAIL", "fail"), "error": ("ERROR", "error"),
           "not_run": ("NOT RUN", "notrun")}
_READS = {"public": "public input / ledger", "dp_output": "DP output only", "private_dp": "private rows, with DP",
          "private_not_dp": "private rows WITHOUT privacy"}
_COMPARISON = {"<=": "≤", ">=": "≥", "==": "=", "none_of": "none of", "not_above_baseline": "≤ baseline"}

_CSS = """
:root { --ok: #1e8449; --bad: #c0392b; --warn: #b9770e; --muted: #5d6d7e; --line: #d5d8dc; }
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       color: #1c2833; margin: 0; background: #fff; }
main { max-width: 1100px; margin: 0 auto; padding: 24px 28px 48px; }
h1 { font-size: 1.35em; margin: 0 0 4px; }
h2 { font-size: 1.15em; margin: 32px 0 10px; padding-bottom: 4px; border-bottom: 2px solid var(--line); }
h3 { font-size: 1em; margin: 18px 0 6px; }
.sub, .muted { color: var(--muted); }
.nowrap { white-space: nowrap; }
.sub { margin: 0 0 16px; font-size: .92em; }
.verdict { border-radius: 8px; padding: 18px 22px; color: #fff; margin: 8px 0 14px; }
.verdict .word { font-size: 2.6em; font-weight: 800; letter-spacing: .06em; line-height: 1.1; }
.verdict p { margin: 6px 0 0; }
.verdict ul { margin: 8px 0 0; padding-left: 1.2em; }
.verdict.released { background: var(--ok); }
.verdict.blocked { background: var(--bad); }
.verdict.refused { background: #6e2c00; }
.verdict.unknown { background: #566573; }
.alarm { border: 3px solid var(--bad); background: #fdedec; padding: 10px 16px; border-radius: 6px; margin: 12px 0; }
.alarm strong { color: var(--bad); }
.note { border-left: 4px solid var(--warn); background: #fef9e7; padding: 8px 14px; margin: 10px 0; }
.notice { border: 2px solid #1c2833; padding: 12px 16px; margin: 14px 0; font-weight: 600; }
table { border-collapse: collapse; width: 100%; margin: 6px 0 12px; font-size: .9em; }
th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: #f4f6f7; font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.kv { width: auto; min-width: 50%; }
.cols { display: grid; grid-template-columns: repeat(auto-fit, minmax(380px, 1fr)); gap: 0 32px; }
.cols table.kv { width: 100%; min-width: 0; }
td code.id { white-space: nowrap; overflow-wrap: normal; }
table.kv td { overflow-wrap: anywhere; }
table.kv th { width: 14em; background: none; font-weight: 600; color: #34495e; }
tr.fail td, tr.error td { background: #fdedec; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: .8em; font-weight: 700;
         color: #fff; white-space: nowrap; }
.badge.pass { background: var(--ok); } .badge.fail { background: var(--bad); }
.badge.error { background: #7b241c; } .badge.notrun { background: #85929e; }
.badge.unknown { background: #566573; }
code, .mono { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: .88em;
              overflow-wrap: anywhere; }
pre { background: #f4f6f7; padding: 10px 12px; overflow-x: auto; font-size: .82em; white-space: pre-wrap;
      overflow-wrap: anywhere; }
figure { margin: 8px 0 16px; break-inside: avoid; page-break-inside: avoid; }
figcaption { font-size: .85em; color: var(--muted); margin-top: 2px; }
svg { max-width: 100%; height: auto; display: block; }
svg text { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(470px, 1fr)); gap: 4px 24px; }
.legend { font-size: .85em; margin: 2px 0 6px; }
.swatch { display: inline-block; width: 11px; height: 11px; margin: 0 4px 0 10px; vertical-align: -1px; }
.swatch:first-child { margin-left: 0; }
.broken { border: 2px dashed var(--bad); padding: 8px 12px; color: var(--bad); }
@media print {
  body { font-size: 11pt; }
  main { max-width: none; padding: 0; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  h2 { break-after: avoid; page-break-after: avoid; }
  tr, figure, .verdict, .alarm, .notice { break-inside: avoid; page-break-inside: avoid; }
  .grid { display: block; }
  pre { white-space: pre-wrap; }
}
"""

# Scripts, fetches, frames and forms are all refused; only the inline styles above apply.
_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"


# -- small helpers --------------------------------------------------------------------------------


_BIDI = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _e(value: Any) -> str:
    """Escape any value for HTML text or a quoted attribute (also inside SVG).

    Bidirectional control characters (which would reorder the text around them, e.g. a column name
    that reads backwards) are shown as their code point, ``<U+202E>``, instead of acting.
    """
    text = html.escape(str(value), quote=True)
    return _BIDI.sub(lambda m: f"&lt;U+{ord(m.group()):04X}&gt;", text)


def _get(obj: Any, *keys: Any, default: Any = None) -> Any:
    """``obj[k1][k2]…`` through dicts and lists, or ``default`` when any step is missing."""
    for key in keys:
        if isinstance(obj, dict) and key in obj:
            obj = obj[key]
        elif isinstance(obj, list) and isinstance(key, int) and -len(obj) <= key < len(obj):
            obj = obj[key]
        else:
            return default
    return obj


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _float(value: Any) -> float | None:
    """A finite float, or None (booleans and non-numbers are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    out = float(value)
    return out if math.isfinite(out) else None


def _fmt(value: Any, digits: int = 4) -> str:
    """A value as short text (not escaped)."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "∞" if value > 0 else "−∞"
        return "0" if value == 0 else f"{value:.{digits}g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_fmt(v, digits) for v in value) if value else "(none)"
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value)


def _pct(share: float | None, digits: int = 1) -> str:
    return "—" if share is None else f"{100 * share:.{digits}f}%"


def _short(text: str, limit: int = MAX_LABEL) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _kv(rows: Iterable[tuple[str, Any]], *, raw: bool = False) -> str:
    """A two-column table; values are formatted and escaped unless ``raw`` (already HTML)."""
    body = "".join(f"<tr><th>{_e(k)}</th><td>{v if raw else _e(_fmt(v))}</td></tr>" for k, v in rows)
    return f'<table class="kv">{body}</table>' if body else ""


def _table(headers: Sequence[str], rows: Iterable[Sequence[Any]], *, numeric: Sequence[int] = (),
           row_class: Callable[[int], str] | None = None) -> str:
    """A table of formatted, escaped cells (a cell given as ``("html", text)`` is inserted as is)."""
    head = "".join(f'<th{" class=num" if i in numeric else ""}>{_e(h)}</th>' for i, h in enumerate(headers))
    body = []
    for r, row in enumerate(rows):
        cells = []
        for i, cell in enumerate(row):
            text = cell[1] if isinstance(cell, tuple) and len(cell) == 2 and cell[0] == "html" else _e(_fmt(cell))
            # right-aligned: numbers, and short preformatted figures ("4.1%", "29 / 32,561") in numeric columns
            number = cell is None or (isinstance(cell, (int, float)) and not isinstance(cell, bool)) or (
                isinstance(cell, str) and len(cell) < 24)
            cells.append(f'<td{" class=num" if i in numeric and number else ""}>{text}</td>')
        cls = row_class(r) if row_class else ""
        body.append(f'<tr{f" class={cls}" if cls else ""}>{"".join(cells)}</tr>')
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _section(title: str, anchor: str, draw: Callable[[], str]) -> str:
    """A section; if drawing it fails, the page says so instead of the renderer raising."""
    try:
        inner = draw()
    except Exception as exc:  # noqa: BLE001 - a malformed evidence object must not lose the whole report
        inner = (f'<p class="broken">This section could not be drawn from the report '
                 f"({_e(type(exc).__name__)}: {_e(exc)}). The JSON report holds the data.</p>")
    return f'<section id="{_e(anchor)}"><h2>{_e(title)}</h2>{inner}</section>'


def _absent(what: str) -> str:
    return (f"<p class=muted>{_e(what)}: the policy did not ask for it, or the release stopped before it "
            "(see the checks).</p>")


def _nice_ticks(hi: float, count: int = 5) -> list[float]:
    """Round tick values from 0 to at least ``hi``."""
    if not hi > 0:
        return [0.0, 1.0]
    raw = hi / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    ticks = [0.0]
    while ticks[-1] < hi - 1e-12 * hi:
        ticks.append(round(ticks[-1] + step, 12))
    return ticks


def _legend(items: Sequence[tuple[str, str]]) -> str:
    return '<div class="legend">' + "".join(
        f'<span class="swatch" style="background:{color}"></span>{_e(label)}' for label, color in items) + "</div>"


def _svg(width: int, height: int, body: str, label: str) -> str:
    return (f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
            f'aria-label="{_e(label)}">{body}</svg>')


def _text(x: float, y: float, text: Any, *, size: int = 11, anchor: str = "start", color: str = "#1c2833",
          weight: str = "normal", title: Any = None) -> str:
    tip = f"<title>{_e(title)}</title>" if title is not None else ""
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" fill="{color}" '
            f'font-weight="{weight}">{tip}{_e(text)}</text>')


# -- the document ----------------------------------------------------------------------------------


def render_html(report: dict[str, Any]) -> str:
    """The release report as one self-contained HTML document (no script, no external resource).

    ``report`` is the canonical report object (see ``report.schema.json``). Missing or malformed
    evidence is shown as missing, never raised.
    """
    report = _dict(report)
    status = str(_get(report, "decision", "status", default="unknown"))
    word = _VERDICTS.get(status, (status.upper() or "UNKNOWN",))[0]
    dataset = _get(report, "release", "dataset", default="")
    sections = [
        _section("Privacy claim and budget", "budget", lambda: _privacy(report)),
        _section("Checks", "checks", lambda: _checks(report)),
        _section("How the decision was reached, by what each check read", "decision", lambda: _decision(report)),
        _section("Fidelity: real against synthetic", "fidelity", lambda: _fidelity(report)),
        _section("Privacy audit", "audit", lambda: _audit(report)),
        _section("PII scan of the synthetic table", "pii", lambda: _pii(report)),
        _section("Replay: copies of real rows", "replay", lambda: _replay(report)),
        _section("Provenance", "provenance", lambda: _provenance(report)),
        _section("Opt-ins", "opt-ins", lambda: _opt_ins_section(report)),
        _section("What this report may be shown to" if report.get("scope") == "publishable"
                 else "Not differentially private", "notice", lambda: _notice(report)),
    ]
    try:
        head = _verdict(report)
    except Exception as exc:  # noqa: BLE001 - see _section
        head = f'<p class="broken">The verdict could not be drawn ({_e(type(exc).__name__)}).</p>'
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="color-scheme" content="light">'
        f"<title>{_e(word)} · dpsynth release report · {_e(dataset)}</title>"
        f"<style>{_CSS}</style></head>\n<body><main>\n{head}\n" + "\n".join(sections) + "\n</main></body></html>\n"
    )


def _verdict(report: dict[str, Any]) -> str:
    decision = _dict(report.get("decision"))
    release = _dict(report.get("release"))
    status = str(decision.get("status", "unknown"))
    word, cls, meaning = _VERDICTS.get(status, (status.upper() or "UNKNOWN", "unknown", "Unknown decision."))
    reasons = [str(r) for r in _list(decision.get("reasons"))]
    reason_html = "<ul>" + "".join(f"<li>{_e(r)}</li>" for r in reasons) + "</ul>" if reasons else ""
    if status != "released" and not reasons:
        reason_html = "<p>No reason was recorded.</p>"
    title = (f"dpsynth release report: {_e(release.get('dataset', '?'))} "
             f"with {_e(release.get('synthesizer', '?'))}")
    total = _get(release, "privacy", "total", "epsilon", default=release.get("epsilon"))
    scope = str(report.get("scope", "internal"))
    sub = (f"written {_e(report.get('created_at', '?'))} · ε = {_e(_fmt(total))} for the table and the decision "
           f"(the table's own ε = {_e(_fmt(release.get('epsilon')))}), δ = {_e(_fmt(release.get('delta')))} · "
           f"report version {_e(report.get('report_version', '?'))} · "
           f"{'publishable report' if scope == 'publishable' else 'INTERNAL report'}")
    out = [
        f"<header><h1>{title}</h1><p class=sub>{sub}</p>",
        f'<div class="verdict {cls}" id="verdict"><div class="word">{_e(word)}</div>',
        f"<p>{_e(meaning)} Exit code {_e(_fmt(decision.get('exit_code')))}.</p>{reason_html}</div>",
    ]
    opt_ins = [str(o) for o in _list(report.get("opt_ins"))]
    if opt_ins:
        out.append(f'<div class="alarm"><strong>Built on {len(opt_ins)} opt-in(s) that weaken the usual '
                   "guarantees:</strong> " + ", ".join(f"<code>{_e(o)}</code>" for o in opt_ins)
                   + " (listed under Opt-ins below).</div>")
    if decision.get("privacy") == "not_dp":
        out.append('<div class="alarm"><strong>The decision to release read private data without privacy</strong> '
                   "(opt-in <code>decision_read_private_data_without_privacy</code>): whether this table exists is "
                   "not covered by the stated ε.</div>")
    elif decision.get("statement"):
        out.append(f'<p class="sub" id="decision-privacy">{_e(decision.get("statement"))}</p>')
    if release.get("secure_noise") is False:
        out.append('<div class="alarm"><strong>Seeded (insecure) noise:</strong> this fit drew reproducible test '
                   "noise. Its privacy claim does not hold; never release it.</div>")
    out.append("</header>")
    return "".join(out)


# -- privacy claim and budget ------------------------------------------------------------------------


def _privacy(report: dict[str, Any]) -> str:
    release = _dict(report.get("release"))
    ledger = _dict(report.get("ledger"))
    params = release.get("synthesizer_params")
    seconds = _dict(release.get("seconds"))
    rows: list[tuple[str, Any]] = [
        ("Dataset", release.get("dataset")),
        ("Synthesizer", release.get("synthesizer")),
        ("Claimed ε of the table", release.get("epsilon")),
        ("ρ of the decision's DP checks", _get(release, "privacy", "decision", "rho")),
        ("ε of the table and the decision (composed)", _get(release, "privacy", "total", "epsilon")),
        ("Claimed δ", release.get("delta")),
        ("Privacy unit", " · ".join(dict.fromkeys(str(u) for u in (release.get("privacy_unit"), _get(
            report, "ledger", "before", "unit_description")) if u is not None)) or None),
        ("Synthetic rows", release.get("rows")),
        ("Row count from", {"public_input": "public input (--rows)", "dp_estimate": "the synthesizer's DP estimate "
                            "of the private count"}.get(str(release.get("rows_source")), release.get("rows_source"))),
        ("Secure noise", {True: "yes", False: "NO (seeded test noise)", None: "— (the fit did not run)"}.get(
            release.get("secure_noise"), release.get("secure_noise"))),
    ]
    claim = _dict(release.get("claim"))
    if claim:
        rows.append(("Whose claim", {"dpsynth": "dpsynth's", "generator": "the generator's own (a plug-in)"}.get(
            str(claim.get("source")), claim.get("source"))))
        rows.append(("Plan charged", claim.get("plan")))
        rows.append(("Verified by dpsynth", claim.get("verified")))
    if isinstance(params, dict) and params:
        rows.append(("Synthesizer parameters", json.dumps(params, sort_keys=True, default=str)))
    if seconds:
        rows.append(("Seconds", ", ".join(f"{k} {_fmt(v, 3)}" for k, v in seconds.items())))
    out = ['<div class="cols"><div><h3>Claim</h3>', _kv(rows)]
    if claim.get("statement"):
        text = str(claim["statement"]).rstrip(".")
        statement = _e(text[:1].upper() + text[1:] + ".")
        out.append(f'<div class="alarm" id="claim"><strong>Unverified claim:</strong> {statement}</div>'
                   if claim.get("verified") is False else f'<p class="sub" id="claim">{statement}</p>')
    out.append("</div>")

    before, after = _dict(ledger.get("before")), _dict(ledger.get("after"))
    out.append("<div><h3>Ledger</h3>")
    out.append(_kv([
        ("Ledger", ledger.get("url")),
        ("Dataset in the ledger", ledger.get("dataset")),
        ("Entries of this release", ", ".join(str(i) for i in _list(ledger.get("entry_ids")))
         or "none (nothing reserved)"),
        ("ε cap", ledger.get("epsilon_cap", _get(before, "cap", "epsilon"))),
        ("ε spent before (tight)", _get(before, "spent", "epsilon_tight")),
        ("ε spent after (tight)", _get(after, "spent", "epsilon_tight") if after else "— (nothing reserved)"),
        ("ε spent after (plain sum)", _get(after, "spent", "epsilon_plain_sum") if after else None),
        ("Reservations recorded (a release: the fit and its DP checks)", _get(after or before, "releases")),
    ]))
    out.append("</div></div>")
    out.append(_budget_plot(_list(ledger.get("history")), _float(ledger.get("epsilon_cap"))))
    return "".join(out)


def _budget_plot(history: list[Any], cap: float | None) -> str:
    points = []
    for item in history:
        item = _dict(item)
        tight = _float(item.get("epsilon_spent_tight"))
        if tight is None:
            continue
        points.append((item.get("entry_id"), str(item.get("at", "")), tight,
                       _float(item.get("epsilon_spent_plain_sum")), bool(item.get("this_release"))))
    if not points:
        note = f" (cap ε = {_e(_fmt(cap))})" if cap is not None else ""
        return f"<p class=muted>No reservation recorded for this dataset yet{note}: no budget plot.</p>"
    width, height, left, right, top, bottom = 900, 300, 56, 120, 16, 52
    pw, ph = width - left - right, height - top - bottom
    hi = max([p[2] for p in points] + [p[3] or 0.0 for p in points] + [cap or 0.0])
    ticks = _nice_ticks(hi * 1.05)
    ymax = ticks[-1]
    n = len(points)

    def x(i: float) -> float:
        return left + pw * i / n

    def y(v: float) -> float:
        return top + ph * (1 - v / ymax)

    parts = []
    for t in ticks:
        parts.append(f'<line x1="{left}" x2="{left + pw}" y1="{y(t):.1f}" y2="{y(t):.1f}" stroke="#eaeded"/>')
        parts.append(_text(left - 6, y(t) + 4, _fmt(t), anchor="end", size=10))
    parts.append(f'<line x1="{left}" x2="{left}" y1="{top}" y2="{top + ph}" stroke="#566573"/>')
    parts.append(f'<line x1="{left}" x2="{left + pw}" y1="{top + ph}" y2="{top + ph}" stroke="#566573"/>')
    parts.append(_text(14, top + ph / 2, "cumulative ε", anchor="middle", size=11)
                 .replace("<text ", f'<text transform="rotate(-90 14 {top + ph / 2:.1f})" ', 1))
    for key, dash, color, label in ((2, "", "#1c2833", "spent (tight)"), (3, "5 4", "#85929e", "plain sum")):
        if key == 3 and all(p[3] is None for p in points):
            continue
        path, prev = [f"M{x(0):.1f},{y(0):.1f}"], 0.0
        for i, p in enumerate(points, start=1):
            value = p[key] if p[key] is not None else prev
            path.append(f"H{x(i):.1f}V{y(value):.1f}")
            prev = value
        path.append(f"H{left + pw:.1f}")
        dashes = f' stroke-dasharray="{dash}"' if dash else ""
        parts.append(f'<path d="{"".join(path)}" fill="none" stroke="{color}" '
                     f'stroke-width="{2 if key == 2 else 1.5}"{dashes}/>')
        parts.append(_text(left + pw + 10, y(prev) + 4 + (12 if key == 3 else 0), label, color=color, size=10))
    if cap is not None:
        parts.append(f'<line x1="{left}" x2="{left + pw}" y1="{y(cap):.1f}" y2="{y(cap):.1f}" stroke="{_CAP}" '
                     'stroke-width="2" stroke-dasharray="8 4"/>')
        parts.append(_text(left + pw + 6, y(cap) - 4, f"cap ε = {_fmt(cap)}", color=_CAP, size=11, weight="bold"))
    step = max(1, math.ceil(n / 10))
    for i, (entry, at, tight, _plain, mine) in enumerate(points, start=1):
        tip = f"entry {entry} at {at}: ε spent {_fmt(tight)}"
        if mine:
            parts.append(f'<circle cx="{x(i):.1f}" cy="{y(tight):.1f}" r="6" fill="{_SYNTH}" stroke="#1c2833">'
                         f"<title>{_e(tip)} (this release)</title></circle>")
            parts.append(_text(x(i) - 8, y(tight) - 10, "this release", anchor="end", color="#a04000", size=11,
                               weight="bold"))
        else:
            parts.append(f'<circle cx="{x(i):.1f}" cy="{y(tight):.1f}" r="3" fill="#1c2833">'
                         f"<title>{_e(tip)}</title></circle>")
        if (i - 1) % step == 0 or i == n or mine:
            parts.append(_text(x(i), top + ph + 16, f"#{entry}", anchor="middle", size=10, title=tip))
            parts.append(_text(x(i), top + ph + 29, at[:10], anchor="middle", size=9, color="#5d6d7e"))
    parts.append(_text(left + pw / 2, height - 6, "ledger reservations of this dataset, oldest first",
                       anchor="middle", size=11))
    mine = [p for p in points if p[4]]
    caption = ("Cumulative ε spent on this dataset after each reservation (tight composition; dashed grey: the "
               "plain sum of ε), against the ledger's cap.")
    if not mine:
        caption += " This release reserved nothing, so it is not on the plot."
    return (f"<figure>{_svg(width, height, ''.join(parts), 'cumulative privacy budget against the cap')}"
            f"<figcaption>{_e(caption)}</figcaption></figure>")


# -- checks ---------------------------------------------------------------------------------------------


def _checks(report: dict[str, Any]) -> str:
    checks = [_dict(c) for c in _list(report.get("checks"))]
    if not checks:
        return "<p class=muted>No check was recorded.</p>"
    counts: dict[str, int] = {}
    for c in checks:
        counts[str(c.get("status"))] = counts.get(str(c.get("status")), 0) + 1
    summary = ", ".join(f"{n} {_STATUS.get(s, (s,))[0].lower()}" for s, n in counts.items())
    rows = []
    for c in checks:
        label, cls = _STATUS.get(str(c.get("status")), (str(c.get("status")).upper(), "unknown"))
        comparison = str(c.get("comparison", ""))
        rows.append((
            ("html", f'<code class="id">{_e(c.get("id", "?"))}</code>'), c.get("category"), c.get("title"),
            c.get("value"), ("html", f'<span class="nowrap">{_e(_COMPARISON.get(comparison, comparison))}</span>'),
            c.get("threshold"),
            ("html", f'<span class="badge {cls}">{_e(label)}</span>'), _READS.get(str(c.get("reads")), c.get("reads")),
            c.get("detail"),
        ))
    statuses = [str(c.get("status")) for c in checks]
    table = _table(("check", "category", "what", "value", "rule", "threshold", "status", "reads", "detail"), rows,
                   numeric=(3, 5), row_class=lambda r: statuses[r] if statuses[r] in ("fail", "error") else "")
    return f"<p>{len(checks)} checks: {_e(summary)}.</p>{table}"


def _decision(report: dict[str, Any]) -> str:
    checks = [_dict(c) for c in _list(report.get("checks"))]
    counts: dict[str, int] = {}
    for c in checks:
        counts[str(c.get("reads"))] = counts.get(str(c.get("reads")), 0) + 1
    rows = [(_READS.get(k, k), counts.get(k, 0)) for k in _READS]
    dp_checks = _dict(_get(report, "evidence", "dp_checks"))
    out = [_table(("what the checks read", "checks"), rows, numeric=(1,))]
    decision = _dict(_get(report, "release", "privacy", "decision"))
    if decision.get("events"):
        out.append(_kv([("ρ of the DP checks", decision.get("rho")),
                        ("their ε alone at δ", decision.get("epsilon")),
                        ("DP estimate of the private row count (for the checks)", dp_checks.get("rows"))]))
    out.append(f"<p>{_e(_get(report, 'decision', 'statement', default=''))}</p>")
    return "".join(out)


# -- fidelity -------------------------------------------------------------------------------------------


def _fidelity(report: dict[str, Any]) -> str:
    evidence = _dict(report.get("evidence"))
    fidelity = evidence.get("fidelity")
    utility = evidence.get("utility") if evidence.get("utility") is not None else _get(fidelity, "utility")
    if not isinstance(fidelity, dict) and not isinstance(utility, dict):
        dp = _dict(evidence.get("dp_checks"))
        rows = [(f"{key} (DP estimate)", value.get("value") if isinstance(value, dict) else value)
                for key, value in _dict(dp.get("fidelity")).items()]
        score = _dict(dp.get("utility"))
        if score:
            metric = str(score.get("metric", ""))
            rows.append((f"train-synthetic-test-real {metric} (DP estimate)", _get(score, "train_synthetic", metric)))
        if not rows:
            return _absent("No fidelity evidence in this report")
        return (_kv(rows) + "<p class=muted>DP estimates, measured with the decision's ρ; the exact figures against "
                "the private table are in the internal report.</p>")
    fidelity = _dict(fidelity)
    out = []
    summary = [(label, fidelity[key]) for key, label in (
        ("real_rows", "Real rows"), ("synthetic_rows", "Synthetic rows"),
        ("l1_1way", "Mean 1-way L1 error"), ("l1_2way", "Mean 2-way L1 error"), ("l1_3way", "Mean 3-way L1 error"),
    ) if key in fidelity]
    association = _dict(fidelity.get("association"))
    if association:
        pair = association.get("max_pair")
        summary.append(("Association difference (mean / max)",
                        f"{_fmt(association.get('mean'))} / {_fmt(association.get('max'))}"
                        + (f" ({' × '.join(str(p) for p in pair)})" if isinstance(pair, list) else "")))
    if summary:
        out.append(_kv(summary))
        out.append("<p class=muted>L1 errors: 0 = identical histograms, 2 = disjoint (see docs/eval.md).</p>")
    if isinstance(utility, dict):
        out.append("<h3>Utility: train on synthetic, test on real</h3>")
        metric = str(utility.get("metric", ""))
        out.append(_kv([
            ("Target", utility.get("target")), ("Metric", metric),
            ("Trained on real", _get(utility, "train_real", metric)),
            ("Trained on synthetic", _get(utility, "train_synthetic", metric)),
            ("Gap (real − synthetic)", utility.get("gap")),
            ("Held-out rows", utility.get("holdout_source", utility.get("holdout_rows"))),
        ]))
    marginals = [_dict(m) for m in _list(fidelity.get("marginals"))]
    per_column = _dict(fidelity.get("columns"))
    tvd = _dict(fidelity.get("tvd"))
    if marginals:
        out.append("<h3>Marginals, column by column</h3>")
        out.append(_legend((("real", _REAL), ("synthetic", _SYNTH))))
        figures = [_marginal_plot(m, tvd.get(m.get("column"), _get(per_column, m.get("column"), "tvd")))
                   for m in marginals]
        out.append(f'<div class="grid">{"".join(figures)}</div>')
    elif fidelity:
        out.append("<p class=muted>No per-column marginals in the report: no plots.</p>")
    if per_column:
        rows = [(name, _dict(c).get("kind"), _dict(c).get("tvd"), _dict(c).get("ks"), _dict(c).get("wasserstein"))
                for name, c in per_column.items()]
        out.append("<h3>Per column</h3>")
        out.append(_table(("column", "kind", "TVD", "KS", "Wasserstein / range"), rows, numeric=(2, 3, 4)))
    return "".join(out)


def _shares(values: Any, n: int) -> list[float] | None:
    values = _list(values)
    if len(values) < n:
        return None
    out = []
    for v in values[:n]:
        f = _float(v)
        if f is None:
            return None
        out.append(max(f, 0.0))
    return out


def _marginal_plot(marginal: dict[str, Any], tvd: Any) -> str:
    column = str(marginal.get("column", "?"))
    labels = [str(v) for v in _list(marginal.get("labels"))]
    n = len(labels)
    real, synth = _shares(marginal.get("real"), n), _shares(marginal.get("synthetic"), n)
    if not n or real is None or synth is None:
        return (f"<figure><h3>{_e(column)}</h3><p class=broken>The marginal of this column is malformed "
                "(labels and shares do not match).</p></figure>")
    bars = list(zip(labels, real, synth, strict=True))
    hidden = 0
    if n > MAX_FULL:
        keep = sorted(range(n), key=lambda i: -max(real[i], synth[i]))[:MAX_BARS]
        keep_set = set(keep)
        rest = [i for i in range(n) if i not in keep_set]
        hidden = len(rest)
        bars = [bars[i] for i in sorted(keep)]  # keep the schema's order (bins stay in order)
        bars.append((f"other ({hidden} levels)", math.fsum(real[i] for i in rest),
                     math.fsum(synth[i] for i in rest)))
    label_w, bar_h, gap, width, top = 170, 9, 7, 470, 6
    row_h = 2 * bar_h + gap
    pw = width - label_w - 56
    height = top + row_h * len(bars) + 22
    top_share = max(max(r, s) for _, r, s in bars) or 1.0
    ticks = _nice_ticks(top_share, 4)
    xmax = ticks[-1]
    parts = []
    for t in ticks:
        tx = label_w + pw * t / xmax
        parts.append(f'<line x1="{tx:.1f}" x2="{tx:.1f}" y1="{top}" y2="{height - 20}" stroke="#eaeded"/>')
        parts.append(_text(tx, height - 6, _pct(t, 0), anchor="middle", size=9, color="#5d6d7e"))
    for k, (label, r, s) in enumerate(bars):
        y0 = top + k * row_h
        other = hidden and k == len(bars) - 1
        parts.append(_text(label_w - 6, y0 + bar_h + 3, _short(label), anchor="end", size=10, title=label,
                           color="#5d6d7e" if other else "#1c2833"))
        for j, (share, color, name) in enumerate(((r, _REAL, "real"), (s, _SYNTH, "synthetic"))):
            w = pw * share / xmax
            yy = y0 + j * bar_h
            parts.append(f'<rect x="{label_w}" y="{yy:.1f}" width="{w:.1f}" height="{bar_h - 1}" fill="{color}">'
                         f"<title>{_e(label)}: {_e(name)} {_e(_pct(share, 2))}</title></rect>")
            parts.append(_text(label_w + w + 3, yy + bar_h - 1.5, _pct(share), size=8, color="#5d6d7e"))
    caption = f"TVD {_fmt(tvd, 3)}." if _float(tvd) is not None else ""
    if hidden:
        caption += f" The {MAX_BARS} largest of {n} levels; the other {hidden} are summed in the last bar."
    return (f"<figure><h3>{_e(column)}</h3>{_svg(width, height, ''.join(parts), f'marginal of {column}')}"
            f"<figcaption>{_e(caption.strip())}</figcaption></figure>")


# -- audit ---------------------------------------------------------------------------------------------


_NOT_NESTED = {"attacks", "details", "pairs", "roc", "data"}


def _is_result(value: dict[str, Any]) -> bool:
    return any(k in value for k in ("method", "epsilon_lower_bound", "attacks", "claimed_epsilon"))


def _audit_results(audit: Any) -> list[tuple[str, dict[str, Any]]]:
    """The audit results in the evidence: one result, a mapping of named results, or a list."""
    if isinstance(audit, list):
        return [(str(_dict(a).get("method", f"audit {i + 1}")), _dict(a)) for i, a in enumerate(audit)]
    audit = _dict(audit)
    if _is_result(audit):
        # one result, maybe with another nested in it (the pipeline puts the reference suite's
        # summary under "suite" beside the black-box audit's keys)
        nested = [(str(k), v) for k, v in audit.items() if k not in _NOT_NESTED and isinstance(v, dict)
                  and _is_result(v)]
        own = {k: v for k, v in audit.items() if k not in {n for n, _ in nested}}
        return [(str(audit.get("method", "audit")), own), *((f"{k}: {v.get('method', '')}".rstrip(": "), v)
                                                            for k, v in nested)]
    out: list[tuple[str, dict[str, Any]]] = []
    for name, value in audit.items():
        if isinstance(value, dict):
            out.append((str(name), value))
        elif isinstance(value, list):
            out.extend((f"{name} {i + 1}", _dict(v)) for i, v in enumerate(value))
    return out


def _audit(report: dict[str, Any]) -> str:
    results = _audit_results(_get(report, "evidence", "audit"))
    if not results:
        return _absent("No audit evidence in this report")
    return "".join(_one_audit(name, result, multiple=len(results) > 1) for name, result in results)


def _one_audit(name: str, result: dict[str, Any], *, multiple: bool) -> str:
    out = [f"<h3>{_e(name)}</h3>"] if multiple else []
    claimed, lower = _float(result.get("claimed_epsilon")), _float(result.get("epsilon_lower_bound"))
    above = claimed is not None and lower is not None and lower > claimed
    if above:
        out.append(f'<div class="alarm"><strong>Violation:</strong> the audit proves ε ≥ {_e(_fmt(lower))}, above '
                   f"the claimed ε = {_e(_fmt(claimed))}. This is an implementation defect, whatever else "
                   "passes.</div>")
    elif result.get("violation") is True:
        out.append('<div class="alarm"><strong>Violation:</strong> this audit found the implementation breaking '
                   "its privacy claim (see below). This is an implementation defect, whatever else passes.</div>")
    elif result.get("conclusive") is False:
        out.append(f'<div class="note"><strong>Inconclusive:</strong> with these trials the audit could prove at '
                   f"most ε = {_e(_fmt(result.get('max_provable_epsilon')))}, not above the claimed ε = "
                   f"{_e(_fmt(claimed))}: it could not have caught a violation. More trials are needed for a "
                   "stronger test.</div>")
    skip = {"attacks", "targets", "notice", "details", "pairs", "roc", "audits", "failures", "scores", "tests"}
    labels = {"method": "Method", "claimed_epsilon": "Claimed ε", "claimed_delta": "Claimed δ",
              "epsilon_lower_bound": "ε lower bound (proved)", "max_provable_epsilon": "Max provable ε (these trials)",
              "confidence": "Confidence", "trials": "Trials", "violation": "Violation", "conclusive": "Conclusive",
              "auc": "Attack AUC (best)", "tpr_at_1pct_fpr": "TPR at 1% FPR (best)", "fits": "Fits",
              "seconds": "Seconds", "strongest_attack": "Strongest attack", "reference_rows": "Reference rows",
              "synthesizer": "Synthesizer", "passed": "Passed", "noise": "Noise", "error": "Error",
              "canaries": "Canaries", "caught_by": "Caught by", "base": "Tables", "copies": "Verbatim copies",
              "p_value_bound": "P[a copy] under the claim (at most)", "rows_checked": "Rows checked",
              "refutes_claim": "Refutes the claim"}
    rows = [(labels.get(k, k), v) for k, v in result.items()
            if k not in skip and not isinstance(v, (dict, list))]
    out.append(_kv(rows))
    failures = [str(f) for f in _list(result.get("failures"))]
    if failures:
        out.append("<p>Failures:</p><ul>" + "".join(f"<li>{_e(f)}</li>" for f in failures) + "</ul>")
    audits = [_dict(a) for a in _list(result.get("audits"))]
    if audits:
        out.append(_table(("audit", "ε lower bound", "max provable ε", "trials", "violation", "seconds", "note"),
                          [(a.get("method"), a.get("epsilon_lower_bound"), a.get("max_provable_epsilon"),
                            a.get("trials"), a.get("violation"), a.get("seconds"),
                            a.get("error") or "; ".join(str(f) for f in _list(a.get("failures")))) for a in audits],
                          numeric=(1, 2, 3, 5), row_class=lambda r: "fail" if audits[r].get("violation") else ""))
    scores = {str(k): _dict(v) for k, v in _dict(result.get("scores")).items()}
    if scores:  # the canary audit: its one-run bound per score
        out.append(_table(("score", "AUC (canaries in vs out)", "ε lower bound", "max provable ε", "best guesses"),
                          [(k, a.get("auc"), a.get("epsilon_lower_bound"), a.get("max_provable_epsilon"),
                            "{guesses} ({mode}), {correct} correct".format(**_dict(a.get("best")))
                            if {"guesses", "mode", "correct"} <= set(_dict(a.get("best"))) else "")
                           for k, a in scores.items()], numeric=(1, 2, 3)))
    attacks = {str(k): _dict(v) for k, v in _dict(result.get("attacks")).items()}
    bound = _bound_plot(name, result, attacks)
    roc = _roc_plots(attacks)
    if bound or roc:
        out.append(bound + roc)
    if attacks:
        out.append(_table(("attack", "AUC", "TPR at 1% FPR", "ε lower bound", "max provable ε"),
                          [(k, a.get("auc"), a.get("tpr_at_1pct_fpr"), a.get("epsilon_lower_bound"),
                            a.get("max_provable_epsilon")) for k, a in attacks.items()], numeric=(1, 2, 3, 4)))
    targets = _list(result.get("targets"))
    if targets:
        shown = "; ".join(_fmt(t) for t in targets[:20]) + (f"; … ({len(targets) - 20} more)" if len(targets) > 20
                                                             else "")
        out.append(f"<p class=muted>Targets ({len(targets)}, described by index and kind, never by value): "
                   f"<span class=mono>{_e(shown)}</span></p>")
    if result.get("notice"):
        out.append(f"<p class=muted>{_e(result['notice'])}</p>")
    return "".join(out)


def _bound_plot(name: str, result: dict[str, Any], attacks: dict[str, dict[str, Any]]) -> str:
    claimed = _float(result.get("claimed_epsilon"))
    rows = [("audit (best attack)", _float(result.get("epsilon_lower_bound")),
             _float(result.get("max_provable_epsilon")))]
    rows += [(k, _float(a.get("epsilon_lower_bound")), _float(a.get("max_provable_epsilon"))) for k, a in
             attacks.items()]
    rows = [r for r in rows if r[1] is not None]
    if claimed is None or not rows:
        return ""
    label_w, row_h, width, top = 190, 26, 900, 22
    pw = width - label_w - 40
    height = top + row_h * len(rows) + 30
    hi = max([claimed] + [r[1] or 0 for r in rows] + [r[2] or 0 for r in rows])
    ticks = _nice_ticks(hi * 1.05, 6)
    xmax = ticks[-1]

    def x(v: float) -> float:
        return label_w + pw * v / xmax

    parts = []
    for t in ticks:
        parts.append(f'<line x1="{x(t):.1f}" x2="{x(t):.1f}" y1="{top - 4}" y2="{height - 24}" stroke="#eaeded"/>')
        parts.append(_text(x(t), height - 10, _fmt(t), anchor="middle", size=10))
    for k, (label, lower, provable) in enumerate(rows):
        y0 = top + k * row_h
        color = _BAD if lower is not None and lower > claimed else _OK
        parts.append(_text(label_w - 8, y0 + 14, _short(label, 30), anchor="end", size=11, title=label,
                           weight="bold" if k == 0 else "normal"))
        if provable is not None:
            parts.append(f'<rect x="{label_w}" y="{y0 + 3:.1f}" width="{x(provable) - label_w:.1f}" height="16" '
                         f'fill="none" stroke="#85929e" stroke-dasharray="3 3"><title>max provable ε '
                         f"{_e(_fmt(provable))}</title></rect>")
        w = x(lower or 0.0) - label_w
        parts.append(f'<rect x="{label_w}" y="{y0 + 5:.1f}" width="{max(w, 1.5):.1f}" height="12" fill="{color}">'
                     f"<title>{_e(label)}: ε lower bound {_e(_fmt(lower))}</title></rect>")
        parts.append(_text(label_w + max(w, 1.5) + 4, y0 + 15, _fmt(lower), size=10, color=color))
    cx = x(claimed)
    parts.append(f'<line x1="{cx:.1f}" x2="{cx:.1f}" y1="{top - 10}" y2="{height - 24}" stroke="{_CAP}" '
                 'stroke-width="2"/>')
    parts.append(_text(cx, top - 12 + 2, f"claimed ε = {_fmt(claimed)}", anchor="middle", size=11, color=_CAP,
                       weight="bold"))
    caption = ("Solid bars: the ε each attack proves at the stated confidence (green: at most the claim; red: a "
               "violation). Dashed boxes: the largest ε these trials could prove at all; a box that ends below the "
               "claim means the audit could not have caught a violation of it.")
    return (f"<figure>{_svg(width, height, ''.join(parts), f'ε lower bounds of {name} against the claim')}"
            f"<figcaption>{_e(caption)}</figcaption></figure>")


def _roc_curve(attack: dict[str, Any]) -> list[tuple[float, float]] | None:
    roc = _dict(attack.get("roc"))
    fpr, tpr = _list(roc.get("fpr")), _list(roc.get("tpr"))
    points = [(_float(f), _float(t)) for f, t in zip(fpr, tpr, strict=False)]
    clean = [(min(max(f, 0.0), 1.0), min(max(t, 0.0), 1.0)) for f, t in points if f is not None and t is not None]
    if len(clean) < 2:
        return None
    if len(clean) > MAX_ROC_POINTS:
        # keep the low false-positive corner whole (the log panel draws it large), thin the rest evenly
        head, tail = clean[: MAX_ROC_POINTS // 4], clean[MAX_ROC_POINTS // 4:]
        stride = len(tail) / (MAX_ROC_POINTS - len(head))
        clean = head + [tail[int(i * stride)] for i in range(MAX_ROC_POINTS - len(head))] + [clean[-1]]
    return clean


def _roc_plots(attacks: dict[str, dict[str, Any]]) -> str:
    curves = [(name, curve) for name, a in attacks.items() if (curve := _roc_curve(a)) is not None]
    if not curves:
        return ""
    colors = {name: _PALETTE[i % len(_PALETTE)] for i, (name, _) in enumerate(curves)}
    linear = _roc_svg(curves, colors, log=False)
    log = _roc_svg(curves, colors, log=True)
    legend = _legend([(f"{name} (AUC {_fmt(attacks[name].get('auc'), 3)})", colors[name]) for name, _ in curves]
                     + [("chance", "#aab7b8")])
    return (f'<figure>{legend}<div class="grid">{linear}{log}</div><figcaption>ROC curves of the membership-'
            "inference attacks, linear and log-log (the low false-positive corner is where an attack is "
            "dangerous).</figcaption></figure>")


def _roc_svg(curves: list[tuple[str, list[tuple[float, float]]]], colors: dict[str, str], *, log: bool) -> str:
    size, left, bottom, top, right = 440, 48, 40, 10, 14
    pw, ph = size - left - right, size - top - bottom
    lo = 1e-3
    if log:
        small = [f for _, c in curves for f, _t in c if f > 0] + [t for _, c in curves for _f, t in c if t > 0]
        lo = max(min(small + [1e-3]), 1e-5)
        lo = 10 ** math.floor(math.log10(lo))

    def scale(v: float) -> float:
        if not log:
            return v
        return (math.log10(max(v, lo)) - math.log10(lo)) / -math.log10(lo)

    def px(f: float) -> float:
        return left + pw * scale(f)

    def py(t: float) -> float:
        return top + ph * (1 - scale(t))

    ticks = [10.0 ** -k for k in range(round(-math.log10(lo)), -1, -1)] if log else [0, 0.25, 0.5, 0.75, 1.0]
    parts = []
    for t in ticks:
        label = (f"1e{round(math.log10(t))}" if t < 1 else "1") if log else _fmt(float(t))
        parts.append(f'<line x1="{px(t):.1f}" x2="{px(t):.1f}" y1="{top}" y2="{top + ph}" stroke="#eaeded"/>')
        parts.append(f'<line x1="{left}" x2="{left + pw}" y1="{py(t):.1f}" y2="{py(t):.1f}" stroke="#eaeded"/>')
        parts.append(_text(px(t), top + ph + 14, label, anchor="middle", size=9))
        parts.append(_text(left - 5, py(t) + 3, label, anchor="end", size=9))
    parts.append(f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#566573"/>')
    if log:
        diag = [lo * (1 / lo) ** (i / 40) for i in range(41)]
        parts.append('<polyline fill="none" stroke="#aab7b8" stroke-dasharray="4 3" points="'
                     + " ".join(f"{px(v):.1f},{py(v):.1f}" for v in diag) + '"/>')
    else:
        parts.append(f'<line x1="{px(0):.1f}" y1="{py(0):.1f}" x2="{px(1):.1f}" y2="{py(1):.1f}" stroke="#aab7b8" '
                     'stroke-dasharray="4 3"/>')
    for name, curve in curves:
        pts = curve  # on the log axes a zero rate is drawn on the edge (scale clamps it to the lowest tick)
        parts.append(f'<polyline fill="none" stroke="{colors[name]}" stroke-width="2" points="'
                     + " ".join(f"{px(f):.1f},{py(t):.1f}" for f, t in pts) + f'"><title>{_e(name)}</title></polyline>')
    parts.append(_text(left + pw / 2, size - 8, "false positive rate" + (" (log)" if log else ""), anchor="middle"))
    parts.append(_text(12, top + ph / 2, "true positive rate" + (" (log)" if log else ""), anchor="middle")
                 .replace("<text ", f'<text transform="rotate(-90 12 {top + ph / 2:.1f})" ', 1))
    return _svg(size, size, "".join(parts), "ROC curves" + (" (log-log)" if log else ""))


# -- PII and replay ------------------------------------------------------------------------------------


def _pii(report: dict[str, Any]) -> str:
    pii = _get(report, "evidence", "pii")
    if not isinstance(pii, dict):
        return _absent("No PII scan in this report")
    ner = _dict(pii.get("ner"))
    entities = pii.get("entities")
    out = [_kv([
        ("Rows scanned", pii.get("rows")),
        ("Score threshold", pii.get("threshold")),
        ("Entity types", entities if isinstance(entities, (str, list)) else None),
        ("NER", (f"on ({ner.get('model', '?')} {ner.get('version', '')})".strip() if ner.get("enabled")
                 else f"OFF: {ner.get('reason', 'no reason recorded')}") if ner else None),
        ("Found", pii.get("found")),
    ])]
    if ner and not ner.get("enabled"):
        missed = _list(ner.get("not_covered"))
        out.append(f'<div class="alarm"><strong>NER was off:</strong> entity types found only by NER were not looked '
                   f"for ({_e(_fmt(missed))}).</div>")
    findings = [_dict(f) for f in _list(pii.get("findings"))]
    if findings:
        out.append(_table(("column", "entity type", "cells", "share", "max score", "masked examples"),
                          [(f.get("column"), f.get("entity_type"), f.get("cells"), _pct(_float(f.get("share")), 2),
                            f.get("max_score"),
                            ("html", "<br>".join(f"<code>{_e(x)}</code>" for x in _list(f.get("examples")))
                             or "—"))
                           for f in findings], numeric=(2, 3, 4), row_class=lambda r: "fail"))
    else:
        out.append("<p>No entity found at or above the threshold.</p>")
    columns = [_dict(c) for c in _list(pii.get("columns"))]
    if columns:
        out.append("<h3>How each column was scanned</h3>")
        out.append(_table(("column", "mode", "why", "distinct values", "suppressed (NER, short values)"),
                          [(c.get("name"), c.get("mode"), c.get("reason"), c.get("distinct"),
                            ", ".join(f"{k}: {_fmt(v)}" for k, v in _dict(c.get("suppressed")).items()) or "—")
                           for c in columns], numeric=(3,)))
    if pii.get("notice"):
        out.append(f"<p class=muted>{_e(pii['notice'])}</p>")
    return "".join(out)


def _replay(report: dict[str, Any]) -> str:
    replay = _get(report, "evidence", "replay")
    if not isinstance(replay, dict):
        return _absent("No replay check in this report")
    checks = [_dict(c) for c in _list(replay.get("checks"))]
    out = [_kv([
        ("Baseline", replay.get("baseline")), ("Reference rows", replay.get("reference_rows")),
        ("Quasi-identifiers", replay.get("quasi_identifiers")), ("Near-copy threshold", replay.get("near_threshold")),
        ("Significance level", replay.get("alpha")), ("Flagged", replay.get("flagged")),
    ])]
    if checks:
        out.append(_replay_plot(checks))
        out.append(_table(("check", "synthetic rate", "baseline rate", "synthetic matches", "baseline matches",
                           "p-value", "flagged"),
                          [(c.get("check"), _pct(_float(c.get("synthetic_rate")), 3),
                            _pct(_float(c.get("baseline_rate")), 3),
                            f"{_fmt(c.get('synthetic_matches'))} / {_fmt(c.get('synthetic_rows'))}",
                            f"{_fmt(c.get('baseline_matches'))} / {_fmt(c.get('baseline_rows'))}",
                            c.get("p_value"), c.get("flagged")) for c in checks],
                          numeric=(1, 2, 3, 4, 5), row_class=lambda r: "fail" if checks[r].get("flagged") else ""))
    quantiles = _dict(replay.get("dcr_quantiles"))
    if quantiles:
        keys = sorted({str(q) for v in quantiles.values() for q in _dict(v)})
        out.append("<h3>Distance to the closest real row (Gower), quantiles</h3>")
        out.append(_table(("rows", *keys), [(name, *(_dict(v).get(k) for k in keys)) for name, v in quantiles.items()],
                          numeric=tuple(range(1, len(keys) + 1))))
    if replay.get("notice"):
        out.append(f"<p class=muted>{_e(replay['notice'])}</p>")
    return "".join(out)


def _replay_plot(checks: list[dict[str, Any]]) -> str:
    rows = [(str(c.get("check", "?")), _float(c.get("synthetic_rate")), _float(c.get("baseline_rate")),
             bool(c.get("flagged"))) for c in checks]
    rows = [r for r in rows if r[1] is not None or r[2] is not None]
    if not rows:
        return ""
    label_w, bar_h, gap, width, top = 170, 11, 9, 900, 6
    pw = width - label_w - 80
    height = top + len(rows) * (2 * bar_h + gap) + 22
    ticks = _nice_ticks(max([r[1] or 0 for r in rows] + [r[2] or 0 for r in rows]) or 0.01, 5)
    xmax = ticks[-1]
    parts = []
    for t in ticks:
        tx = label_w + pw * t / xmax
        parts.append(f'<line x1="{tx:.1f}" x2="{tx:.1f}" y1="{top}" y2="{height - 20}" stroke="#eaeded"/>')
        parts.append(_text(tx, height - 6, _pct(t, 2 if xmax < 0.05 else 0), anchor="middle", size=9))
    for k, (label, synth, base, flagged) in enumerate(rows):
        y0 = top + k * (2 * bar_h + gap)
        parts.append(_text(label_w - 6, y0 + bar_h + 4, _short(label), anchor="end", size=11, title=label,
                           color=_BAD if flagged else "#1c2833", weight="bold" if flagged else "normal"))
        for j, (rate, color, name) in enumerate(((synth, _SYNTH, "synthetic"), (base, "#85929e", "holdout baseline"))):
            w = pw * (rate or 0.0) / xmax
            yy = y0 + j * bar_h
            parts.append(f'<rect x="{label_w}" y="{yy:.1f}" width="{max(w, 1):.1f}" height="{bar_h - 1}" '
                         f'fill="{color}"><title>{_e(label)}: {_e(name)} {_e(_pct(rate, 3))}</title></rect>')
            parts.append(_text(label_w + max(w, 1) + 4, yy + bar_h - 2, f"{name} {_pct(rate, 2)}", size=9,
                               color="#5d6d7e"))
    return (f"<figure>{_legend((('synthetic', _SYNTH), ('holdout baseline', '#85929e')))}"
            f"{_svg(width, height, ''.join(parts), 'replay rates against the holdout baseline')}<figcaption>"
            "Share of synthetic rows that copy a real training row, beside the same share for real rows the "
            "synthesizer never saw (the baseline a generator that copies nothing still reaches).</figcaption></figure>")


# -- provenance, opt-ins, notice ---------------------------------------------------------------------


def _file(entry: Any) -> str:
    entry = _dict(entry)
    if "fingerprint" in entry:
        return (f"<code>{_e(entry.get('name', '?'))}</code><br><span class=mono>{_e(entry.get('fingerprint'))}</span>"
                "<br><span class=muted>keyed with the ledger's secret: no guess about the data can be tested "
                "against it</span>")
    return (f"<code>{_e(entry.get('name', '?'))}</code><br><span class=mono>sha256 "
            f"{_e(entry.get('sha256', '?'))}</span>")


def _provenance(report: dict[str, Any]) -> str:
    versions = _dict(report.get("versions"))
    inputs = _dict(report.get("inputs"))
    policy = _dict(report.get("policy"))
    artifacts = _dict(report.get("artifacts"))
    out = ["<h3>Inputs and policy</h3>", _kv([
        ("Private data", _file(inputs.get("data"))),
        ("Schema", _file(inputs.get("schema"))),
        ("Policy", f"<strong>{_e(policy.get('name', '?'))}</strong>: {_e(policy.get('description', ''))}"),
        ("Policy file", _file(policy.get("file"))),
        ("Synthetic table", f"<code>{_e(artifacts['synthetic'])}</code>" if artifacts.get("synthetic")
         else "none written (only a released report has one)"),
    ], raw=True)]
    rules = policy.get("rules")
    if isinstance(rules, dict) and rules:
        out.append("<h3>Policy rules as applied</h3>")
        out.append(f"<pre>{_e(json.dumps(rules, indent=2, sort_keys=True, default=str))}</pre>")
    if versions:
        out.append("<h3>Versions</h3>")
        out.append(_kv((k, v if v is not None else "not installed") for k, v in versions.items()))
    return "".join(out)


def _opt_ins_section(report: dict[str, Any]) -> str:
    opt_ins = [str(o) for o in _list(report.get("opt_ins"))]
    if not opt_ins:
        return "<p>None: this release uses no opt-in.</p>"
    items = "".join(f"<li><code>{_e(o)}</code></li>" for o in opt_ins)
    return (f'<div class="alarm"><strong>This release is built on {len(opt_ins)} opt-in(s).</strong> Each one sets '
            f"aside a default protection; a reviewer must accept every one explicitly.<ul>{items}</ul></div>")


def _notice(report: dict[str, Any]) -> str:
    if report.get("scope") == "publishable":
        return (f'<div class="notice">{_e(report.get("notice", ""))}</div><p class=muted>'
                f'{_e(_get(report, "decision", "statement", default=""))}</p>')
    notice = report.get("notice") or ("This report is computed partly from the private data and is NOT "
                                      "differentially private.")
    return (f'<div class="notice">{_e(notice)}</div><p class=muted>The synthetic table (when released) carries the '
            "differential-privacy guarantee stated above; this report does not. Share it only with the people who "
            "may see evidence about the private data.</p>")
