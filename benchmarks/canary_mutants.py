#!/usr/bin/env python3
"""How often the canary audit catches the broken plain-contract generators of the test tree.

Runs K canary audits (the default policy's parameters) of each mutant of
``tests/release/mutant_generators.py`` at (ε, δ) = (1, 1e-6) on the bundled Adult schema, audit k
with seed ``seed + k``, and prints one JSON line per audit, then per mutant: audits caught, by what
(``copies``: bound 2; a score name: bound 1), the median ε lower bound and AUC. ``--factors`` also
measures dpsynth's MST run at other multiples of the claimed ε (the audit's power against an
overspent MST). One thread per process.

    python benchmarks/canary_mutants.py --audits 20 [--factors 100 300]
"""

from __future__ import annotations

import os

for _key in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_key, "1")

import argparse  # noqa: E402
import functools  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "release"))

MUTANTS = ("OverspentMST", "LearnsDomain", "AppendsOneRecord", "CopiesRealRows")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--audits", type=int, default=20)
    parser.add_argument("--seed", type=int, default=100)
    parser.add_argument("--mutants", nargs="*", default=list(MUTANTS))
    parser.add_argument("--factors", nargs="*", type=float, default=[], help="MST at these multiples of ε")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    import mutant_generators as mutants

    from dpsynth.audit.canary import canary_audit
    from dpsynth.datasets import load_adult

    _, schema = load_adult()
    classes = {name: getattr(mutants, name) for name in args.mutants}
    for factor in args.factors:
        classes[f"MST x{factor:g}"] = type(f"MSTx{factor:g}", (mutants.PlainMST,), {"epsilon_factor": factor})
    rows = []
    for name, cls in classes.items():
        for k in range(args.audits):
            r = canary_audit(functools.partial(cls, epsilon=1.0, delta=1e-6), schema, claimed_epsilon=1.0,
                             claimed_delta=1e-6, seed=args.seed + k)
            row = {"generator": name, "seed": args.seed + k, "violation": r.violation, "caught_by": r.caught_by,
                   "epsilon_lower_bound": r.epsilon_lower_bound, "auc": r.auc, "copies": r.copy_test["copies"]}
            rows.append(row)
            print(json.dumps(row), flush=True)
    print("\n| generator | audits | caught | by | ε lower bound (median) | AUC (median) |")
    print("|---|---|---|---|---|---|")
    for name in classes:
        mine = [r for r in rows if r["generator"] == name]
        by = sorted({str(r["caught_by"]) for r in mine if r["violation"]}) or ["-"]
        print(f"| {name} | {len(mine)} | {sum(r['violation'] for r in mine)} | {', '.join(by)} | "
              f"{statistics.median(r['epsilon_lower_bound'] for r in mine):.2f} | "
              f"{statistics.median(r['auc'] for r in mine):.3f} |")


if __name__ == "__main__":
    main()
