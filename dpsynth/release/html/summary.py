"""The sections of ``report.html`` about the decision itself: the verdict and its reasons, the
privacy claim and the budget, every check, what the decision read, provenance, opt-ins and the
notice of what the page may be shown to."""

from __future__ import annotations

import json
from typing import Any

from dpsynth.release.html.charts import budget_plot
from dpsynth.release.html.markup import as_dict, as_float, as_list, data_table, dig, esc, fmt, kv_table

VERDICTS = {
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


def verdict_header(report: dict[str, Any]) -> str:
    """The page's header: title, the verdict and its reasons, and the loud warnings."""
    decision = as_dict(report.get("decision"))
    release = as_dict(report.get("release"))
    status = str(decision.get("status", "unknown"))
    word, cls, meaning = VERDICTS.get(status, (status.upper() or "UNKNOWN", "unknown", "Unknown decision."))
    reasons = [str(r) for r in as_list(decision.get("reasons"))]
    reason_html = "<ul>" + "".join(f"<li>{esc(r)}</li>" for r in reasons) + "</ul>" if reasons else ""
    if status != "released" and not reasons:
        reason_html = "<p>No reason was recorded.</p>"
    title = (f"dpsynth release report: {esc(release.get('dataset', '?'))} "
             f"with {esc(release.get('synthesizer', '?'))}")
    total = dig(release, "privacy", "total", "epsilon", default=release.get("epsilon"))
    scope = str(report.get("scope", "internal"))
    sub = (f"written {esc(report.get('created_at', '?'))} · ε = {esc(fmt(total))} for the table and the decision "
           f"(the table's own ε = {esc(fmt(release.get('epsilon')))}), δ = {esc(fmt(release.get('delta')))} · "
           f"report version {esc(report.get('report_version', '?'))} · "
           f"{'publishable report' if scope == 'publishable' else 'INTERNAL report'}")
    out = [
        f"<header><h1>{title}</h1><p class=sub>{sub}</p>",
        f'<div class="verdict {cls}" id="verdict"><div class="word">{esc(word)}</div>',
        f"<p>{esc(meaning)} Exit code {esc(fmt(decision.get('exit_code')))}.</p>{reason_html}</div>",
    ]
    opt_ins = [str(o) for o in as_list(report.get("opt_ins"))]
    if opt_ins:
        out.append(f'<div class="alarm"><strong>Built on {len(opt_ins)} opt-in(s) that weaken the usual '
                   "guarantees:</strong> " + ", ".join(f"<code>{esc(o)}</code>" for o in opt_ins)
                   + " (listed under Opt-ins below).</div>")
    if decision.get("privacy") == "not_dp":
        out.append('<div class="alarm"><strong>The decision to release read private data without privacy</strong> '
                   "(opt-in <code>decision_read_private_data_without_privacy</code>): whether this table exists is "
                   "not covered by the stated ε.</div>")
    elif decision.get("statement"):
        out.append(f'<p class="sub" id="decision-privacy">{esc(decision.get("statement"))}</p>')
    if release.get("secure_noise") is False:
        source = release.get("noise_source")
        drawn = f" (drawn by: {esc(source)})" if source else ""
        out.append('<div class="alarm"><strong>Insecure noise:</strong> this fit drew noise from a seeded or '
                   f"non-cryptographic generator{drawn}. Its privacy claim does not hold; never release "
                   "it.</div>")
    out.append("</header>")
    return "".join(out)



# -- privacy claim and budget ------------------------------------------------------------------------


def privacy_section(report: dict[str, Any]) -> str:
    """The privacy claim, the ledger before and after, and the budget plot."""
    release = as_dict(report.get("release"))
    ledger = as_dict(report.get("ledger"))
    params = release.get("synthesizer_params")
    seconds = as_dict(release.get("seconds"))
    rows: list[tuple[str, Any]] = [
        ("Dataset", release.get("dataset")),
        ("Synthesizer", release.get("synthesizer")),
        ("Claimed ε of the table", release.get("epsilon")),
        ("ρ of the decision's DP checks", dig(release, "privacy", "decision", "rho")),
        ("ε of the table and the decision (composed)", dig(release, "privacy", "total", "epsilon")),
        ("Claimed δ", release.get("delta")),
        ("Privacy unit", " · ".join(dict.fromkeys(str(u) for u in (release.get("privacy_unit"), dig(
            report, "ledger", "before", "unit_description")) if u is not None)) or None),
        ("Synthetic rows", release.get("rows")),
        ("Row count from", {"public_input": "public input (--rows)", "dp_estimate": "the synthesizer's DP estimate "
                            "of the private count"}.get(str(release.get("rows_source")), release.get("rows_source"))),
        ("Secure noise", {True: "yes", False: "NO (seeded or non-cryptographic noise)",
                          None: "— (the fit did not run)"}.get(release.get("secure_noise"),
                                                               release.get("secure_noise"))),
    ]
    if release.get("noise_source") is not None:
        rows.append(("Noise drawn by", release.get("noise_source")))
    claim = as_dict(release.get("claim"))
    if claim:
        rows.append(("Whose claim", {"dpsynth": "dpsynth's", "generator": "the generator's own (a plug-in)"}.get(
            str(claim.get("source")), claim.get("source"))))
        rows.append(("Plan charged", claim.get("plan")))
        rows.append(("Verified by dpsynth", claim.get("verified")))
    if isinstance(params, dict) and params:
        rows.append(("Synthesizer parameters", json.dumps(params, sort_keys=True, default=str)))
    if seconds:
        rows.append(("Seconds", ", ".join(f"{k} {fmt(v, 3)}" for k, v in seconds.items())))
    out = ['<div class="cols"><div><h3>Claim</h3>', kv_table(rows)]
    if claim.get("statement"):
        text = str(claim["statement"]).rstrip(".")
        statement = esc(text[:1].upper() + text[1:] + ".")
        out.append(f'<div class="alarm" id="claim"><strong>Unverified claim:</strong> {statement}</div>'
                   if claim.get("verified") is False else f'<p class="sub" id="claim">{statement}</p>')
    out.append("</div>")

    before, after = as_dict(ledger.get("before")), as_dict(ledger.get("after"))
    out.append("<div><h3>Ledger</h3>")
    out.append(kv_table([
        ("Ledger", ledger.get("url")),
        ("Dataset in the ledger", ledger.get("dataset")),
        ("Entries of this release", ", ".join(str(i) for i in as_list(ledger.get("entry_ids")))
         or "none (nothing reserved)"),
        ("ε cap", ledger.get("epsilon_cap", dig(before, "cap", "epsilon"))),
        ("ε spent before (tight)", dig(before, "spent", "epsilon_tight")),
        ("ε spent after (tight)", dig(after, "spent", "epsilon_tight") if after else "— (nothing reserved)"),
        ("ε spent after (plain sum)", dig(after, "spent", "epsilon_plain_sum") if after else None),
        ("Reservations recorded (a release: the fit and its DP checks)", dig(after or before, "releases")),
    ]))
    out.append("</div></div>")
    out.append(budget_plot(as_list(ledger.get("history")), as_float(ledger.get("epsilon_cap"))))
    return "".join(out)



# -- checks ---------------------------------------------------------------------------------------------


def checks_section(report: dict[str, Any]) -> str:
    """Every check with its value, rule, threshold, status and what it read."""
    checks = [as_dict(c) for c in as_list(report.get("checks"))]
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
            ("html", f'<code class="id">{esc(c.get("id", "?"))}</code>'), c.get("category"), c.get("title"),
            c.get("value"), ("html", f'<span class="nowrap">{esc(_COMPARISON.get(comparison, comparison))}</span>'),
            c.get("threshold"),
            ("html", f'<span class="badge {cls}">{esc(label)}</span>'), _READS.get(str(c.get("reads")), c.get("reads")),
            c.get("detail"),
        ))
    statuses = [str(c.get("status")) for c in checks]
    table = data_table(("check", "category", "what", "value", "rule", "threshold", "status", "reads", "detail"), rows,
                       numeric=(3, 5), row_class=lambda r: statuses[r] if statuses[r] in ("fail", "error") else "")
    return f"<p>{len(checks)} checks: {esc(summary)}.</p>{table}"


