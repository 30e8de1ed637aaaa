"""``dpsynth fit``: fit a synthesizer on a private table, charged to the ledger, and write a synthetic table
of a public number of rows."""

from __future__ import annotations

import argparse
import inspect
import json
import os
import time
from pathlib import Path
from typing import Any

from dpsynth.cli.arguments import THREADS_HELP, engine_options, integer, number, user_unit, user_unit_options
from dpsynth.cli.charging import ledger_for
from dpsynth.cli.synth_params import synth_params
from dpsynth.exceptions import ParameterError

__all__ = ["add_fit", "check_fit_out", "fit_conditions", "fit_result", "run_fit"]


def add_fit(sub: Any) -> None:
    """Add ``dpsynth fit`` to the subcommands ``sub``."""
    fit = sub.add_parser("fit", help="fit a synthesizer and write a synthetic table")
    fit.add_argument("--data", required=True, help="private table (.csv, .csv.gz or .parquet)")
    fit.add_argument("--schema", required=True, help="public schema (YAML/JSON) or Private-PGM domain file")
    fit.add_argument("--synthesizer", default="mst",
                     help="synthesizer name (default: mst), or package.module:Class of a plug-in (docs/plugins.md)")
    fit.add_argument("--epsilon", type=number, required=True)
    fit.add_argument("--delta", type=number, required=True)
    fit.add_argument("--rows", type=integer, required=True, help="number of synthetic rows")
    fit.add_argument("--out", required=True, help="synthetic table to write (.csv or .parquet)")
    fit.add_argument("--overwrite", action="store_true",
                     help="replace --out if it exists (never allowed when --out is the --data file)")
    fit.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    fit.add_argument("--ledger", help="privacy ledger URL: sqlite:///PATH or postgresql://… (default: $DPSYNTH_LEDGER)")
    fit.add_argument("--dataset", help="the private dataset's name in the ledger")
    fit.add_argument("--no-ledger", action="store_true",
                     help="fit WITHOUT recording the privacy loss in any ledger (loud opt-out)")
    fit.add_argument("--workload", help="marginals to preserve (AIM): 'a,b,c;d,e' or a YAML/JSON file of column lists")
    fit.add_argument("--device", default="auto",
                     help="where DP-SGD synthesizers (dpctgan, dpvae) train: auto (CUDA when available, the "
                          "default), cpu or cuda; ignored by synthesizers that do not train")
    fit.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                     help="a synthesizer parameter, e.g. max_model_size=20 (repeatable; VALUE read as JSON)")
    fit.add_argument("--threads", type=integer, default=None, help=THREADS_HELP)
    fit.add_argument("--condition", action="append", default=[], metavar="COLUMN=VALUE",
                     help="sample only rows whose COLUMN takes VALUE, a public schema value (repeatable; repeat a "
                          "column for several values); post-processing, checked before any charge "
                          "(docs/conditional-sampling.md)")
    fit.add_argument("--mix", action="append", default=[], metavar="COLUMN=VALUE:SHARE,...",
                     help="a stated mix of one column's values, shares summing to 1 (e.g. "
                          "'income=>50K:0.5,<=50K:0.5'); the rows are split by the largest-remainder rule")
    user_unit_options(fit)
    engine_options(fit)
    fit.add_argument(
        "--insecure-seed",
        type=integer,
        default=None,
        help="seed the privacy noise: INSECURE, for tests only; the output says so",
    )


def run_fit(args: argparse.Namespace) -> int:
    """Exit 0 once the synthetic table is written."""
    result = fit_result(args)
    if args.json:
        print(json.dumps(result))
    else:
        entry = f", ledger entry {result['ledger_entry']}" if result["ledger_entry"] is not None else ""
        print(
            f"wrote {result['rows']:,} synthetic rows to {result['out']} "
            f"({result['synthesizer']}, epsilon={result['epsilon']:g}, delta={result['delta']:g}, "
            f"rho={result['rho']:.6g}{entry}) in {result['seconds']:.1f} s"
        )
    return 0


