#!/usr/bin/env python3
"""MST (or AIM) on the discretized UCI Adult, side by side with its peers, in one run.

For each repetition the systems run one after the other (alternating, so drift on a shared
machine hits all of them alike), each in its own process with BLAS/XLA/torch pinned to one
thread. Per run: wall seconds, CPU seconds (user + sys of the child, from wait4), peak RSS, and
the AIM paper's 1/2/3-way workload errors of the synthetic table against the real one (computed
by dpsynth's ``quality.workload_errors``; cross-checked against ``shared/peers/workload_error.py``
in the tests of the metric).

    python benchmarks/mst_adult.py --data ../shared/data/adult/adult-discrete.csv \\
        --domain ../shared/data/adult/adult-discrete-domain.json --epsilon 1 --delta 1e-9 --reps 5 \\
        [--smartnoise-python .peers/smartnoise/bin/python --smartnoise-script ../shared/peers/sn_synth.py] \\
        [--pgm-python .peers/pgm/bin/python --pgm-script .peers/run_pgm_mst.py]

The Private-PGM reference MST is not on PyPI; ``--pgm-script`` is any script that takes
``DATA DOMAIN OUT --epsilon E --delta D --seed S`` and runs the repository's
``mechanisms/mst.py`` (set it up by hand beside the project; nothing of it is committed).
Writes one JSON line per run to ``--out/runs.jsonl`` and prints a Markdown table of medians.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from dpsynth.quality import workload_errors

ONE_THREAD = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
    "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
    "TF_NUM_INTRAOP_THREADS": "1",
    "JAX_PLATFORMS": "cpu",
}


def timed(cmd: list[str], env: dict[str, str]) -> dict[str, float | str]:
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    stdout = proc.stdout.read() if proc.stdout else ""
    stderr = proc.stderr.read() if proc.stderr else ""
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise RuntimeError(f"{cmd[:3]} exited {code}: {stderr[-2000:]}")
    return {
        "wall_s": round(wall, 3),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "stdout": stdout.strip().splitlines()[-1] if stdout.strip() else "",
    }


def errors(real: np.ndarray, synth_path: Path, names: list[str], sizes: list[int]) -> dict[str, float]:
    s = pd.read_csv(synth_path)[names].to_numpy(dtype=np.int64)
    out = {}
    for k in (1, 2, 3):
        errs, _ = workload_errors(real, s, sizes, k)
        out[f"l1_{k}way"] = round(float(errs.mean()), 5)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--domain", required=True)
    ap.add_argument("--epsilon", type=float, default=1.0)
    ap.add_argument("--delta", type=float, default=1e-9)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--synthesizer", default="mst", choices=["mst", "aim"])
    ap.add_argument("--smartnoise-python")
    ap.add_argument("--smartnoise-script")
    ap.add_argument("--pgm-python")
    ap.add_argument("--pgm-script")
    ap.add_argument("--out", default="benchmarks/out")
    args = ap.parse_args()

    domain = json.loads(Path(args.domain).read_text())
    names, sizes = list(domain), [int(v) for v in domain.values()]
    real = pd.read_csv(args.data)[names].to_numpy(dtype=np.int64)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **ONE_THREAD}
    dpsynth_bin = str(Path(sys.executable).with_name("dpsynth"))

    ours = f"dpsynth {args.synthesizer.upper()}"
    systems: dict[str, callable] = {
        ours: lambda out, seed: [
            dpsynth_bin, "fit", "--data", args.data, "--schema", args.domain, "--synthesizer", args.synthesizer,
            "--epsilon", str(args.epsilon), "--delta", str(args.delta), "--rows", str(len(real)),
            "--out", str(out), "--json", "--no-ledger"],
    }
    if args.smartnoise_python:
        systems[f"smartnoise-synth 1.0.8 {args.synthesizer.upper()}"] = lambda out, seed: [
            args.smartnoise_python, args.smartnoise_script, args.synthesizer, args.data, str(out),
            "--epsilon", str(args.epsilon), "--delta", str(args.delta), "--seed", str(seed)]
    if args.pgm_python:
        systems["Private-PGM reference MST"] = lambda out, seed: [
            args.pgm_python, args.pgm_script, args.data, args.domain, str(out),
            "--epsilon", str(args.epsilon), "--delta", str(args.delta), "--seed", str(seed)]

    runs = []
    with tempfile.TemporaryDirectory() as tmp, open(out_dir / "runs.jsonl", "a") as log:
        for rep in range(args.reps):
            for system, command in systems.items():
                synth_path = Path(tmp) / f"synth-{rep}.csv"
                result = {"system": system, "rep": rep, "epsilon": args.epsilon, "delta": args.delta}
                result.update(timed(command(synth_path, rep), env))
                result.update(errors(real, synth_path, names, sizes))
                runs.append(result)
                log.write(json.dumps(result) + "\n")
                log.flush()
                print(json.dumps(result), file=sys.stderr)

    print(f"\nε = {args.epsilon}, δ = {args.delta}, {args.reps} runs each, medians (one thread each)\n")
    print("| system | wall s | CPU s | peak RSS MB | 1-way L1 | 2-way L1 | 3-way L1 | wall vs dpsynth |")
    print("|---|---|---|---|---|---|---|---|")
    base = statistics.median(r["wall_s"] for r in runs if r["system"] == ours)
    for system in systems:
        rs = [r for r in runs if r["system"] == system]
        keys = ("wall_s", "cpu_s", "peak_rss_mb", "l1_1way", "l1_2way", "l1_3way")
        med = {k: statistics.median(r[k] for r in rs) for k in keys}
        mean = {k: statistics.fmean(r[k] for r in rs) for k in ("l1_2way", "l1_3way")}
        print(f"| {system} | {med['wall_s']:.1f} | {med['cpu_s']:.1f} | {med['peak_rss_mb']:.0f} | "
              f"{med['l1_1way']:.3f} | {med['l1_2way']:.3f} (mean {mean['l1_2way']:.3f}) | "
              f"{med['l1_3way']:.3f} (mean {mean['l1_3way']:.3f}) | {med['wall_s'] / base:.1f}× |")


if __name__ == "__main__":
    main()