def decision_section(report: dict[str, Any]) -> str:
    """How many checks read what, the DP checks' cost, and the decision's privacy statement."""
    checks = [as_dict(c) for c in as_list(report.get("checks"))]
    counts: dict[str, int] = {}
    for c in checks:
        counts[str(c.get("reads"))] = counts.get(str(c.get("reads")), 0) + 1
    rows = [(_READS.get(k, k), counts.get(k, 0)) for k in _READS]
    dp_checks = as_dict(dig(report, "evidence", "dp_checks"))
    out = [data_table(("what the checks read", "checks"), rows, numeric=(1,))]
    decision = as_dict(dig(report, "release", "privacy", "decision"))
    if decision.get("events"):
        out.append(kv_table([("ρ of the DP checks", decision.get("rho")),
                             ("their ε alone at δ", decision.get("epsilon")),
                             ("DP estimate of the private row count (for the checks)", dp_checks.get("rows"))]))
    out.append(f"<p>{esc(dig(report, 'decision', 'statement', default=''))}</p>")
    return "".join(out)



# -- provenance, opt-ins, notice ---------------------------------------------------------------------


def _file(entry: Any) -> str:
    entry = as_dict(entry)
    if "fingerprint" in entry:
        return (f"<code>{esc(entry.get('name', '?'))}</code><br><span class=mono>{esc(entry.get('fingerprint'))}</span>"
                "<br><span class=muted>keyed with the ledger's secret: no guess about the data can be tested "
                "against it</span>")
    return (f"<code>{esc(entry.get('name', '?'))}</code><br><span class=mono>sha256 "
            f"{esc(entry.get('sha256', '?'))}</span>")


