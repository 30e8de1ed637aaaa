#!/usr/bin/env python3
r"""MST (or AIM) on the discretized UCI Adult, side by side with its peers, in one run.

For each repetition the systems run one after the other (alternating, so drift on a shared
machine hits all of them alike), each in its own process with BLAS/XLA/torch pinned to one
thread. Per run: wall seconds, CPU seconds (user + sys of the child, from wait4), peak RSS, and
the AIM paper's 1/2/3-way workload errors of the synthetic table against the real one (computed
by dpsynth's ``quality.workload_errors``, which ``tests/integration/test_eval_crosscheck.py``
checks against a second implementation of the metric). The figures are in ``benchmarks/RESULTS.md``.

    python benchmarks/mst_adult.py --data ../shared/data/adult/adult-discrete.csv \
        --domain ../shared/data/adult/adult-discrete-domain.json --epsilon 1 --delta 1e-9 --reps 5 \
        [--smartnoise-python .peers/smartnoise/bin/python --smartnoise-script ../shared/peers/sn_synth.py] \
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
import resource
import signal
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


def timed(cmd: list[str], env: dict[str, str], cpu_cap: int | None = None) -> dict[str, float | str]:
    """Run ``cmd``; with ``cpu_cap`` the child is stopped (SIGXCPU/SIGKILL) after that many CPU seconds
    and the run is recorded as timed out rather than failed."""

    def limit() -> None:
        if cpu_cap:
            resource.setrlimit(resource.RLIMIT_CPU, (cpu_cap, cpu_cap + 5))

    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, text=True, preexec_fn=limit)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    code = os.waitstatus_to_exitcode(status)
    cpu = usage.ru_utime + usage.ru_stime
    # SIGXCPU comes only from the soft limit; SIGKILL from the hard one (cap + 5) or from elsewhere.
    # The rusage a stopped child reports can fall a little short of the limit that stopped it.
    timed_out = bool(cpu_cap) and (code == -signal.SIGXCPU or (code == -signal.SIGKILL and cpu >= cpu_cap - 1))
    if code != 0 and not timed_out:
        raise RuntimeError(f"{cmd[:3]} exited {code} after {cpu:.1f} CPU-s: {stderr[-2000:]}")
    return {
        "timed_out": timed_out,
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


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data")
    ap.add_argument("--domain")
    ap.add_argument("--epsilon", type=float, nargs="+", default=[1.0], help="one or more ε, run in turn")
    ap.add_argument("--delta", type=float, default=1e-9)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--peer-reps", type=int, help="runs per ε for the peers (default: --reps)")
    ap.add_argument("--first-rep", type=int, default=0,
                    help="number the repetitions (the peers' seeds) from this one, to split a run over cores")
    ap.add_argument("--cpu-cap", type=int,
                    help="stop a peer's run after this many CPU seconds and record a time-out (dpsynth runs uncapped)")
    ap.add_argument("--skip-after-timeout", action="store_true",
                    help="once a peer times out at an ε, record its later runs at that ε as skipped "
                         "(a run to the same cap would only say again that it takes longer than the cap)")
    ap.add_argument("--no-dpsynth", action="store_true", help="run only the peers")
    ap.add_argument("--synthesizer", default="mst", choices=["mst", "aim"])
    ap.add_argument("--sample-rows", type=int, metavar="N", help="use N rows of --data (sampled with seed 0)")
    ap.add_argument("--seeded", action="store_true",
                    help="seed dpsynth's noise with the repetition number (INSECURE; for comparing settings)")
    ap.add_argument("--xla-flags", default="", help="XLA_FLAGS added to the pinned ones for dpsynth")
    ap.add_argument("--versus-xla-flags", metavar="FLAGS",
                    help="also run dpsynth with these XLA_FLAGS added (alternating with the plain runs)")
    ap.add_argument("--smartnoise-python")
    ap.add_argument("--smartnoise-script")
    ap.add_argument("--pgm-python")
    ap.add_argument("--pgm-script")
    ap.add_argument("--out", default="benchmarks/out")
    ap.add_argument("--summarize", nargs="+", metavar="RUNS_JSONL",
                    help="only print the table of earlier runs (runs.jsonl files, e.g. dpsynth's and the peers')")
    args = ap.parse_args(argv)
    if args.summarize:
        runs = [json.loads(line) for f in args.summarize for line in Path(f).read_text().splitlines() if line.strip()]
        runs = [{"timed_out": False, **r} for r in runs]
        print(summary(runs, f"dpsynth {args.synthesizer.upper()}"))
        return

    if not args.data or not args.domain:
        ap.error("--data and --domain are required")
    domain = json.loads(Path(args.domain).read_text())
    names, sizes = list(domain), [int(v) for v in domain.values()]
    table = pd.read_csv(args.data)
    if args.sample_rows:
        table = table.sample(args.sample_rows, random_state=0)
    real = table[names].to_numpy(dtype=np.int64)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **ONE_THREAD}
    dpsynth_bin = str(Path(sys.executable).with_name("dpsynth"))

    ours = f"dpsynth {args.synthesizer.upper()}"
    systems: dict[str, callable] = {}
    envs: dict[str, dict[str, str]] = {}

    def dpsynth(data: str):
        return lambda out, seed, eps: [
            dpsynth_bin, "fit", "--data", data, "--schema", args.domain, "--synthesizer", args.synthesizer,
            "--epsilon", str(eps), "--delta", str(args.delta), "--rows", str(len(real)),
            "--out", str(out), "--json", "--no-ledger", *(["--insecure-seed", str(seed)] if args.seeded else [])]

    def with_flags(extra: str) -> dict[str, str]:
        return {**env, "XLA_FLAGS": f"{env['XLA_FLAGS']} {extra}".strip()}

    if args.smartnoise_python:
        systems[f"smartnoise-synth 1.0.8 {args.synthesizer.upper()}"] = lambda out, seed, eps: [
            args.smartnoise_python, args.smartnoise_script, args.synthesizer, args.data, str(out),
            "--epsilon", str(eps), "--delta", str(args.delta), "--seed", str(seed)]
    if args.pgm_python:
        systems[f"Private-PGM reference {args.synthesizer.upper()}"] = lambda out, seed, eps: [
            args.pgm_python, args.pgm_script, args.data, args.domain, str(out),
            "--epsilon", str(eps), "--delta", str(args.delta), "--seed", str(seed)]
    peer_reps = args.reps if args.peer_reps is None else args.peer_reps

    runs = []
    with tempfile.TemporaryDirectory() as tmp, open(out_dir / "runs.jsonl", "a") as log:
        data = args.data
        if args.sample_rows:
            data = str(Path(tmp) / "sample.csv")
            table.to_csv(data, index=False)
        if not args.no_dpsynth:
            systems[ours] = dpsynth(data)
            envs[ours] = with_flags(args.xla_flags)
            if args.versus_xla_flags:
                versus = f"{ours} [XLA_FLAGS+={args.versus_xla_flags}]"
                systems[versus] = dpsynth(data)
                envs[versus] = with_flags(f"{args.xla_flags} {args.versus_xla_flags}")
        systems = {**{k: systems[k] for k in envs}, **{k: v for k, v in systems.items() if k not in envs}}
        for eps in args.epsilon:
            for rep in range(args.first_rep, args.first_rep + args.reps):
                for system, command in systems.items():
                    if system not in envs and rep >= args.first_rep + peer_reps:
                        continue
                    if args.skip_after_timeout and system not in envs and any(
                            r["system"] == system and r["epsilon"] == eps and r.get("timed_out") for r in runs):
                        skipped = {"system": system, "rep": rep, "epsilon": eps, "delta": args.delta,
                                   "skipped_after_timeout": True}
                        runs.append(skipped)
                        log.write(json.dumps(skipped) + "\n")
                        log.flush()
                        continue
                    synth_path = Path(tmp) / f"synth-{rep}.csv"
                    result = {"system": system, "rep": rep, "epsilon": eps, "delta": args.delta}
                    cap = None if system in envs else args.cpu_cap
                    result.update(timed(command(synth_path, rep, eps), envs.get(system, env), cap))
                    if not result["timed_out"]:
                        result.update(errors(real, synth_path, names, sizes))
                    runs.append(result)
                    log.write(json.dumps(result) + "\n")
                    log.flush()
                    print(json.dumps(result), file=sys.stderr)
    print(summary(runs, ours))


def summary(runs: list[dict], ours: str) -> str:
    """A Markdown table of medians per ε and system. A run stopped at the CPU cap counts at its
    stopped time, which makes the median a lower bound (marked ≥); errors are medians over the
    finished runs; runs skipped after a time-out (``--skip-after-timeout``) are counted apart."""
    lines = [f"δ = {runs[0]['delta']}, medians (one thread each; ≥: some runs were stopped at the cap)", "",
             "| ε | system | runs (timed out, skipped) | wall s | CPU s (min–max) | peak RSS MB | 1-way L1 | "
             "2-way L1 | 3-way L1 | wall vs dpsynth | CPU vs dpsynth |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for eps in sorted({r["epsilon"] for r in runs}):
        at = [r for r in runs if r["epsilon"] == eps]
        mine = [r for r in at if r["system"] == ours and not r["timed_out"] and not r.get("skipped_after_timeout")]
        base = {k: statistics.median(r[k] for r in mine) if mine else None for k in ("wall_s", "cpu_s")}
        for system in dict.fromkeys(r["system"] for r in at):
            every = [r for r in at if r["system"] == system]
            rs = [r for r in every if not r.get("skipped_after_timeout")]
            done = [r for r in rs if not r["timed_out"]]
            counts = f"{len(rs)} ({len(rs) - len(done)}, {len(every) - len(rs)})"
            if not done:
                wall, cpu = max(r["wall_s"] for r in rs), max(r["cpu_s"] for r in rs)
                ratios = [f"> {v / b:.1f}×" if b else "—" for v, b in ((wall, base["wall_s"]), (cpu, base["cpu_s"]))]
                lines.append(f"| {eps:g} | {system} | {counts} | > {wall:.0f} | > {cpu:.0f} (stopped) | "
                             f"{max(r['peak_rss_mb'] for r in rs):.0f} | — | — | — | {ratios[0]} | {ratios[1]} |")
                continue
            # Times: the median over every run, a stopped run counted at its stopped time, so with
            # time-outs it is a lower bound ("≥"). Errors: finished runs only.
            med = {k: statistics.median(r[k] for r in rs) for k in ("wall_s", "cpu_s", "peak_rss_mb")}
            med.update({k: statistics.median(r[k] for r in done) for k in ("l1_1way", "l1_2way", "l1_3way")})
            at_least = "≥ " if len(done) < len(rs) else ""
            lo, hi = min(r["cpu_s"] for r in rs), max(r["cpu_s"] for r in rs)
            hi_mark = "> " if any(r["timed_out"] and r["cpu_s"] == hi for r in rs) else ""
            ratios = [f"{at_least}{med[k] / base[k]:.1f}×" if base[k] else "—" for k in ("wall_s", "cpu_s")]
            lines.append(f"| {eps:g} | {system} | {counts} | {at_least}{med['wall_s']:.1f} | "
                         f"{at_least}{med['cpu_s']:.1f} ({lo:.0f}–{hi_mark}{hi:.0f}) | {med['peak_rss_mb']:.0f} | "
                         f"{med['l1_1way']:.3f} | "
                         f"{med['l1_2way']:.3f} | {med['l1_3way']:.3f} | {ratios[0]} | {ratios[1]} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
