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

from typing import Any

from dpsynth.release.html.charts import MAX_BARS, MAX_FULL, MAX_LABEL, MAX_ROC_POINTS
from dpsynth.release.html.evidence import audit_section, fidelity_section, pii_section, replay_section
from dpsynth.release.html.markup import as_dict, dig, esc, section
from dpsynth.release.html.series import series_section
from dpsynth.release.html.style import document
from dpsynth.release.html.summary import (
    VERDICTS,
    checks_section,
    decision_section,
    notice_section,
    opt_ins_section,
    privacy_section,
    provenance_section,
    verdict_header,
)

__all__ = ["MAX_BARS", "MAX_FULL", "MAX_LABEL", "MAX_ROC_POINTS", "render_html"]


def render_html(report: dict[str, Any]) -> str:
    """The release report as one self-contained HTML document (no script, no external resource).

    ``report`` is the canonical report object (see ``report.schema.json``). Missing or malformed
    evidence is shown as missing, never raised.
    """
    report = as_dict(report)
    status = str(dig(report, "decision", "status", default="unknown"))
    word = VERDICTS.get(status, (status.upper() or "UNKNOWN",))[0]
    dataset = dig(report, "release", "dataset", default="")
    sections = [
        section("Privacy claim and budget", "budget", lambda: privacy_section(report)),
        *([section("Series: version, budget forecast and drift", "series", lambda: series_section(report))]
          if report.get("series") else []),
        section("Checks", "checks", lambda: checks_section(report)),
        section("How the decision was reached, by what each check read", "decision", lambda: decision_section(report)),
        section("Fidelity: real against synthetic", "fidelity", lambda: fidelity_section(report)),
        section("Privacy audit", "audit", lambda: audit_section(report)),
        section("PII scan of the synthetic table", "pii", lambda: pii_section(report)),
        section("Replay: copies of real rows", "replay", lambda: replay_section(report)),
        section("Provenance", "provenance", lambda: provenance_section(report)),
        section("Opt-ins", "opt-ins", lambda: opt_ins_section(report)),
        section("What this report may be shown to" if report.get("scope") == "publishable"
                else "Not differentially private", "notice", lambda: notice_section(report)),
    ]
    try:
        head = verdict_header(report)
    except Exception as exc:  # noqa: BLE001 - see section
        head = f'<p class="broken">The verdict could not be drawn ({esc(type(exc).__name__)}).</p>'
    return document(f"{esc(word)} · dpsynth release report · {esc(dataset)}", head + "\n" + "\n".join(sections))
