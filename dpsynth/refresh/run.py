"""``dpsynth refresh PLAN``: one refresh of a series, end to end (``docs/refresh.md``).

1. The plan is validated; the series' lock is taken (one refresh at a time).
2. A refresh that was stopped before it wrote its version (killed, a failure after its charge) is
   reported: its reservations stay spent and show as not completed in the ledger; it is recorded in
   ``interrupted.jsonl``, and no version number is taken by it.
3. The newest snapshot is picked; if it already has a version (its keyed fingerprint is in the
   history), nothing is done and the command says so (exit 0): refreshing is idempotent.
4. The release road runs (:func:`dpsynth.release.release`) with the series' context: before the
   charge, the forecast of the refreshes the cap still allows (tight composition over the ledger)
   against the plan's horizon; after the sample, the drift from the previous released version (DP
   output only). Everything is planned and reserved before the snapshot's rows are read for the fit.
5. The version folder ``releases/<dataset>/vNNNN/`` gets its record ``version.json`` (last, atomically),
   the synthesizer's noisy measurements when it exposes them, and the series' ``index.html`` is
   rewritten. A refused refresh spends nothing and writes no version (its report goes to ``refused/``).

Exit codes as for ``release``: 0 released (or nothing to do), 1 blocked, 2 bad input, 3 refused,
4 failed after the charge.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dpsynth.exceptions import DPSynthError, ParameterError
from dpsynth.refresh.plan import RefreshPlan, load_plan
from dpsynth.refresh.snapshots import Snapshot, find_snapshots
from dpsynth.refresh.versions import FORMAT, MEASUREMENTS_FILE, VERSION_FILE, Series, Version, label_of, write_json

EXIT = {"released": 0, "blocked": 1, "refused": 3, "up_to_date": 0}


@dataclass
class RefreshResult:
    """What one ``dpsynth refresh`` did."""

    status: str  # released, blocked, refused, up_to_date
    exit_code: int
    version: str | None
    snapshot: str
    messages: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    path: Path | None = None
    record: dict[str, Any] | None = None


def _now() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()


def refresh(plan: str | Path | RefreshPlan, *, again: bool = False, progress: bool | None = None,
            workers: int | None = None) -> RefreshResult:
    """Run one refresh of ``plan`` (a plan file or a :class:`~dpsynth.refresh.plan.RefreshPlan`).

    Args:
        plan: the refresh plan.
        again: refresh the newest snapshot even when it already has a version (spends again).
        progress: show progress on stderr (default: when stderr is a terminal).
        workers: processes for the audit's fits (as for ``release``).

    Raises:
        ParameterError (exit 2): a bad plan, snapshot, previous version or ledger; nothing is charged.
        ReleaseFailed (exit 4): the release failed after its charge; the next refresh reports it.
    """
    from dpsynth.privacy.ledger import Ledger
    from dpsynth.release.manifest import sha256_path

    plan = plan if isinstance(plan, RefreshPlan) else load_plan(plan)
    led = Ledger(plan.ledger)
    led.check_integrity(plan.dataset)
    led.statement(plan.dataset)  # an unknown dataset is refused (exit 2) before the series' folder is made
    find_snapshots(plan.snapshots)  # so are missing or undated snapshots
    series = Series(plan.series_dir)
    with series.lock():
        messages = _recover(series, led, plan)
        snapshot = find_snapshots(plan.snapshots)[-1]
        sha = sha256_path(snapshot.path)
        fingerprint = led.keyed_fingerprint(sha)
        done = [v for v in series.complete() if v.fingerprint == fingerprint]
        if done and not again:
            v = done[-1]
            messages.append(f"nothing to do: snapshot {snapshot.name} is already {v.label} ({v.status}); a newer "
                            "snapshot, or --again, makes a new version")
            return RefreshResult("up_to_date", 0, v.label, snapshot.name, messages, path=v.path, record=v.record)
        return _one_refresh(plan, series, led, snapshot, fingerprint, messages, progress, workers)


def _one_refresh(plan: RefreshPlan, series: Series, led: Any, snapshot: Snapshot, fingerprint: str,
                 messages: list[str], progress: bool | None, workers: int | None) -> RefreshResult:
    """Steps 4 and 5 of :func:`refresh` for the picked ``snapshot``."""
    from dpsynth.release import release
    from dpsynth.release.series import SeriesContext

    previous = series.last_released()
    prev_table, prev_measurements = _previous_outputs(previous) if previous is not None else (None, None)
    versions = series.complete()
    number = series.next_number()
    label = label_of(number)
    context = SeriesContext(
        version=label, previous=previous.label if previous is not None else None, previous_synthetic=prev_table,
        previous_measurements=prev_measurements,
        horizon_left=plan.horizon.left(len(versions), snapshot.date), allow_short_horizon=plan.allow_short_horizon,
        spent_history=[(v.label, float(((v.record or {}).get("budget") or {}).get("spent_epsilon", 0.0)))
                       for v in versions])
    known = max((int(r.id) for r in led.statement(plan.dataset).reservations), default=0)
    series.start_attempt({"label": label, "snapshot": {"name": snapshot.name, "fingerprint": fingerprint},
                          "started_at": _now(), "pid": os.getpid(), "entries_before": known})
    out = series.folder / label
    try:
        result = release(
            data=snapshot.path, schema=plan.schema, synthesizer=plan.synthesizer, epsilon=plan.epsilon,
            delta=plan.delta, ledger=led, dataset=plan.dataset, policy=plan.policy, out=out, rows=plan.rows,
            synthesizer_params=plan.synthesizer_params, target=plan.target, insecure_seed=plan.insecure_seed,
            seed=plan.seed, progress=progress, workers=workers, engine=plan.engine, privacy_unit=_unit(plan),
            series=context, targeted=plan.targeted or None)
    except DPSynthError as exc:
        if exc.exit_code == 2:  # bad input: refused before anything was charged or written
            series.end_attempt()
        raise
    if result.status == "refused":  # nothing charged: no version; the report is kept aside
        series.end_attempt()
        kept = _set_aside(series, out, snapshot)
        messages.append(f"refused: nothing was charged and no version was written; the report is in {kept}")
        return RefreshResult("refused", EXIT["refused"], None, snapshot.name, messages, result.reasons, kept)
    if result.measurements:
        write_json(out / MEASUREMENTS_FILE, [m.to_dict() for m in result.measurements])
    record = version_record(plan, label, snapshot, fingerprint, context, result.report)
    write_json(out / VERSION_FILE, record)
    series.end_attempt()
    _write_index(series, plan.dataset, messages)
    word = {"released": "released", "blocked": "BLOCKED by the policy"}[result.status]
    messages.append(f"{label} {word}: {snapshot.name} ({plan.synthesizer} at epsilon={plan.epsilon:g}) in {out}")
    return RefreshResult(result.status, EXIT[result.status], label, snapshot.name, messages, result.reasons, out,
                         record)


def _unit(plan: RefreshPlan) -> Any:
    if plan.privacy_unit is None:
        return None
    from dpsynth.privacy.unit import PrivacyUnit

    return PrivacyUnit.users(plan.privacy_unit["column"], max_rows=int(plan.privacy_unit["max_rows"]))


def _previous_outputs(previous: Version) -> tuple[Any, list[Any] | None]:
    """The previous released version's synthetic table and measurements (DP output), its manifest
    checked first: a damaged or edited previous version is refused before anything is charged."""
    from dpsynth.io import read_table
    from dpsynth.release.manifest import verify_manifest

    publish = previous.path / "publish"
    problems = verify_manifest(publish)
    if problems:
        raise ParameterError(f"previous version {previous.label} does not match its manifest ({problems[0]}); "
                             "restore it before the next refresh (nothing was charged)")
    table = read_table(publish / "synthetic.csv")
    measurements = None
    path = previous.path / MEASUREMENTS_FILE
    if path.is_file():
        from dpsynth.synth.measurements import Measurement

        try:
            measurements = [Measurement.from_dict(m) for m in json.loads(path.read_text(encoding="utf-8"))]
        except (OSError, ValueError, KeyError, TypeError):
            raise ParameterError(f"previous version {previous.label}: {MEASUREMENTS_FILE} is not readable "
                                 "(nothing was charged)") from None
    return table, measurements


def version_record(plan: RefreshPlan, label: str, snapshot: Snapshot, fingerprint: str, context: Any,
                   report: dict[str, Any]) -> dict[str, Any]:
    """``version.json``: what ``dpsynth history`` and the index page show (publishable content only)."""
    from dpsynth.release.artifacts import publishable

    public = publishable(report)
    release = public["release"]
    ledger = public["ledger"]
    after = ledger.get("after") or ledger.get("before") or {}
    cap = after.get("cap") or {}
    spent = float((after.get("spent") or {}).get("epsilon_tight", 0.0))
    forecast = (public.get("series") or {}).get("forecast") or {}
    # the forecast was made before this version's charge: after it, one refresh fewer (same plan, same cost)
    curve = [{"refreshes": p["refreshes"] - 1, "epsilon": p["epsilon"]} for p in forecast.get("curve", [])
             if p["refreshes"] >= 1]
    drift = (public.get("evidence") or {}).get("drift")
    return {
        "format": FORMAT, "dataset": plan.dataset, "version": int(label[1:]), "label": label,
        "status": public["decision"]["status"], "created_at": _now(),
        "snapshot": {"name": snapshot.name, "date": snapshot.date.isoformat(), "fingerprint": fingerprint},
        "previous": context.previous, "synthesizer": plan.synthesizer, "epsilon": float(plan.epsilon),
        "delta": float(plan.delta), "epsilon_total": float(release["privacy"]["total"]["epsilon"]),
        "rows": release.get("rows"), "ledger_entries": list(ledger.get("entry_ids") or []),
        "reasons": list(public["decision"].get("reasons") or []),
        "checks": [{k: c.get(k) for k in ("id", "status", "value", "threshold", "comparison")}
                   for c in public["checks"]],
        "drift": _drift_record(drift, plan, report) if drift and drift.get("summary") else None,
        "budget": {"cap_epsilon": cap.get("epsilon"), "cap_delta": cap.get("delta"), "spent_epsilon": spent,
                   "remaining_epsilon": max(0.0, float(cap.get("epsilon") or 0.0) - spent),
                   "forecast_refreshes_left": max(0, int(forecast.get("refreshes_left", 1)) - 1),
                   "horizon_left": max(0, int(forecast.get("horizon_left") or 1) - 1)
                   if forecast.get("horizon_left") is not None else None,
                   "curve": curve},
        "plan": {"file": plan.path.name, "horizon": plan.horizon.describe()},
    }


def _drift_record(drift: dict[str, Any], plan: RefreshPlan, report: dict[str, Any]) -> dict[str, Any]:
    summary = drift["summary"]
    rules = (report.get("policy") or {}).get("rules", {}).get("drift") or {}
    table = drift.get("table") or {}
    return {"statistic": summary.get("statistic", "synthetic_marginal_tvd"), "max_tvd": summary.get("max_tvd"),
            "where": summary.get("where"), "threshold": rules.get("max_tvd"), "noise_floor": summary.get("noise_floor"),
            "columns": table.get("columns", {}), "pairs": table.get("pairs", {}),
            "measurements": drift.get("measurements")}


def _set_aside(series: Series, out: Path, snapshot: Snapshot) -> Path:
    """Move a refused release's folder out of the versions (``refused/<snapshot>-<time>/``)."""
    target = series.folder / "refused" / f"{Path(snapshot.name).stem}-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S%f}"
    target.parent.mkdir(parents=True, exist_ok=True)
    if out.exists():
        shutil.move(str(out), str(target))
    return target


