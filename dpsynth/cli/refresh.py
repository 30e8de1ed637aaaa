"""``dpsynth refresh PLAN``: one refresh of a series of releases (``docs/refresh.md``)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from dpsynth.cli.arguments import integer

__all__ = ["add_refresh", "run_refresh"]


def add_refresh(sub: Any) -> None:
    """Add ``dpsynth refresh`` to the subcommands ``sub``."""
    ref = sub.add_parser("refresh", help="one refresh of a series: the newest snapshot through the release gate into "
                                         "a new version releases/<dataset>/vNNNN/ (exit 0 released or nothing to do, "
                                         "1 blocked, 2 bad input, 3 refused, 4 failed after the charge)")
    ref.add_argument("plan", help="the refresh plan (YAML): dataset, ledger, snapshots, synthesizer, epsilon, policy, "
                                  "horizon, releases")
    ref.add_argument("--again", action="store_true",
                     help="refresh the newest snapshot even when it already has a version (spends again)")
    ref.add_argument("--workers", type=integer, help="processes for the audit's fits (default: the CPUs, at most 8)")
    ref.add_argument("--json", action="store_true", help="print the outcome as one JSON object (no progress)")


def run_refresh(args: argparse.Namespace) -> int:
    """Exit 0 released or nothing to do, 1 blocked, 2 bad input, 3 refused, 4 failed after the charge."""
    from dpsynth.refresh import refresh

    result = refresh(args.plan, again=args.again, progress=False if args.json else None, workers=args.workers)
    record = result.record or {}
    drift = record.get("drift") or None
    if args.json:
        print(json.dumps({"status": result.status, "exit_code": result.exit_code, "version": result.version,
                          "snapshot": result.snapshot, "path": str(result.path) if result.path else None,
                          "messages": result.messages, "reasons": result.reasons,
                          "drift": drift and {k: drift.get(k)
                                              for k in ("max_tvd", "where", "threshold", "noise_floor")},
                          "budget": record.get("budget")}))
        return result.exit_code
    for message in result.messages:
        (sys.stderr if message.startswith(("the refresh of", "warning:")) else sys.stdout).write(
            (f"dpsynth refresh: {message}" if message.startswith(("the refresh of", "warning:")) else message) + "\n")
    for reason in result.reasons:
        print(f"  reason: {reason}")
    budget = record.get("budget")
    if budget and result.status != "up_to_date":
        print(f"  budget: epsilon spent {budget['spent_epsilon']:.4g} of {budget['cap_epsilon']:g}; "
              f"{budget['forecast_refreshes_left']} more refresh(es) of this plan fit"
              + (f" (the horizon needs {budget['horizon_left']})" if budget.get("horizon_left") is not None else ""))
    if drift and result.status != "up_to_date":
        print(f"  drift from {record.get('previous')}: largest TVD {drift['max_tvd']:.4g} at {drift['where']}"
              + (f" (threshold {drift['threshold']:g})" if drift.get("threshold") is not None else ""))
    return result.exit_code
