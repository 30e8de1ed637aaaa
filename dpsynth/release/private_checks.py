"""The release's checks that read the private rows (DESIGN.md, "What the gate checks").

By default they gate in their DP form (:func:`dp_private_checks`): planned from the policy and the
schema (:func:`plan_decision`, public), reserved in the ledger as a second entry of the release and
measured with noise (:mod:`dpsynth.release.dp_checks`); the decision sees only the noisy values.
The exact figures (:func:`exact_replay_checks`, :func:`exact_quality_checks`) are internal evidence,
NOT DP: they gate only under the policy's named opt-in ``decision_read_private_data_without_privacy``.
A check that cannot run is an ``error`` and blocks.
"""

from __future__ import annotations

import time
import warnings
from typing import Any

import numpy as np
import pandas as pd

from dpsynth.exceptions import BudgetExceededError, InternalError, ParameterError
from dpsynth.marginals.backend import EngineSource
from dpsynth.marginals.engines import registered
from dpsynth.release.checks import Checks, first_line
from dpsynth.release.policy import Policy
from dpsynth.release.progress import Progress

#: the fidelity rules of a policy (``max_KEY``) and their titles
FIDELITY = (("l1_1way", "mean L1 error of the 1-way marginals"),
            ("l1_2way", "mean L1 error of the 2-way marginals"),
            ("l1_3way", "mean L1 error of the 3-way marginals"),
            ("mean_tvd", "mean total-variation distance per column"))
#: the replay checks of a policy and their titles
REPLAY_TITLES = {"exact_rows": "exact copies of real rows",
                 "quasi_identifiers": "copies of real rows on the quasi-identifier columns",
                 "near_copies": "near copies of real rows"}
#: a policy's replay check -> the name of its rate in :func:`dpsynth.pii.replay.copy_check`
_REPLAY_NAMES = {"exact_rows": "exact", "quasi_identifiers": "quasi_identifiers", "near_copies": "near"}
#: levels of a column drawn in the report's marginal plots (the rest pooled)
MAX_PLOT_LEVELS = 12


def plan_decision(pol: Policy, sch: Any, target: str | None) -> Any:
    """The DP checks of the decision (public: from the policy and the schema), or None."""
    if not pol.decision.dp or not pol.reads_private_rows:
        return None
    from dpsynth.release.dp_checks import plan_dp_checks

    rules = pol.fidelity
    fidelity = tuple(k for k, _ in FIDELITY if rules is not None and getattr(rules, f"max_{k}") is not None)
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
                          target=target, unit_sensitivity=sch.privacy_unit.sensitivity)


def dp_private_checks(report: dict[str, Any], checks: Checks, pol: Policy, plan: Any, led: Any, dataset: str,
                      real: pd.DataFrame | EngineSource, synthetic: pd.DataFrame, sch: Any, target: str | None,
                      seed: int, insecure_seed: int | None, input_sha256: str, synth: Any, bar: Progress,
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
                                  unit=sch.privacy_unit,
                                  input_sha256=input_sha256, parameters={"policy": pol.name, "rho": plan.rho})
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
    _gate_on_dp_result(checks, pol, plan, result, target)
    timings["dp_checks"] = round(time.perf_counter() - t, 3)


def _gate_on_dp_result(checks: Checks, pol: Policy, plan: Any, result: Any, target: str | None) -> None:
    """The decision's checks from the DP checks' noisy values (and "not applicable" where the public
    schema leaves nothing to measure)."""
    rules = pol.fidelity
    for key in plan.fidelity:
        if rules is None:
            raise InternalError("the DP checks' plan has fidelity checks but the policy has no fidelity rules")
        limit = getattr(rules, f"max_{key}")
        value = result.fidelity.get(key)
        if value is None:  # fewer columns than k: nothing to measure (public: from the schema)
            checks.add(f"fidelity.{key}", "fidelity", dict(FIDELITY)[key], "not applicable", limit, "<=", True,
                       "the schema has fewer columns than the marginals' order", reads="public")
            continue
        checks.add(f"fidelity.{key}", "fidelity", dict(FIDELITY)[key] + " (DP estimate)", float(value), limit, "<=",
                   float(value) <= limit, f"noisy, from the DP checks' ρ = {plan.rho:g}", reads="private_dp")
    for name in plan.replay:
        r = result.replay[name]
        checks.add(f"replay.{name}", "replay", REPLAY_TITLES[name] + " (DP estimate)", float(r["synthetic_rate"]),
                   float(r["baseline_rate"]), "not_above_baseline", not r["flagged"],
                   f"noisy rates of distinct rows found in the real reference, synthetic against a held-out real "
                   f"baseline; flagged above the baseline by more than the one-sided margin at alpha "
                   f"{pol.replay.alpha if pol.replay else 0.01:g}", reads="private_dp")
    for name in pol.replay.checks if pol.replay is not None else ():
        if name not in plan.replay:
            checks.add(f"replay.{name}", "replay", REPLAY_TITLES[name], "not applicable", "holdout baseline",
                       "not_above_baseline", True, "the schema marks no column as quasi_identifier", reads="public")
    if plan.utility:
        if pol.utility is None or pol.utility.min_score is None:
            raise InternalError("the DP checks' plan has a utility check but the policy has no utility.min_score")
        utility = result.utility or {}
        metric = utility.get("metric", "score")
        score = (utility.get("train_synthetic") or {}).get(metric)
        checks.add("utility.score", "utility", f"train-synthetic-test-real {metric} (target {target}, DP estimate)",
                   score, pol.utility.min_score, ">=", score is not None and score >= pol.utility.min_score,
                   reads="private_dp")


