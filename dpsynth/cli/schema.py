"""``dpsynth schema infer``: learn a public schema from the private data with DP (charged to the ledger), or
read it without privacy under the loud ``--public`` opt-in."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from dpsynth.cli.arguments import Parser, engine_options, integer, number, user_unit, user_unit_options
from dpsynth.cli.charging import ledger_for
from dpsynth.exceptions import ParameterError

__all__ = ["add_schema", "run_schema", "schema_infer"]


def add_schema(sub: Any) -> None:
    """Add ``dpsynth schema`` and ``schema infer`` to the subcommands ``sub``."""
    schema = sub.add_parser("schema", help="public schemas")
    ssub = schema.add_subparsers(dest="schema_command", required=True, parser_class=Parser)
    infer = ssub.add_parser("infer", help="learn a schema from the data with DP (charged), or --public without")
    infer.add_argument("--data", required=True,
                       help="private table (.csv, .csv.gz, .parquet; a folder or glob of Parquet files for an engine)")
    infer.add_argument("--out", required=True, help="schema file to write (.yaml, .yml or .json)")
    infer.add_argument("--epsilon", type=number)
    infer.add_argument("--delta", type=number)
    infer.add_argument("--ledger", help="privacy ledger URL (default: $DPSYNTH_LEDGER)")
    infer.add_argument("--dataset", help="the private dataset's name in the ledger")
    infer.add_argument("--no-ledger", action="store_true",
                       help="infer WITHOUT recording the privacy loss in any ledger (loud opt-out)")
    infer.add_argument("--public", action="store_true",
                       help="read the schema from the data WITHOUT privacy (loud, named opt-in that every "
                            "release built on it reports)")
    infer.add_argument("--hints", help="a partial schema: declared columns, kinds, missing_values")
    infer.add_argument("--split-kinds", type=number, default=0.1, help="share of rho for column kinds (0.1)")
    infer.add_argument("--split-categories", type=number, default=0.6, help="share of rho for levels (0.6)")
    infer.add_argument("--split-bounds", type=number, default=0.3, help="share of rho for numeric bounds (0.3)")
    infer.add_argument("--split-delta-threshold", type=number, default=0.5,
                       help="share of delta for the thresholding of level discovery (0.5)")
    infer.add_argument("--bins", type=integer, default=8, help="bins of learned numeric columns (8)")
    infer.add_argument("--bin-edges", default="dp_quantiles",
                       help="dp_quantiles (edges chosen and charged by the fit, default) or uniform")
    infer.add_argument("--bounds-quantile", type=number, default=0.01,
                       help="numeric bounds are the DP quantiles q and 1-q (0.01)")
    infer.add_argument("--insecure-seed", type=integer, default=None,
                       help="seed the privacy noise: INSECURE, for tests only; the schema says so")
    user_unit_options(infer)
    engine_options(infer)
    infer.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def run_schema(args: argparse.Namespace) -> int:
    """Exit 0 once the schema is written."""
    result = schema_infer(args)
    if args.json:
        print(json.dumps(result))
    else:
        kinds = ", ".join(f"{n} {k}" for k, n in sorted(result["kinds"].items()))
        if result["method"] == "public":
            how = "read WITHOUT privacy (opt-in schema_read_from_data_without_privacy)"
        else:
            entry = f", ledger entry {result['ledger_entry']}" if result.get("ledger_entry") is not None else ""
            how = (f"learned with DP: epsilon={result['epsilon']:g}, delta={result['delta']:g}, "
                   f"rho={result['rho']:.6g}, additive delta={result['additive_delta']:.3g}{entry}")
        print(f"wrote a schema of {result['columns']} columns ({kinds}) to {result['out']}, {how}")
    return 0


def schema_infer(args: argparse.Namespace) -> dict[str, Any]:
    """Infer (charged) or read (``--public``) the schema and write it; the result that is printed."""
    from dpsynth.io import check_schema_writable
    from dpsynth.schema.infer import dump_schema, infer_schema, read_schema_without_privacy

    start = time.perf_counter()
    out = check_schema_writable(args.out)
    if args.public and user_unit(args) is not None:
        raise ParameterError("--user-column is for a schema inferred with DP; with --public, add privacy_unit: "
                             "{column: KEY, max_rows: K} to the schema file (and leave the key out of its columns)")
    if args.public:
        given = [flag for flag, value in (("--epsilon", args.epsilon), ("--delta", args.delta),
                                          ("--ledger", args.ledger), ("--dataset", args.dataset),
                                          ("--insecure-seed", args.insecure_seed)) if value is not None]
        if args.no_ledger:
            given.append("--no-ledger")
        if given:
            raise ParameterError(f"--public reads the schema without privacy and spends no budget: give it "
                                 f"without {', '.join(given)}")
        schema = read_schema_without_privacy(args.data, hints=args.hints, bins=args.bins, bin_edges=args.bin_edges,
                                             engine=args.engine, spark_master=args.spark_master)
    else:
        if args.epsilon is None or args.delta is None:
            raise ParameterError("schema infer needs --epsilon E --delta D (or --public to read the schema "
                                 "without privacy)")
        ledger, dataset = ledger_for(args, "schema infer")
        schema = infer_schema(
            args.data, epsilon=args.epsilon, delta=args.delta, ledger=ledger, dataset=dataset, hints=args.hints,
            split_kinds=args.split_kinds, split_categories=args.split_categories, split_bounds=args.split_bounds,
            split_delta_threshold=args.split_delta_threshold, bins=args.bins, bin_edges=args.bin_edges,
            bounds_quantile=args.bounds_quantile, insecure_seed=args.insecure_seed, engine=args.engine,
            spark_master=args.spark_master, privacy_unit=user_unit(args),
        )
    dump_schema(schema, out)
    provenance = dict(schema.provenance or {})
    kinds: dict[str, int] = {}
    for col in schema.columns:
        kinds[col.kind] = kinds.get(col.kind, 0) + 1
    result: dict[str, Any] = {
        "out": str(out),
        "method": provenance.get("method"),
        "columns": len(schema),
        "kinds": kinds,
        "levels": {c.name: len(c.levels) for c in schema.columns if c.kind == "categorical"},
        "opt_ins": schema.opt_ins,
        "seconds": round(time.perf_counter() - start, 3),
    }
    for key in ("epsilon", "delta", "rho", "additive_delta", "ledger_entry", "dataset", "secure_noise",
                "insecure_seed"):
        if key in provenance:
            result[key] = provenance[key]
    return result
