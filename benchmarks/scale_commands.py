#!/usr/bin/env python3
r"""``schema infer``, ``eval``, ``replay`` and ``release`` (the default policy, secure noise, 100,000 released
rows) through DuckDB (and in memory, where it fits) on tables of 1M
to 100M rows (issue 19): wall seconds, CPU seconds and peak RSS of each command, a child process each.

The data are ``benchmarks/scale_data.py``'s Parquet files (``DATA_DIR/adult_<N>.parquet``). The
synthetic table that ``eval`` and ``replay`` compare against is one MST fit of the smallest table
through DuckDB (``--synthetic-rows`` rows, Parquet), made first. Math libraries are pinned to one
thread; DuckDB uses its default threads (the machine's cores). Runs alternate over the repetitions.
Noise is seeded (``--insecure-seed``: INSECURE, benchmarking only).

    python benchmarks/scale_commands.py --data-dir /tmp/D/data --rows 1000000 10000000 \
        --engines duckdb numpy --reps 2 --json commands.jsonl
    python benchmarks/scale_commands.py --summarize commands.jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scale_fit import measure  # noqa: E402  (the same child-process measurement as the fit benchmark)

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = ("schema-infer", "eval", "replay", "release")
#: rows of the synthetic table a benchmarked release samples (a public number; the PII scan reads them all)
RELEASE_ROWS = 100_000


def _schema() -> str:
    sys.path.insert(0, str(ROOT))
    from dpsynth.datasets import adult_schema_path

    return str(adult_schema_path())


def command(kind: str, engine: str, data: Path, synthetic: Path, out: Path) -> list[str]:
    """The ``dpsynth`` command line of one run."""
    base = [sys.executable, "-m", "dpsynth"]
    if kind == "schema-infer":
        return base + ["schema", "infer", "--data", str(data), "--out", str(out / "schema.yaml"), "--epsilon", "1",
                       "--delta", "1e-9", "--no-ledger", "--insecure-seed", "0", "--engine", engine, "--json"]
    if kind == "eval":
        return base + ["eval", "--real", str(data), "--synthetic", str(synthetic), "--schema", _schema(),
                       "--engine", engine, "--json"]
    if kind == "replay":
        return base + ["replay", "--real", str(data), "--synthetic", str(synthetic), "--schema", _schema(),
                       "--engine", engine, "--json"]
    return base + ["release", "--data", str(data), "--schema", _schema(), "--synthesizer", "mst", "--epsilon", "1",
                   "--delta", "1e-9", "--ledger", _ledger(out), "--dataset", "scale", "--policy", "default",
                   "--rows", str(RELEASE_ROWS), "--out", str(_fresh(out / "release")), "--engine", engine, "--json"]


def _ledger(out: Path) -> str:
    """A ledger with a budget for every benchmarked release (made once)."""
    url = f"sqlite:///{out / 'ledger.db'}"
    if not (out / "ledger.db").exists():
        sys.path.insert(0, str(ROOT))
        from dpsynth.privacy import ApproxDP
        from dpsynth.privacy.ledger import Ledger

        Ledger(url, create=True).create_dataset("scale", ApproxDP(1e6, 1e-3))
    return url


def _fresh(folder: Path) -> Path:
    """``folder`` removed (a release writes into a new folder)."""
    import shutil

    shutil.rmtree(folder, ignore_errors=True)
    return folder


def environment() -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for key in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[key] = "1"
    env["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
    return env


def make_synthetic(data: Path, rows: int, out: Path) -> Path:
    """One seeded MST fit of ``data`` through DuckDB, ``rows`` rows as Parquet."""
    target = out / f"synthetic_{rows}.parquet"
    if not target.exists():
        cmd = [sys.executable, "-m", "dpsynth", "fit", "--data", str(data), "--schema", _schema(), "--synthesizer",
               "mst", "--epsilon", "1", "--delta", "1e-9", "--rows", str(rows), "--out", str(target), "--no-ledger",
               "--insecure-seed", "0", "--engine", "duckdb", "--json"]
        row = measure(cmd, environment(), None)
        if row["exit"] != 0:
            raise SystemExit(f"the synthetic table could not be made: {row.get('error')}")
    return target


def summary(runs: list[dict[str, Any]]) -> str:
    """Medians per (command, engine, rows)."""
    groups: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
    for r in runs:
        groups.setdefault((r["command"], r["engine"], r["rows"]), []).append(r)
    lines = ["| command | engine | rows | wall s | CPU s | peak RSS MB | rows/s (wall) | runs |",
             "|---|---|---|---|---|---|---|---|"]
    for (cmd, engine, rows), rs in sorted(groups.items()):
        ok = [r for r in rs if r["exit"] in (0, 1)]
        if not ok:
            capped = [r for r in rs if r.get("capped")]
            what = f"stopped at {max(r['cpu_s'] for r in capped):.0f} CPU s" if capped else "failed"
            lines.append(f"| {cmd} | {engine} | {rows:,} | {what} | | | | {len(rs)} |")
            continue
        wall = statistics.median(r["wall_s"] for r in ok)
        cpu = statistics.median(r["cpu_s"] for r in ok)
        rss = statistics.median(r["peak_rss_mb"] for r in ok)
        lines.append(f"| {cmd} | {engine} | {rows:,} | {wall:.1f} | {cpu:.1f} | {rss:,.0f} | {rows / wall:,.0f} | "
                     f"{len(ok)} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", type=Path, default=Path("scale-data"))
    ap.add_argument("--rows", type=int, nargs="+")
    ap.add_argument("--engines", nargs="+", default=["duckdb"], choices=["duckdb", "numpy", "spark"])
    ap.add_argument("--commands", nargs="+", default=list(COMMANDS), choices=COMMANDS)
    ap.add_argument("--synthetic-rows", type=int, default=1_000_000)
    ap.add_argument("--numpy-max-rows", type=int, default=1_000_000, help="in memory only up to this many rows")
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--cpu-cap", type=int, default=None, help="CPU seconds after which a run is stopped")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--summarize", type=Path, nargs="+")
    args = ap.parse_args(argv)
    if args.summarize:
        print(summary([json.loads(line) for p in args.summarize for line in p.read_text().splitlines() if line]))
        return
    if not args.rows:
        ap.error("--rows is required (or --summarize)")
    out = args.data_dir / "commands"
    out.mkdir(parents=True, exist_ok=True)
    synthetic = make_synthetic(args.data_dir / f"adult_{min(args.rows)}.parquet", args.synthetic_rows, out)
    runs = []
    for rep in range(args.reps):
        for rows in args.rows:
            for engine in args.engines:
                if engine == "numpy" and rows > args.numpy_max_rows:
                    continue
                for kind in args.commands:
                    cmd = command(kind, engine, args.data_dir / f"adult_{rows}.parquet", synthetic, out)
                    row = measure(cmd, environment(), args.cpu_cap)
                    row = {k: v for k, v in row.items()
                           if k in ("wall_s", "cpu_s", "peak_rss_mb", "exit", "capped", "error")}
                    row.update(command=kind, engine=engine, rows=rows, rep=rep, load=os.getloadavg()[0])
                    runs.append(row)
                    print(json.dumps(row), flush=True)
                    if args.json:
                        with args.json.open("a") as fh:
                            fh.write(json.dumps(row) + "\n")
    print(summary(runs))


if __name__ == "__main__":
    main()
