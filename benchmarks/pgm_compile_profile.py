#!/usr/bin/env python3
r"""Where an MST or AIM fit's mbi time goes: per model fit, the CPU seconds spent compiling the
mirror-descent step and running it, with dpsynth's per-program XLA options or XLA's defaults.

    python benchmarks/pgm_compile_profile.py --synthesizer aim --seed 0 [--xla-defaults] [--keep-compiled] \
        --data ../shared/data/adult/adult-discrete.csv --domain ../shared/data/adult/adult-discrete-domain.json

Seeded (INSECURE) so that two settings see the same noise. ``--xla-defaults`` compiles with no
per-program options (XLA's defaults); ``--keep-compiled`` skips AIM's ``forget_compiled`` after each
round; ``--large-model-cells N`` moves the size from which the large-model options are used. Run
with one thread (OMP/MKL/XLA pinned, as ``mst_adult.py`` does). Prints one JSON object:
total CPU seconds of the fit, compile and step seconds, tracing and lowering the step (trace_lower_s),
AIM's candidate marginals (estimates_s), peak RSS, the 1/2/3-way workload errors.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--domain", required=True)
    ap.add_argument("--synthesizer", default="aim", choices=["mst", "aim"])
    ap.add_argument("--epsilon", type=float, default=1.0)
    ap.add_argument("--delta", type=float, default=1e-9)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--xla-defaults", action="store_true")
    ap.add_argument("--keep-compiled", action="store_true")
    ap.add_argument("--large-model-cells", type=int, default=None,
                    help="compile with the large-model options from this many junction-tree cells "
                         "(default: _pgm.LARGE_MODEL_CELLS)")
    ap.add_argument("--per-fit", action="store_true", help="also list each model fit's compile and step seconds")
    args = ap.parse_args(argv)

    warnings.simplefilter("ignore")
    from dpsynth.cli import main as cli
    from dpsynth.quality import workload_errors
    from dpsynth.synth import _pgm

    if args.xla_defaults:
        _pgm.COMPILER_OPTIONS = {}
        _pgm.LARGE_MODEL_OPTIONS = {}
    if args.keep_compiled:
        _pgm.forget_compiled = lambda: None
    if args.large_model_cells is not None:
        _pgm.LARGE_MODEL_CELLS = args.large_model_cells
    fits: list[dict[str, float]] = []
    compile_lowered = _pgm.compile_lowered

    def timed_compile(lowered, cells=None):
        t = time.process_time()
        step = compile_lowered(lowered, cells)
        fit = {"compile_s": time.process_time() - t, "step_s": 0.0, "calls": 0, "cells": cells or 0}
        fits.append(fit)

        def timed_step(*a):
            t = time.process_time()
            state = step(*a)
            state.loss.block_until_ready()
            fit["step_s"] += time.process_time() - t
            fit["calls"] += 1
            return state
        return timed_step

    _pgm.compile_lowered = timed_compile
    block = _pgm._descent_block
    traced_s = {"trace_lower_s": 0.0, "estimates_s": 0.0}

    class TimedBlock:  # tracing and lowering of the fused step (Python), timed
        @staticmethod
        def lower(*a):
            t = time.process_time()
            lowered = block.lower(*a)
            traced_s["trace_lower_s"] += time.process_time() - t
            return lowered

    _pgm._descent_block = TimedBlock
    if args.synthesizer == "aim":
        from dpsynth.synth.aim import AIM
        estimates = AIM._estimates

        def timed_estimates(*a):  # the candidates' marginals under the current model (numpy)
            t = time.process_time()
            out = estimates(*a)
            traced_s["estimates_s"] += time.process_time() - t
            return out

        AIM._estimates = staticmethod(timed_estimates)
    domain = json.loads(Path(args.domain).read_text())
    names, sizes = list(domain), [int(v) for v in domain.values()]
    real = pd.read_csv(args.data)[names].to_numpy(dtype=np.int64)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "synth.csv"
        start = time.process_time()
        code = cli(["fit", "--data", args.data, "--schema", args.domain, "--synthesizer", args.synthesizer,
                    "--epsilon", str(args.epsilon), "--delta", str(args.delta), "--rows", str(len(real)),
                    "--out", str(out), "--json", "--no-ledger", "--insecure-seed", str(args.seed)])
        cpu = time.process_time() - start
        if code:
            sys.exit(code)
        synth = pd.read_csv(out)[names].to_numpy(dtype=np.int64)
    errs = {f"l1_{k}way": round(float(workload_errors(real, synth, sizes, k)[0].mean()), 5) for k in (1, 2, 3)}
    print(json.dumps({
        "synthesizer": args.synthesizer, "seed": args.seed, "xla_defaults": args.xla_defaults,
        "keep_compiled": args.keep_compiled, "fit_cpu_s": round(cpu, 2), "fits": len(fits),
        "compile_s": round(sum(f["compile_s"] for f in fits), 2), "step_s": round(sum(f["step_s"] for f in fits), 2),
        **{k: round(v, 2) for k, v in traced_s.items()},
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024, **errs,
        **({"per_fit": [{k: round(v, 3) for k, v in f.items()} for f in fits]} if args.per_fit else {})}))


if __name__ == "__main__":
    main()
