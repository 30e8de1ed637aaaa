"""A DP-CTGAN fit beside a busy core (issue 17): PyTorch's default threads ("before") against
dpsynth's automatic choice ("after"), CPU and wall seconds.

The setting of the issue: 5,000 rows of the bundled raw Adult table (a fixed random subset), a
schema learned from them by `dpsynth schema infer` (with DP, seeded, no ledger), and
`dpsynth fit --synthesizer dpctgan --epsilon 3` at its defaults, while one single-threaded job (a
pure Python spin loop, started `--warmup` seconds before the first fit so that the load average
has seen it) runs the whole time. Each fit is `python -m dpsynth fit` in its own process, with
OMP_NUM_THREADS, MKL_NUM_THREADS, OPENBLAS_NUM_THREADS and XLA_FLAGS removed from its environment:

* before: `--threads N` with N = PyTorch's own default in a fresh process (what every fit used
  before issue 17: dpsynth set no thread count), or, with `--baseline-tree`, that tree's CLI
  without `--threads`;
* after: no `--threads` (automatic; the thread count and its reason come back in the fit's JSON).

The two alternate (before, after; then after, before; ...). A fit stops at `--cpu-cap` CPU seconds
(RLIMIT_CPU) and is reported as "> cap". CPU seconds are the fit process's own (user + system, from
`getrusage(RUSAGE_CHILDREN)` around it), the spin loop's not included.

    python benchmarks/threads_under_load.py --reps 3 --cpu-cap 300 [--json results.jsonl]
    python benchmarks/threads_under_load.py --rows 400 --epochs 0.5 --reps 1 --warmup 2 --cpu-cap 60   # smoke
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

ROOT = Path(__file__).resolve().parents[1]
#: the environment a fit must not inherit: each of these fixes a thread pool
CLEARED = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "XLA_FLAGS")
SPIN = "while True:\n    pass\n"


def _env(tree: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CLEARED}
    env["PYTHONPATH"] = str(tree)
    return env


def _limits(cpu_cap: int):
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_cap, cpu_cap + 30))  # SIGXCPU at the soft limit
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    return apply


def torch_default_threads(tree: Path) -> int:
    """PyTorch's intra-op thread count in a fresh process with no thread setting in its environment."""
    out = subprocess.run([sys.executable, "-c", "import torch; print(torch.get_num_threads())"], env=_env(tree),
                         capture_output=True, text=True, check=True, cwd=tree)
    return int(out.stdout.strip())


