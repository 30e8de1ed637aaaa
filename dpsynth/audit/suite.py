"""Audit suites: YAML files naming the audits to run on a synthesizer, with their trials,
confidence and (public, synthetic) data generator. ``dpsynth/audit/suites/`` ships one per built-in
synthesizer (``dpsynth audit --suite mst`` by name, or a path); ``dpsynth audit`` runs them.

A suite::

    version: 1
    synthesizer_params: {estimation_iters: 200}   # optional, passed to the synthesizer
    data:
      generator: worst_case_pair                   # the only generator: no real data is read
      columns: {a: 2, b: 2, c: 2}                  # public domain: column -> number of values
      rows: 10                                     # rows of the smaller dataset
    audits:
      - kind: replay                               # record/replay checks (dpsynth.audit.replay)
      - kind: whitebox                             # transcript audit (dpsynth.audit.whitebox)
        trials_per_world: 500
        confidence: 0.95
        noise: secure                              # or seeded
        threshold: likelihood_ratio                # or split
      - kind: blackbox                             # black-box release audit (dpsynth.audit.blackbox)
        dataset: adult                             # the bundled Adult table (raw, its public schema)
        fits_per_world: 8                          # per target; 1 canary + 1 outlier by default
        reference_rows: 2000                       # seeded subsample the fits run on (null: all)
        workers: 1                                 # fits in N spawned processes (same result)
      - kind: canary                               # the release gate's canary audit (dpsynth.audit.canary)
        schema: adult                              # a bundled public schema its tables are drawn from
        fits: 3                                    # 1 to 3 fits; base_rows: 1000; sample_factor: 5
      - kind: onerun                               # one-run audit of one fit (dpsynth.audit.onerun)
        canaries: 1000                             # m, from data.columns' domain, far from the base
        guesses: null                              # r (even), or null: a fixed ladder with Bonferroni
        base_rows: 1000                            # base rows generated from the public domain
        scoring: auto                              # auto | whitebox | blackbox

Results are NOT differentially private (they are computed on the data they are given) and hold no
data row.
"""

from __future__ import annotations

import functools
import time
from typing import Any

from dpsynth.audit.bounds import NOT_DP_NOTICE
from dpsynth.audit.suite_file import SuiteError, load_suite, shipped_suite
from dpsynth.exceptions import ParameterError

__all__ = ["PLUGIN_KINDS", "SuiteError", "load_suite", "load_synthesizer", "run_suite", "shipped_suite"]


def _run_canary(make: Any, audit: dict[str, Any], *, epsilon: float, delta: float) -> dict[str, Any]:
    """The release gate's canary audit on tables drawn from a bundled public schema."""
    from dpsynth.audit.canary import METHOD, canary_audit
    from dpsynth.audit.whitebox import AuditError
    from dpsynth.datasets import load_adult

    _, schema = load_adult()
    try:
        out = canary_audit(make, schema, claimed_epsilon=epsilon, claimed_delta=delta, fits=audit["fits"],
                           base_rows=audit["base_rows"], sample_factor=audit["sample_factor"],
                           confidence=float(audit["confidence"]), seed=int(audit["seed"])).to_dict()
    except AuditError as exc:
        return {"method": METHOD, "violation": True, "error": str(exc), "notice": NOT_DP_NOTICE}
    out["schema"] = f"{audit['schema']} (bundled public schema; no data row is read)"
    return out


def _run_onerun(make: Any, schema: Any, audit: dict[str, Any], *, epsilon: float, delta: float) -> dict[str, Any]:
    """The one-run audit (one fit with canaries from the suite's public domain)."""
    from dpsynth.audit.onerun import one_run_audit

    return one_run_audit(
        make, schema, claimed_epsilon=epsilon, claimed_delta=delta, canaries=audit["canaries"],
        guesses=audit["guesses"], base_rows=audit["base_rows"], confidence=float(audit["confidence"]),
        seed=audit["seed"], scoring=audit["scoring"], min_distance=audit.get("min_distance"),
    ).to_dict()


def _run_blackbox(make: Any, audit: dict[str, Any], *, epsilon: float, delta: float) -> dict[str, Any]:
    """The black-box release audit on the bundled dataset the suite names."""
    from dpsynth.audit.blackbox import METHOD, blackbox_audit
    from dpsynth.audit.whitebox import AuditError
    from dpsynth.datasets import load_adult

    real, schema = load_adult()
    try:
        out = blackbox_audit(
            make, real, schema, claimed_epsilon=epsilon, claimed_delta=delta,
            fits_per_world=audit["fits_per_world"], canaries=audit["canaries"], outliers=audit["outliers"],
            reference_rows=audit["reference_rows"], attacks=tuple(audit["attacks"]),
            confidence=float(audit["confidence"]), noise=audit["noise"], seed=int(audit["seed"]),
            workers=audit["workers"],
        ).to_dict()
    except AuditError as exc:
        return {"method": METHOD, "violation": True, "error": str(exc), "notice": NOT_DP_NOTICE}
    out["dataset"] = f"{audit['dataset']} (bundled, raw, its public schema)"
    return out


