"""The sections of ``report.html`` that show the evidence: fidelity (real against synthetic
marginals, utility), the privacy audits, the PII scan of the synthetic table and the replay checks.
A section whose evidence is absent says why; malformed evidence is shown as missing."""

from __future__ import annotations

from typing import Any

from dpsynth.release.html.charts import REAL, SYNTH, bound_plot, legend_html, marginal_plot, replay_plot, roc_plots
from dpsynth.release.html.markup import absent, as_dict, as_float, as_list, data_table, dig, esc, fmt, kv_table, pct

# -- fidelity -------------------------------------------------------------------------------------------


def fidelity_section(report: dict[str, Any]) -> str:
    """Fidelity: exact figures and marginal plots (internal), or the DP estimates (publishable)."""
    evidence = as_dict(report.get("evidence"))
    fidelity = evidence.get("fidelity")
    utility = evidence.get("utility") if evidence.get("utility") is not None else dig(fidelity, "utility")
    if not isinstance(fidelity, dict) and not isinstance(utility, dict):
        dp = as_dict(evidence.get("dp_checks"))
        rows = [(f"{key} (DP estimate)", value.get("value") if isinstance(value, dict) else value)
                for key, value in as_dict(dp.get("fidelity")).items()]
        score = as_dict(dp.get("utility"))
        if score:
            metric = str(score.get("metric", ""))
            rows.append((f"train-synthetic-test-real {metric} (DP estimate)", dig(score, "train_synthetic", metric)))
        if not rows:
            return absent("No fidelity evidence in this report")
        return (kv_table(rows) + "<p class=muted>DP estimates, measured with the decision's ρ; the exact figures "
                "against the private table are in the internal report.</p>")
    fidelity = as_dict(fidelity)
    out = []
    summary = [(label, fidelity[key]) for key, label in (
        ("real_rows", "Real rows"), ("synthetic_rows", "Synthetic rows"),
        ("l1_1way", "Mean 1-way L1 error"), ("l1_2way", "Mean 2-way L1 error"), ("l1_3way", "Mean 3-way L1 error"),
    ) if key in fidelity]
    association = as_dict(fidelity.get("association"))
    if association:
        pair = association.get("max_pair")
        summary.append(("Association difference (mean / max)",
                        f"{fmt(association.get('mean'))} / {fmt(association.get('max'))}"
                        + (f" ({' × '.join(str(p) for p in pair)})" if isinstance(pair, list) else "")))
    if summary:
        out.append(kv_table(summary))
        out.append("<p class=muted>L1 errors: 0 = identical histograms, 2 = disjoint (see docs/eval.md).</p>")
    if isinstance(utility, dict):
        out.append("<h3>Utility: train on synthetic, test on real</h3>")
        metric = str(utility.get("metric", ""))
        out.append(kv_table([
            ("Target", utility.get("target")), ("Metric", metric),
            ("Trained on real", dig(utility, "train_real", metric)),
            ("Trained on synthetic", dig(utility, "train_synthetic", metric)),
            ("Gap (real − synthetic)", utility.get("gap")),
            ("Held-out rows", utility.get("holdout_source", utility.get("holdout_rows"))),
        ]))
    marginals = [as_dict(m) for m in as_list(fidelity.get("marginals"))]
    per_column = as_dict(fidelity.get("columns"))
    tvd: dict[Any, Any] = as_dict(fidelity.get("tvd"))
    if marginals:
        out.append("<h3>Marginals, column by column</h3>")
        out.append(legend_html((("real", REAL), ("synthetic", SYNTH))))
        figures = [marginal_plot(m, tvd.get(m.get("column"), dig(per_column, m.get("column"), "tvd")))
                   for m in marginals]
        out.append(f'<div class="grid">{"".join(figures)}</div>')
    elif fidelity:
        out.append("<p class=muted>No per-column marginals in the report: no plots.</p>")
    if per_column:
        columns = [(name, as_dict(c).get("kind"), as_dict(c).get("tvd"), as_dict(c).get("ks"),
                    as_dict(c).get("wasserstein")) for name, c in per_column.items()]
        out.append("<h3>Per column</h3>")
        out.append(data_table(("column", "kind", "TVD", "KS", "Wasserstein / range"), columns, numeric=(2, 3, 4)))
    return "".join(out)



# -- audit ---------------------------------------------------------------------------------------------


_NOT_NESTED = {"attacks", "details", "pairs", "roc", "data"}


def _is_result(value: dict[str, Any]) -> bool:
    return any(k in value for k in ("method", "epsilon_lower_bound", "attacks", "claimed_epsilon"))


