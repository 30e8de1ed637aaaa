"""Fidelity at the user privacy unit on the bundled multi-row-per-person table, K = 1, 4 and 16.

    OMP_NUM_THREADS=1 python benchmarks/user_level_fidelity.py [--reps 3] [--synth mst aim] [--json OUT]

For each synthesizer, each K and each repetition, one fit at ε = 1, δ = 1e-9 under
``privacy_unit: {column: person_id, max_rows: K}`` (secure noise, untracked), sampling as many rows as
the model's DP estimate of the bounded table. It reports the mean L1 workload errors (1-, 2- and
3-way) of the synthetic table against the FULL real table. It splits that error into
**truncation**, the bounded real table against the full one (no noise: what dropping each person's
rows beyond K costs), and the rest. As a reference it also fits at the row unit, which protects one
row and not one person.

Benchmark only: it reads public data and prints errors, never rows. The fits run in this process
one after another; the math libraries are on one thread.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import warnings

import numpy as np

from dpsynth import UNTRACKED, PrivacyUnit
from dpsynth.datasets import load_people
from dpsynth.marginals.bounding import bound_contributions
from dpsynth.quality.fidelity import fidelity
from dpsynth.schema.encode import encode
from dpsynth.synth import MST
from dpsynth.synth.aim import AIM

KS = (1, 4, 16)


def fit(kind: str, frame, schema):
    cls = MST if kind == "mst" else AIM
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # untracked fits: expected in a benchmark
        start = time.process_time()
        model = cls(epsilon=1.0, delta=1e-9).fit(frame, schema=schema, ledger=UNTRACKED)
        synthetic = model.sample(int(round(model.total_estimate_)))
        return synthetic, time.process_time() - start


def errors(real, synthetic, schema) -> dict[str, float]:
    q = fidelity(real, synthetic, schema)
    return {k: round(float(q[f"l1_{k}way"]), 4) for k in (1, 2, 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--synth", nargs="+", default=["mst"], choices=["mst", "aim"])
    ap.add_argument("--json", help="append one JSON line per fit here")
    args = ap.parse_args()
    frame, people = load_people()
    base = people.with_unit(PrivacyUnit.rows())
    real = frame.drop(columns=["person_id"])
    codes = encode(real, base)
    rows: list[dict] = []
    for kind in args.synth:
        units = [(f"user:{k}", people.with_unit(PrivacyUnit.users("person_id", max_rows=k))) for k in KS]
        units.append(("row (not per person)", base))
        for label, schema in units:
            if schema.privacy_unit.is_user:
                kept = bound_contributions(frame["person_id"], codes, schema.privacy_unit.max_rows)
                truncation = errors(real, real.iloc[kept], base)
                data = frame
            else:
                kept, truncation, data = np.arange(len(real)), {1: 0.0, 2: 0.0, 3: 0.0}, real
            for rep in range(args.reps):
                synthetic, cpu = fit(kind, data, schema)
                row = {"synth": kind, "unit": label, "rep": rep, "kept_rows": int(len(kept)),
                       "synthetic_rows": len(synthetic), "l1": errors(real, synthetic, base),
                       "truncation_l1": truncation, "cpu_s": round(cpu, 1)}
                rows.append(row)
                print(json.dumps(row), flush=True)
                if args.json:
                    with open(args.json, "a") as f:
                        f.write(json.dumps(row) + "\n")
    print("\n| synthesizer | unit | rows kept | synthetic rows (median) | 1-way L1 | 2-way L1 | 3-way L1 | "
          "of which truncation (1 / 2 / 3-way) | CPU s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for kind in args.synth:
        for label in [f"user:{k}" for k in KS] + ["row (not per person)"]:
            got = [r for r in rows if r["synth"] == kind and r["unit"] == label]
            med = {k: statistics.median(r["l1"][k] for r in got) for k in (1, 2, 3)}
            t = got[0]["truncation_l1"]
            print(f"| {kind} | {label} | {got[0]['kept_rows']:,} | "
                  f"{statistics.median(r['synthetic_rows'] for r in got):,.0f} | {med[1]:.4f} | {med[2]:.4f} | "
                  f"{med[3]:.4f} | {t[1]:.4f} / {t[2]:.4f} / {t[3]:.4f} | "
                  f"{statistics.median(r['cpu_s'] for r in got):.1f} |")


if __name__ == "__main__":
    main()