def fit_result(args: argparse.Namespace) -> dict[str, Any]:
    """Fit and write the synthetic table; the result that ``dpsynth fit`` prints."""
    from dpsynth import _validation as check
    from dpsynth._threads import check_threads
    from dpsynth.io import check_writable, read_table, sha256_file
    from dpsynth.marginals.engines import choose_engine, open_source
    from dpsynth.schema import load_schema
    from dpsynth.synth.plugin import load_generator
    from dpsynth.synth.streaming import check_rows_on_disk, write_sampled

    start = time.perf_counter()
    # Everything a user can get wrong is checked before the private data is touched.
    cls = load_generator(args.synthesizer)  # a name, or package.module:Class (a plug-in comes back wrapped)
    n_synthetic = check.positive_int("rows", args.rows)  # the PUBLIC number of synthetic rows asked for
    threads = None if args.threads is None else check_threads(args.threads)
    out = check_writable(args.out)
    check_fit_out(out, Path(args.data), overwrite=args.overwrite)
    schema = load_schema(args.schema)
    if (unit := user_unit(args)) is not None:
        schema = schema.with_unit(unit)
    conditions = fit_conditions(args)
    if conditions is not None:
        from dpsynth.synth.conditions import parse_conditions

        parse_conditions(conditions, schema)  # public values only: a mistake is refused before any charge
    na_rep = schema.missing_values[0] if schema.missing_values else ""
    check_rows_on_disk(n_synthetic, schema, out, na_rep=na_rep)  # what the output's folder can hold, before any charge
    params = synth_params(cls, args.param, args.workload)
    plugin = getattr(cls, "plugin", False)
    if not plugin and "device" in inspect.signature(cls.__init__).parameters:  # only synthesizers that train take it
        params.setdefault("device", args.device)
    synth = cls(epsilon=args.epsilon, delta=args.delta, insecure_seed=args.insecure_seed, **params)
    events = synth.plan(schema)  # validates ε, δ and the synthesizer's parameters
    ledger, dataset = ledger_for(args, "fit", doing="fit")
    if dataset is not None:
        ledger.check(dataset, events, claimed=synth.budget())  # fail early, before reading data
    engine = choose_engine(args.engine, args.data, fits_on_marginals=getattr(cls, "fits_on_marginals", False),
                           spark_master=args.spark_master)
    data: Any
    if engine == "numpy":
        data = read_table(args.data)
        fingerprint = sha256_file(args.data) if not args.no_ledger else None
    else:  # the rows stay in the engine; the ledger's fingerprint is the engine's aggregate hash
        data, fingerprint = open_source(args.data, engine, spark_master=args.spark_master), None
    synth.fit(data, schema=schema, ledger=ledger, dataset=dataset, input_sha256=fingerprint, threads=threads)
    phases: dict[str, float] = {}
    # in chunks (post-processing), renamed at the end
    try:
        write_sampled(synth, n_synthetic, out, na_rep=na_rep, timings=phases, conditions=conditions)
    except ParameterError as exc:  # a condition too rare for the model: only the fitted model can tell
        if conditions is None:
            raise
        entry = f" (ledger entry {synth.ledger_entry_})" if getattr(synth, "ledger_entry_", None) is not None else ""
        raise ParameterError(f"{exc}; the fit is charged{entry} and no table was written") from None
    timings = {**getattr(synth, "timings_", {}), "sample": round(phases["sample"], 4),
               "write": round(phases["write"], 4)}
    result: dict[str, Any] = {
        "synthesizer": cls.name,
        "epsilon": float(args.epsilon),
        "delta": float(args.delta),
        "rho": synth.privacy_spent_.rho,
        "rows": n_synthetic,
        "out": str(out),
        "seconds": round(time.perf_counter() - start, 3),
        "secure_noise": synth.secure_noise_,
        "noise_source": getattr(synth, "noise_source_", None),
        "timings": timings,
        "threads": synth.threads_,
        "engine": engine,
    }
    if args.insecure_seed is not None:
        result["insecure_seed"] = args.insecure_seed
    if conditions is not None:
        result["conditions"] = conditions
    if hasattr(synth, "dpsgd_"):  # DP-SGD: the accounting of the run (σ, q, steps, Opacus's ε, device)
        result["dpsgd"] = synth.dpsgd_
    if plugin:  # the claim is the generator's own, charged by dpsynth before its fit
        result["claim"] = synth.claim_
    result["ledger_entry"] = synth.ledger_entry_
    result["dataset"] = synth.dataset_
    result["opt_ins"] = list(synth.opt_ins_)
    return result


def check_fit_out(out: Path, data: Path, *, overwrite: bool) -> None:
    """Refuse, before anything is charged, an --out that is the input, or an existing file without --overwrite."""
    same = out.resolve() == data.resolve()
    if not same and out.exists() and data.exists():
        try:
            same = os.path.samefile(out, data)
        except OSError:
            same = False
    if same:
        raise ParameterError(f"--out ({str(out)!r}) must not be the --data file: it would replace the private table")
    if (out.exists() or out.is_symlink()) and not overwrite:
        raise ParameterError(f"--out ({str(out)!r}) already exists: give --overwrite to replace it, or another path")


def fit_conditions(args: argparse.Namespace) -> dict[str, Any] | None:
    """The conditions of ``--condition COLUMN=VALUE`` (repeated: a column's several values) and
    ``--mix COLUMN=VALUE:SHARE,...`` as :meth:`~dpsynth.synth.base.Synthesizer.sample` takes them, or None.
    Values stay text here; they are checked against the schema by the caller."""
    out: dict[str, Any] = {}
    for item in getattr(args, "condition", None) or []:
        column, sep, value = item.partition("=")
        if not sep or not column:
            raise ParameterError(f"--condition ({item!r}) must be COLUMN=VALUE")
        out.setdefault(column, []).append(value)
    for item in getattr(args, "mix", None) or []:
        column, sep, spec = item.partition("=")
        if not sep or not column or not spec:
            raise ParameterError(f"--mix ({item!r}) must be COLUMN=VALUE:SHARE,VALUE:SHARE,...")
        if column in out:
            raise ParameterError(f"--mix: column {column!r} is given twice (by --mix or --condition)")
        shares: dict[str, float] = {}
        for part in spec.split(","):
            value, colon, share = part.rpartition(":")
            if not colon:
                raise ParameterError(f"--mix ({item!r}): each part must be VALUE:SHARE")
            if value in shares:
                raise ParameterError(f"--mix ({item!r}): the value {value!r} is given twice")
            try:
                shares[value] = float(share)
            except ValueError:
                raise ParameterError(f"--mix ({item!r}): the share {share!r} is not a number") from None
        out[column] = shares
    return out or None
