#!/usr/bin/env python3
"""SDMetrics' QualityReport of synthetic tables against a real one (holdout-free), run INSIDE the
SDMetrics virtual environment (SDMetrics pins pandas < 3, so it never goes into dpsynth's venv).

    .peers/sdmetrics/bin/python benchmarks/sdmetrics_quality.py REAL.csv METADATA.json SYNTH.csv [...] [--details]

METADATA.json is SDMetrics' single-table metadata ({"columns": {name: {"sdtype": ...}}});
missing values are the strings listed under "missing_values" in it (read as NaN). Prints one JSON
line per synthetic file: overall score, Column Shapes, Column Pair Trends, seconds.

It also prints ``overall_real_edges`` and ``column_pair_trends_real_edges``: the same report with
each numeric column of BOTH tables discretized on the real table's histogram edges. SDMetrics 0.32's
single-table Column Pair Trends bins each table on its own edges, so a synthetic table that lacks a
rare extreme value (Adult's education-num = 1, 51 rows of 32,561) has all its bins moved and its
pairs with that column scored against the wrong bins; its maintainers state the intended behaviour
as bins from the real data only (sdv-dev/SDMetrics pull request 368). The headline stays the report
as shipped; the second figure tells that artifact from a worse table.

Set-up (once, PyPI at set-up only; `.peers/` is git-ignored):

    python3 -m venv .peers/sdmetrics && .peers/sdmetrics/bin/pip install sdmetrics "pandas<3"
"""

from __future__ import annotations

import json
import sys
import time


def on_real_edges(real, synthetic, meta: dict, edges: dict) -> dict:
    """The report again, every numeric column of both tables binned on the real table's edges
    (empty where this SDMetrics version has no such hook)."""
    from sdmetrics.reports.single_table import QualityReport
    from sdmetrics.reports.single_table._properties import column_pair_trends as cpt

    own = getattr(cpt.ColumnPairTrends, "_discretize_column", None)
    if own is None:
        return {}

    def discretize(self, column_name, data, bin_edges=None):  # noqa: ARG001 - the hook's signature
        return own(self, column_name, data, edges.get(column_name))

    cpt.ColumnPairTrends._discretize_column = discretize
    try:
        report = QualityReport()
        report.generate(real, synthetic, meta, verbose=False)
    finally:
        cpt.ColumnPairTrends._discretize_column = own
    props = report.get_properties().set_index("Property")["Score"]
    return {"overall_real_edges": float(report.get_score()),
            "column_pair_trends_real_edges": float(props["Column Pair Trends"])}


def main() -> None:
    import numpy as np
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
    real_edges = {c: np.histogram_bin_edges(real[c].dropna()) for c in numeric}
    for path in synth_paths:
        start = time.perf_counter()
        synthetic = read(path)
        report = QualityReport()
        report.generate(real, synthetic, meta, verbose=False)
        props = report.get_properties().set_index("Property")["Score"]
        aligned = on_real_edges(real, synthetic, meta, real_edges)
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
                          "column_pair_trends": float(props["Column Pair Trends"]), **aligned,
                          "seconds": time.perf_counter() - start}), flush=True)


if __name__ == "__main__":
    main()
