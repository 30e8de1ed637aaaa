#!/usr/bin/env python3
"""False alarms of the release gate's canary audit on correct generators, over repeated audits.

Issue 16 asks that the default audit never flags a correct generator more often than the policy's
α = 1 − confidence. For each synthesizer named, this runs K independent canary audits
(:func:`dpsynth.audit.canary.canary_audit`, the default policy's parameters: 3 fits, 1,000 base rows
per fit, 5 output rows per training row, 95% confidence) of the unmodified synthesizer at the claim
(ε, δ) on the bundled Adult schema, audit k with seed ``seed + k`` (the tables, the coins; the
synthesizers draw their own secure noise). Reported per synthesizer: audits flagged, the false-alarm
rate with its two-sided Clopper–Pearson 95% interval, the largest ε each audit could show (above the
claim: a false alarm was possible), the largest lower bound reached, and CPU seconds per audit.

Every process is pinned to one thread (OMP/MKL/OpenBLAS, XLA, torch). Audits run in ``--workers``
processes (each audit serial inside its process).

    python benchmarks/canary_false_alarms.py --synthesizers mst aim dpvae dpctgan --audits 40 --workers 2

The audit reads only tables it generates from the public schema; this report holds no data row.
"""

from __future__ import annotations

import os

THREAD_ENV = {
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
    "JAX_PLATFORMS": "cpu",
}
for _key, _value in THREAD_ENV.items():
    os.environ.setdefault(_key, _value)

import argparse  # noqa: E402
import json  # noqa: E402
import multiprocessing  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from concurrent.futures import ProcessPoolExecutor  # noqa: E402
from typing import Any  # noqa: E402

from scipy import stats  # noqa: E402

#: small, fast configurations of the DP-SGD generators (their defaults train for minutes)
PARAMS: dict[str, dict[str, Any]] = {
    "mst": {},
    "aim": {},
    "dpvae": {"epochs": 5, "device": "cpu"},
    "dpctgan": {"epochs": 5, "device": "cpu"},
}


def clopper_pearson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    a = (1.0 - level) / 2
    low = 0.0 if k == 0 else float(stats.beta.ppf(a, k, n - k + 1))
    high = 1.0 if k == n else float(stats.beta.ppf(1 - a, k + 1, n - k))
    return low, high


def _one(args: tuple[str, float, float, int, float]) -> dict[str, Any]:
    name, epsilon, delta, seed, confidence = args
    import functools

    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover - torch is an extra
        pass
    import dpsynth.synth  # noqa: F401 - registers the synthesizers
    from dpsynth.audit.canary import canary_audit
    from dpsynth.datasets import load_adult
    from dpsynth.synth.base import get_synthesizer

    _, schema = load_adult()
    cls = get_synthesizer(name)
    make = functools.partial(cls, epsilon=epsilon, delta=delta, **PARAMS.get(name, {}))
    before = resource.getrusage(resource.RUSAGE_SELF)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = canary_audit(make, schema, claimed_epsilon=epsilon, claimed_delta=delta, confidence=confidence,
                              seed=seed)
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"synthesizer": name, "seed": seed, "violation": result.violation, "caught_by": result.caught_by,
            "epsilon_lower_bound": result.epsilon_lower_bound, "max_provable_epsilon": result.max_provable_epsilon,
            "copies": result.copy_test["copies"], "auc": result.auc, "cpu_s": round(cpu, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--synthesizers", nargs="+", default=["mst", "aim", "dpvae", "dpctgan"])
    parser.add_argument("--audits", type=int, default=40, help="audits per synthesizer")
    parser.add_argument("--epsilon", type=float, default=1.0)
    parser.add_argument("--delta", type=float, default=1e-6)
    parser.add_argument("--confidence", type=float, default=0.95)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="one JSON line per audit, then the summary")
    args = parser.parse_args()
    jobs = [(name, args.epsilon, args.delta, args.seed + k, args.confidence)
            for k in range(args.audits) for name in args.synthesizers]  # alternating synthesizers
    start = time.time()
    with ProcessPoolExecutor(args.workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        rows = []
        for row in pool.map(_one, jobs):
            rows.append(row)
            if args.json:
                print(json.dumps(row), flush=True)
    print(f"\n{args.audits} canary audits per synthesizer at (ε, δ) = ({args.epsilon:g}, {args.delta:g}), "
          f"confidence {args.confidence:g}, wall {time.time() - start:.0f} s")
    print("| synthesizer | audits | flagged | false-alarm rate | Clopper–Pearson 95% | max provable ε (min) "
          "| largest lower bound | CPU s per audit (median) |")
    print("|---|---|---|---|---|---|---|---|")
    for name in args.synthesizers:
        mine = [r for r in rows if r["synthesizer"] == name]
        k, n = sum(r["violation"] for r in mine), len(mine)
        low, high = clopper_pearson(k, n)
        print(f"| {name} | {n} | {k} | {k / n:.3f} | [{low:.3f}, {high:.3f}] | "
              f"{min(r['max_provable_epsilon'] for r in mine):.2f} | "
              f"{max(r['epsilon_lower_bound'] for r in mine):.3f} | "
              f"{statistics.median(r['cpu_s'] for r in mine):.1f} |")


if __name__ == "__main__":
    main()