def _audit_results(audit: Any) -> list[tuple[str, dict[str, Any]]]:
    """The audit results in the evidence: one result, a mapping of named results, or a list."""
    if isinstance(audit, list):
        return [(str(as_dict(a).get("method", f"audit {i + 1}")), as_dict(a)) for i, a in enumerate(audit)]
    audit = as_dict(audit)
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
            out.extend((f"{name} {i + 1}", as_dict(v)) for i, v in enumerate(value))
    return out


def audit_section(report: dict[str, Any]) -> str:
    """Every audit result in the evidence, one after the other."""
    results = _audit_results(dig(report, "evidence", "audit"))
    if not results:
        return absent("No audit evidence in this report")
    return "".join(_one_audit(name, result, multiple=len(results) > 1) for name, result in results)


def _one_audit(name: str, result: dict[str, Any], *, multiple: bool) -> str:
    out = [f"<h3>{esc(name)}</h3>"] if multiple else []
    claimed, lower = as_float(result.get("claimed_epsilon")), as_float(result.get("epsilon_lower_bound"))
    above = claimed is not None and lower is not None and lower > claimed
    if above:
        out.append(f'<div class="alarm"><strong>Violation:</strong> the audit proves ε ≥ {esc(fmt(lower))}, above '
                   f"the claimed ε = {esc(fmt(claimed))}. This is an implementation defect, whatever else "
                   "passes.</div>")
    elif result.get("violation") is True:
        out.append('<div class="alarm"><strong>Violation:</strong> this audit found the implementation breaking '
                   "its privacy claim (see below). This is an implementation defect, whatever else passes.</div>")
    elif result.get("conclusive") is False:
        out.append(f'<div class="note"><strong>Inconclusive:</strong> with these trials the audit could prove at '
                   f"most ε = {esc(fmt(result.get('max_provable_epsilon')))}, not above the claimed ε = "
                   f"{esc(fmt(claimed))}: it could not have caught a violation. More trials are needed for a "
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
    out.append(kv_table(rows))
    failures = [str(f) for f in as_list(result.get("failures"))]
    if failures:
        out.append("<p>Failures:</p><ul>" + "".join(f"<li>{esc(f)}</li>" for f in failures) + "</ul>")
    audits = [as_dict(a) for a in as_list(result.get("audits"))]
    if audits:
        out.append(data_table(("audit", "ε lower bound", "max provable ε", "trials", "violation", "seconds", "note"),
                              [(a.get("method"), a.get("epsilon_lower_bound"), a.get("max_provable_epsilon"),
                                a.get("trials"), a.get("violation"), a.get("seconds"),
                                a.get("error") or "; ".join(str(f) for f in as_list(a.get("failures"))))
                               for a in audits],
                              numeric=(1, 2, 3, 5), row_class=lambda r: "fail" if audits[r].get("violation") else ""))
    scores = {str(k): as_dict(v) for k, v in as_dict(result.get("scores")).items()}
    if scores:  # the canary audit: its one-run bound per score
        out.append(data_table(("score", "AUC (canaries in vs out)", "ε lower bound", "max provable ε", "best guesses"),
                              [(k, a.get("auc"), a.get("epsilon_lower_bound"), a.get("max_provable_epsilon"),
                                "{guesses} ({mode}), {correct} correct".format(**as_dict(a.get("best")))
                                if {"guesses", "mode", "correct"} <= set(as_dict(a.get("best"))) else "")
                               for k, a in scores.items()], numeric=(1, 2, 3)))
    attacks = {str(k): as_dict(v) for k, v in as_dict(result.get("attacks")).items()}
    bound = bound_plot(name, result, attacks)
    roc = roc_plots(attacks)
    if bound or roc:
        out.append(bound + roc)
    if attacks:
        out.append(data_table(("attack", "AUC", "TPR at 1% FPR", "ε lower bound", "max provable ε"),
                              [(k, a.get("auc"), a.get("tpr_at_1pct_fpr"), a.get("epsilon_lower_bound"),
                                a.get("max_provable_epsilon")) for k, a in attacks.items()], numeric=(1, 2, 3, 4)))
    targets = as_list(result.get("targets"))
    if targets:
        shown = "; ".join(fmt(t) for t in targets[:20]) + (f"; … ({len(targets) - 20} more)" if len(targets) > 20
                                                             else "")
        out.append(f"<p class=muted>Targets ({len(targets)}, described by index and kind, never by value): "
                   f"<span class=mono>{esc(shown)}</span></p>")
    if result.get("notice"):
        out.append(f"<p class=muted>{esc(result['notice'])}</p>")
    return "".join(out)



# -- PII and replay ------------------------------------------------------------------------------------


def pii_section(report: dict[str, Any]) -> str:
    """The PII scan of the synthetic table: its settings, findings (masked) and columns."""
    pii = dig(report, "evidence", "pii")
    if not isinstance(pii, dict):
        return absent("No PII scan in this report")
    ner = as_dict(pii.get("ner"))
    entities = pii.get("entities")
    out = [kv_table([
        ("Rows scanned", pii.get("rows")),
        ("Score threshold", pii.get("threshold")),
        ("Entity types", entities if isinstance(entities, (str, list)) else None),
        ("NER", (f"on ({ner.get('model', '?')} {ner.get('version', '')})".strip() if ner.get("enabled")
                 else f"OFF: {ner.get('reason', 'no reason recorded')}") if ner else None),
        ("Found", pii.get("found")),
    ])]
    if ner and not ner.get("enabled"):
        missed = as_list(ner.get("not_covered"))
        out.append(f'<div class="alarm"><strong>NER was off:</strong> entity types found only by NER were not looked '
                   f"for ({esc(fmt(missed))}).</div>")
    findings = [as_dict(f) for f in as_list(pii.get("findings"))]
    if findings:
        out.append(data_table(("column", "entity type", "cells", "share", "max score", "masked examples"),
                              [(f.get("column"), f.get("entity_type"), f.get("cells"), pct(as_float(f.get("share")), 2),
                                f.get("max_score"),
                                ("html", "<br>".join(f"<code>{esc(x)}</code>" for x in as_list(f.get("examples")))
                                 or "—"))
                               for f in findings], numeric=(2, 3, 4), row_class=lambda r: "fail"))
    else:
        out.append("<p>No entity found at or above the threshold.</p>")
    columns = [as_dict(c) for c in as_list(pii.get("columns"))]
    if columns:
        out.append("<h3>How each column was scanned</h3>")
        out.append(data_table(("column", "mode", "why", "distinct values", "suppressed (NER, short values)"),
                              [(c.get("name"), c.get("mode"), c.get("reason"), c.get("distinct"),
                                ", ".join(f"{k}: {fmt(v)}" for k, v in as_dict(c.get("suppressed")).items()) or "—")
                               for c in columns], numeric=(3,)))
    if pii.get("notice"):
        out.append(f"<p class=muted>{esc(pii['notice'])}</p>")
    return "".join(out)


def replay_section(report: dict[str, Any]) -> str:
    """The replay checks: rates against their baseline, and the distances to the closest real row."""
    replay = dig(report, "evidence", "replay")
    if not isinstance(replay, dict):
        return absent("No replay check in this report")
    checks = [as_dict(c) for c in as_list(replay.get("checks"))]
    out = [kv_table([
        ("Baseline", replay.get("baseline")), ("Reference rows", replay.get("reference_rows")),
        ("Quasi-identifiers", replay.get("quasi_identifiers")), ("Near-copy threshold", replay.get("near_threshold")),
        ("Significance level", replay.get("alpha")), ("Flagged", replay.get("flagged")),
    ])]
    if checks:
        out.append(replay_plot(checks))
        out.append(data_table(("check", "synthetic rate", "baseline rate", "synthetic matches", "baseline matches",
                               "p-value", "flagged"),
                              [(c.get("check"), pct(as_float(c.get("synthetic_rate")), 3),
                                pct(as_float(c.get("baseline_rate")), 3),
                                f"{fmt(c.get('synthetic_matches'))} / {fmt(c.get('synthetic_rows'))}",
                                f"{fmt(c.get('baseline_matches'))} / {fmt(c.get('baseline_rows'))}",
                                c.get("p_value"), c.get("flagged")) for c in checks],
                              numeric=(1, 2, 3, 4, 5), row_class=lambda r: "fail" if checks[r].get("flagged") else ""))
    quantiles = as_dict(replay.get("dcr_quantiles"))
    if quantiles:
        keys = sorted({str(q) for v in quantiles.values() for q in as_dict(v)})
        out.append("<h3>Distance to the closest real row (Gower), quantiles</h3>")
        out.append(data_table(("rows", *keys),
                              [(name, *(as_dict(v).get(k) for k in keys)) for name, v in quantiles.items()],
                              numeric=tuple(range(1, len(keys) + 1))))
    if replay.get("notice"):
        out.append(f"<p class=muted>{esc(replay['notice'])}</p>")
    return "".join(out)
