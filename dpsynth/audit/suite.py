"""Audit suites: YAML files naming the audits to run on a synthesizer, with their trials,
confidence and (public, synthetic) data generator. ``audits/suites/`` holds one per built-in
synthesizer; ``dpsynth audit`` runs them.

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
from pathlib import Path
from typing import Any

from dpsynth.audit.bounds import NOT_DP_NOTICE
from dpsynth.exceptions import ParameterError

_KINDS = {"replay", "whitebox", "blackbox", "onerun", "canary"}
_PAIRS = ("constant_plus_outlier", "outlier_removed", "random_plus_row")


class SuiteError(ParameterError):
    """A suite file is malformed (every problem is listed)."""


def _problem(problems: list[str], where: str, message: str) -> None:
    problems.append(f"{where} {message}")


_BLACKBOX_DATASETS = ("adult",)


def _check_confidence_and_noise(audit: dict[str, Any], where: str, problems: list[str]) -> None:
    """``confidence`` (default 0.95) and ``noise`` (default secure) of a white-box or black-box audit."""
    confidence = audit.setdefault("confidence", 0.95)
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float)) or not 0 < confidence < 1:
        _problem(problems, f"{where}.confidence", f"({confidence!r}) must be in the open interval (0, 1)")
    if audit.setdefault("noise", "secure") not in ("secure", "seeded"):
        _problem(problems, f"{where}.noise", f"({audit['noise']!r}) must be 'secure' or 'seeded'")


def _check_blackbox(audit: dict[str, Any], where: str, problems: list[str]) -> None:
    """Validate (and fill the defaults of) a ``kind: blackbox`` audit."""
    from dpsynth.audit.blackbox import ATTACKS

    def integer(key: str, default: int | None, low: int, nullable: bool = False) -> None:
        value = audit.setdefault(key, default)
        if nullable and value is None:
            return
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            _problem(problems, f"{where}.{key}", f"({value!r}) must be an integer >= {low}"
                     + (" or null" if nullable else ""))

    if audit.setdefault("dataset", "adult") not in _BLACKBOX_DATASETS:
        _problem(problems, f"{where}.dataset", f"({audit['dataset']!r}) must be one of {', '.join(_BLACKBOX_DATASETS)}")
    integer("fits_per_world", 8, 2)
    integer("canaries", 1, 0)
    integer("outliers", 1, 0)
    integer("reference_rows", 2000, 10, nullable=True)
    integer("seed", 0, 0)
    integer("workers", 1, 1)
    attacks = audit.setdefault("attacks", list(ATTACKS))
    if not isinstance(attacks, list) or not attacks or any(a not in ATTACKS for a in attacks):
        _problem(problems, f"{where}.attacks", f"must be a non-empty list of {', '.join(ATTACKS)}")
    _check_confidence_and_noise(audit, where, problems)
    extra = set(audit) - {"kind", "dataset", "fits_per_world", "canaries", "outliers", "reference_rows", "attacks",
                          "confidence", "noise", "seed", "workers"}
    if extra:
        _problem(problems, where, f"has unknown key(s) {', '.join(sorted(extra))}")


def _check_onerun(audit: dict[str, Any], where: str, problems: list[str]) -> None:
    def integer(value: object, low: int) -> bool:
        return not isinstance(value, bool) and isinstance(value, int) and value >= low

    canaries = audit.setdefault("canaries", 1000)
    if not integer(canaries, 2):
        _problem(problems, f"{where}.canaries", f"({canaries!r}) must be an integer >= 2")
    guesses = audit.setdefault("guesses", None)
    too_many = integer(canaries, 2) and integer(guesses, 2) and guesses > canaries
    if guesses is not None and (not integer(guesses, 2) or guesses % 2 or too_many):
        _problem(problems, f"{where}.guesses", f"({guesses!r}) must be null or an even integer in [2, canaries]")
    for key, default, low in (("base_rows", 1000, 1), ("seed", 0, 0)):
        if not integer(audit.setdefault(key, default), low):
            _problem(problems, f"{where}.{key}", f"({audit[key]!r}) must be an integer >= {low}")
    if audit.get("min_distance") is not None and not integer(audit["min_distance"], 1):
        _problem(problems, f"{where}.min_distance", f"({audit['min_distance']!r}) must be an integer >= 1")
    if audit.setdefault("scoring", "auto") not in ("auto", "whitebox", "blackbox"):
        _problem(problems, f"{where}.scoring", f"({audit['scoring']!r}) must be 'auto', 'whitebox' or 'blackbox'")
    confidence = audit.setdefault("confidence", 0.95)
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float)) or not 0 < confidence < 1:
        _problem(problems, f"{where}.confidence", f"({confidence!r}) must be in the open interval (0, 1)")
    extra = set(audit) - {"kind", "canaries", "guesses", "base_rows", "seed", "min_distance", "scoring", "confidence"}
    if extra:
        _problem(problems, where, f"has unknown key(s) {', '.join(sorted(extra))}")


def _check_canary(audit: dict[str, Any], where: str, problems: list[str]) -> None:
    """Validate (and fill the defaults of) a ``kind: canary`` audit (the release gate's)."""
    def integer(key: str, default: int, low: int, high: int | None = None) -> None:
        value = audit.setdefault(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
            _problem(problems, f"{where}.{key}", f"({value!r}) must be an integer >= {low}"
                     + (f" and <= {high}" if high is not None else ""))

    if audit.setdefault("schema", "adult") not in _BLACKBOX_DATASETS:
        _problem(problems, f"{where}.schema", f"({audit['schema']!r}) must be one of {', '.join(_BLACKBOX_DATASETS)} "
                 "(a bundled public schema; the audit's tables are drawn from it)")
    integer("fits", 3, 1, 3)
    integer("base_rows", 1000, 1)
    integer("sample_factor", 5, 1)
    integer("seed", 0, 0)
    confidence = audit.setdefault("confidence", 0.95)
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float)) or not 0 < confidence < 1:
        _problem(problems, f"{where}.confidence", f"({confidence!r}) must be in the open interval (0, 1)")
    extra = set(audit) - {"kind", "schema", "fits", "base_rows", "sample_factor", "seed", "confidence"}
    if extra:
        _problem(problems, where, f"has unknown key(s) {', '.join(sorted(extra))}")


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


