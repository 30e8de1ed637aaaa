#!/usr/bin/env python3
"""SDMetrics' QualityReport of synthetic tables against a real one (holdout-free), run INSIDE the
SDMetrics virtual environment (SDMetrics pins pandas < 3, so it never goes into dpsynth's venv).

    .peers/sdmetrics/bin/python benchmarks/sdmetrics_quality.py REAL.csv METADATA.json SYNTH.csv [...] [--details]

METADATA.json is SDMetrics' single-table metadata ({"columns": {name: {"sdtype": ...}}});
missing values are the strings listed under "missing_values" in it (read as NaN). Prints one JSON
line per synthetic file: overall score, Column Shapes, Column Pair Trends, seconds.

Set-up (once, PyPI at set-up only; `.peers/` is git-ignored):

    python3 -m venv .peers/sdmetrics && .peers/sdmetrics/bin/pip install sdmetrics "pandas<3"
"""

from __future__ import annotations

import json
import sys
import time


def main() -> None:
    import pandas as pd
    import sdmetrics
    from sdmetrics.reports.single_table import QualityReport

    args = sys.argv[1:]
    details = "--details" in args  # also the per-column and per-pair scores
    real_path, meta_path, *synth_paths = [a for a in args if a != "--details"]
    with open(meta_path) as f:
        meta = json.load(f)
    missing = meta.pop("missing_values", [])
    # The single-table report (deprecated in favour of sdmetrics.reports.QualityReport, which wants
    # multi-table metadata) is the one the figures come from. Column Pair Trends scores only
    # the pairs whose real association passes SDMetrics' threshold (13 of Adult's 105 here).
    numeric = [c for c, v in meta["columns"].items() if v["sdtype"] == "numerical"]

    def read(path: str) -> pd.DataFrame:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=missing)
        for col in numeric:
            df[col] = pd.to_numeric(df[col], errors="coerce")
        return df

    real = read(real_path)
    for path in synth_paths:
        start = time.perf_counter()
        report = QualityReport()
        report.generate(real, read(path), meta, verbose=False)
        props = report.get_properties().set_index("Property")["Score"]
        extra = {}
        if details:
            shapes = report.get_details("Column Shapes")
            pairs = report.get_details("Column Pair Trends")
            extra = {"shapes": dict(zip(shapes["Column"], shapes["Score"].round(3), strict=True)),
                     "pairs": {f"{a}|{b}": round(float(s), 3)
                               for a, b, s in zip(pairs["Column 1"], pairs["Column 2"], pairs["Score"], strict=True)}}
        print(json.dumps({**extra, "file": path, "sdmetrics_version": sdmetrics.__version__,
                          "overall": float(report.get_score()),
                          "column_shapes": float(props["Column Shapes"]),
                          "column_pair_trends": float(props["Column Pair Trends"]),
                          "seconds": time.perf_counter() - start}), flush=True)


if __name__ == "__main__":
    main()
