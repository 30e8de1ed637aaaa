#!/usr/bin/env python3
"""False-alarm rate of the white-box transcript audit for the correct AIM (and MST) over repeated audits.

Issue 6 asks that correct MST and AIM are never flagged, with the false-alarm rate measured over
repeated audits and at most α = 1 − confidence. For each synthesizer this runs K independent
white-box audits (:func:`dpsynth.audit.whitebox.whitebox_audit`) of the unmodified synthesizer on
its suite's worst-case pair (``dpsynth/audit/suites/{aim,mst}.yaml``: ten rows at every column's first
value versus the same plus one row at every column's last value; the suite's synthesizer
parameters), T transcripts per world, the likelihood-ratio threshold fixed at 0 as in the suites,
at the claim (ε, δ) = (1, 1e-2) and 95% confidence. Audit k uses seeds
``seed + 2·T·k … seed + 2·T·(k+1) − 1``, so no two audits share a seed (with secure noise, the
default, the noise is OpenDP's and the seeds are not used for it).

Reported per synthesizer: audits flagged by the ε bound, by the μ test and by either (the audit's
``violation``), the false-alarm rate with its two-sided Clopper–Pearson 95% interval, the largest ε
(and μ) each audit could have shown — above the claim, so a false alarm was possible — the lower
bounds reached, and wall and CPU seconds (this process and its workers). Every process is pinned
to one thread (OMP/MKL/OpenBLAS, XLA intra-op 1) unless the caller set those variables.

    python benchmarks/audit_false_alarms.py --audits 40 --transcripts 20 [--noise seeded] [--workers 2] [--json]

Audit results are NOT differentially private (they are computed from the datasets they are given);
this report holds no data row, only counts and bounds.
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
for _key, _value in THREAD_ENV.items():  # before numpy / JAX are imported, here and in spawned workers
    os.environ.setdefault(_key, _value)

import argparse  # noqa: E402
import functools  # noqa: E402
import json  # noqa: E402
import multiprocessing  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from concurrent.futures import ProcessPoolExecutor  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

from scipy import stats  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SUITES = {name: ROOT / "dpsynth" / "audit" / "suites" / f"{name}.yaml" for name in ("aim", "mst")}


def clopper_pearson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Two-sided Clopper–Pearson interval for a binomial proportion (k successes out of n)."""
    a = (1.0 - level) / 2
    low = 0.0 if k == 0 else float(stats.beta.ppf(a, k, n - k + 1))
    high = 1.0 if k == n else float(stats.beta.ppf(1 - a, k + 1, n - k))
    return low, high


def one_audit(name: str, k: int, transcripts: int, noise: str, seed: int, epsilon: float, delta: float,
              confidence: float) -> dict[str, Any]:
    """Audit ``k`` of synthesizer ``name`` (runs in a worker process, or in this one)."""
    from dpsynth.audit.replay import neighbouring_pairs
    from dpsynth.audit.suite import load_suite, load_synthesizer
    from dpsynth.audit.whitebox import whitebox_audit
    from dpsynth.schema import Schema

    suite = load_suite(SUITES[name])
    schema = Schema.from_domain(dict(suite["data"]["columns"]))
    data_0, data_1 = neighbouring_pairs(schema, rows=int(suite["data"]["rows"]))["constant_plus_outlier"]
    make = functools.partial(load_synthesizer(name), epsilon=epsilon, delta=delta,
                             **dict(suite.get("synthesizer_params") or {}))
    audit_seed = seed + 2 * transcripts * k
    wall, cpu = time.perf_counter(), time.process_time()
    result = whitebox_audit(make, schema, data_0, data_1, claimed_epsilon=epsilon, claimed_delta=delta,
                            trials_per_world=transcripts, confidence=confidence, threshold=0.0, noise=noise,
                            seed=audit_seed)
    mu_flag = (result.mu_lower_bound is not None and result.claimed_mu is not None
               and result.mu_lower_bound > result.claimed_mu)
    return {
        "audit": k,
        "seed": audit_seed,
        "flagged_by_epsilon": bool(result.epsilon_lower_bound > result.claimed_epsilon),
        "flagged_by_mu": bool(mu_flag),
        "violation": bool(result.violation),
        "epsilon_lower_bound": result.epsilon_lower_bound,
        "max_provable_epsilon": result.max_provable_epsilon,
        "mu_lower_bound": result.mu_lower_bound,
        "claimed_mu": result.claimed_mu,
        "max_provable_mu": result.max_provable_mu,
        "mu_comparison": result.details["mu_comparison"],
        "noise": result.details["noise"],
        "wall_s": round(time.perf_counter() - wall, 3),
        "cpu_s": round(time.process_time() - cpu, 3),
    }