def load_synthesizer(spec: str) -> Any:
    """A registered synthesizer by name, or a user's class by import path ``package.module:Class``
    (a plug-in with the plain contract comes back wrapped); raises :class:`ParameterError` naming
    what is missing. Kept for existing imports: see :func:`dpsynth.synth.plugin.load_generator`."""
    from dpsynth.synth.plugin import load_generator

    return load_generator(spec)


#: the audit kinds a plug-in (a generator dpsynth did not write) can run: the others need dpsynth's mechanisms
PLUGIN_KINDS = ("canary", "blackbox", "onerun")


def _check_plan(synthesizer: Any, schema: Any, spec: str) -> None:
    from dpsynth.privacy.events import PrivacyEvent

    try:
        events = synthesizer.plan(schema)
    except ParameterError:
        raise
    except Exception as exc:  # noqa: BLE001 - a user's class may fail in any way; it is a contract problem
        raise ParameterError(f"synthesizer ({spec!r}) does not follow the estimator contract: plan(schema) raised "
                             f"{type(exc).__name__}: {exc}") from None
    if not isinstance(events, list) or not events or not all(isinstance(e, PrivacyEvent) for e in events):
        raise ParameterError(f"synthesizer ({spec!r}) does not follow the estimator contract: plan(schema) must "
                             "return a non-empty list of dpsynth privacy events")


def run_suite(spec: str, *, epsilon: float, delta: float, suite: dict[str, Any]) -> dict[str, Any]:
    """Run every audit of a (validated) suite; returns the JSON-ready summary."""
    from dpsynth.audit.replay import neighbouring_pairs, replay_check
    from dpsynth.audit.whitebox import AuditError, whitebox_audit
    from dpsynth.schema.schema import Schema

    cls = load_synthesizer(spec)
    if getattr(cls, "plugin", False):  # refused before any fit: these audits read dpsynth's own mechanisms
        refused = [k for k in ("whitebox", "replay") if any(a["kind"] == k for a in suite["audits"])]
        if refused:
            raise ParameterError(f"synthesizer ({spec!r}) is a plug-in generator: the audit kind(s) "
                                 f"{', '.join(refused)} need dpsynth's own mechanisms; a plug-in can run the audit "
                                 f"kinds {', '.join(PLUGIN_KINDS)}")
    params = dict(suite.get("synthesizer_params") or {})
    schema = Schema.from_domain(dict(suite["data"]["columns"]))

    # picklable (a class and plain values), so that a blackbox audit can fit in worker processes
    make = functools.partial(cls, epsilon=epsilon, delta=delta, **params)

    try:
        probe = make()
    except TypeError as exc:
        raise ParameterError(f"synthesizer ({spec!r}) does not accept the suite's synthesizer_params: {exc}") from None
    _check_plan(probe, schema, spec)
    pairs = neighbouring_pairs(schema, rows=int(suite["data"]["rows"]))
    results: list[dict[str, Any]] = []
    for audit in suite["audits"]:
        start = time.perf_counter()
        if audit["kind"] == "blackbox":
            out = _run_blackbox(make, audit, epsilon=epsilon, delta=delta)
        elif audit["kind"] == "canary":
            out = _run_canary(make, audit, epsilon=epsilon, delta=delta)
        elif audit["kind"] == "onerun":
            out = _run_onerun(make, schema, audit, epsilon=epsilon, delta=delta)
        elif audit["kind"] == "replay":
            report = replay_check(make, schema, pairs={p: pairs[p] for p in audit["pairs"]}, name=spec)
            out = report.to_dict()
        else:
            data_0, data_1 = pairs["constant_plus_outlier"]
            try:
                result = whitebox_audit(
                    make, schema, data_0, data_1, claimed_epsilon=epsilon, claimed_delta=delta,
                    trials_per_world=audit["trials_per_world"], confidence=float(audit["confidence"]),
                    noise=audit["noise"], seed=int(audit.get("seed", 0)),
                    threshold=0.0 if audit["threshold"] == "likelihood_ratio" else None,
                )
                out = result.to_dict()
            except AuditError as exc:
                out = {"method": "whitebox_transcript_likelihood_ratio", "violation": True, "error": str(exc),
                       "notice": NOT_DP_NOTICE}
        out["seconds"] = round(time.perf_counter() - start, 2)
        results.append(out)
    bounds = [r for r in results if "epsilon_lower_bound" in r]
    strongest = max(bounds, key=lambda r: r["epsilon_lower_bound"]) if bounds else None
    return {
        "synthesizer": spec,
        "claimed_epsilon": float(epsilon),
        "claimed_delta": float(delta),
        "epsilon_lower_bound": strongest["epsilon_lower_bound"] if strongest else None,
        "max_provable_epsilon": strongest["max_provable_epsilon"] if strongest else None,
        "confidence": strongest["confidence"] if strongest else None,
        "trials": strongest["trials"] if strongest else None,
        "method": strongest["method"] if strongest else "record_replay",
        "violation": any(r.get("violation") for r in results),
        "audits": results,
        "data": {"generator": suite["data"]["generator"], "columns": dict(suite["data"]["columns"]),
                 "rows": int(suite["data"]["rows"])},
        "notice": NOT_DP_NOTICE,
    }