def provenance_section(report: dict[str, Any]) -> str:
    """Inputs and policy (fingerprints and hashes), the policy's rules and the versions."""
    versions = as_dict(report.get("versions"))
    inputs = as_dict(report.get("inputs"))
    policy = as_dict(report.get("policy"))
    artifacts = as_dict(report.get("artifacts"))
    out = ["<h3>Inputs and policy</h3>", kv_table([
        ("Private data", _file(inputs.get("data"))),
        ("Schema", _file(inputs.get("schema"))),
        ("Policy", f"<strong>{esc(policy.get('name', '?'))}</strong>: {esc(policy.get('description', ''))}"),
        ("Policy file", _file(policy.get("file"))),
        ("Synthetic table", f"<code>{esc(artifacts['synthetic'])}</code>" if artifacts.get("synthetic")
         else "none written (only a released report has one)"),
    ], raw=True)]
    rules = policy.get("rules")
    if isinstance(rules, dict) and rules:
        out.append("<h3>Policy rules as applied</h3>")
        out.append(f"<pre>{esc(json.dumps(rules, indent=2, sort_keys=True, default=str))}</pre>")
    if versions:
        out.append("<h3>Versions</h3>")
        out.append(kv_table((k, v if v is not None else "not installed") for k, v in versions.items()))
    return "".join(out)


def opt_ins_section(report: dict[str, Any]) -> str:
    """The opt-ins of the release, loudly (or that there are none)."""
    opt_ins = [str(o) for o in as_list(report.get("opt_ins"))]
    if not opt_ins:
        return "<p>None: this release uses no opt-in.</p>"
    items = "".join(f"<li><code>{esc(o)}</code></li>" for o in opt_ins)
    return (f'<div class="alarm"><strong>This release is built on {len(opt_ins)} opt-in(s).</strong> Each one sets '
            f"aside a default protection; a reviewer must accept every one explicitly.<ul>{items}</ul></div>")


def notice_section(report: dict[str, Any]) -> str:
    """What the page may be shown to: publishable, or internal and NOT DP."""
    if report.get("scope") == "publishable":
        return (f'<div class="notice">{esc(report.get("notice", ""))}</div><p class=muted>'
                f'{esc(dig(report, "decision", "statement", default=""))}</p>')
    notice = report.get("notice") or ("This report is computed partly from the private data and is NOT "
                                      "differentially private.")
    return (f'<div class="notice">{esc(notice)}</div><p class=muted>The synthetic table (when released) carries the '
            "differential-privacy guarantee stated above; this report does not. Share it only with the people who "
            "may see evidence about the private data.</p>")
