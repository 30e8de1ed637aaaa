"""``dpsynth`` command line: parses, calls the library, prints. Nothing imports this module.

Exit codes: 0 success; 2 bad input (one line on stderr, nothing written); 3 budget refused;
1 anything else (a bug in dpsynth: the traceback is kept).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path
from typing import Any, NoReturn

from dpsynth.exceptions import DPSynthError


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


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="dpsynth", description="Differentially private synthetic data.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    fit = sub.add_parser("fit", help="fit a synthesizer and write a synthetic table")
    fit.add_argument("--data", required=True, help="private table (.csv, .csv.gz or .parquet)")
    fit.add_argument("--schema", required=True, help="public schema (YAML/JSON) or Private-PGM domain file")
    fit.add_argument("--synthesizer", default="mst", help="synthesizer name (default: mst)")
    fit.add_argument("--epsilon", type=_float, required=True)
    fit.add_argument("--delta", type=_float, required=True)
    fit.add_argument("--rows", type=_int, required=True, help="number of synthetic rows")
    fit.add_argument("--out", required=True, help="synthetic table to write (.csv or .parquet)")
    fit.add_argument("--json", action="store_true", help="print one JSON object on stdout")
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
    ev.add_argument("--json", action="store_true")

    demo = sub.add_parser("demo", help="fit MST at epsilon=1 on the bundled Adult table")
    demo.add_argument("--out", default="dpsynth-demo", help="output directory (default: ./dpsynth-demo)")
    demo.add_argument("--epsilon", type=_float, default=1.0)
    demo.add_argument("--delta", type=_float, default=1e-9)
    return parser


def _fit(args: argparse.Namespace) -> dict[str, Any]:
    from dpsynth import _validation as check
    from dpsynth.io import check_writable, read_table, write_table
    from dpsynth.schema import load_schema
    from dpsynth.synth import get_synthesizer

    start = time.perf_counter()
    # Everything a user can get wrong is checked before the private data is touched.
    cls = get_synthesizer(args.synthesizer)
    rows = check.positive_int("rows", args.rows)
    out = check_writable(args.out)
    schema = load_schema(args.schema)
    synth = cls(epsilon=args.epsilon, delta=args.delta, insecure_seed=args.insecure_seed)
    synth.plan(schema)  # validates ε, δ and the synthesizer's parameters
    data = read_table(args.data)
    synth.fit(data, schema=schema)
    fitted = time.perf_counter()
    synthetic = synth.sample(rows)
    sampled = time.perf_counter()
    write_table(synthetic, out, na_rep=schema.missing_values[0] if schema.missing_values else "")
    timings = {**getattr(synth, "timings_", {}), "sample": round(sampled - fitted, 4),
               "write": round(time.perf_counter() - sampled, 4)}
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
    }
    if args.insecure_seed is not None:
        result["insecure_seed"] = args.insecure_seed
    return result


def _eval(args: argparse.Namespace) -> dict[str, Any]:
    from dpsynth.io import read_table
    from dpsynth.quality import fidelity
    from dpsynth.schema import load_schema

    schema = load_schema(args.schema)
    real = read_table(args.real)
    synthetic = read_table(args.synthetic)
    return fidelity(real, synthetic, schema)


def _print_eval(report: dict[str, Any]) -> None:
    print(f"real rows {report['real_rows']:,}, synthetic rows {report['synthetic_rows']:,}")
    for k in (1, 2, 3):
        value = report[f"l1_{k}way"]
        if value is not None:
            sampled = " (seeded sample)" if report[f"sampled_{k}way"] else ""
            print(f"  {k}-way workload error (mean L1 over {report[f'n_{k}way']} marginals{sampled}): {value:.4f}")
    print("  total variation distance per column:")
    for name, tvd in report["tvd"].items():
        print(f"    {name}: {tvd:.4f}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "fit":
            result = _fit(args)
            if args.json:
                print(json.dumps(result))
            else:
                print(
                    f"wrote {result['rows']:,} synthetic rows to {result['out']} "
                    f"({result['synthesizer']}, epsilon={result['epsilon']:g}, delta={result['delta']:g}, "
                    f"rho={result['rho']:.6g}) in {result['seconds']:.1f} s"
                )
        elif args.command == "eval":
            report = _eval(args)
            if args.json:
                print(json.dumps(report))
            else:
                _print_eval(report)
        elif args.command == "demo":
            from dpsynth.demo import run_demo

            run_demo(Path(args.out), epsilon=args.epsilon, delta=args.delta)
    except DPSynthError as exc:
        sys.stderr.write(f"dpsynth {args.command}: error: {exc}\n")
        return exc.exit_code
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
