#!/usr/bin/env python3
r"""AIM through DuckDB on a ``scale_data.py`` table, one line per model estimation (issue 19): where a
large-table AIM fit spends its time (the rounds, not the counts).

Each line: the estimation's number, (wall s, CPU s, measurements so far), wall s since the start. Noise
is seeded (INSECURE, benchmarking only); no ledger.

    OMP_NUM_THREADS=1 python benchmarks/aim_rounds.py /tmp/D/data/adult_10000000.parquet --epsilon 1
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data", type=Path)
    ap.add_argument("--epsilon", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    from dpsynth.datasets import adult_schema_path
    from dpsynth.marginals.duckdb_backend import DuckDBSource
    from dpsynth.privacy.ledger import UNTRACKED
    from dpsynth.schema import load_schema
    from dpsynth.synth import aim as aim_module

    original = aim_module._pgm.estimate_model
    start = time.perf_counter()
    count = 0

    def logged(*a: Any, **k: Any) -> Any:
        nonlocal count
        t, cpu = time.perf_counter(), time.process_time()
        out = original(*a, **k)
        count += 1
        print(count, (round(time.perf_counter() - t, 2), round(time.process_time() - cpu, 2), len(a[1])),
              round(time.perf_counter() - start, 1), flush=True)
        return out

    aim_module._pgm.estimate_model = logged
    source = DuckDBSource(args.data, threads=1)
    model = aim_module.AIM(epsilon=args.epsilon, delta=1e-9, insecure_seed=args.seed)
    model.fit(source, schema=load_schema(adult_schema_path()), ledger=UNTRACKED)
    print("done", round(time.perf_counter() - start, 1), model.timings_)


if __name__ == "__main__":
    main()
