"""The release's privacy-audit checks (``docs/release.md``): the canary audit, which runs before
the charge on tables generated from the public schema (:mod:`dpsynth.audit.canary`, the default),
the multi-fit membership inference on the synthetic table (``audit.method: multi_fit``,
:mod:`dpsynth.audit.blackbox`), and the policy's reference suite. Each records what it read; a
check that cannot run is an ``error`` and blocks."""

from __future__ import annotations

import functools
import pickle
import time
import warnings
from typing import Any

import pandas as pd

from dpsynth.release.checks import Checks
from dpsynth.release.policy import Policy

#: the title of the check that the audit found no violation of the claim
VIOLATION_TITLE = "empirical ε lower bound not above the claimed ε"


def canary_checks(report: dict[str, Any], checks: Checks, pol: Policy, cls: Any, params: dict[str, Any], sch: Any,
                   epsilon: float, delta: float, seed: int, bar: Any, timings: dict[str, float]) -> None:
    """The canary audit (:mod:`dpsynth.audit.canary`): fits of the generator on tables generated from
    the public schema, before anything is charged; its verdict reads no private row."""
    from dpsynth.audit.canary import canary_audit

    rules = pol.audit
    assert rules is not None  # type narrowing: called only when the policy has an audit section
    t = time.perf_counter()
    title = VIOLATION_TITLE
    with bar.step("canary audit (fits on tables from the public schema)", total=rules.fits) as update:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # an audit fit's warnings are not the release's
                result = canary_audit(functools.partial(cls, epsilon=epsilon, delta=delta, **params), sch,
                                      claimed_epsilon=epsilon, claimed_delta=delta, fits=rules.fits,
                                      base_rows=rules.base_rows, sample_factor=rules.sample_factor,
                                      confidence=rules.confidence, seed=seed, progress=update)
        except Exception as exc:  # noqa: BLE001 - a check that fails to run blocks, it never passes
            checks.error("audit.violation", "audit", title, epsilon, "<=", exc, reads="public")
            timings["audit"] = round(time.perf_counter() - t, 3)
            return
    audit = result.to_dict()
    audit["base"] = ("tables generated from the public schema: the audit reads no private row and no synthetic row, "
                     "and runs before the release is charged")
    report["evidence"]["audit"] = audit
    copies = audit["copy_test"]
    caught = ("verbatim copies of the audit tables' rows" if result.caught_by == "copies" else
              f"the {result.caught_by} score")
    how = f"caught by {caught}; " if result.violation else ""
    checks.add("audit.violation", "audit", title, float(result.epsilon_lower_bound), epsilon, "<=",
               not result.violation,
               f"{how}canary audit: {result.fits} fits, {result.canaries} canaries, {copies['copies']} verbatim "
               f"copies, {result.confidence:.0%} confidence; the most its one-run bound could show is "
               f"ε = {result.max_provable_epsilon:.3g}; a bound above the claim is an implementation defect",
               reads="public")
    if rules.require_conclusive:
        top = float(result.max_provable_epsilon)
        checks.add("audit.power", "audit", "the audit could refute the claim (max provable ε above it)", top, epsilon,
                   ">=", top > epsilon, "more reserved values (columns with more levels or bins) or more fits raise it "
                   "(docs/audit.md)", reads="public")
    if rules.max_auc is not None:
        checks.add("audit.auc", "audit", "canary membership AUC (best score)", float(result.auc), rules.max_auc, "<=",
                   float(result.auc) <= rules.max_auc, reads="public")
    replay_checks(report, checks, cls, params, epsilon, delta, sch.privacy_unit)
    timings["audit"] = round(time.perf_counter() - t, 3)


#: the record/replay checks' public domain in the gate (cheap: six fits on ten-row tables)
REPLAY_DOMAIN = {"a": 2, "b": 2, "c": 2}


def replay_checks(report: dict[str, Any], checks: Checks, cls: Any, params: dict[str, Any], epsilon: float,
                  delta: float, unit: Any = None) -> None:
    """dpsynth's record/replay checks (:mod:`dpsynth.audit.replay`: noise removed, sensitivity
    halved, a domain learned from the data) on neighbouring ten-row tables of a three-column public
    domain, for dpsynth's own marginal synthesizers (MST, AIM and their subclasses), where they are
    cheap; a plug-in or a DP-SGD generator has no mechanism transcript to replay. At a user privacy
    ``unit`` the neighbours differ by one whole person (:func:`~dpsynth.audit.replay.neighbouring_people`)."""
    from dpsynth.audit.replay import neighbouring_pairs, neighbouring_people, replay_check
    from dpsynth.exceptions import ParameterError
    from dpsynth.privacy.unit import PrivacyUnit
    from dpsynth.schema.schema import Schema
    from dpsynth.synth.base import Synthesizer

    if not (isinstance(cls, type) and issubclass(cls, Synthesizer) and cls.uses_bins):
        return
    title = "record/replay: every privacy event is spent by a mechanism with the declared sensitivity"
    domain = Schema.from_domain(dict(REPLAY_DOMAIN))
    people = unit is not None and unit.is_user
    if people:
        domain = domain.with_unit(PrivacyUnit.users("person", max_rows=unit.max_rows))
    make = functools.partial(cls, epsilon=epsilon, delta=delta, **params)
    try:
        make().plan(domain)
    except ParameterError:  # e.g. a workload naming the release's columns: the checks do not apply here
        checks.add("audit.replay", "audit", title, "not applicable", "pass", "==", True,
                   "the synthesizer's parameters do not apply to the checks' three-column domain", reads="public")
        return
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            pairs = neighbouring_people(domain, rows=10) if people else neighbouring_pairs(domain, rows=10)
            rep = replay_check(make, domain, pairs=pairs, name=str(cls.name))
    except Exception as exc:  # noqa: BLE001 - a check that fails to run blocks
        checks.error("audit.replay", "audit", title, "pass", "==", exc, reads="public")
        return
    out = rep.to_dict()
    report["evidence"].setdefault("audit", {})["replay"] = out
    checks.add("audit.replay", "audit", title, "pass" if rep.passed else "fail", "pass", "==", rep.passed,
               "; ".join(rep.failures()) or (f"{len(pairs)} pairs of tables from a public domain that differ by one "
                                             f"person with {unit.max_rows + 2} rows or fewer" if people else
                                             "3 neighbouring pairs of ten-row tables from a public domain"),
               reads="public")