def load_suite(path: str | Path) -> dict[str, Any]:
    """Read and validate a suite file; raises :class:`SuiteError` listing every problem."""
    path = Path(path)
    from dpsynth.io import read_config

    suite, _ = read_config(  # one line for a missing, unreadable, too large or non-UTF-8 file, or a directory
        path, what="suite file", error=SuiteError, fmt="yaml")
    if not isinstance(suite, dict):
        raise SuiteError(f"suite file {str(path)!r} must hold a mapping with version, data and audits")
    problems: list[str] = []
    unknown = set(suite) - {"version", "synthesizer_params", "data", "audits", "description"}
    if unknown:
        from dpsynth.io import key_names

        _problem(problems, "suite", f"has unknown key(s) {key_names(unknown)}")
    if suite.get("version") != 1:
        _problem(problems, "version", f"({suite.get('version')!r}) must be 1")
    params = suite.setdefault("synthesizer_params", {})
    if not isinstance(params, dict) or not all(isinstance(k, str) for k in params):
        _problem(problems, "synthesizer_params", "must map parameter names to values")
    data = suite.get("data")
    if not isinstance(data, dict):
        _problem(problems, "data", "must be a mapping with generator, columns and rows")
    else:
        if data.get("generator") != "worst_case_pair":
            _problem(problems, "data.generator", f"({data.get('generator')!r}) must be 'worst_case_pair'")
        columns = data.get("columns")
        if not isinstance(columns, dict) or len(columns) < 2 or not all(
                isinstance(v, int) and not isinstance(v, bool) and v >= 2 for v in columns.values()):
            _problem(problems, "data.columns", "must map at least 2 column names to a number of values >= 2")
        rows = data.setdefault("rows", 10)
        if isinstance(rows, bool) or not isinstance(rows, int) or rows < 1:
            _problem(problems, "data.rows", f"({rows!r}) must be an integer >= 1")
    audits = suite.get("audits")
    if not isinstance(audits, list) or not audits:
        _problem(problems, "audits", "must be a non-empty list")
        audits = []
    for i, audit in enumerate(audits):
        where = f"audits[{i}]"
        if not isinstance(audit, dict) or audit.get("kind") not in _KINDS:
            _problem(problems, where, f"must be a mapping with kind one of {', '.join(sorted(_KINDS))}")
            continue
        if audit["kind"] == "blackbox":
            _check_blackbox(audit, where, problems)
            continue
        if audit["kind"] == "onerun":
            _check_onerun(audit, where, problems)
            continue
        if audit["kind"] == "canary":
            _check_canary(audit, where, problems)
            continue
        if audit["kind"] == "replay":
            pairs = audit.setdefault("pairs", list(_PAIRS))
            if not isinstance(pairs, list) or not pairs or any(p not in _PAIRS for p in pairs):
                _problem(problems, f"{where}.pairs", f"must be a non-empty list of {', '.join(_PAIRS)}")
            extra = set(audit) - {"kind", "pairs"}
        else:
            trials = audit.get("trials_per_world")
            if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
                _problem(problems, f"{where}.trials_per_world", f"({trials!r}) must be an integer >= 1")
            _check_confidence_and_noise(audit, where, problems)
            if audit.setdefault("threshold", "likelihood_ratio") not in ("likelihood_ratio", "split"):
                _problem(problems, f"{where}.threshold", f"({audit['threshold']!r}) must be 'likelihood_ratio' or "
                         "'split'")
            extra = set(audit) - {"kind", "trials_per_world", "confidence", "noise", "threshold", "seed"}
        if extra:
            _problem(problems, where, f"has unknown key(s) {', '.join(sorted(extra))}")
    if problems:
        raise SuiteError(f"suite file {str(path)!r} is invalid: " + "; ".join(problems))
    return suite


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
