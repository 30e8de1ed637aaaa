"""Example release reports for the HTML tests and ``scripts/screenshot-report.py`` (not a test module).

They are shaped like the evidence dpsynth's components emit (``dpsynth.audit`` results,
``ScanReport.to_dict()``, ``CopyReport.to_dict()``, ``dpsynth.quality.evaluate``, a ledger
``DatasetStatement.to_dict()``) and validate against ``dpsynth/release/report.schema.json``. The
"real" marginals are those of the bundled, public UCI Adult table; every other figure (the
synthetic shares, audit, scan and replay numbers) is illustrative, not measured.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np

import dpsynth

SCHEMA_PATH = Path(dpsynth.__file__).parent / "release" / "report.schema.json"

HOSTILE_COLUMN = "<script>alert(1)</script>"
HOSTILE_LEVEL = '"><img src=x onerror=alert(1)>'
HOSTILE_TEXT = "</svg></table><script>alert('x')</script><b>bold</b> & co"

FORBIDDEN = ["CREDIT_CARD", "EMAIL_ADDRESS", "PHONE_NUMBER", "US_SSN"]
_PLOTTED = ["age", "workclass", "education", "marital-status", "occupation", "race", "sex", "hours-per-week",
            "native-country", "income"]
_NOTICE = ("This report is computed partly from the private data (audits, replay checks, fidelity against the real "
           "table) and is NOT differentially private: internal evidence for reviewers. It holds no row of the "
           "private data.")


def report_schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text())


def validate(report: dict[str, Any]) -> None:
    """Raise ``jsonschema.ValidationError`` unless ``report`` matches the shipped schema."""
    import jsonschema

    jsonschema.Draft202012Validator(report_schema()).validate(report)


@cache
def _adult_marginals() -> tuple[tuple[str, tuple[str, ...], tuple[float, ...]], ...]:
    """(column, labels, shares) of the public Adult table, levels or bins from its schema."""
    from dpsynth.datasets import load_adult

    data, schema = load_adult()
    out = []
    for name in _PLOTTED:
        col = schema[name]
        values = data[name].astype(str)
        if col.kind == "categorical":
            labels = [str(v) for v in col.levels]
            counts = [int((values == v).sum()) for v in labels]
        else:
            edges = [float(e) for e in col.edges]
            x = np.asarray(values, dtype=float)
            hist, _ = np.histogram(x[~np.isnan(x)], bins=edges)
            labels = [f"{edges[i]:g}–{edges[i + 1]:g}" for i in range(len(edges) - 1)]
            counts = [int(c) for c in hist]
        total = sum(counts) or 1
        out.append((name, tuple(labels), tuple(c / total for c in counts)))
    return tuple(out)


def _marginals(seed: int = 3) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    out = []
    for name, labels, real in _adult_marginals():
        real_arr = np.asarray(real)
        noisy = np.clip(real_arr * np.exp(rng.normal(0, 0.15, len(real))) + rng.uniform(0, 0.004, len(real)), 0, None)
        synth = noisy / noisy.sum()
        out.append({"column": name, "labels": list(labels), "real": [round(float(v), 6) for v in real_arr],
                    "synthetic": [round(float(v), 6) for v in synth]})
    return out


def _roc(separation: float, points: int = 60) -> dict[str, list[float]]:
    normal = NormalDist()
    fpr = [0.0] + [10 ** (-3 + 3 * i / (points - 1)) for i in range(points)]
    tpr = [0.0] + [normal.cdf(normal.inv_cdf(min(f, 1 - 1e-12)) + separation) if f < 1 else 1.0 for f in fpr[1:]]
    return {"fpr": [round(f, 6) for f in fpr], "tpr": [round(t, 6) for t in tpr]}


def _audit(claimed: float, lower: float) -> dict[str, Any]:
    attacks = {
        "distance_to_closest_record": {"auc": 0.531, "tpr_at_1pct_fpr": 0.014, "epsilon_lower_bound": lower,
                                       "max_provable_epsilon": 3.41, "roc": _roc(0.11), "threshold": 0.82,
                                       "threshold_chosen_on": "first half", "evaluation_trials": 200,
                                       "errors": {"false_positives": 61, "false_negatives": 83},
                                       "confidence": 0.975},
        "density_ratio": {"auc": 0.512, "tpr_at_1pct_fpr": 0.011, "epsilon_lower_bound": round(lower * 0.6, 4),
                          "max_provable_epsilon": 3.41, "roc": _roc(0.04), "threshold": None,
                          "threshold_chosen_on": "first half", "evaluation_trials": 200,
                          "errors": {"false_positives": 70, "false_negatives": 88}, "confidence": 0.975},
    }
    return {
        "method": "blackbox_mia", "claimed_epsilon": claimed, "claimed_delta": 1e-6, "epsilon_lower_bound": lower,
        "max_provable_epsilon": 3.41, "confidence": 0.95, "trials": 400, "violation": lower > claimed,
        "conclusive": True, "auc": 0.531, "tpr_at_1pct_fpr": 0.014,
        "strongest_attack": "distance_to_closest_record", "attacks": attacks,
        "targets": [{"index": 1733, "kind": "outlier"}, {"index": 20412, "kind": "outlier"},
                    {"index": 88, "kind": "random"}],
        "fits": 400, "seconds": 61.8, "reference_rows": 6512, "details": {"fits_per_world": 100},
        "notice": "audit evidence: computed from private data, NOT differentially private; internal use only "
                  "(contains no data rows)",
    }


def reference_suite(violation: bool = False) -> dict[str, Any]:
    """The shape of ``dpsynth.audit.suite.run_suite``'s summary (nested under the audit's ``suite``)."""
    audits = [
        {"method": "whitebox_transcript_likelihood_ratio", "claimed_epsilon": 1.0, "epsilon_lower_bound": 0.62,
         "max_provable_epsilon": 4.1, "confidence": 0.95, "trials": 2000, "violation": False, "seconds": 12.5},
        {"method": "record_replay", "passed": not violation, "violation": violation, "seconds": 1.1,
         "failures": ["pair_a: noise: identical outputs on neighbouring inputs"] if violation else []},
    ]
    return {"synthesizer": "mst", "claimed_epsilon": 1.0, "claimed_delta": 1e-6, "epsilon_lower_bound": 0.62,
            "max_provable_epsilon": 4.1, "confidence": 0.95, "trials": 2000,
            "method": "whitebox_transcript_likelihood_ratio", "violation": violation, "audits": audits,
            "data": {"generator": "planted", "columns": {"a": 4, "b": 3}, "rows": 1000},
            "notice": "audit evidence: computed from private data, NOT differentially private"}


def _pii(findings: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    findings = findings or []
    return {
        "report": "dpsynth.pii.scan", "version": 1, "source": "synthetic", "rows": 32561, "threshold": 0.5,
        "entities": "all", "ner": {"enabled": True, "model": "en_core_web_sm", "version": "3.8.0"},
        "found": bool(findings), "findings": findings,
        "columns": [
            {"name": "age", "mode": "patterns", "reason": "integer column", "distinct": 73, "analysed": 73,
             "cached": 0, "allowed": 0, "prefiltered": 0, "suppressed": {}},
            {"name": "workclass", "mode": "declared levels", "reason": "every value is a declared level",
             "distinct": 8, "analysed": 0, "cached": 0, "allowed": 8, "prefiltered": 0, "suppressed": {}},
            {"name": "native-country", "mode": "declared levels", "reason": "every value is a declared level",
             "distinct": 41, "analysed": 0, "cached": 0, "allowed": 41, "prefiltered": 0,
             "suppressed": {"LOCATION": 31977}},
        ],
        "stats": {"seconds": 4.2, "distinct_values": 122, "analyze_calls": 73, "nlp_texts": 0, "cached": 0,
                  "allowed": 49, "prefiltered": 0},
        "notice": "This scan reads the table it is given and is not differentially private; run on a synthetic "
                  "table, its report holds counts, scores and masked examples only, never a value.",
    }


def _replay(exact: float = 0.0009, exact_base: float = 0.0011) -> dict[str, Any]:
    def rate(check: str, synth: float, base: float, p: float) -> dict[str, Any]:
        return {"check": check, "synthetic_rate": synth, "baseline_rate": base,
                "synthetic_matches": round(synth * 32561), "synthetic_rows": 32561,
                "baseline_matches": round(base * 6512), "baseline_rows": 6512, "p_value": p,
                "flagged": synth > base and p < 0.01}

    return {
        "report": "dpsynth.pii.replay", "version": 1, "flagged": exact > exact_base,
        "checks": [rate("exact", exact, exact_base, 0.81 if exact <= exact_base else 1e-9),
                   rate("quasi_identifier", 0.0412, 0.0437, 0.77), rate("near", 0.0061, 0.0068, 0.64)],
        "columns": list(_PLOTTED), "quasi_identifiers": ["age", "sex", "race", "native-country"],
        "near_threshold": 0.02, "alpha": 0.01, "baseline": "holdout", "reference_rows": 26049,
        "dcr_quantiles": {"synthetic": {"0.01": 0.0, "0.05": 0.011, "0.5": 0.071},
                          "holdout": {"0.01": 0.0, "0.05": 0.009, "0.5": 0.066}},
        "seconds": 3.1,
        "notice": "NOT differentially private: these checks read the real data. Internal evidence only; the "
                  "report holds rates and distance quantiles, never a row.",
    }


def _fidelity() -> dict[str, Any]:
    marginals = _marginals()
    tvd = {m["column"]: round(0.5 * sum(abs(a - b) for a, b in zip(m["real"], m["synthetic"], strict=True)), 4)
           for m in marginals}
    return {
        "real_rows": 32561, "synthetic_rows": 32561, "l1_1way": 0.0421, "l1_2way": 0.0874, "l1_3way": 0.1432,
        "n_1way": 15, "n_2way": 105, "n_3way": 455, "sampled_1way": False, "sampled_2way": False,
        "sampled_3way": False, "tvd": tvd,
        "columns": {name: {"kind": "categorical" if name not in ("age", "hours-per-week") else "integer",
                           "tvd": value, **({"ks": 0.031, "wasserstein": 0.0094}
                                            if name in ("age", "hours-per-week") else {})}
                    for name, value in tvd.items()},
        "association": {"mean": 0.027, "max": 0.118, "max_pair": ["relationship", "sex"]},
        "marginals": marginals,
    }


def _utility() -> dict[str, Any]:
    return {"target": "income", "holdout_source": "holdout file (rows the synthesizer never saw)",
            "train_real": {"accuracy": 0.8702, "f1_macro": 0.8011, "roc_auc": 0.9243},
            "train_synthetic": {"accuracy": 0.8431, "f1_macro": 0.7512, "roc_auc": 0.8957},
            "metric": "accuracy", "gap": 0.0271}


def _statement(spent_tight: float, plain: float, releases: int, cap: float = 4.0) -> dict[str, Any]:
    return {"dataset": "adult-2024", "unit": "row",
            "unit_description": "add/remove one row (one person per row)",
            "cap": {"epsilon": cap, "delta": 1e-5, "rho": 0.61},
            "spent": {"rho": round(0.061 * spent_tight, 6), "additive_delta": 0.0, "epsilon_tight": spent_tight,
                      "delta": 1e-5, "composition": "zCDP", "epsilon_plain_sum": plain, "delta_plain_sum": 0.0},
            "remaining": {"rho": 0.4, "additive_delta": 1e-5}, "releases": releases, "not_completed": 0,
            "cap_history": [{"epsilon": cap, "delta": 1e-5, "at": "2024-03-01T09:00:00Z"}], "entries": []}


def _history(with_this: bool) -> list[dict[str, Any]]:
    spends = [(0.5, 0.5), (0.86, 1.0), (1.21, 1.5), (1.43, 1.75), (1.88, 2.5)]
    out = [{"entry_id": 3 + 2 * i, "at": f"2024-0{3 + i}-1{i}T10:00:00Z", "epsilon_spent_tight": t,
            "epsilon_spent_plain_sum": p, "this_release": False} for i, (t, p) in enumerate(spends)]
    if with_this:
        out.append({"entry_id": 14, "at": "2024-09-02T08:15:00Z", "epsilon_spent_tight": 2.46,
                    "epsilon_spent_plain_sum": 3.5, "this_release": True})
    return out


def _check(cid: str, category: str, title: str, value: Any, comparison: str, threshold: Any, status: str,
           detail: str) -> dict[str, Any]:
    reads = {"privacy": "public", "budget": "public", "audit": "dp_output", "pii": "dp_output"}.get(category,
                                                                                                   "private_dp")
    return {"id": cid, "category": category, "title": title, "value": value, "threshold": threshold,
            "comparison": comparison, "status": status, "detail": detail, "reads": reads}


def _checks() -> list[dict[str, Any]]:
    return [
        _check("privacy.epsilon", "privacy", "claimed ε within the policy cap", 1.0, "<=", 3.0, "pass",
               "ε = 1 ≤ 3"),
        _check("privacy.delta", "privacy", "claimed δ within the policy cap", 1e-6, "<=", 1e-5, "pass",
               "δ = 1e-06 ≤ 1e-05"),
        _check("budget.ledger", "budget", "the ledger has the budget (ε spent after this release)", 2.46, "<=", 4.0,
               "pass", "reserved as entry 14"),
        _check("audit.epsilon_lower_bound", "audit", "audit ε lower bound does not exceed the claim", 0.214, "<=",
               1.0, "pass", "400 trials at 95% confidence; max provable ε 3.41"),
        _check("audit.mia_auc", "audit", "membership-inference AUC ceiling", 0.531, "<=", 0.6, "pass",
               "best attack: distance_to_closest_record"),
        _check("audit.tpr_at_1pct_fpr", "audit", "TPR at 1% FPR ceiling", 0.014, "<=", 0.05, "pass",
               "best attack: distance_to_closest_record"),
        _check("pii.forbidden_entities", "pii", "no forbidden PII entity types", [], "none_of", FORBIDDEN, "pass",
               "no entity found at score ≥ 0.5"),
        _check("replay.exact", "replay", "exact copies no higher than the holdout baseline", 0.0009,
               "not_above_baseline", 0.0011, "pass", "p = 0.81"),
        _check("replay.quasi_identifier", "replay", "quasi-identifier copies no higher than the baseline", 0.0412,
               "not_above_baseline", 0.0437, "pass", "p = 0.77"),
        _check("fidelity.l1_2way", "fidelity", "mean 2-way marginal L1 error", 0.0874, "<=", 0.25, "pass", ""),
        _check("fidelity.max_tvd", "fidelity", "largest per-column TVD", 0.061, "<=", 0.15, "pass",
               "largest: native-country"),
        _check("utility.gap", "utility", "TSTR accuracy gap (real − synthetic)", 0.0271, "<=", 0.05, "pass",
               "target income"),
    ]


def example_report(status: str = "released") -> dict[str, Any]:
    """A report of the given decision: ``released``, ``blocked`` (audit violation, PII, an errored check)
    or ``refused`` (the ledger refused; no evidence at all)."""
    report: dict[str, Any] = {
        "report_version": "2",
        "scope": "internal",
        "created_at": "2024-09-02T08:21:44Z",
        "notice": _NOTICE,
        "decision": {"status": "released", "exit_code": 0, "reasons": [], "privacy": "dp",
                     "statement": "The decision to release is differentially private."},
        "release": {
            "dataset": "adult-2024", "synthesizer": "mst", "synthesizer_params": {"max_cells": 10000},
            "epsilon": 1.0, "delta": 1e-6, "rows": 32548, "rows_source": "dp_estimate", "privacy_unit": "row",
            "secure_noise": True,
            "noise_source": "OpenDP's exact samplers (discrete Gaussian, Gumbel noisy max) on OpenDP's secure "
                            "generator",
            "privacy": {"table": {"epsilon": 1.0, "delta": 1e-6, "epsilon_composed": 0.9999, "events": 29},
                        "decision": {"rho": 5e-4, "epsilon": 0.21, "delta": 1e-6, "events": []},
                        "total": {"epsilon": 1.02, "delta": 1e-6, "covers": "the table and the decision"}},
            "seconds": {"fit": 14.2, "sample": 0.9, "audit": 61.8, "pii": 4.2, "replay": 3.1, "quality": 6.4},
        },
        "versions": {"dpsynth": "0.1.0", "python": "3.11.2", "numpy": "1.26.4", "opendp": "0.16.1",
                     "presidio-analyzer": "2.2.366", "torch": None},
        "inputs": {"data": {"name": "adult.csv.gz", "fingerprint": "hmac-sha256:" + "3f" * 32},
                   "schema": {"name": "schema.yaml", "sha256": "a1" * 32}},
        "policy": {"name": "default", "description": "dpsynth's default release policy",
                   "file": {"name": "default.yaml", "sha256": "5c" * 32},
                   "rules": {"epsilon_max": 3.0, "delta_max": 1e-5, "audit": {"auc_max": 0.6, "tpr_at_1pct_max": 0.05},
                             "pii": {"forbidden": FORBIDDEN}, "replay": {"exact": "not_above_baseline"},
                             "fidelity": {"l1_2way_max": 0.25, "max_tvd": 0.15}, "utility": {"gap_max": 0.05}}},
        "opt_ins": [],
        "ledger": {"url": "sqlite:///var/lib/dpsynth/ledger.db", "dataset": "adult-2024",
                   "before": _statement(1.88, 2.5, 5), "after": _statement(2.46, 3.5, 6), "entry_id": 14,
                   "entry_ids": [14, 15],
                   "history": _history(True), "epsilon_cap": 4.0},
        "checks": _checks(),
        "evidence": {"audit": _audit(1.0, 0.214), "pii": _pii(), "replay": _replay(), "fidelity": _fidelity(),
                     "utility": _utility()},
        "artifacts": {"synthetic": "synthetic.csv"},
    }
    if status == "released":
        return report
    if status == "blocked":
        report["decision"] = {"status": "blocked", "exit_code": 1, "privacy": "dp", "statement": "DP.", "reasons": [
            "audit.epsilon_lower_bound: the audit proves ε ≥ 1.37 > claimed ε = 1 (implementation defect)",
            "pii.forbidden_entities: EMAIL_ADDRESS found in column 'workclass' (3 cells)",
            "utility.gap: could not run: ValueError: the target column has one class in the synthetic table",
        ]}
        report["evidence"]["audit"] = _audit(1.0, 1.37)
        report["evidence"]["pii"] = _pii([{"column": "workclass", "entity_type": "EMAIL_ADDRESS", "cells": 3,
                                           "share": 9.2e-05, "max_score": 1.0,
                                           "examples": ["j***@e******.com", "a***@m***.org"]}])
        report["evidence"]["utility"] = None
        for c in report["checks"]:
            if c["id"] == "audit.epsilon_lower_bound":
                c.update(value=1.37, status="fail", detail="violation: the lower bound exceeds the claim")
            elif c["id"] == "pii.forbidden_entities":
                c.update(value=["EMAIL_ADDRESS"], status="fail", detail="EMAIL_ADDRESS in workclass")
            elif c["id"] == "utility.gap":
                c.update(value=None, status="error", detail="ValueError: the target column has one class")
        report["artifacts"]["synthetic"] = None
        return report
    if status == "refused":
        report["decision"] = {"status": "refused", "exit_code": 3, "privacy": "dp", "statement": "DP.", "reasons": [
            "budget.ledger: requested ε = 3 (tight 4.61 after it) exceeds the cap ε = 4 (spent 1.88)"]}
        report["release"].update(epsilon=3.0, secure_noise=None, noise_source=None, seconds={"plan": 0.01})
        report["ledger"].update(after=None, entry_id=None, entry_ids=[], history=_history(False))
        report["evidence"] = {}
        checks = []
        for c in _checks():
            if c["category"] == "privacy":
                checks.append(c)
            elif c["id"] == "budget.ledger":
                checks.append({**c, "value": 4.61, "status": "fail", "detail": "refused by the ledger"})
            else:
                checks.append({**c, "value": None, "status": "not_run", "detail": "the budget was refused"})
        report["checks"] = checks
        report["artifacts"]["synthetic"] = None
        return report
    raise ValueError(f"status must be released, blocked or refused, got {status!r}")


def hostile_report() -> dict[str, Any]:
    """A released report whose data-derived strings try to inject markup everywhere they can."""
    report = copy.deepcopy(example_report("blocked"))
    report["release"]["dataset"] = HOSTILE_TEXT
    report["release"]["synthesizer"] = HOSTILE_COLUMN
    report["decision"]["reasons"].append(f"fidelity: column {HOSTILE_COLUMN} level {HOSTILE_LEVEL}")
    marginal = report["evidence"]["fidelity"]["marginals"][1]
    marginal["column"] = HOSTILE_COLUMN
    marginal["labels"][0] = HOSTILE_LEVEL
    report["evidence"]["fidelity"]["tvd"][HOSTILE_COLUMN] = 0.01
    report["evidence"]["fidelity"]["columns"][HOSTILE_COLUMN] = {"kind": HOSTILE_LEVEL, "tvd": 0.01}
    # A column with many levels, every one hostile (also the "other" bucket and the tooltips).
    report["evidence"]["fidelity"]["marginals"].append({
        "column": HOSTILE_LEVEL, "labels": [f"{HOSTILE_LEVEL}{i}" for i in range(20)],
        "real": [0.05] * 20, "synthetic": [0.05] * 20})
    report["evidence"]["pii"]["findings"][0].update(column=HOSTILE_COLUMN, examples=[HOSTILE_LEVEL])
    report["evidence"]["pii"]["columns"][0]["name"] = HOSTILE_COLUMN
    attacks = report["evidence"]["audit"]["attacks"]
    attacks[HOSTILE_TEXT] = attacks.pop("density_ratio")
    report["evidence"]["audit"]["targets"].append({"kind": HOSTILE_LEVEL})
    report["evidence"]["replay"]["checks"][0]["check"] = HOSTILE_COLUMN
    report["checks"][0]["title"] = HOSTILE_TEXT
    report["checks"][0]["detail"] = HOSTILE_LEVEL
    report["checks"][1]["value"] = HOSTILE_COLUMN
    report["policy"]["description"] = HOSTILE_TEXT
    report["policy"]["rules"][HOSTILE_COLUMN] = HOSTILE_LEVEL
    report["opt_ins"] = [HOSTILE_COLUMN]
    report["versions"][HOSTILE_COLUMN] = HOSTILE_LEVEL
    report["ledger"]["url"] = HOSTILE_TEXT
    report["ledger"]["history"][0]["at"] = HOSTILE_LEVEL
    report["inputs"]["data"]["name"] = HOSTILE_LEVEL
    report["notice"] = HOSTILE_TEXT
    report["created_at"] = HOSTILE_COLUMN
    return report
