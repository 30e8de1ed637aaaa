"""``dpsynth eval``: fidelity (and train-synthetic-test-real utility) of a synthetic table against the real
one. It reads the private table: its figures are internal evidence."""

from __future__ import annotations

import argparse
import json
from typing import Any

from dpsynth.cli.arguments import engine_options, integer
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
    engine_options(ev)
    ev.add_argument("--sample-rows", type=integer, default=None,
                    help="with --engine duckdb or spark: rows of each table (a seeded sample) that the KS, association "
                         "and utility figures read (default 100000); the marginal figures are exact")
    ev.add_argument("--json", action="store_true")


def run_eval(args: argparse.Namespace) -> int:
    """Exit 0 once the report is printed."""
    report = evaluate_tables(args)
    print(json.dumps(report)) if args.json else print_eval(report)
    return 0


def evaluate_tables(args: argparse.Namespace) -> dict[str, Any]:
    """The fidelity (and utility) report of ``--synthetic`` against ``--real``."""
    from dpsynth.io import read_table
    from dpsynth.marginals.engines import choose_engine
    from dpsynth.quality import evaluate
    from dpsynth.schema import load_schema

    schema = load_schema(args.schema)
    if args.target is not None and args.target not in schema.names:
        raise ParameterError(f"target ({args.target!r}) must be one of the schema's columns: {', '.join(schema.names)}")
    engine = choose_engine(args.engine, args.real, fits_on_marginals=True, spark_master=args.spark_master)
    if engine != "numpy":
        return _evaluate_in_engine(args, schema, engine)
    if args.sample_rows is not None:
        raise ParameterError("--sample-rows samples a table held by an engine: give it with --engine duckdb or spark")
    real = read_table(args.real)
    synthetic = read_table(args.synthetic)
    holdout = read_table(args.holdout) if args.holdout else None
    return evaluate(real, synthetic, schema, target=args.target, holdout=holdout)


def _evaluate_in_engine(args: argparse.Namespace, schema: Any, engine: str) -> dict[str, Any]:
    from dpsynth.marginals.engines import close_sources, open_sources
    from dpsynth.quality.engine_eval import DEFAULT_SAMPLE_ROWS, evaluate_sources

    rows = DEFAULT_SAMPLE_ROWS if args.sample_rows is None else args.sample_rows
    sources: list[Any] = open_sources([args.real, args.synthetic, args.holdout], engine,
                                      spark_master=args.spark_master)
    try:
        return evaluate_sources(sources[0], sources[1], schema, target=args.target, holdout=sources[2],
                                sample_rows=rows)
    finally:
        close_sources(sources)


def print_eval(report: dict[str, Any]) -> None:
    """The report in lines a person reads."""
    print(f"real rows {report['real_rows']:,}, synthetic rows {report['synthetic_rows']:,}")
    if "sample" in report:
        rows = ", ".join(f"{label} {n:,}" for label, n in report["sample"]["rows"].items())
        print(f"  counted in {report['engine']}: marginal figures exact; KS, Wasserstein, association and utility on "
              f"a seeded sample ({report['sample']['sampler']}, seed {report['sample']['seed']}): {rows} rows")
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