def _write_index(series: Series, dataset: str, messages: list[str]) -> None:
    """Rewrite the series' ``index.html`` (a page that cannot be written is said, never fatal)."""
    try:
        from dpsynth.refresh.index_html import write_index

        write_index(series.folder.parent, dataset)
    except (OSError, ParameterError) as exc:
        messages.append(f"warning: the history page could not be written ({exc})")


def _snapshot_path(plan: RefreshPlan, name: Any) -> Path | None:
    """The file of the snapshot named ``name`` among the plan's, when it is still there."""
    from dpsynth.refresh.plan import PlanError

    try:
        return next((s.path for s in find_snapshots(plan.snapshots) if s.name == name), None)
    except PlanError:
        return None


def _recover(series: Series, led: Any, plan: RefreshPlan) -> list[str]:
    """Report a refresh that started and did not finish, and record it (see the module's docstring)."""
    attempt = series.attempt()
    if attempt is None:
        return []
    label = attempt.get("label")
    folder = series.folder / label if isinstance(label, str) else None
    if folder is not None and (folder / VERSION_FILE).is_file():
        series.end_attempt()  # stopped after its record was written: nothing was lost
        return []
    snap = attempt.get("snapshot") or {}
    known = int(attempt.get("entries_before") or 0)
    statement = led.statement(plan.dataset)
    mine = [r for r in statement.reservations if int(r.id) > known and r.status != "completed"]
    path = _snapshot_path(plan, snap.get("name"))
    if path is not None:
        from dpsynth.release.manifest import sha256_path

        sha = sha256_path(path)
        mine = [r for r in mine if r.input_sha256 in (None, sha)]
    kept = sorted(str(p) for p in series.folder.glob(f"{label}.failed-*")) if isinstance(label, str) else []
    entries = [int(r.id) for r in mine]
    record = {"label": label, "snapshot": snap, "started_at": attempt.get("started_at"), "detected_at": _now(),
              "ledger_entries": entries, "kept": kept,
              "note": "stopped before its version was written; its reservations stay spent (not completed)"}
    series.add_interrupted(record)
    if folder is not None and folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
    series.end_attempt()
    spent = (f"ledger reservation(s) {', '.join(f'#{i}' for i in entries)} stay spent and show as not completed"
             if entries else "it had reserved nothing")
    where = f"; what it had is kept in {kept[-1]}" if kept else ""
    message = (f"the refresh of {snap.get('name', 'an unknown snapshot')} ({label}) started at "
               f"{attempt.get('started_at')} did not finish: {spent}; no version was written{where}")
    sys.stderr.flush()
    return [message]


__all__ = ["EXIT", "RefreshResult", "refresh", "version_record"]
