#!/usr/bin/env python3
r"""What XLA options cost and buy for mbi's mirror-descent step, by model size.

Builds models of growing junction-tree size on Adult (the 1-way marginals plus random 3-way
cliques, measured with Gaussian noise of σ = 20), lowers a fused 50-iteration mirror-descent step
once per model, and for each set of per-program XLA options times the tracing and lowering, the
compilation and one call (50 iterations, median of 3 after a warm-up call), in CPU seconds.
``--steps`` picks the step: dpsynth's (``_pgm._descent_block``, one marginal-oracle call an iteration) and/or mbi's own
(``MirrorDescent._multi_step``, two), alternating per model and option set:

    OMP_NUM_THREADS=1 python benchmarks/pgm_options_by_size.py \
        --data ../shared/data/adult/adult-discrete.csv --domain ../shared/data/adult/adult-discrete-domain.json \
        --sizes-mb 0.15 0.5 2 10 20 50 [--steps dpsynth mbi] [--options small large defaults]

``dpsynth.synth._pgm`` compiles a model below ``LARGE_MODEL_CELLS`` cells with
``COMPILER_OPTIONS`` and a larger one with ``LARGE_MODEL_OPTIONS``; this is the measurement the
threshold comes from: the extra compilation of the large-model options against the saving per call,
beside the number of calls a warm-started AIM fit runs. One JSON line per model and option set; the
figures are in ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import time
import warnings
from pathlib import Path

os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

SETS = {
    "small": ("small-model options", "COMPILER_OPTIONS"),
    "large": ("large-model options", "LARGE_MODEL_OPTIONS"),
    "defaults": ("XLA defaults", None),
}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--domain", required=True)
    ap.add_argument("--sizes-mb", type=float, nargs="+", default=[0.15, 0.5, 2, 10, 20, 50],
                    help="model sizes to build, in AIM's megabytes (8 bytes a junction-tree cell)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", nargs="+", choices=["dpsynth", "mbi"], default=["dpsynth"])
    ap.add_argument("--options", nargs="+", choices=list(SETS), default=list(SETS))
    args = ap.parse_args(argv)

    warnings.simplefilter("ignore")
    import jax
    from mbi import estimation, marginal_loss

    from dpsynth.synth import _jtree, _pgm

    domain_sizes = json.loads(Path(args.domain).read_text())
    names, sizes = list(domain_sizes), [int(v) for v in domain_sizes.values()]
    data = pd.read_csv(args.data)[names].to_numpy(dtype=np.int64)
    rng = np.random.default_rng(args.seed)
    oracle = _jtree.SizeOracle(names, sizes)
    domain = _pgm.make_domain(names, sizes)
    triples = list(itertools.combinations(names, 3))
    rng.shuffle(triples)

    def counts(cl: tuple[str, ...]) -> np.ndarray:
        idx = [names.index(c) for c in cl]
        shape = [sizes[i] for i in idx]
        flat = np.ravel_multi_index(data[:, idx].T, shape)
        return np.bincount(flat, minlength=int(np.prod(shape))).astype(float)

    measured: list[tuple[str, ...]] = [(n,) for n in names]
    todo = iter(triples)
    for target in sorted(args.sizes_mb):
        while (size := oracle.model_size_masks([oracle.mask(c) for c in measured])) < target:
            cand = next(todo)
            if oracle.model_size_masks([oracle.mask(c) for c in [*measured, cand]]) <= 1.3 * target:
                measured.append(cand)
        measurements = [_pgm.linear_measurement(y + rng.normal(0, 20, y.size), c, 20.0)
                        for c in measured for y in [counts(c)]]
        est = estimation.MirrorDescent()
        total = float(estimation.minimum_variance_unbiased_total(measurements))
        loss_fn = marginal_loss.from_linear_measurements(measurements, domain)
        cells = _pgm.model_cells(domain, list(loss_fn.cliques))
        for (label, attr), which in itertools.product([SETS[o] for o in args.options], args.steps):
            options = dict(getattr(_pgm, attr)) if attr else {}
            state = _pgm._initial_state(domain, loss_fn, total, None)
            t = time.process_time()
            if which == "mbi":  # mbi's state: current marginals (a placeholder until the first step)
                mu = jax.tree.map(lambda x: jax.device_put(np.zeros(x.shape, x.dtype)), state.potentials)
                state = estimation.MirrorDescentState(mu, state.potentials, state.alpha, state.loss)
                lowered = est._multi_step.lower(est, state, loss_fn, total, ())
            else:
                lowered = _pgm._descent_block.lower(state, loss_fn, total)
            lower_s = time.process_time() - t
            call_args = (loss_fn, total) if which == "dpsynth" else (loss_fn, total, ())
            t = time.process_time()
            step = lowered.compile(compiler_options=options or None)
            compile_s = time.process_time() - t
            state = step(state, *call_args)
            state.loss.block_until_ready()
            calls = []
            for _ in range(3):
                t = time.process_time()
                state = step(state, *call_args)
                state.loss.block_until_ready()
                calls.append(time.process_time() - t)
            print(json.dumps({"model_mb": round(size, 2), "cells": cells, "cliques": len(measured), "options": label,
                              "step": which, "trace_lower_s": round(lower_s, 3), "compile_s": round(compile_s, 3),
                              "call_s": round(statistics.median(calls), 4)}),
                  flush=True)
            _pgm.forget_compiled()


if __name__ == "__main__":
    main()
