"""How much the drift statistic of a refresh moves when nothing drifted, and when a drift was planted.

    OMP_NUM_THREADS=1 python benchmarks/refresh_drift_noise.py [--reps 30] [--epsilon 1]

On the bundled monthly snapshots (``dpsynth.datasets.adult_snapshots``: months 1 and 2 differ by
sampling only, month 3 carries a planted ``income`` drift of TVD 0.196), each repetition fits MST
once on each month (secure noise, untracked), samples its DP row count, and measures what a refresh's
gate measures (``dpsynth.quality.drift``): the largest column TVD between the month-1 and month-2
releases (no drift), and the ``income`` TVD between the month-2 and month-3 releases (the planted
drift). These are the distributions the drift ceiling of ``tests/refresh`` sits between.

Benchmark only: it reads public data and prints TVDs, never rows.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings

from dpsynth import UNTRACKED
from dpsynth.datasets import adult_snapshots, load_adult
from dpsynth.io import read_table
from dpsynth.quality.drift import summarise, table_drift
from dpsynth.synth.mst import MST


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=30)
    parser.add_argument("--epsilon", type=float, default=1.0)
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # the untracked fits warn loudly, by design
    _, schema = load_adult()
    with tempfile.TemporaryDirectory() as folder:
        months = [read_table(p) for p in adult_snapshots(folder)]
    same, planted, started = [], [], time.process_time()
    for rep in range(args.reps):
        tables = []
        for month in months:
            fit = MST(epsilon=args.epsilon, delta=1e-9).fit(month, schema=schema, ledger=UNTRACKED)
            tables.append(fit.sample(int(round(fit.total_estimate_))))
        same.append(summarise(table_drift(tables[0], tables[1], schema), over=("columns",))["max_tvd"])
        planted.append(table_drift(tables[1], tables[2], schema)["columns"]["income"]["tvd"])
        print(f"rep {rep}: no drift, largest column TVD {same[-1]:.4f}; planted, income TVD {planted[-1]:.4f}",
              flush=True)
    for name, values in (("no drift (largest column TVD, months 1 -> 2)", same),
                         ("planted drift (income TVD, months 2 -> 3)", planted)):
        print(f"{name}: mean {statistics.fmean(values):.4f}, sd {statistics.stdev(values):.4f}, "
              f"min {min(values):.4f}, max {max(values):.4f} over {len(values)} pairs of fits")
    print(f"CPU {time.process_time() - started:.1f} s")


if __name__ == "__main__":
    main()
