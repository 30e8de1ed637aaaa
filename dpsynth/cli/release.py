"""``dpsynth release`` (the release gate: fit, audit, scan, check against a policy, write the report) and
``dpsynth verify-manifest`` (re-hash a release folder against its manifest)."""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from dpsynth.cli.arguments import THREADS_HELP, engine_options, integer, number, user_unit, user_unit_options
from dpsynth.cli.synth_params import synth_params
from dpsynth.exceptions import ParameterError

__all__ = ["add_release", "add_verify_manifest", "run_release", "run_verify_manifest"]


def add_release(sub: Any) -> None:
    """Add ``dpsynth release`` to the subcommands ``sub``."""
    rel = sub.add_parser("release", help="the release gate: fit, audit, scan, check against a policy, write the "
                                         "report (exit 0 released, 1 blocked, 2 bad input, 3 budget refused, "
                                         "4 failed after the charge: kept in OUT.failed-TIMESTAMP)")
    rel.add_argument("--data", required=True, help="private table (.csv, .csv.gz or .parquet; with --engine duckdb "
                     "or spark also a folder or glob of Parquet files)")
    rel.add_argument("--schema", required=True, help="public schema (YAML/JSON)")
    rel.add_argument("--synthesizer", required=True,
                     help="mst, aim, dpctgan, dpvae, or an import path package.module:Class")
    rel.add_argument("--epsilon", type=number, required=True)
    rel.add_argument("--delta", type=number, required=True)
    rel.add_argument("--ledger", default=os.environ.get("DPSYNTH_LEDGER"),
                     help="privacy ledger URL: sqlite:///PATH or postgresql://… (default: $DPSYNTH_LEDGER)")
    rel.add_argument("--dataset", required=True, help="the private dataset's name in the ledger")
    rel.add_argument("--policy", required=True, help="a shipped policy (default, strict, permissive) or a YAML file")
    rel.add_argument("--out", required=True, help="a new or empty folder for the artifacts")
    rel.add_argument("--rows", type=integer, help="synthetic rows, a PUBLIC number (default: the synthesizer's DP "
                     "estimate of the private row count, never the true count)")
    rel.add_argument("--target", help="column to predict for the utility check (overrides the policy's)")
    rel.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                     help="a synthesizer parameter (repeatable; VALUE read as JSON)")
    rel.add_argument("--insecure-seed", type=integer, default=None,
                     help="seed the privacy noise: INSECURE, for tests only; a policy requiring secure noise blocks")
    rel.add_argument("--workers", type=integer, help="processes for the audit's fits (default: the CPUs, at most 8)")
    rel.add_argument("--threads", type=integer, default=None, help=THREADS_HELP)
    rel.add_argument("--json", action="store_true", help="print the decision as one JSON object (no progress)")
    user_unit_options(rel)
    engine_options(rel, by_size=False)


def add_verify_manifest(sub: Any) -> None:
    """Add ``dpsynth verify-manifest`` to the subcommands ``sub``."""
    vm = sub.add_parser("verify-manifest", help="re-hash a release folder against its manifest.json (exit 0 all "
                                                "match, 1 a file differs or is missing, 2 a malformed manifest)")
    vm.add_argument("folder", help="a release's publish/ or internal/ folder")
    vm.add_argument("--json", action="store_true", help="print the problems as JSON")


def run_release(args: argparse.Namespace) -> int:
    """Exit 0 released, 1 blocked by the policy, 2 bad input (nothing charged or written), 3 budget refused."""
    from dpsynth.release import release
    from dpsynth.release.artifacts import publishable
    from dpsynth.synth.plugin import load_generator

    if not args.ledger:
        raise ParameterError("release needs --ledger URL (or $DPSYNTH_LEDGER): every release is charged")
    cls = load_generator(args.synthesizer)
    params = synth_params(cls, args.param, None)
    result = release(data=args.data, schema=args.schema, synthesizer=args.synthesizer, epsilon=args.epsilon,
                     delta=args.delta, ledger=args.ledger, dataset=args.dataset, policy=args.policy, out=args.out,
                     rows=args.rows, synthesizer_params=params, target=args.target, insecure_seed=args.insecure_seed,
                     progress=False if args.json else None, workers=args.workers, threads=args.threads,
                     engine=args.engine, spark_master=args.spark_master, privacy_unit=user_unit(args))
    report = result.report
    if args.json:
        print(json.dumps({"status": result.status, "exit_code": result.exit_code, "reasons": result.reasons,
                          "out": str(result.out), "publish": str(result.publish), "artifacts": result.artifacts,
                          "internal": str(result.internal), "internal_artifacts": result.internal_artifacts,
                          "ledger_entry": report["ledger"]["entry_id"], "ledger_entries": report["ledger"]["entry_ids"],
                          "rows": report["release"]["rows"], "rows_source": report["release"]["rows_source"],
                          "epsilon_total": report["release"]["privacy"]["total"]["epsilon"],
                          "decision_privacy": report["decision"]["privacy"],
                          # the publishable values: a check read without privacy shows its status only
                          "checks": [{k: c[k] for k in ("id", "status", "value", "threshold", "reads")}
                                     for c in publishable(report)["checks"]]}))
        return result.exit_code
    verdict = {"released": "RELEASED", "blocked": "BLOCKED by the policy", "refused": "REFUSED: budget"}[result.status]
    print(f"{verdict}: {args.synthesizer} at epsilon={args.epsilon:g}, delta={args.delta:g} on {args.dataset!r} "
          f"(policy {report['policy']['name']!r})")
    for c in publishable(report)["checks"]:  # what a CI log may keep: no value read without privacy
        mark = {"pass": "ok  ", "fail": "FAIL", "error": "ERR ", "not_run": "--  "}[c["status"]]
        value = c["value"] if not isinstance(c["value"], float) else f"{c['value']:.4g}"
        print(f"  {mark} {c['id']}: {value}" + ("" if c["threshold"] is None else f" (threshold {c['comparison']} "
              f"{c['threshold'] if not isinstance(c['threshold'], float) else format(c['threshold'], '.4g')})"))
    for reason in result.reasons:
        print(f"  reason: {reason}")
    total = report["release"]["privacy"]["total"]["epsilon"]
    print(f"  epsilon of the table and the decision, composed: {total:.4g} at delta={args.delta:g}; "
          + report["decision"]["statement"])
    print(f"publishable: {result.publish} (report.html, report.json, manifest.json"
          + (", synthetic.csv)" if result.released else ")"))
    print(f"internal, NOT DP, never publish: {result.internal}")
    return result.exit_code


def run_verify_manifest(args: argparse.Namespace) -> int:
    """Exit 0 when every listed artifact matches, 1 when one differs or is missing, 2 for a malformed manifest."""
    from dpsynth.release.manifest import verify_manifest

    problems = verify_manifest(args.folder)
    if args.json:
        print(json.dumps({"folder": args.folder, "ok": not problems, "problems": problems}))
    elif problems:
        for problem in problems:
            print(f"  {problem}")
        print(f"manifest of {args.folder}: {len(problems)} problem(s)")
    else:
        print(f"manifest of {args.folder}: every artifact matches")
    return 1 if problems else 0
