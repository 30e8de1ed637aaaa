"""The demo release (`dpsynth demo`: MST at ε = 1 on raw Adult, default policy) side by side with an
earlier dpsynth tree, alternating, one thread per process: CPU seconds, the released row count and
the exact 2-way workload error (internal evidence), and the DP checks' own time.

    python benchmarks/release_demo.py --baseline-tree ../dpsynth-baseline --reps 3 --json

``--baseline-tree`` is a checkout of the earlier commit (``git worktree add ../dpsynth-baseline COMMIT``); both
trees run with this virtual environment's packages. The report layout changed in issue 15
(``release/report.json`` then, ``release/internal/report.json`` now); both are read.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

THREADS = {k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
THREADS["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"


def run(tree: Path, out: Path) -> dict[str, float | int | str]:
    env = {**os.environ, **THREADS, "PYTHONPATH": str(tree)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    code = ("import sys, dpsynth; from dpsynth.cli import main; print(dpsynth.__file__, file=sys.stderr); "
            "sys.exit(main(['demo', '--out', sys.argv[1]]))")
    # cwd = the tree: `python -c` puts the working directory first on sys.path
    proc = subprocess.run([sys.executable, "-c", code, str(out)], env=env, capture_output=True, text=True, cwd=tree)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{tree}: demo failed ({proc.returncode}): {proc.stderr[-2000:]}")
    if not proc.stderr.startswith(str(tree)):
        raise SystemExit(f"{tree}: the demo imported another dpsynth: {proc.stderr.splitlines()[0]}")
    path = out / "release" / "internal" / "report.json"
    report = json.loads((path if path.is_file() else out / "release" / "report.json").read_text(encoding="utf-8"))
    seconds = report["release"].get("seconds", {})
    return {"status": report["decision"]["status"], "wall_s": round(wall, 1),
            "cpu_s": round(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime, 1),
            "rows": report["release"]["rows"], "l1_2way": round(report["evidence"]["fidelity"]["l1_2way"], 4),
            "dp_checks_s": seconds.get("dp_checks", 0.0), "audit_s": seconds.get("audit", 0.0)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline-tree", type=Path, required=True)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    trees = {"baseline": args.baseline_tree.resolve(), "current": Path(__file__).resolve().parents[1]}
    results: dict[str, list[dict]] = {name: [] for name in trees}
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.reps):
            for name, tree in trees.items():  # alternate the two trees
                results[name].append(run(tree, Path(tmp) / f"{name}-{rep}"))
                print(name, results[name][-1], file=sys.stderr, flush=True)
    summary = {name: {key: statistics.median(r[key] for r in runs) for key in ("wall_s", "cpu_s", "l1_2way",
                                                                              "dp_checks_s", "audit_s")}
               | {"rows": [r["rows"] for r in runs], "status": [r["status"] for r in runs]}
               for name, runs in results.items()}
    summary["cpu_ratio_current_to_baseline"] = round(summary["current"]["cpu_s"] / summary["baseline"]["cpu_s"], 3)
    print(json.dumps(summary, indent=None if args.json else 2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
