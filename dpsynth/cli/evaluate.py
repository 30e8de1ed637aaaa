"""``dpsynth eval``: fidelity (and train-synthetic-test-real utility) of a synthetic table against the real
one. It reads the private table: its figures are internal evidence."""

from __future__ import annotations

import argparse
import json
from typing import Any

from dpsynth.exceptions import ParameterError

__all__ = ["add_eval", "evaluate_tables", "print_eval", "run_eval"]


def add_eval(sub: Any) -> None:
    """Add ``dpsynth eval`` to the subcommands ``sub``."""
    ev = sub.add_parser("eval", help="fidelity of a synthetic table against the real one")
    ev.add_argument("--real", required=True)
    ev.add_argument("--synthetic", required=True)
    ev.add_argument("--schema", required=True)
    ev.add_argument("--target", help="column to predict for train-synthetic-test-real utility")
    ev.add_argument("--holdout", help="real rows held out from fitting, to test utility on (default: a 20%% split)")
    ev.add_argument("--json", action="store_true")


def run_eval(args: argparse.Namespace) -> int:
    """Exit 0 once the report is printed."""
    report = evaluate_tables(args)
    print(json.dumps(report)) if args.json else print_eval(report)
    return 0


def evaluate_tables(args: argparse.Namespace) -> dict[str, Any]:
    """The fidelity (and utility) report of ``--synthetic`` against ``--real``."""
    from dpsynth.io import read_table
    from dpsynth.quality import evaluate
    from dpsynth.schema import load_schema

    schema = load_schema(args.schema)
    if args.target is not None and args.target not in schema.names:
        raise ParameterError(f"target ({args.target!r}) must be one of the schema's columns: {', '.join(schema.names)}")
    real = read_table(args.real)
    synthetic = read_table(args.synthetic)
    holdout = read_table(args.holdout) if args.holdout else None
    return evaluate(real, synthetic, schema, target=args.target, holdout=holdout)


def print_eval(report: dict[str, Any]) -> None:
    """The report in lines a person reads."""
    print(f"real rows {report['real_rows']:,}, synthetic rows {report['synthetic_rows']:,}")
    for k in (1, 2, 3):
        value = report[f"l1_{k}way"]
        if value is not None:
            sampled = " (seeded sample)" if report[f"sampled_{k}way"] else ""
            print(f"  {k}-way workload error (mean L1 over {report[f'n_{k}way']} marginals{sampled}): {value:.4f}")
    assoc = report["association"]
    print(f"  association matrices (Cramér's V / η / r): mean |difference| {assoc['mean']:.4f}, "
          f"max {assoc['max']:.4f} ({' × '.join(assoc['max_pair'])})")
    print("  per column:")
    for name, c in report["columns"].items():
        extra = ""
        if c.get("ks") is not None:
            extra = f"  KS {c['ks']:.4f}  Wasserstein/range {c['wasserstein']:.4f}"
        print(f"    {name}: TVD {c['tvd']:.4f}{extra}")
    if "utility" in report:
        u = report["utility"]
        metric = u["metric"]
        print(f"  utility for {u['target']!r} ({u['model']}, tested on {u['holdout_rows']:,} rows of "
              f"{u['holdout_source']}): {metric} train-on-real {u['train_real'][metric]:.4f}, "
              f"train-on-synthetic {u['train_synthetic'][metric]:.4f}")