def _cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def run(name: str, args: argparse.Namespace) -> dict[str, Any]:
    job = functools.partial(one_audit, name, transcripts=args.transcripts, noise=args.noise, seed=args.seed,
                            epsilon=args.epsilon, delta=args.delta, confidence=args.confidence)
    wall, cpu = time.perf_counter(), _cpu_seconds()
    if args.workers > 1:
        with ProcessPoolExecutor(args.workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            audits = list(pool.map(job, range(args.audits)))
    else:
        audits = []
        for k in range(args.audits):
            audits.append(job(k))
            if not args.json:
                print(f"  {name} audit {k + 1}/{args.audits}: violation={audits[-1]['violation']} "
                      f"({audits[-1]['wall_s']:.1f} s)", file=sys.stderr)
    wall, cpu = time.perf_counter() - wall, _cpu_seconds() - cpu
    n = len(audits)
    flagged = {key: sum(a[key] for a in audits) for key in ("flagged_by_epsilon", "flagged_by_mu", "violation")}
    low, high = clopper_pearson(flagged["violation"], n)
    return {
        "synthesizer": name,
        "suite": str(SUITES[name].relative_to(ROOT)),
        "audits": n,
        "transcripts_per_world": args.transcripts,
        "noise": audits[0]["noise"],
        "claimed_epsilon": args.epsilon,
        "claimed_delta": args.delta,
        "confidence": args.confidence,
        "alpha": round(1.0 - args.confidence, 12),
        **flagged,
        "false_alarm_rate": flagged["violation"] / n,
        "false_alarm_rate_cp95": [low, high],
        "max_provable_epsilon": sorted({a["max_provable_epsilon"] for a in audits}),
        "max_provable_mu": sorted({a["max_provable_mu"] for a in audits if a["max_provable_mu"] is not None}),
        "claimed_mu": audits[0]["claimed_mu"],
        "mu_comparison_applicable_in": sum(a["mu_comparison"].startswith("applicable") for a in audits),
        "epsilon_lower_bound_max": max(a["epsilon_lower_bound"] for a in audits),
        "epsilon_lower_bound_nonzero": sum(a["epsilon_lower_bound"] > 0 for a in audits),
        "mu_lower_bound_max": max((a["mu_lower_bound"] or 0.0) for a in audits),
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "cpu_s_in_audits": round(sum(a["cpu_s"] for a in audits), 2),
        "per_audit": audits,
    }


def main(argv: list[str] | None = None) -> int:
    from dpsynth.exceptions import ParameterError

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--synthesizers", nargs="+", choices=sorted(SUITES), default=["aim", "mst"])
    parser.add_argument("--audits", type=int, default=40, help="K independent audits per synthesizer")
    parser.add_argument("--transcripts", type=int, default=20, help="T transcripts (fits) per world per audit")
    parser.add_argument("--noise", choices=["secure", "seeded"], default="secure",
                        help="secure: OpenDP (as a release); seeded: reproducible, insecure, audit only")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epsilon", type=float, default=1.0)
    parser.add_argument("--delta", type=float, default=1e-2)
    parser.add_argument("--confidence", type=float, default=0.95)
    parser.add_argument("--workers", type=int, default=1, help="audits in N spawned processes (default 1)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    for flag, value in (("--audits", args.audits), ("--transcripts", args.transcripts), ("--workers", args.workers)):
        if value < 1:
            raise ParameterError(f"{flag} ({value}) must be a positive integer")
    if args.seed < 0:
        raise ParameterError(f"--seed ({args.seed}) must be a non-negative integer")

    env = {key: os.environ.get(key) for key in THREAD_ENV}
    results = [run(name, args) for name in args.synthesizers]
    if args.json:
        print(json.dumps({"command": "python benchmarks/audit_false_alarms.py " + " ".join(sys.argv[1:]),
                          "thread_env": env, "results": results}, indent=2))
        return 0
    print(f"claim (ε, δ) = ({args.epsilon:g}, {args.delta:g}), {args.confidence:.0%} confidence; "
          f"{args.noise} noise; threshold 0 (likelihood ratio)")
    print("| synthesizer | audits × transcripts/world | flagged by ε | flagged by μ | flagged (either) "
          "| false-alarm rate (CP 95%) | max provable ε / μ per audit | largest ε / μ bound | wall / CPU s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        low, high = r["false_alarm_rate_cp95"]
        mu = "/".join(f"{m:.3f}" for m in r["max_provable_mu"]) or "n/a"
        print(f"| {r['synthesizer']} | {r['audits']} × {r['transcripts_per_world']} | {r['flagged_by_epsilon']} "
              f"| {r['flagged_by_mu']} | {r['violation']} | {r['false_alarm_rate']:.3f} [{low:.3f}, {high:.3f}] "
              f"| {'/'.join(f'{e:.3f}' for e in r['max_provable_epsilon'])} / {mu} "
              f"| {r['epsilon_lower_bound_max']:.3f} / {r['mu_lower_bound_max']:.3f} "
              f"| {r['wall_s']:.1f} / {r['cpu_s']:.1f} |")
    return 0


if __name__ == "__main__":
    from dpsynth.exceptions import ParameterError

    try:
        sys.exit(main())
    except ParameterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