def prepare(tmp: Path, rows: int, seed: int, schema_epsilon: float) -> tuple[Path, Path]:
    """The fit's input: ``rows`` rows of the bundled Adult table and a schema from `schema infer`."""
    sys.path.insert(0, str(ROOT))
    from dpsynth.datasets import load_adult

    data, _ = load_adult()
    data = data.sample(n=min(rows, len(data)), random_state=seed).reset_index(drop=True)
    csv = tmp / "adult_rows.csv"
    data.to_csv(csv, index=False)
    schema = tmp / "schema.yaml"
    proc = subprocess.run([sys.executable, "-m", "dpsynth", "schema", "infer", "--data", str(csv), "--out",
                           str(schema), "--epsilon", str(schema_epsilon), "--delta", "1e-6", "--no-ledger",
                           "--insecure-seed", str(seed)], env=_env(ROOT), capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        raise SystemExit(f"schema infer failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return csv, schema


def fit(tree: Path, csv: Path, schema: Path, out: Path, args: argparse.Namespace, threads: int | None) -> dict:
    cmd = [sys.executable, "-m", "dpsynth", "fit", "--data", str(csv), "--schema", str(schema), "--synthesizer",
           "dpctgan", "--epsilon", str(args.epsilon), "--delta", str(args.delta), "--rows", str(args.rows),
           "--out", str(out), "--no-ledger", "--device", "cpu", "--json"]
    if args.epochs is not None:
        cmd += ["--param", f"epochs={args.epochs}"]
    if threads is not None:
        cmd += ["--threads", str(threads)]
    load = Path("/proc/loadavg").read_text().split()[:4] if Path("/proc/loadavg").exists() else []
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=_env(tree), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=tree, preexec_fn=_limits(args.cpu_cap))
    stdout, stderr = proc.communicate()
    wall = time.perf_counter() - start
    code = proc.returncode
    capped = code in (-signal.SIGXCPU, -signal.SIGKILL)
    row: dict = {"wall_s": round(wall, 1), "load_at_start": " ".join(load), "exit": code, "capped": capped}
    if not capped and code != 0:
        raise SystemExit(f"fit failed ({code}): {stderr[-2000:]}")
    if not capped:
        result = json.loads(stdout.strip().splitlines()[-1])
        row.update(train_s=result["timings"].get("train"), train_cpu_s=result["timings"].get("train_cpu"),
                   threads=result.get("threads"), steps=result["dpsgd"]["steps_taken"])
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5000, help="rows of Adult fitted (and sampled); 5000")
    parser.add_argument("--epsilon", type=float, default=3.0)
    parser.add_argument("--delta", type=float, default=1e-6)
    parser.add_argument("--epochs", type=float, default=None, help="DP-CTGAN epochs (default: its own, 10)")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--cpu-cap", type=int, default=300, help="CPU seconds after which a fit is stopped (300)")
    parser.add_argument("--warmup", type=float, default=60.0,
                        help="seconds the spin loop runs before the first fit (60: the load average sees it)")
    parser.add_argument("--no-busy", action="store_true", help="no spin loop (the quiet-machine reference)")
    parser.add_argument("--baseline-tree", type=Path,
                        help="a checkout of dpsynth before issue 17: 'before' runs its CLI without --threads")
    parser.add_argument("--seed", type=int, default=0, help="subset of the rows and the schema's noise (0)")
    parser.add_argument("--json", type=Path, help="append one JSON line per fit to this file")
    args = parser.parse_args()

    baseline = args.baseline_tree.resolve() if args.baseline_tree else None
    default_threads = torch_default_threads(ROOT)
    print(f"machine: {os.cpu_count()} CPUs, affinity {len(os.sched_getaffinity(0))}; PyTorch's default "
          f"threads: {default_threads}; cap {args.cpu_cap} CPU-s per fit", flush=True)
    modes = {"before": (baseline or ROOT, None if baseline else default_threads), "after": (ROOT, None)}
    results: dict[str, list[dict]] = {m: [] for m in modes}
    busy = None
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        csv, schema = prepare(tmp, args.rows, args.seed, 1.0)
        try:
            if not args.no_busy:
                busy = subprocess.Popen([sys.executable, "-c", SPIN])
                print(f"busy job: pid {busy.pid} (a pure Python spin loop); warming up {args.warmup:g} s", flush=True)
                time.sleep(args.warmup)
            for rep in range(args.reps):
                order = ["before", "after"] if rep % 2 == 0 else ["after", "before"]
                for mode in order:
                    tree, threads = modes[mode]
                    before = resource.getrusage(resource.RUSAGE_CHILDREN)
                    row = fit(tree, csv, schema, tmp / f"out_{mode}_{rep}.csv", args, threads)
                    after = resource.getrusage(resource.RUSAGE_CHILDREN)
                    row["cpu_s"] = round(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime, 1)
                    row.update(mode=mode, rep=rep, threads_flag=threads, tree=str(tree), busy=busy is not None)
                    results[mode].append(row)
                    chosen = row.get("threads") or {}
                    print(f"rep {rep} {mode:6s}: " + (f"> {args.cpu_cap} CPU-s (capped)" if row["capped"] else
                          f"{row['cpu_s']:.1f} CPU-s") + f", {row['wall_s']:.1f} s wall, threads "
                          f"{chosen.get('threads', threads)} ({chosen.get('source', '?')}); load "
                          f"{row['load_at_start']}", flush=True)
                    if chosen.get("reason"):
                        print(f"    {chosen['reason']}", flush=True)
                    if args.json:
                        with args.json.open("a") as fh:
                            fh.write(json.dumps(row) + "\n")
        finally:
            if busy is not None:
                busy.kill()
                busy.wait()
    print("\n| mode | fits | capped | CPU s (median) | wall s (median) |\n|---|---|---|---|---|")
    for mode, rows in results.items():
        if not rows:
            continue
        capped = sum(r["capped"] for r in rows)
        cpu = statistics.median(args.cpu_cap if r["capped"] else r["cpu_s"] for r in rows)
        wall = statistics.median(r["wall_s"] for r in rows)
        cpu_text = f"> {args.cpu_cap}" if cpu >= args.cpu_cap else f"{cpu:.1f}"
        bound = " (capped fits: a lower bound)" if capped else ""
        print(f"| {mode} | {len(rows)} | {capped} | {cpu_text} | {wall:.1f}{bound} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
