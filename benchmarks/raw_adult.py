#!/usr/bin/env python3
"""MST or AIM on the raw UCI Adult table (the bundled training split), evaluated on the UCI test split.

For each repetition: fit the synthesizer with fresh secure noise through a throw-away ledger, sample as many
rows as the training split, and evaluate with `dpsynth.quality.evaluate` against the training
split, with train-on-synthetic-test-on-real utility for `income` tested on the 16,281 rows of
`adult.test` that the synthesizer never saw.

    python benchmarks/raw_adult.py --test ../shared/data/adult/adult.test --epsilon 1 --reps 5 [--synthesizer aim]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import pandas as pd

from dpsynth.datasets import load_adult
from dpsynth.privacy import ApproxDP
from dpsynth.privacy.ledger import Ledger
from dpsynth.quality import evaluate
from dpsynth.synth import AIM, MST


def read_test_split(path: str, columns: list[str]) -> pd.DataFrame:
    """UCI's adult.test: a comment line first, and labels written with a trailing full stop."""
    df = pd.read_csv(path, header=None, names=columns, skiprows=1, dtype=str, keep_default_na=False,
                     skipinitialspace=True)
    df["income"] = df["income"].str.rstrip(".")
    return df


def figures(report: dict) -> dict:
    """The workload errors of ``dpsynth.quality.evaluate``'s report (against the training split) and
    its train-on-synthetic / train-on-real accuracy and ROC-AUC for ``income`` on the test split."""
    u = report["utility"]
    return {"l1_1way": report["l1_1way"], "l1_2way": report["l1_2way"], "l1_3way": report["l1_3way"],
            "tstr_accuracy": u["train_synthetic"]["accuracy"], "trtr_accuracy": u["train_real"]["accuracy"],
            "tstr_auc": u["train_synthetic"]["roc_auc"], "trtr_auc": u["train_real"]["roc_auc"]}


def evaluate_csv(path, data: pd.DataFrame, schema, test: pd.DataFrame) -> dict:
    """:func:`figures` of a synthetic table written as CSV (every value read as a string)."""
    synthetic = pd.read_csv(path, dtype=str, keep_default_na=False)
    return figures(evaluate(data, synthetic, schema, target="income", holdout=test))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--test", required=True, help="UCI adult.test")
    ap.add_argument("--epsilon", type=float, default=1.0)
    ap.add_argument("--delta", type=float, default=1e-9)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--synthesizer", choices=["mst", "aim"], default="mst")
    args = ap.parse_args()
    data, schema = load_adult()
    test = read_test_split(args.test, list(data.columns))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        ledger = Ledger(f"sqlite:///{tmp}/ledger.db", create=True)
        ledger.create_dataset("adult", ApproxDP(1000.0, 1e-6))
        for _ in range(args.reps):
            start = time.perf_counter()
            cls = {"mst": MST, "aim": AIM}[args.synthesizer]
            synth = cls(epsilon=args.epsilon, delta=args.delta).fit(data, schema=schema, ledger=ledger,
                                                                   dataset="adult")
            synthetic = synth.sample(len(data))
            seconds = time.perf_counter() - start
            report = evaluate(data, synthetic, schema, target="income", holdout=test)
            row = {
                "seconds": seconds, **figures(report), "association": report["association"]["mean"],
                "ks_mean": statistics.fmean(c["ks"] for c in report["columns"].values() if c.get("ks") is not None),
            }
            rows.append(row)
            print({k: round(v, 4) for k, v in row.items()}, flush=True)
    name = args.synthesizer.upper()
    print(f"\n{name} on raw Adult, ε = {args.epsilon}, δ = {args.delta}, {args.reps} runs: mean (min–max)\n")
    print("| figure | value |")
    print("|---|---|")
    for key in rows[0]:
        vals = [r[key] for r in rows]
        print(f"| {key} | {statistics.fmean(vals):.4f} ({min(vals):.4f}–{max(vals):.4f}) |")


if __name__ == "__main__":
    main()
