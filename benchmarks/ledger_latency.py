#!/usr/bin/env python3
"""Ledger latency on SQLite and PostgreSQL with a large history.

For each backend: register a dataset, fill the ledger through the public API with
``--entries`` entries (reservations of a real MST plan on Adult — 43 events each — and their
completions), then time ``--ops`` further reserve-and-complete rounds, and ``ledger show`` over
the whole history (in process and as the ``dpsynth ledger show --json`` command).

    python benchmarks/ledger_latency.py --entries 10000 --ops 300

PostgreSQL is a throw-away local server started the way the tests start theirs
(``tests/postgres.py``; binaries from Debian's ``postgresql`` package), fsync on; SQLite runs in
WAL mode with ``synchronous=FULL``. Both commit every entry durably.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dpsynth.datasets import adult_schema_path
from dpsynth.privacy import ApproxDP
from dpsynth.privacy.ledger import Ledger
from dpsynth.schema import load_schema
from dpsynth.synth import MST

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def run(url: str, entries: int, ops: int) -> dict[str, float]:
    schema = load_schema(adult_schema_path())
    synth = MST(epsilon=0.01, delta=1e-12)
    events, claimed = synth.plan(schema), synth.budget()
    ledger = Ledger(url, create=True)
    ledger.create_dataset("adult", ApproxDP(1000.0, 1e-6))
    start = time.perf_counter()
    while (n := _count(ledger)) < entries:
        ledger.reserve("adult", events, synthesizer="mst", claimed=claimed, input_sha256="0" * 64).complete(rows=1)
        if n % 1000 == 0:
            print(f"  {url.split(':')[0]}: {n} entries", file=sys.stderr)
    fill = time.perf_counter() - start
    reserve, complete = [], []
    for _ in range(ops):
        t0 = time.perf_counter()
        r = ledger.reserve("adult", events, synthesizer="mst", claimed=claimed, input_sha256="0" * 64)
        t1 = time.perf_counter()
        r.complete(rows=1)
        t2 = time.perf_counter()
        reserve.append(t1 - t0)
        complete.append(t2 - t1)
    show = []
    for _ in range(5):
        t0 = time.perf_counter()
        ledger.statement("adult").to_dict()
        show.append(time.perf_counter() - t0)
    cli = []
    for _ in range(3):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "dpsynth", "ledger", "show", "--ledger", url, "--json"],
                       check=True, capture_output=True)
        cli.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    assert ledger.verify().ok
    verify = time.perf_counter() - t0
    return {
        "entries": _count(ledger), "fill_s": fill,
        "reserve_median_ms": 1e3 * statistics.median(reserve), "reserve_p99_ms": 1e3 * percentile(reserve, 0.99),
        "complete_median_ms": 1e3 * statistics.median(complete),
        "round_median_ms": 1e3 * statistics.median([a + b for a, b in zip(reserve, complete, strict=True)]),
        "round_p99_ms": 1e3 * percentile([a + b for a, b in zip(reserve, complete, strict=True)], 0.99),
        "show_median_ms": 1e3 * statistics.median(show), "show_cli_median_s": statistics.median(cli),
        "verify_s": verify,
    }


def _count(ledger: Ledger) -> int:
    with ledger._db.read() as cur:
        cur.execute("SELECT seq FROM dpsynth_ledger_head WHERE id = 1")
        return int(cur.fetchone()[0])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--entries", type=int, default=10_000)
    ap.add_argument("--ops", type=int, default=300)
    ap.add_argument("--backends", default="sqlite,postgres")
    args = ap.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for backend in args.backends.split(","):
            if backend == "sqlite":
                results["SQLite (WAL, synchronous=FULL)"] = run(f"sqlite:///{tmp}/ledger.db", args.entries, args.ops)
            else:
                from postgres import TemporaryPostgres

                with TemporaryPostgres(fsync=True) as server:
                    results["PostgreSQL 15 (local, fsync on)"] = run(server.url, args.entries, args.ops)
    print(f"\n{args.ops} reserve+complete rounds after filling to {args.entries:,} entries\n")
    print("| backend | reserve median | reserve p99 | complete median | round median | round p99 | "
          "show (in process) | `ledger show --json` | verify | fill |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, r in results.items():
        print(f"| {name} | {r['reserve_median_ms']:.1f} ms | {r['reserve_p99_ms']:.1f} ms | "
              f"{r['complete_median_ms']:.1f} ms | {r['round_median_ms']:.1f} ms | {r['round_p99_ms']:.1f} ms | "
              f"{r['show_median_ms']:.0f} ms | {r['show_cli_median_s']:.2f} s | {r['verify_s']:.2f} s | "
              f"{r['fill_s']:.0f} s |")


if __name__ == "__main__":
    main()
