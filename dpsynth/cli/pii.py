"""``dpsynth scan`` (PII scan of a table with Presidio) and ``dpsynth replay`` (copies of real rows in a synthetic
table against a holdout baseline; NOT DP: internal evidence)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, cast

from dpsynth.cli.arguments import engine_options, integer, number
from dpsynth.exceptions import ParameterError

__all__ = ["add_replay", "add_scan", "run_replay", "run_scan"]


def add_scan(sub: Any) -> None:
    """Add ``dpsynth scan`` to the subcommands ``sub``."""
    scan = sub.add_parser("scan", help="PII scan of a table with Presidio (exit 1 when PII is found)")
    scan.add_argument("path", help="table to scan (.csv, .csv.gz or .parquet), usually a synthetic one")
    scan.add_argument("--schema", help="public schema: declared levels are public; pii hints apply")
    scan.add_argument("--threshold", type=number, default=0.5, help="lowest score reported (default 0.5)")
    scan.add_argument("--entities", nargs="+", metavar="ENTITY", help="entity types to look for (default: all)")
    scan.add_argument("--no-ner", action="store_true", help="pattern recognizers only (the report says NER is off)")
    scan.add_argument("--json", action="store_true", help="print the report as JSON")


def add_replay(sub: Any) -> None:
    """Add ``dpsynth replay`` to the subcommands ``sub``."""
    replay = sub.add_parser("replay", help="copies of real rows in a synthetic table, against a holdout baseline "
                                           "(NOT DP: internal evidence; exit 1 when a rate is flagged)")
    replay.add_argument("--real", required=True, help="the real table the synthesizer was fitted on")
    replay.add_argument("--synthetic", required=True)
    replay.add_argument("--schema", required=True,
                        help="public schema (bounds scale distances; quasi_identifier marks)")
    replay.add_argument("--holdout", help="real rows the synthesizer never saw (default: a random 20%% of --real)")
    replay.add_argument("--near-threshold", type=number, default=0.02,
                        help="Gower distance at or below which a row is a near copy (default 0.02)")
    replay.add_argument("--alpha", type=number, default=0.01, help="level of the test against the baseline (0.01)")
    engine_options(replay)
    replay.add_argument("--sample-rows", type=integer, default=None,
                        help="with --engine duckdb or spark: rows of each table (a seeded sample) that the near-copy "
                             "distances read (default 20000); exact and quasi-identifier copies use every row")
    replay.add_argument("--json", action="store_true", help="print the report as JSON")


def run_scan(args: argparse.Namespace) -> int:
    """Exit 0 when nothing is found, 1 when PII is found, 2 for bad input."""
    from dpsynth.pii.scan import scan_file
    from dpsynth.schema import load_schema

    schema = load_schema(args.schema) if args.schema else None
    report = scan_file(args.path, schema=schema, threshold=args.threshold, entities=args.entities,
                       use_ner=not args.no_ner)
    if not report.ner["enabled"]:
        sys.stderr.write(f"dpsynth scan: WARNING: NER is off ({report.ner['reason']}): "
                         f"{', '.join(report.ner['not_covered'])} are NOT covered; "
                         f"{', '.join(report.ner['partly_covered'])} only by patterns\n")
    if args.json:
        print(json.dumps(report.to_dict()))
        return 1 if report.found else 0
    ner = report.ner
    how = f"NER {ner['model']} {ner['version']}" if ner["enabled"] else "NER OFF"
    print(f"PII scan of {args.path}: {report.rows:,} rows, {len(report.columns)} columns, threshold "
          f"{report.threshold:g}, {how}, {report.stats['seconds']:g} s")
    modes = {c.name: c.mode for c in report.columns}
    for f in report.findings:
        print(f"  {f.column} [{modes[f.column]}]: {f.entity_type} in {f.cells:,} cells ({f.share:.1%} of rows), "
              f"max score {f.max_score:.2f}, e.g. {', '.join(f.examples)}")
    columns = len({f.column for f in report.findings})
    print(f"PII found in {columns} of {len(report.columns)} columns" if report.found else "no PII found")
    return 1 if report.found else 0


def run_replay(args: argparse.Namespace) -> int:
    """Exit 0 when no rate is above its baseline, 1 when one is, 2 for bad input."""
    from dpsynth.io import read_table
    from dpsynth.marginals.engines import choose_engine
    from dpsynth.pii.replay import copy_check
    from dpsynth.schema import load_schema

    schema = load_schema(args.schema)
    engine = choose_engine(args.engine, args.real, fits_on_marginals=True, spark_master=args.spark_master)
    if engine != "numpy":
        report = _replay_in_engine(args, schema, engine)
    else:
        if args.sample_rows is not None:
            raise ParameterError("--sample-rows samples tables held by an engine: give it with --engine duckdb or "
                                 "spark")
        real = read_table(args.real)
        synthetic = read_table(args.synthetic)
        holdout = read_table(args.holdout) if args.holdout else None
        report = copy_check(real, synthetic, schema, holdout=holdout, near_threshold=args.near_threshold,
                            alpha=args.alpha)
    if args.json:
        print(json.dumps(report.to_dict()))
    else:
        print(f"replay checks of {args.synthetic} against {args.real} -- NOT differentially private: internal "
              f"evidence, no data rows; baseline: {report.baseline}")
        if report.engine is not None:
            rows = ", ".join(f"{label} {n:,}" for label, n in report.engine["sample_rows"].items())
            print(f"  in {report.engine['engine']}: {', '.join(report.engine['every_row'])} over every row"
                  + (f"; near copies on a seeded sample (seed {report.engine['sample_seed']}): {rows} rows"
                     if rows else ""))
        for r in report.rates:
            print(f"  {r.check}: {r.synthetic_rate:.4%} of synthetic rows ({r.synthetic_matches:,}) vs baseline "
                  f"{r.baseline_rate:.4%} ({r.baseline_matches:,} of {r.baseline_rows:,}), p={r.p_value:.3g}"
                  f"{' -- FLAGGED' if r.flagged else ''}")
        q = report.dcr_quantiles
        print(f"  distance to closest record, 5% quantile: synthetic {q['synthetic']['q05']:.4f}, "
              f"baseline {q['baseline']['q05']:.4f}")
        print("FLAGGED: synthetic rows copy real ones more often than chance" if report.flagged
              else "no copy rate above its baseline")
    return 1 if report.flagged else 0


def _replay_in_engine(args: argparse.Namespace, schema: Any, engine: str) -> Any:
    from dpsynth.marginals.engines import close_sources, open_sources
    from dpsynth.pii.engine_replay import DEFAULT_SAMPLE_ROWS, engine_copy_check

    rows = DEFAULT_SAMPLE_ROWS if args.sample_rows is None else args.sample_rows
    sources = open_sources([args.real, args.synthetic, args.holdout], engine, spark_master=args.spark_master)
    try:
        real, synthetic = (cast(Any, s) for s in sources[:2])  # given paths: never None
        return engine_copy_check(real, synthetic, schema, holdout=sources[2],
                                 near_threshold=args.near_threshold, alpha=args.alpha, sample_rows=rows)
    finally:
        close_sources(sources)