def audit_checks(report: dict[str, Any], checks: Checks, pol: Policy, cls: type, params: dict[str, Any],
                  base: pd.DataFrame, sch: Any, epsilon: float, delta: float, seed: int,
                  suite: dict[str, Any] | None, synthesizer: str, bar: Any, timings: dict[str, float],
                  workers: int) -> None:
    """The multi-fit black-box audit on ``base``, the synthetic table (policy ``audit.method:
    multi_fit``): the audit tests the mechanism, so any table is valid evidence, and this one is DP
    output (the check is post-processing); then the policy's reference suite, if any."""
    from dpsynth.audit.blackbox import blackbox_audit

    rules = pol.audit
    assert rules is not None  # type narrowing: called only when the policy has an audit section
    t = time.perf_counter()
    if rules.method == "multi_fit":  # the canary audit ran before the charge (canary_checks)
        title = VIOLATION_TITLE
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
                    make, base, sch, claimed_epsilon=epsilon,
                    claimed_delta=delta, fits_per_world=rules.fits_per_world, canaries=rules.canaries,
                    outliers=rules.outliers, reference_rows=rules.reference_rows, attacks=rules.attacks,
                    # The audit's fits are evidence, never released: they draw reproducible seeded noise (same
                    # figures when a reviewer re-runs the release), exact like the secure sampler.
                    confidence=rules.confidence, noise="seeded", seed=seed, progress=update, workers=workers,
                    rows_are="synthetic")
                audit = result.to_dict()
                audit["base"] = ("the synthetic table (DP output): the audit's fits, targets and outliers never read "
                                 "the private rows")
                report["evidence"]["audit"] = audit
                lb = float(audit["epsilon_lower_bound"])
                checks.add("audit.violation", "audit", title, lb, float(epsilon), "<=", not audit["violation"],
                           f"{audit['trials']} trials, {audit['confidence']:.0%} confidence; the most these trials "
                           f"could show is ε = {audit['max_provable_epsilon']:.3g}; a bound above the claim is an "
                           "implementation defect", reads="dp_output")
                if rules.require_conclusive:
                    top = float(audit["max_provable_epsilon"])
                    checks.add("audit.power", "audit", "the audit's trials could refute the claim (max provable ε)",
                               top, float(epsilon), ">=", top > float(epsilon),
                               "more fits per world or more targets raise it (docs/release.md)", reads="public")
                if rules.max_auc is not None:
                    checks.add("audit.auc", "audit", "membership-inference AUC (best attack)", float(audit["auc"]),
                               rules.max_auc, "<=", float(audit["auc"]) <= rules.max_auc, reads="dp_output")
                if rules.max_tpr_at_1pct_fpr is not None:
                    tpr = float(audit["tpr_at_1pct_fpr"])
                    checks.add("audit.tpr_at_1pct_fpr", "audit", "membership-inference TPR at 1% FPR (best attack)",
                               tpr, rules.max_tpr_at_1pct_fpr, "<=", tpr <= rules.max_tpr_at_1pct_fpr,
                               reads="dp_output")
            except Exception as exc:  # noqa: BLE001 - a check that fails to run blocks, it never passes
                checks.error("audit.violation", "audit", title, float(epsilon), "<=", exc, reads="dp_output")
    if suite is not None:
        from dpsynth.audit.suite import run_suite

        with bar.step("reference audit suite"):
            try:
                ref = run_suite(synthesizer, epsilon=epsilon, delta=delta, suite=suite)
                report["evidence"].setdefault("audit", {})["suite"] = ref
                lb = ref["epsilon_lower_bound"]
                checks.add("audit.suite", "audit", "reference audit suite finds no violation",
                           lb if lb is not None else "record/replay", float(epsilon), "<=", not ref["violation"],
                           f"method {ref['method']}", reads="public")
            except Exception as exc:  # noqa: BLE001
                checks.error("audit.suite", "audit", "reference audit suite finds no violation", float(epsilon),
                             "<=", exc, reads="public")
    if rules.method == "multi_fit" or suite is not None:
        timings["audit"] = round(timings.get("audit", 0.0) + time.perf_counter() - t, 3)