def _dp_check_ids(plan: Any) -> list[tuple[str, str, str, Any, str]]:
    out: list[tuple[str, str, str, Any, str]] = [(f"fidelity.{k}", "fidelity", dict(FIDELITY)[k], None, "<=")
                                                for k in plan.fidelity]
    out += [(f"replay.{n}", "replay", REPLAY_TITLES[n], "holdout baseline", "not_above_baseline") for n in plan.replay]
    if plan.utility:
        out.append(("utility.score", "utility", "train-synthetic-test-real score (DP estimate)", None, ">="))
    return out


def exact_replay_checks(report: dict[str, Any], checks: Checks, pol: Policy, real: pd.DataFrame | EngineSource,
                        synthetic: pd.DataFrame, sch: Any, seed: int, bar: Progress, timings: dict[str, float], *,
                        gate: bool) -> None:
    """Exact replay figures (NOT DP): internal evidence; they gate only under the named opt-in."""
    from dpsynth.pii.replay import copy_check

    rules = pol.replay
    assert rules is not None  # type narrowing: called only when the policy has replay rules
    t = time.perf_counter()
    with bar.step("replay checks against the real table"):
        try:
            if isinstance(real, EngineSource):  # joins over every row in the engine; near copies on a sample
                from dpsynth.pii.engine_replay import engine_copy_check

                with registered(real, synthetic, sch) as beside:
                    rep = engine_copy_check(real, beside, sch, alpha=rules.alpha, near_threshold=rules.near_threshold,
                                            seed=seed, near="near_copies" in rules.checks)
            else:
                rep = copy_check(real, synthetic, sch, alpha=rules.alpha, near_threshold=rules.near_threshold,
                                 seed=seed, near="near_copies" in rules.checks)
            report["evidence"]["replay"] = rep.to_dict()
            for name in rules.checks if gate else ():
                title = REPLAY_TITLES[name] + (f" (distance <= {rules.near_threshold:g})" if name == "near_copies"
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


def exact_quality_checks(report: dict[str, Any], checks: Checks, pol: Policy, real: pd.DataFrame | EngineSource,
                         synthetic: pd.DataFrame, sch: Any, target: str | None, bar: Progress,
                         timings: dict[str, float], *, gate: bool, seed: int = 0) -> None:
    """Exact fidelity and utility (NOT DP): internal evidence; they gate only under the named opt-in."""
    from dpsynth.quality import evaluate

    t = time.perf_counter()
    error: BaseException | None = None
    with bar.step("fidelity and utility"):
        try:
            if isinstance(real, EngineSource):  # exact counts in the engine; row-level figures on seeded samples
                from dpsynth.quality.engine_eval import evaluate_sources

                with registered(real, synthetic, sch) as beside:
                    quality = evaluate_sources(real, beside, sch, target=target, seed=seed)
                    ones = [(j,) for j in range(len(sch))]
                    quality["marginals"] = marginals_of_counts(real.counter(sch).counts(ones),
                                                               beside.counter(sch).counts(ones), sch)
            else:
                quality = evaluate(real, synthetic, sch, target=target)
                quality["marginals"] = marginals(real, synthetic, sch)
            utility = quality.pop("utility", None)
            report["evidence"]["fidelity"] = quality
            report["evidence"]["utility"] = utility
        except Exception as exc:  # noqa: BLE001 - a check that fails to run blocks
            quality, utility = None, None
            error = exc
    timings["quality"] = round(time.perf_counter() - t, 3)
    if not gate:
        return
    _gate_on_exact_fidelity(checks, pol, quality, error)
    _gate_on_exact_utility(checks, pol, utility, error, target)


def _gate_on_exact_fidelity(checks: Checks, pol: Policy, quality: dict[str, Any] | None,
                            error: BaseException | None) -> None:
    """The policy's fidelity rules against the exact figures (an error when they could not be computed)."""
    rules = pol.fidelity
    if rules is not None:
        for key, title in FIDELITY:
            limit = getattr(rules, f"max_{key}")
            if limit is None:
                continue
            if quality is None:
                if error is None:
                    raise InternalError("the quality evaluation left neither figures nor an error")
                checks.error(f"fidelity.{key}", "fidelity", title, limit, "<=", error, reads="private_not_dp")
                continue
            value = (float(np.mean([c["tvd"] for c in quality["columns"].values() if c.get("tvd") is not None]))
                     if key == "mean_tvd" else float(quality[key]))
            checks.add(f"fidelity.{key}", "fidelity", title, value, limit, "<=", value <= limit,
                       reads="private_not_dp")


def _gate_on_exact_utility(checks: Checks, pol: Policy, utility: dict[str, Any] | None, error: BaseException | None,
                           target: str | None) -> None:
    """The policy's utility rules against the exact train-synthetic-test-real figures."""
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


def marginals(real: pd.DataFrame, synthetic: pd.DataFrame, schema: Any) -> list[dict[str, Any]]:
    """Per column, the shares of real and synthetic rows in each public level or bin (the largest
    ``MAX_PLOT_LEVELS`` levels by real share, the rest pooled as "(other levels)"); NOT DP."""
    from dpsynth.schema.encode import encode

    r, s = encode(real, schema), encode(synthetic, schema)
    return marginals_of_counts([np.bincount(r[:, j], minlength=c.size) for j, c in enumerate(schema.columns)],
                               [np.bincount(s[:, j], minlength=c.size) for j, c in enumerate(schema.columns)], schema)


def marginals_of_counts(real: list[np.ndarray], synthetic: list[np.ndarray], schema: Any) -> list[dict[str, Any]]:
    """:func:`marginals` from each column's 1-way counts (in memory, or from a counting engine)."""
    out = []
    for j, col in enumerate(schema.columns):
        labels = _labels(col)
        pr = real[j] / max(int(real[j].sum()), 1)
        ps = synthetic[j] / max(int(synthetic[j].sum()), 1)
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
