"""``dpsynth audit``: an empirical privacy audit of a synthesizer against its claim (NOT DP: internal evidence,
no data rows)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from dpsynth.cli.arguments import number

__all__ = ["add_audit", "run_audit"]


def add_audit(sub: Any) -> None:
    """Add ``dpsynth audit`` to the subcommands ``sub``."""
    audit = sub.add_parser("audit", help="empirical privacy audit of a synthesizer (NOT DP: internal evidence)")
    audit.add_argument("--synthesizer", required=True,
                       help="a registered name (mst, aim) or an import path package.module:Class")
    audit.add_argument("--epsilon", type=number, required=True, help="the claimed epsilon")
    audit.add_argument("--delta", type=number, required=True, help="the claimed delta")
    audit.add_argument("--suite", required=True, help="a shipped audit suite (mst, aim, plugin, ...) or a YAML file")
    audit.add_argument("--json", action="store_true", help="print the result as JSON")


def run_audit(args: argparse.Namespace) -> int:
    """Exit 0 when no audit shows a violation, 1 when one does, 2 for a bad suite or synthesizer."""
    from dpsynth import _validation as check
    from dpsynth.audit.suite import load_suite, run_suite

    epsilon = check.positive_finite("epsilon", args.epsilon)
    delta = check.open_unit("delta", args.delta)
    suite = load_suite(args.suite)
    summary = run_suite(args.synthesizer, epsilon=epsilon, delta=delta, suite=suite)
    summary["command"] = "dpsynth audit " + " ".join(
        [f"--synthesizer {args.synthesizer}", f"--epsilon {args.epsilon:g}", f"--delta {args.delta:g}",
         f"--suite {args.suite}"] + (["--json"] if args.json else []))
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"audit of {summary['synthesizer']} against (epsilon={epsilon:g}, delta={delta:g}) "
              "-- NOT differentially private: internal evidence, no data rows")
        for r in summary["audits"]:
            if r["method"] == "record_replay":
                status = "pass" if r["passed"] else "FAIL: " + "; ".join(r["failures"])
                print(f"  record/replay ({len(r['pairs'])} neighbouring pairs, {r['seconds']:g} s): {status}")
            elif "error" in r:
                print(f"  {r['method']}: FAIL: {r['error']}")
            else:
                mu = "" if r.get("mu_lower_bound") is None else (
                    f"; mu >= {r['mu_lower_bound']:.3f} (claim {r['claimed_mu']:.4f}, max provable "
                    f"{r['max_provable_mu']:.3f})")
                how = (f"{r['fits']} fits, {r['canaries']} canaries, {r['copy_test']['copies']} verbatim copies"
                       if "copy_test" in r else f"{r['trials']} trials, {r['details'].get('noise', 'its own noise')}")
                print(f"  {r['method']} ({how}, {r['seconds']:g} s): "
                      f"epsilon >= {r['epsilon_lower_bound']:.3f} at {r['confidence']:.0%} (max provable "
                      f"{r['max_provable_epsilon']:.3f}){mu}{' -- VIOLATION' if r['violation'] else ''}")
        print("VIOLATION: the claim is refuted" if summary["violation"] else "no violation found")
    return 1 if summary["violation"] else 0
