"""``dpsynth`` command line: parses, calls the library, prints. Nothing imports this module.

Exit codes: 0 success; 2 bad input (one line on stderr, nothing written); 3 budget refused;
4 a release failed after its charge (one line on stderr saying where what it had is kept);
1 anything else (a bug in dpsynth: the traceback is kept).
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import re
import sys
import time
import warnings
from pathlib import Path
from typing import Any, NoReturn

from dpsynth.exceptions import DPSynthError, InsecureNoiseWarning, ParameterError, SchemaWithoutPrivacyWarning
from dpsynth.privacy.ledger import UntrackedPrivacyWarning


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage mistake as one line and exit code 2."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        # Let negative numbers in scientific notation (``--delta -1e-6``) reach validation
        # as values instead of being mistaken for options.
        self._negative_number_matcher = re.compile(r"^-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(2)


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None


_THREADS_HELP = ("threads of PyTorch and the BLAS/OpenMP pools during the fit, 1 to 1024 (default: automatic, from "
                 "the usable CPUs, the machine's load and the work; OMP_NUM_THREADS is respected)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="dpsynth", description="Differentially private synthetic data.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    fit = sub.add_parser("fit", help="fit a synthesizer and write a synthetic table")
    fit.add_argument("--data", required=True, help="private table (.csv, .csv.gz or .parquet)")
    fit.add_argument("--schema", required=True, help="public schema (YAML/JSON) or Private-PGM domain file")
    fit.add_argument("--synthesizer", default="mst",
                     help="synthesizer name (default: mst), or package.module:Class of a plug-in (docs/plugins.md)")
    fit.add_argument("--epsilon", type=_float, required=True)
    fit.add_argument("--delta", type=_float, required=True)
    fit.add_argument("--rows", type=_int, required=True, help="number of synthetic rows")
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
    fit.add_argument("--threads", type=_int, default=None, help=_THREADS_HELP)
    fit.add_argument(
        "--insecure-seed",
        type=_int,
        default=None,
        help="seed the privacy noise: INSECURE, for tests only; the output says so",
    )

    ev = sub.add_parser("eval", help="fidelity of a synthetic table against the real one")
    ev.add_argument("--real", required=True)
    ev.add_argument("--synthetic", required=True)
    ev.add_argument("--schema", required=True)
    ev.add_argument("--target", help="column to predict for train-synthetic-test-real utility")
    ev.add_argument("--holdout", help="real rows held out from fitting, to test utility on (default: a 20%% split)")
    ev.add_argument("--json", action="store_true")

    schema = sub.add_parser("schema", help="public schemas")
    ssub = schema.add_subparsers(dest="schema_command", required=True, parser_class=_Parser)
    infer = ssub.add_parser("infer", help="learn a schema from the data with DP (charged), or --public without")
    infer.add_argument("--data", required=True, help="private table (.csv, .csv.gz or .parquet)")
    infer.add_argument("--out", required=True, help="schema file to write (.yaml, .yml or .json)")
    infer.add_argument("--epsilon", type=_float)
    infer.add_argument("--delta", type=_float)
    infer.add_argument("--ledger", help="privacy ledger URL (default: $DPSYNTH_LEDGER)")
    infer.add_argument("--dataset", help="the private dataset's name in the ledger")
    infer.add_argument("--no-ledger", action="store_true",
                       help="infer WITHOUT recording the privacy loss in any ledger (loud opt-out)")
    infer.add_argument("--public", action="store_true",
                       help="read the schema from the data WITHOUT privacy (loud, named opt-in that every "
                            "release built on it reports)")
    infer.add_argument("--hints", help="a partial schema: declared columns, kinds, missing_values")
    infer.add_argument("--split-kinds", type=_float, default=0.1, help="share of rho for column kinds (0.1)")
    infer.add_argument("--split-categories", type=_float, default=0.6, help="share of rho for levels (0.6)")
    infer.add_argument("--split-bounds", type=_float, default=0.3, help="share of rho for numeric bounds (0.3)")
    infer.add_argument("--split-delta-threshold", type=_float, default=0.5,
                       help="share of delta for the thresholding of level discovery (0.5)")
    infer.add_argument("--bins", type=_int, default=8, help="bins of learned numeric columns (8)")
    infer.add_argument("--bin-edges", default="dp_quantiles",
                       help="dp_quantiles (edges chosen and charged by the fit, default) or uniform")
    infer.add_argument("--bounds-quantile", type=_float, default=0.01,
                       help="numeric bounds are the DP quantiles q and 1-q (0.01)")
    infer.add_argument("--insecure-seed", type=_int, default=None,
                       help="seed the privacy noise: INSECURE, for tests only; the schema says so")
    infer.add_argument("--json", action="store_true", help="print one JSON object on stdout")

    ledger = sub.add_parser("ledger", help="the privacy-budget ledger")
    lsub = ledger.add_subparsers(dest="ledger_command", required=True, parser_class=_Parser)
    create = lsub.add_parser("create", help="register a private dataset with its total budget")
    setcap = lsub.add_parser("set-cap", help="change a dataset's cap (the reason is recorded)")
    for p in (create, setcap):
        p.add_argument("--ledger", required=os.environ.get("DPSYNTH_LEDGER") is None,
                       default=os.environ.get("DPSYNTH_LEDGER"))
        p.add_argument("--dataset", required=True)
        p.add_argument("--epsilon", type=_float, required=True)
        p.add_argument("--delta", type=_float, required=True)
    create.add_argument("--unit", default="row", help="privacy unit: row (default) or user:K")
    setcap.add_argument("--reason", required=True, help="why the cap changes (recorded in the ledger)")
    show = lsub.add_parser("show", help="caps, spending and entries per dataset, and whether the ledger verifies")
    verify = lsub.add_parser("verify", help="check the hash chain and the seal; print the head to copy aside; "
                                            "exit 1 at the first bad entry")
    seal = lsub.add_parser("seal", help="seal a ledger made by an older dpsynth: check its chain, make its key, "
                                        "key every entry")
    for p in (show, verify, seal):
        p.add_argument("--ledger", required=os.environ.get("DPSYNTH_LEDGER") is None,
                       default=os.environ.get("DPSYNTH_LEDGER"))
    for p in (show, verify):
        p.add_argument("--json", action="store_true")
    show.add_argument("--dataset")
    verify.add_argument("--anchor", metavar="SEQ:HASH",
                        help="an earlier head (from ledger verify) that must still be in the chain: finds a ledger "
                             "put back to an earlier copy or replaced")

    demo = sub.add_parser("demo", help="a full release of the bundled raw Adult table (MST at epsilon=1, default "
                                       "policy) into ./dpsynth-demo/release/")
    demo.add_argument("--out", default="dpsynth-demo", help="output directory (default: ./dpsynth-demo)")
    demo.add_argument("--epsilon", type=_float, default=1.0)
    demo.add_argument("--delta", type=_float, default=1e-9)
    demo.add_argument("--synthesizer", choices=["mst", "aim", "dpctgan", "dpvae"], default="mst",
                      help="mst (seconds, the default), aim (minutes; better 3-way fidelity), or the DP-SGD "
                           "generators dpctgan / dpvae (need the dpsgd extra; about a minute of training on a CPU)")
    demo.add_argument("--policy", default="default",
                      help="a shipped policy (default, strict, permissive) or a policy file; the DP-SGD generators "
                           "need one that does not require secure noise (torchcsprng is not installable here)")
    demo.add_argument("--threads", type=_int, default=None, help=_THREADS_HELP)

    rel = sub.add_parser("release", help="the release gate: fit, audit, scan, check against a policy, write the "
                                         "report (exit 0 released, 1 blocked, 2 bad input, 3 budget refused, "
                                         "4 failed after the charge: kept in OUT.failed-TIMESTAMP)")
    rel.add_argument("--data", required=True, help="private table (.csv, .csv.gz or .parquet)")
    rel.add_argument("--schema", required=True, help="public schema (YAML/JSON)")
    rel.add_argument("--synthesizer", required=True,
                     help="mst, aim, dpctgan, dpvae, or an import path package.module:Class")
    rel.add_argument("--epsilon", type=_float, required=True)
    rel.add_argument("--delta", type=_float, required=True)
    rel.add_argument("--ledger", default=os.environ.get("DPSYNTH_LEDGER"),
                     help="privacy ledger URL: sqlite:///PATH or postgresql://… (default: $DPSYNTH_LEDGER)")
    rel.add_argument("--dataset", required=True, help="the private dataset's name in the ledger")
    rel.add_argument("--policy", required=True, help="release policy (YAML), e.g. audits/policies/default.yaml")
    rel.add_argument("--out", required=True, help="a new or empty folder for the artifacts")
    rel.add_argument("--rows", type=_int, help="synthetic rows, a PUBLIC number (default: the synthesizer's DP "
                     "estimate of the private row count, never the true count)")
    rel.add_argument("--target", help="column to predict for the utility check (overrides the policy's)")
    rel.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                     help="a synthesizer parameter (repeatable; VALUE read as JSON)")
    rel.add_argument("--insecure-seed", type=_int, default=None,
                     help="seed the privacy noise: INSECURE, for tests only; a policy requiring secure noise blocks")
    rel.add_argument("--workers", type=_int, help="processes for the audit's fits (default: the CPUs, at most 8)")
    rel.add_argument("--threads", type=_int, default=None, help=_THREADS_HELP)
    rel.add_argument("--json", action="store_true", help="print the decision as one JSON object (no progress)")

    audit = sub.add_parser("audit", help="empirical privacy audit of a synthesizer (NOT DP: internal evidence)")
    audit.add_argument("--synthesizer", required=True,
                       help="a registered name (mst, aim) or an import path package.module:Class")
    audit.add_argument("--epsilon", type=_float, required=True, help="the claimed epsilon")
    audit.add_argument("--delta", type=_float, required=True, help="the claimed delta")
    audit.add_argument("--suite", required=True, help="audit suite (YAML), e.g. audits/suites/mst.yaml")
    audit.add_argument("--json", action="store_true", help="print the result as JSON")

    scan = sub.add_parser("scan", help="PII scan of a table with Presidio (exit 1 when PII is found)")
    scan.add_argument("path", help="table to scan (.csv, .csv.gz or .parquet), usually a synthetic one")
    scan.add_argument("--schema", help="public schema: declared levels are public; pii hints apply")
    scan.add_argument("--threshold", type=_float, default=0.5, help="lowest score reported (default 0.5)")
    scan.add_argument("--entities", nargs="+", metavar="ENTITY", help="entity types to look for (default: all)")
    scan.add_argument("--no-ner", action="store_true", help="pattern recognizers only (the report says NER is off)")
    scan.add_argument("--json", action="store_true", help="print the report as JSON")

    replay = sub.add_parser("replay", help="copies of real rows in a synthetic table, against a holdout baseline "
                                           "(NOT DP: internal evidence; exit 1 when a rate is flagged)")
    replay.add_argument("--real", required=True, help="the real table the synthesizer was fitted on")
    replay.add_argument("--synthetic", required=True)
    replay.add_argument("--schema", required=True,
                        help="public schema (bounds scale distances; quasi_identifier marks)")
    replay.add_argument("--holdout", help="real rows the synthesizer never saw (default: a random 20%% of --real)")
    replay.add_argument("--near-threshold", type=_float, default=0.02,
                        help="Gower distance at or below which a row is a near copy (default 0.02)")
    replay.add_argument("--alpha", type=_float, default=0.01, help="level of the test against the baseline (0.01)")
    replay.add_argument("--json", action="store_true", help="print the report as JSON")

    vm = sub.add_parser("verify-manifest", help="re-hash a release folder against its manifest.json (exit 0 all "
                                                "match, 1 a file differs or is missing, 2 a malformed manifest)")
    vm.add_argument("folder", help="a release's publish/ or internal/ folder")
    vm.add_argument("--json", action="store_true", help="print the problems as JSON")
    return parser


def _fit(args: argparse.Namespace) -> dict[str, Any]:
    from dpsynth import _validation as check
    from dpsynth._threads import check_threads
    from dpsynth.io import check_writable, read_table, sha256_file
    from dpsynth.privacy.ledger import UNTRACKED, Ledger
    from dpsynth.schema import load_schema
    from dpsynth.synth.plugin import load_generator
    from dpsynth.synth.streaming import check_rows_on_disk, write_sampled

    start = time.perf_counter()
    # Everything a user can get wrong is checked before the private data is touched.
    cls = load_generator(args.synthesizer)  # a name, or package.module:Class (a plug-in comes back wrapped)
    rows = check.positive_int("rows", args.rows)
    threads = None if args.threads is None else check_threads(args.threads)
    out = check_writable(args.out)
    _check_fit_out(out, Path(args.data), overwrite=args.overwrite)
    schema = load_schema(args.schema)
    na_rep = schema.missing_values[0] if schema.missing_values else ""
    check_rows_on_disk(rows, schema, out, na_rep=na_rep)  # what the output's folder can hold, before any charge
    params = _synth_params(cls, args.param, args.workload)
    plugin = getattr(cls, "plugin", False)
    if not plugin and "device" in inspect.signature(cls.__init__).parameters:  # only synthesizers that train take it
        params.setdefault("device", args.device)
    synth = cls(epsilon=args.epsilon, delta=args.delta, insecure_seed=args.insecure_seed, **params)
    events = synth.plan(schema)  # validates ε, δ and the synthesizer's parameters
    if args.no_ledger:
        if args.ledger or args.dataset:
            raise ParameterError("give --ledger URL --dataset NAME or --no-ledger, not both")
        ledger: Any = UNTRACKED
    else:
        url = args.ledger or os.environ.get("DPSYNTH_LEDGER")
        if not url or not args.dataset:
            raise ParameterError(
                "fit needs --ledger URL --dataset NAME to charge the privacy budget "
                "(or --no-ledger to fit without recording the privacy loss)"
            )
        ledger = Ledger(url)
        ledger.check(args.dataset, events, claimed=synth.budget())  # fail early, before reading data
    data = read_table(args.data)
    fingerprint = sha256_file(args.data) if not args.no_ledger else None
    synth.fit(data, schema=schema, ledger=ledger, dataset=None if args.no_ledger else args.dataset,
              input_sha256=fingerprint, threads=threads)
    phases: dict[str, float] = {}
    write_sampled(synth, rows, out, na_rep=na_rep, timings=phases)  # in chunks (post-processing), renamed at the end
    timings = {**getattr(synth, "timings_", {}), "sample": round(phases["sample"], 4),
               "write": round(phases["write"], 4)}
    result: dict[str, Any] = {
        "synthesizer": cls.name,
        "epsilon": float(args.epsilon),
        "delta": float(args.delta),
        "rho": synth.privacy_spent_.rho,
        "rows": rows,
        "out": str(out),
        "seconds": round(time.perf_counter() - start, 3),
        "secure_noise": synth.secure_noise_,
        "timings": timings,
        "threads": synth.threads_,
    }
    if args.insecure_seed is not None:
        result["insecure_seed"] = args.insecure_seed
    if hasattr(synth, "dpsgd_"):  # DP-SGD: the accounting of the run (σ, q, steps, Opacus's ε, device)
        result["dpsgd"] = synth.dpsgd_
    if plugin:  # the claim is the generator's own, charged by dpsynth before its fit
        result["claim"] = synth.claim_
    result["ledger_entry"] = synth.ledger_entry_
    result["dataset"] = synth.dataset_
    result["opt_ins"] = list(synth.opt_ins_)
    return result


def _check_fit_out(out: Path, data: Path, *, overwrite: bool) -> None:
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


def _synth_params(cls: Any, pairs: list[str], workload: str | None) -> dict[str, Any]:
    """Constructor parameters from ``--param NAME=VALUE`` and ``--workload``, checked by name."""
    import inspect

    any_name = False
    if getattr(cls, "plugin", False):  # a plug-in: the parameters of the user's own __init__
        accepted, any_name = cls.parameters()
    else:
        accepted = {n for n, p in inspect.signature(cls.__init__).parameters.items() if p.kind is p.KEYWORD_ONLY}
    reserved = {"epsilon", "delta", "insecure_seed"}
    params: dict[str, Any] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not name:
            raise ParameterError(f"--param ({pair!r}) must be NAME=VALUE")
        if name in reserved or (name not in accepted and not any_name):
            known = ", ".join(sorted(accepted - reserved)) or "none"
            raise ParameterError(f"--param {name!r} is not a parameter of {cls.name} (its parameters: {known})")
        try:
            params[name] = json.loads(raw)
        except json.JSONDecodeError:
            params[name] = raw
    if workload is not None:
        if "workload" not in accepted:
            raise ParameterError(f"--workload: {cls.name} takes no workload")
        params["workload"] = _read_workload(workload)
    return params


def _read_workload(text: str) -> list[list[str]]:
    path = Path(text)
    if path.suffix.lower() in {".yaml", ".yml", ".json"}:
        from dpsynth.io import read_config

        if not path.is_file():
            raise ParameterError(f"--workload file {text!r} does not exist")
        loaded, _ = read_config(path, what="--workload file", error=ParameterError, fmt="yaml")
        if not isinstance(loaded, list) or not all(isinstance(m, list) for m in loaded):
            raise ParameterError(f"--workload file {text!r} must hold a list of column lists")
        return [[str(c) for c in m] for m in loaded]
    return [[c.strip() for c in part.split(",") if c.strip()] for part in text.split(";") if part.strip()]


def _ledger_for(args: argparse.Namespace, what: str) -> tuple[Any, str | None]:
    """The ledger and dataset of a charged command, or the loud UNTRACKED opt-out."""
    from dpsynth.privacy.ledger import UNTRACKED, Ledger

    if args.no_ledger:
        if args.ledger or args.dataset:
            raise ParameterError("give --ledger URL --dataset NAME or --no-ledger, not both")
        return UNTRACKED, None
    url = args.ledger or os.environ.get("DPSYNTH_LEDGER")
    if not url or not args.dataset:
        raise ParameterError(
            f"{what} needs --ledger URL --dataset NAME to charge the privacy budget "
            "(or --no-ledger to run without recording the privacy loss)"
        )
    return Ledger(url), args.dataset


def _schema_infer(args: argparse.Namespace) -> dict[str, Any]:
    from dpsynth.io import check_schema_writable
    from dpsynth.schema.infer import dump_schema, infer_schema, read_schema_without_privacy

    start = time.perf_counter()
    out = check_schema_writable(args.out)
    if args.public:
        given = [flag for flag, value in (("--epsilon", args.epsilon), ("--delta", args.delta),
                                          ("--ledger", args.ledger), ("--dataset", args.dataset),
                                          ("--insecure-seed", args.insecure_seed)) if value is not None]
        if args.no_ledger:
            given.append("--no-ledger")
        if given:
            raise ParameterError(f"--public reads the schema without privacy and spends no budget: give it "
                                 f"without {', '.join(given)}")
        schema = read_schema_without_privacy(args.data, hints=args.hints, bins=args.bins, bin_edges=args.bin_edges)
    else:
        if args.epsilon is None or args.delta is None:
            raise ParameterError("schema infer needs --epsilon E --delta D (or --public to read the schema "
                                 "without privacy)")
        ledger, dataset = _ledger_for(args, "schema infer")
        schema = infer_schema(
            args.data, epsilon=args.epsilon, delta=args.delta, ledger=ledger, dataset=dataset, hints=args.hints,
            split_kinds=args.split_kinds, split_categories=args.split_categories, split_bounds=args.split_bounds,
            split_delta_threshold=args.split_delta_threshold, bins=args.bins, bin_edges=args.bin_edges,
            bounds_quantile=args.bounds_quantile, insecure_seed=args.insecure_seed,
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


def _anchor(text: str | None) -> tuple[int, str] | None:
    import re

    if text is None:
        return None
    match = re.fullmatch(r"([1-9][0-9]{0,17}):([0-9a-fA-F]{64})", text.strip())
    if match is None:
        raise ParameterError("--anchor must be SEQ:HASH, an entry number and its 64-hex-digit hash as "
                             "'ledger verify' prints them")
    return int(match.group(1)), match.group(2).lower()


def _ledger(args: argparse.Namespace) -> int:
    from dpsynth.privacy.budgets import ApproxDP
    from dpsynth.privacy.ledger import Ledger, LedgerError, _redact

    cmd = args.ledger_command
    anchor = _anchor(args.anchor) if cmd == "verify" else None  # bad input first, before opening anything
    if cmd in ("create", "set-cap"):
        from dpsynth import _validation as check

        budget = ApproxDP(check.positive_finite("epsilon", args.epsilon), check.open_unit("delta", args.delta))
    ledger = Ledger(args.ledger, create=cmd == "create")
    if cmd in ("create", "set-cap"):
        if cmd == "create":
            entry = ledger.create_dataset(args.dataset, budget, unit=args.unit)
            print(f"registered dataset {args.dataset!r}: cap epsilon={budget.epsilon:g}, delta={budget.delta:g}, "
                  f"unit {args.unit} (entry {entry})")
        else:
            entry = ledger.set_cap(args.dataset, budget, reason=args.reason)
            print(f"cap of dataset {args.dataset!r} is now epsilon={budget.epsilon:g}, delta={budget.delta:g} "
                  f"(entry {entry})")
        return 0
    if cmd == "seal":
        entries = ledger.seal()
        head = ledger.verify().head
        print(f"ledger sealed: {entries} entries keyed; head {head['seq']}:{head['hash']}")
        return 0
    if cmd == "verify":
        result = ledger.verify(anchor)
        head = f"{result.head['seq']}:{result.head['hash']}" if result.head else "none"
        if args.json:
            print(json.dumps(vars(result)))
        elif result.ok:
            seal = "hash chain and seal verified" if result.sealed else \
                "hash chain verified; NOT sealed (made by an older dpsynth: dpsynth ledger seal)"
            also = f"; anchor {anchor[0]} found" if anchor else ""
            print(f"ledger intact: {result.entries} entries, {seal}{also}")
            print(f"head (copy it aside; check later with --anchor): {head}")
        else:
            print(f"ledger TAMPERED: {result.problem}")
        return 0 if result.ok else 1
    names = [args.dataset] if args.dataset else ledger.datasets()
    statements = [ledger.statement(name).to_dict() for name in names]
    try:
        result = ledger.verify()
        integrity: dict[str, Any] = {"checked": True, "ok": result.ok, "sealed": result.sealed,
                                     "problem": result.problem, "head": result.head}
    except LedgerError as exc:  # a sealed ledger whose key is not here: still shown, said unchecked
        integrity = {"checked": False, "reason": str(exc)}
    if args.json:
        print(json.dumps({"ledger": _redact(args.ledger), "integrity": integrity, "datasets": statements}))
    else:
        _print_statements(statements)
        if not integrity["checked"]:
            print(f"integrity NOT checked: {integrity['reason']}")
        elif not integrity["ok"]:
            print(f"integrity: TAMPERED: {integrity['problem']} (these figures cannot be trusted)")
        else:
            print(f"integrity: verified ({'sealed' if integrity['sealed'] else 'NOT sealed'}); head "
                  f"{integrity['head']['seq'] if integrity['head'] else 0}:"
                  f"{integrity['head']['hash'] if integrity['head'] else ''}")
    return 1 if integrity["checked"] and not integrity["ok"] else 0


def _print_statements(statements: list[dict[str, Any]]) -> None:
    if not statements:
        print("no datasets registered in this ledger")
    for st in statements:
        cap, spent, remaining = st["cap"], st["spent"], st["remaining"]
        additive = spent["additive_delta"]
        claimed = spent.get("additive_epsilon") or 0.0  # (ε, δ) claims of plug-in generators, taken as given
        print(f"dataset {st['dataset']!r} ({st['unit_description']})")
        after = " and claims" if claimed else ""
        print(f"  cap:       epsilon={cap['epsilon']:g}, delta={cap['delta']:g}  (rho={cap['rho']:.6g}"
              f"{f' after the additive delta{after} spent' if additive or claimed else ''})")
        composed = " in RDP" if spent.get("composition") == "rdp" else ""
        claims = f"claims epsilon={claimed:.4g} + " if claimed else ""
        print(f"  spent:     epsilon={spent['epsilon_tight']:.4g} at delta={spent['delta']:g} (tight{composed}, "
              f"{claims}rho={spent['rho']:.6g}, additive delta={additive:.3g}); plain sum of releases: "
              f"epsilon={spent['epsilon_plain_sum']:.4g}, delta={spent['delta_plain_sum']:.3g}")
        left = f", claim epsilon={remaining['additive_epsilon']:.4g}" if claimed else ""
        print(f"  remaining: rho={remaining['rho']:.6g}, additive delta={remaining['additive_delta']:.3g}{left}   "
              f"releases: {st['releases']} ({st['not_completed']} not completed)")
        for e in st["entries"]:
            extra = f" additive delta={e['additive_delta']:.3g}" if e.get("additive_delta") else ""
            claims = [c for c in e.get("events", []) if c.get("kind") == "approx_dp"]
            if claims:  # charged as given, before the generator read a row
                pairs = ", ".join(f"({c.get('epsilon', 0.0):g}, {c.get('epsilon_delta', 0.0):g})" for c in claims)
                extra += f" claim (epsilon, delta)={pairs}"
            elif e.get("additive_epsilon"):
                extra += f" claim epsilon={e['additive_epsilon']:g}"
            opt_ins = f"  opt-ins: {', '.join(e['opt_ins'])}" if e.get("opt_ins") else ""
            print(f"  #{e['id']:<6} {e['created_at'][:19]}  {e['synthesizer']:<6} epsilon={e['epsilon']:g} "
                  f"delta={e['delta']:g} rho={e['rho']:.6g}{extra}  {e['status']:<9} dpsynth "
                  f"{e['dpsynth_version']}  input sha256 {str(e['input_sha256'])[:12]}{opt_ins}")


def _eval(args: argparse.Namespace) -> dict[str, Any]:
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


def _print_eval(report: dict[str, Any]) -> None:
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


def _audit(args: argparse.Namespace) -> int:
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


def _release(args: argparse.Namespace) -> int:
    """Exit 0 released, 1 blocked by the policy, 2 bad input (nothing charged or written), 3 budget refused."""
    from dpsynth.release import release
    from dpsynth.release.artifacts import publishable
    from dpsynth.synth.plugin import load_generator

    if not args.ledger:
        raise ParameterError("release needs --ledger URL (or $DPSYNTH_LEDGER): every release is charged")
    cls = load_generator(args.synthesizer)
    params = _synth_params(cls, args.param, None)
    result = release(data=args.data, schema=args.schema, synthesizer=args.synthesizer, epsilon=args.epsilon,
                     delta=args.delta, ledger=args.ledger, dataset=args.dataset, policy=args.policy, out=args.out,
                     rows=args.rows, synthesizer_params=params, target=args.target, insecure_seed=args.insecure_seed,
                     progress=False if args.json else None, workers=args.workers, threads=args.threads)
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


def _scan(args: argparse.Namespace) -> int:
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


def _replay(args: argparse.Namespace) -> int:
    """Exit 0 when no rate is above its baseline, 1 when one is, 2 for bad input."""
    from dpsynth.io import read_table
    from dpsynth.pii.replay import replay_check
    from dpsynth.schema import load_schema

    schema = load_schema(args.schema)
    real = read_table(args.real)
    synthetic = read_table(args.synthetic)
    holdout = read_table(args.holdout) if args.holdout else None
    report = replay_check(real, synthetic, schema, holdout=holdout, near_threshold=args.near_threshold,
                          alpha=args.alpha)
    if args.json:
        print(json.dumps(report.to_dict()))
    else:
        print(f"replay checks of {args.synthetic} against {args.real} -- NOT differentially private: internal "
              f"evidence, no data rows; baseline: {report.baseline}")
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


def _verify_manifest(args: argparse.Namespace) -> int:
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


_LOUD = (UntrackedPrivacyWarning, InsecureNoiseWarning, SchemaWithoutPrivacyWarning)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    command = f"{args.command} {args.schema_command}" if args.command == "schema" else args.command
    try:
        with warnings.catch_warnings(record=True) as caught:
            for category in _LOUD:
                warnings.simplefilter("always", category)
            code = _dispatch(args)
        for w in caught:
            if issubclass(w.category, _LOUD):
                sys.stderr.write(f"dpsynth {command}: WARNING: {w.message}\n")
            else:  # pragma: no cover - anything else keeps its usual form
                warnings.showwarning(w.message, w.category, w.filename, w.lineno)
        return code
    except DPSynthError as exc:
        sys.stderr.write(f"dpsynth {command}: error: {exc}\n")
        return exc.exit_code


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "ledger":
        return _ledger(args)
    if args.command == "audit":
        return _audit(args)
    if args.command == "scan":
        return _scan(args)
    if args.command == "release":
        return _release(args)
    if args.command == "replay":
        return _replay(args)
    if args.command == "verify-manifest":
        return _verify_manifest(args)
    if args.command == "demo":
        from dpsynth.demo import run_demo

        return run_demo(Path(args.out), epsilon=args.epsilon, delta=args.delta, synthesizer=args.synthesizer,
                        policy=args.policy, threads=args.threads).exit_code
    if args.command == "eval":
        report = _eval(args)
        print(json.dumps(report)) if args.json else _print_eval(report)
        return 0
    if args.command == "schema":
        result = _schema_infer(args)
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
    result = _fit(args)
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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
