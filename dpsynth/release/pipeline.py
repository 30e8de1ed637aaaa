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

The road's parts: the inputs' checks (:mod:`~dpsynth.release.inputs`), the report
(:mod:`~dpsynth.release.report`), the checks (:mod:`~dpsynth.release.checks` and the modules named for
what they check: ``audit_checks``, ``pii_check``, ``private_checks``), the artifacts
(:mod:`~dpsynth.release.artifacts`) and what a failure keeps (:mod:`~dpsynth.release.recovery`).
"""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dpsynth.exceptions import BudgetExceededError, ParameterError, PluginError
from dpsynth.release.artifacts import DECISION_DP, DECISION_NOT_DP, INTERNAL, INTERNAL_NOTICE, PUBLISH, write_release
from dpsynth.release.audit_checks import VIOLATION_TITLE, audit_checks, canary_checks
from dpsynth.release.checks import Checks, first_line
from dpsynth.release.inputs import ReleaseInputs, check_inputs
from dpsynth.release.pii_check import TITLE as PII_TITLE
from dpsynth.release.pii_check import pii_check
from dpsynth.release.policy import Policy
from dpsynth.release.private_checks import (
    REPLAY_TITLES,
    dp_private_checks,
    exact_quality_checks,
    exact_replay_checks,
)
from dpsynth.release.progress import Progress
from dpsynth.release.recovery import current_kept, keeps_what_it_has
from dpsynth.release.report import engine_block, ledger_history, ledger_statement, new_report, privacy_block
from dpsynth.release.series import SeriesContext, drift_check, horizon_check
from dpsynth.release.targeted import sample_targeted

NOTICE = INTERNAL_NOTICE

#: exit codes of ``dpsynth release``
EXIT = {"released": 0, "blocked": 1, "refused": 3}
#: the checks after the charge that a release stopped before it records as not run (id, category, title, reads)
_LATER = (("audit.violation", "audit", VIOLATION_TITLE, "dp_output"),
          ("pii.forbidden", "pii", PII_TITLE, "dp_output"),
          ("replay.exact_rows", "replay", REPLAY_TITLES["exact_rows"], "private_dp"))
_LEDGER_TITLE = "the ledger has the budget (the fit and the DP checks)"


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
    #: the fitted synthesizer's noisy measurements (DP output), when it exposes them and the table was released
    measurements: list[Any] | None = None

    @property
    def released(self) -> bool:
        """Whether the table was released (every check passed)."""
        return self.status == "released"

    @property
    def publish(self) -> Path:
        """The folder that may be published with the table."""
        return self.out / PUBLISH

    @property
    def internal(self) -> Path:
        """The folder of internal evidence (NOT DP)."""
        return self.out / INTERNAL


@keeps_what_it_has
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
    engine: str = "auto",
    spark_master: str | None = None,
    privacy_unit: Any = None,
    series: SeriesContext | None = None,
    targeted: Sequence[Mapping[str, Any]] | None = None,
) -> ReleaseResult:
    """Take a private table through the release road and write the artifacts to ``out``.

    Args:
        data: the private table (a CSV/Parquet path, or a DataFrame).
        schema: its public schema (path or :class:`~dpsynth.schema.Schema`).
        synthesizer: a registered name (``mst``, ``aim``, ``dpctgan``, ``dpvae``) or an import path
            ``package.module:Class`` of a class with the estimator contract.
        epsilon: the synthetic table's privacy target, with ``delta``. The DP checks of the decision
            are charged on top (the policy's ``decision.rho``); the report states the composed total.
        delta: the synthetic table's δ.
        ledger: a ledger URL or :class:`~dpsynth.privacy.ledger.Ledger`.
        dataset: the private dataset's name in the ledger: it is charged.
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
        engine: where the private table is read (``auto``, ``numpy``, ``duckdb``, ``spark``; as for ``fit``,
            :mod:`dpsynth.marginals.engines`). In DuckDB or Spark the rows stay there: the validation, the
            fit's marginals and every DP check are aggregates computed in the engine over every row; the
            exact internal figures are exact where they are counts and on stated seeded samples where
            they need rows (``docs/scale.md``). The synthetic table is held in memory.
        spark_master: the Spark master for ``engine="spark"`` (default: the active session's, or local).
        privacy_unit: a :class:`~dpsynth.privacy.unit.PrivacyUnit` that replaces the schema's (e.g.
            ``PrivacyUnit.users("patient_id", max_rows=4)``: one person with up to 4 rows; ``docs/user-level.md``).
        series: this release is one version of a series (:class:`~dpsynth.release.series.SeriesContext`,
            given by ``dpsynth refresh``): the budget's forecast is checked against the plan's horizon
            before the charge, and the drift from the previous released version after the sample.
        targeted: extra tables sampled from the same fit under conditions on public values, each
            ``{"name": …, "rows": N, "conditions": {…}}`` (``sample(n, conditions=…)``; post-processing,
            no privacy cost): scanned for PII with the main table and written as
            ``publish/targeted-NAME.csv`` when released (:mod:`dpsynth.release.targeted`).

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
    started = time.perf_counter()
    # -- 1. everything a user can get wrong, before any private computation ---------------------
    inp = check_inputs(data=data, schema=schema, synthesizer=synthesizer, epsilon=epsilon, delta=delta, ledger=ledger,
                       dataset=dataset, policy=policy, out=out, rows=rows, synthesizer_params=synthesizer_params,
                       target=target, insecure_seed=insecure_seed, seed=seed, workers=workers, threads=threads,
                       engine=engine, spark_master=spark_master, privacy_unit=privacy_unit, series=series,
                       targeted=targeted)
    try:
        return _road(inp, started, progress)
    finally:
        if inp.engine != "numpy":
            inp.real.close()  # its temporary tables and views; the user's file or DataFrame is left alone


def _road(inp: ReleaseInputs, started: float, progress: bool | None) -> ReleaseResult:
    """Steps 2 to 5 of :func:`release` for its checked inputs."""
    epsilon, delta, dataset = inp.epsilon, inp.delta, inp.dataset
    timings: dict[str, float] = {}
    checks = Checks()
    report = new_report(inp, checks, privacy_block(inp.events, inp.check_events, float(epsilon), float(delta)),
                        timings)
    if inp.engine != "numpy":
        report["release"]["engine"] = engine_block(inp.engine)
    kept = current_kept()  # what a failure after the charge keeps (keeps_what_it_has)
    kept.out_dir, kept.report = inp.out_dir, report
    kept.na_rep = inp.na_rep

    # -- 2. what the policy and the ledger decide before anything is spent -----------------------
    show = sys.stderr.isatty() if progress is None else bool(progress)
    refused = _before_the_charge(inp, report, checks, timings, show)
    if not checks.passed:
        _not_run_after_the_charge(checks, inp.pol)
        return _finish(report, checks, inp.out_dir, None, "refused" if refused else "blocked", started)

    synthetic = None
    with Progress(show) as bar:
        # -- 3. the private computation: reserve, fit, sample ------------------------------------
        t = time.perf_counter()
        kept.charged, kept.stage = True, "fitting"  # from here on the budget may be spent: a failure keeps the run
        synth = inp.cls(epsilon=epsilon, delta=delta, **inp.params)
        refused, failed = _fit(synth, inp, checks, bar)
        if refused:
            return _finish(report, checks, inp.out_dir, None, "refused", started)
        timings["fit"] = round(time.perf_counter() - t, 3)
        _record_fit(synth, inp, report, checks, failed)
        if failed is None:
            synthetic = _sample(synth, inp, report, checks, timings)
        extra = sample_targeted(synth, inp.targeted, checks, report) if synthetic is not None else None
        if extra is None:
            synthetic = None  # a targeted table could not be made: blocked, no evidence to gather
        kept.stage = "running the checks"

        if synthetic is not None:
            # -- 4. evidence: each check records its value and what it read -----------------------
            _evidence(synth, synthetic, inp, report, checks, bar, timings, extra or {})
        after = inp.led.statement(dataset)
        report["ledger"].update(after=ledger_statement(inp.led, after),
                                history=ledger_history(after, report["ledger"]["entry_ids"]))

    status = "released" if checks.passed else "blocked"
    result = _finish(report, checks, inp.out_dir, synthetic if status == "released" else None, status, started,
                     na_rep=inp.na_rep, extra=extra if status == "released" else None)
    if result.released:
        result.measurements = getattr(synth, "measurements_", None)
    return result


def _before_the_charge(inp: ReleaseInputs, report: dict[str, Any], checks: Checks, timings: dict[str, float],
                       show: bool) -> bool:
    """Step 2: the policy's caps, secure noise, opt-ins, the ledger's budget and (data-independent, so
    before the charge) the canary audit. Returns whether the ledger refused the budget."""
    pol, sch, privacy = inp.pol, inp.sch, report["release"]["privacy"]
    total_epsilon = privacy["total"]["epsilon"]
    checks.add("privacy.epsilon", "privacy", "ε of the release (the table and the decision, composed)",
               total_epsilon, pol.max_epsilon, "<=", total_epsilon <= pol.max_epsilon, reads="public")
    total_delta = privacy["total"]["delta"]
    checks.add("privacy.delta", "privacy", "δ of the release (the table and the decision, composed)", total_delta,
               pol.max_delta, "<=", total_delta <= pol.max_delta, reads="public")
    possible, why = inp.probe.noise_provenance()  # public: from the parameters (a plug-in's: its claim)
    if pol.require_secure_noise:
        checks.add("privacy.secure_noise", "privacy", "noise from a cryptographically secure source", possible,
                   True, "==", possible, why, reads="public")
    not_allowed = [o for o in sch.opt_ins if o not in pol.allowed_opt_ins]
    checks.add("privacy.opt_ins", "privacy", "opt-ins the policy does not allow", not_allowed, [], "==",
               not not_allowed, "named opt-ins of the schema: " + (", ".join(sch.opt_ins) or "none"), reads="public")
    refused = False
    try:
        inp.led.check(inp.dataset, [*inp.events, *inp.check_events], claimed=inp.claimed)
        checks.add("budget.ledger", "budget", _LEDGER_TITLE, True, True, "==", True,
                   f"remaining ρ before: {inp.statement_before.rho_remaining:.6g}", reads="public")
    except BudgetExceededError as exc:
        refused = True
        checks.add("budget.ledger", "budget", _LEDGER_TITLE, False, True, "==", False, first_line(exc), reads="public")
    if not refused and inp.series is not None:
        refused = horizon_check(inp.series, inp.led, inp.dataset, [*inp.events, *inp.check_events], inp.claimed,
                                report, checks)
    if checks.passed and pol.audit is not None and pol.audit.method == "canary":
        # data-independent: run before the charge, so that a generator it refutes spends nothing
        with Progress(show) as bar:
            canary_checks(report, checks, pol, inp.cls, inp.params, sch, float(inp.epsilon), float(inp.delta),
                          inp.seed, bar, timings)
    return refused


def _not_run_after_the_charge(checks: Checks, pol: Policy) -> None:
    """A release stopped before the fit records the later checks as not run (nothing was charged)."""
    ran = {c["id"] for c in checks.items}
    for cid, cat, title, reads in _LATER:
        if cid not in ran:
            if cid.startswith("audit.") and pol.audit is not None and pol.audit.method == "canary":
                reads = "public"  # the canary audit reads no row
            checks.not_run(cid, cat, title, None, "==", "not run: the release was stopped before the fit; "
                           "nothing was charged", reads=reads)


def _fit(synth: Any, inp: ReleaseInputs, checks: Checks, bar: Progress) -> tuple[bool, PluginError | None]:
    """Step 3: reserve and fit (``Synthesizer.fit``). Returns (refused by the ledger, the plug-in's
    failure after its charge: blocked, never a traceback)."""
    with bar.step(f"fitting {inp.synthesizer} (ε = {inp.epsilon:g})"):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # recorded in the report instead
                synth.fit(inp.real, schema=inp.sch, ledger=inp.led, dataset=inp.dataset, input_sha256=inp.input_sha256,
                          threads=inp.threads)
        except BudgetExceededError as exc:  # spent by someone else since the check
            checks.remove("budget.ledger")
            checks.add("budget.ledger", "budget", _LEDGER_TITLE, False, True, "==", False, first_line(exc),
                       reads="public")
            return True, None
        except PluginError as exc:  # its reservation is marked failed and stays spent
            checks.failed("release.fit", "privacy", "the generator's fit ran", None, "==", first_line(exc),
                          reads="dp_output")
            return False, exc
    return False, None


def _record_fit(synth: Any, inp: ReleaseInputs, report: dict[str, Any], checks: Checks,
                failed: PluginError | None) -> None:
    """The fit's ledger entry, its secure-noise report and its claim, into the report."""
    entry = (getattr(synth, "ledger_entry_", None) if failed is None
             else _failed_entry(inp.led, inp.dataset, inp.statement_before, synth))
    report["ledger"].update(entry_id=entry, entry_ids=[int(entry)] if entry is not None else [])
    if failed is not None:
        return
    from dpsynth.synth.plugin import claim_of

    report["release"]["secure_noise"] = bool(getattr(synth, "secure_noise_", False))
    source = getattr(synth, "noise_source_", None)  # which generator drew the noise (every built-in names it)
    report["release"]["noise_source"] = str(source) if source is not None else None
    report["release"]["claim"] = claim_of(synth)
    if inp.pol.require_secure_noise and not report["release"]["secure_noise"]:
        checks.add("privacy.secure_noise_used", "privacy", "the fit drew secure noise", False, True, "==", False,
                   "the synthesizer reports secure_noise false", reads="dp_output")


def _sample(synth: Any, inp: ReleaseInputs, report: dict[str, Any], checks: Checks,
            timings: dict[str, float]) -> pd.DataFrame | None:
    """Sample the released row count (public input or the fit's DP estimate); None when it cannot."""
    n_rows = inp.rows if inp.rows is not None else _dp_rows(synth)
    if n_rows is None:
        checks.failed("release.rows", "privacy", "a DP estimate of the row count", None, "==",
                      f"synthesizer {inp.synthesizer!r} set no total_estimate_ after its fit", reads="dp_output")
        return None
    if inp.rows is None and (too_many := _rows_too_many(n_rows, inp.sch)) is not None:
        # a DP estimate is bounded like a public count (the whole table is held in memory for the checks)
        checks.failed("release.rows", "privacy", "a DP estimate of the row count", None, "==", too_many,
                      reads="dp_output")
        return None
    report["release"]["rows"] = n_rows
    t = time.perf_counter()
    synthetic = None
    try:
        synthetic = synth.sample(n_rows)
    except PluginError as exc:  # post-processing of the fitted generator: blocked, nothing written
        checks.failed("release.sample", "privacy", "the generator's sample is a table of the schema", None,
                      "==", first_line(exc), reads="dp_output")
    timings["sample"] = round(time.perf_counter() - t, 3)
    return synthetic


def _evidence(synth: Any, synthetic: pd.DataFrame, inp: ReleaseInputs, report: dict[str, Any], checks: Checks,
              bar: Progress, timings: dict[str, float], extra: dict[str, pd.DataFrame]) -> None:
    """Step 4: the audit, the PII scan, the DP checks and the exact (internal) figures."""
    pol, sch = inp.pol, inp.sch
    if pol.audit is not None:
        audit_checks(report, checks, pol, inp.cls, inp.params, synthetic, sch, inp.epsilon, inp.delta, inp.seed,
                     inp.suite, inp.synthesizer, bar, timings, inp.workers)
    if inp.scanner is not None:
        # every table that leaves is scanned: the main one and the targeted ones (post-processing of one fit)
        scanned = pd.concat([synthetic, *extra.values()], ignore_index=True) if extra else synthetic
        pii_check(report, checks, pol, inp.scanner, scanned, sch, timings)
    drift_check(inp.series, synth, synthetic, sch, pol, report, checks)  # DP output only: the two synthetic tables
    bounded, every_row = real_for_checks(inp.real, sch)  # at a user unit: each person's rows beyond K dropped
    try:
        if inp.dp_plan is not None:
            dp_private_checks(report, checks, pol, inp.dp_plan, inp.led, inp.dataset, bounded, synthetic, sch,
                              inp.target, inp.seed, inp.insecure_seed, inp.input_sha256, synth, bar, timings)
    finally:
        if bounded is not every_row and not isinstance(bounded, pd.DataFrame):
            bounded.close()  # an engine's view of the bounded rows (the source itself is closed by release)
    gate = not pol.decision.dp  # the exact checks gate only under the named opt-in
    if pol.replay is not None:
        exact_replay_checks(report, checks, pol, every_row, synthetic, sch, inp.seed, bar, timings, gate=gate)
    exact_quality_checks(report, checks, pol, every_row, synthetic, sch, inp.target, bar, timings, gate=gate,
                         seed=inp.seed)


def real_for_checks(real: Any, sch: Any) -> tuple[Any, Any]:
    """The private table as the DP checks read it and as the exact (internal) figures read it.

    At a row unit, both are ``real``. At a user unit, the DP checks read the table the fit read: each
    person's rows beyond K dropped by the fit's own rule (their sensitivities are scaled by K, which
    holds only for a bounded table; in an engine, a view of the kept rows, ``bounded``); the exact
    figures read every real row (a copy of any real row counts). In memory neither holds the key
    column (the synthetic table has none); an engine's checks read the schema's columns only.
    """
    from dpsynth.marginals.bounding import bound_contributions, check_keys
    from dpsynth.schema.encode import encode

    unit = sch.privacy_unit
    if unit.column is None:
        return real, real
    if not isinstance(real, pd.DataFrame):
        return real.bounded(sch), real
    kept = bound_contributions(check_keys(real, unit.column), encode(real, sch), unit.max_rows)
    every_row = real.drop(columns=[unit.column])
    return every_row.iloc[kept].reset_index(drop=True), every_row


def _finish(report: dict[str, Any], checks: Checks, out_dir: Path, synthetic: pd.DataFrame | None, status: str,
            started: float, *, na_rep: str = "", extra: dict[str, pd.DataFrame] | None = None) -> ReleaseResult:
    """Decide, validate both reports, write ``publish/`` and ``internal/`` atomically."""
    reasons = checks.reasons()
    dp = checks.decision_is_dp
    report["decision"] = {"status": status, "exit_code": EXIT[status], "reasons": reasons,
                          "privacy": "dp" if dp else "not_dp", "statement": DECISION_DP if dp else DECISION_NOT_DP}
    report["created_at"] = datetime.now(UTC).replace(microsecond=0).isoformat()
    report["release"]["seconds"]["total"] = round(time.perf_counter() - started, 3)
    if synthetic is not None:
        report["artifacts"]["synthetic"] = "synthetic.csv"
    kept = current_kept()
    # only a table every check approved is kept on a failure: an unchecked one may copy real rows
    kept.stage, kept.synthetic = "writing the artifacts", synthetic
    published, internal = write_release(out_dir, report, synthetic, na_rep=na_rep, extra=extra)
    return ReleaseResult(status, EXIT[status], reasons, report, out_dir, published, internal)


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


__all__ = ["EXIT", "NOTICE", "ReleaseResult", "release"]
