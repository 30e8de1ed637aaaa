"""A release that is one version of a series (``dpsynth refresh``, :mod:`dpsynth.refresh`): the two
checks a series adds to the road, both free of privacy loss.

* Before the charge, the **horizon** (public: the ledger's statement and the plan): how many more
  releases of this plan (the fit and the DP checks) the cap allows, by the ledger's own tight
  composition (:func:`dpsynth.privacy.forecast.affordable`); a release that would leave the rest of
  the plan's horizon unaffordable is refused (exit 3) unless the plan allows it.
* After the sample, the **drift** from the previous released version (DP output only: the two
  synthetic tables, and the noisy measurements where the synthesizer exposes them,
  :mod:`dpsynth.quality.drift`); a policy's ``drift.max_tvd`` blocks a release that moved more.

The report gets a ``series`` block (version, previous version, forecast) and ``evidence.drift``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from dpsynth.release.checks import Checks, first_line
from dpsynth.release.policy import DRIFT_DEFAULT, Policy

HORIZON_TITLE = "the budget lasts the rest of the plan's horizon"
DRIFT_TITLE = "drift from the previous released version (largest marginal TVD)"
#: the most points of the forecast's spending curve
CURVE_POINTS = 60


@dataclass(frozen=True)
class SeriesContext:
    """What a release needs to know about the series it belongs to (all of it DP output or public).

    Attributes:
        version: this release's label (``v0003``).
        previous: the label of the previous released version, or None (the first).
        previous_synthetic: that version's synthetic table (DP output), to measure drift against.
        previous_measurements: that version's noisy measurements
            (:class:`~dpsynth.synth.measurements.Measurement`), when its synthesizer exposed them.
        horizon_left: releases the budget must still pay for, this one included (None: no horizon).
        allow_short_horizon: release even when the forecast falls short of ``horizon_left``.
        spent_history: (label, ε spent after it) of the earlier versions, oldest first, for the plot.
    """

    version: str
    previous: str | None = None
    previous_synthetic: pd.DataFrame | None = None
    previous_measurements: list[Any] | None = None
    horizon_left: int | None = None
    allow_short_horizon: bool = False
    spent_history: list[tuple[str, float]] = field(default_factory=list)


def horizon_check(series: SeriesContext, led: Any, dataset: str, events: list[Any], claimed: Any,
                  report: dict[str, Any], checks: Checks) -> bool:
    """Forecast the refreshes the cap still allows at this plan's cost and check the horizon
    (public, before the charge). Returns whether the release is refused for its horizon."""
    from dpsynth.privacy.forecast import MAX_FORECAST, affordable, spending_curve

    account = led.check(dataset, [], claimed=claimed)  # the ledger's own account (nothing reserved)
    left = affordable(account, events)
    horizon = series.horizon_left
    upto = min(left, max(2 * (horizon or 0), 12))
    curve = spending_curve(account, events, upto, points=CURVE_POINTS)
    spent = curve[0]["epsilon"] if curve else 0.0
    report["series"] = {
        "version": series.version, "previous": series.previous,
        "forecast": {"refreshes_left": left, "at_least": left >= MAX_FORECAST, "horizon_left": horizon,
                     "cap_epsilon": float(account.cap.epsilon), "cap_delta": float(account.cap.delta),
                     "spent_epsilon": float(spent), "remaining_epsilon": max(0.0, float(account.cap.epsilon) - spent),
                     "curve": curve, "composition": "tight (the ledger's own cap check on k copies of the plan)"},
        "history": [{"version": label, "epsilon_spent": float(eps)} for label, eps in series.spent_history],
    }
    if horizon is None:
        return False
    ok = left >= horizon
    detail = (f"{left}{'+' if left >= MAX_FORECAST else ''} more refresh(es) of this plan fit the cap; the horizon "
              f"needs {horizon}, this one included")
    if not ok and series.allow_short_horizon:
        detail += "; the plan allows a horizon the budget cannot last (allow_short_horizon)"
    checks.add("budget.horizon", "budget", HORIZON_TITLE, left, horizon, ">=", ok or series.allow_short_horizon,
               detail, reads="public")
    return not ok and not series.allow_short_horizon


def drift_check(series: SeriesContext | None, synth: Any, synthetic: pd.DataFrame, sch: Any, pol: Policy,
                report: dict[str, Any], checks: Checks) -> None:
    """The drift of ``synthetic`` from the previous released version (DP output only), into the
    report; a check when the policy has ``drift.max_tvd``."""
    if series is None or series.previous_synthetic is None:
        return
    from dpsynth.quality.drift import summarise, table_drift

    rules = pol.drift
    over = rules.over if rules is not None else DRIFT_DEFAULT
    try:
        table = table_drift(series.previous_synthetic, synthetic, sch)
        summary = summarise(table, over=over)
    except Exception as exc:  # noqa: BLE001 - a drift that cannot be measured blocks when gated, never passes
        if rules is not None and rules.max_tvd is not None:
            checks.error("drift.max_tvd", "drift", DRIFT_TITLE, rules.max_tvd, "<=", exc, reads="dp_output")
        report["evidence"]["drift"] = {"error": first_line(exc)}
        return
    report["evidence"]["drift"] = {"previous": series.previous, "over": list(over), "summary": summary,
                                   "table": table, "measurements": _measured(series, synth)}
    if rules is None or rules.max_tvd is None:
        return
    value = float(summary["max_tvd"])
    noise = summary.get("noise_floor")
    detail = (f"largest at {summary.get('where')}; between two samples of one distribution the TVD stays below "
              f"{noise:.4g} (noise floor)" if noise is not None else f"largest at {summary.get('where')}")
    checks.add("drift.max_tvd", "drift", DRIFT_TITLE, value, rules.max_tvd, "<=", value <= rules.max_tvd, detail,
               reads="dp_output")


def _measured(series: SeriesContext, synth: Any) -> dict[str, Any] | None:
    """The drift of the noisy measurements both versions' synthesizers exposed (reported, not gated)."""
    from dpsynth.quality.drift import measurement_drift, summarise

    mine = getattr(synth, "measurements_", None)
    if not series.previous_measurements or not mine:
        return None
    try:
        measured = measurement_drift(series.previous_measurements, mine)
        measured["summary"] = summarise({}, over=("columns",), measurements=measured)["measurements"]
    except Exception as exc:  # noqa: BLE001 - evidence only: what could not be compared is said
        return {"error": first_line(exc)}
    return measured


__all__ = ["DRIFT_TITLE", "HORIZON_TITLE", "SeriesContext", "drift_check", "horizon_check"]
