"""Per-column distribution distances and the difference of pairwise association matrices.

Privacy: not DP. These read the real table and are internal evidence; they report aggregates.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from dpsynth.marginals.numpy_backend import DENSE_CELLS
from dpsynth.schema.encode import numeric_values
from dpsynth.schema.schema import Schema


def column_distances(
    real: pd.DataFrame, synthetic: pd.DataFrame, real_codes: np.ndarray, synthetic_codes: np.ndarray, schema: Schema
) -> dict[str, dict[str, float | str | None]]:
    """TVD for every column (on its codes); KS statistic and range-normalised Wasserstein-1
    distance for numeric columns (on the values)."""
    out: dict[str, dict[str, float | str | None]] = {}
    for j, col in enumerate(schema.columns):
        r = np.bincount(real_codes[:, j], minlength=col.size) / len(real_codes)
        s = np.bincount(synthetic_codes[:, j], minlength=col.size) / len(synthetic_codes)
        entry: dict[str, float | str | None] = {"kind": col.kind, "tvd": float(0.5 * np.abs(r - s).sum())}
        if col.kind != "categorical":
            assert col.bounds is not None
            a = numeric_values(real[col.name], col, schema)
            b = numeric_values(synthetic[col.name], col, schema)
            a, b = a[~np.isnan(a)], b[~np.isnan(b)]
            if len(a) and len(b):
                entry["ks"] = float(stats.ks_2samp(a, b).statistic)
                entry["wasserstein"] = float(stats.wasserstein_distance(a, b) / (col.bounds[1] - col.bounds[0]))
            else:
                entry["ks"] = entry["wasserstein"] = None
        out[col.name] = entry
    return out


def _cramers_v(x: np.ndarray, y: np.ndarray, kx: int, ky: int) -> float:
    if kx * ky > DENSE_CELLS:  # too many cells for a dense table: the same statistic from the occupied cells
        return _cramers_v_sparse(x, y)
    table = np.bincount(x * ky + y, minlength=kx * ky).reshape(kx, ky).astype(float)
    table = table[table.sum(axis=1) > 0][:, table.sum(axis=0) > 0]
    if min(table.shape) < 2:
        return 0.0
    chi2 = stats.chi2_contingency(table, correction=False)[0]
    return float(math.sqrt(chi2 / (table.sum() * (min(table.shape) - 1))))


def _cramers_v_sparse(x: np.ndarray, y: np.ndarray) -> float:
    """Cramér's V from the occupied cells only: χ² = n·(Σ O²/(r·c)) − n over the cells with O > 0 (the
    expected counts r·c/n of the empty cells add up to what the full sum subtracts), on the rows and
    columns that occur (as the dense version keeps)."""
    xs, xi = np.unique(x, return_inverse=True)
    ys, yi = np.unique(y, return_inverse=True)
    if min(len(xs), len(ys)) < 2:
        return 0.0
    n = float(len(x))
    cells, counts = np.unique(xi.astype(np.int64) * len(ys) + yi, return_counts=True)
    rows = np.bincount(xi, minlength=len(xs)).astype(float)[cells // len(ys)]
    cols = np.bincount(yi, minlength=len(ys)).astype(float)[cells % len(ys)]
    chi2 = max(0.0, n * float(np.sum(counts.astype(float) ** 2 / (rows * cols))) - n)
    return float(math.sqrt(chi2 / (n * (min(len(xs), len(ys)) - 1))))


def _correlation_ratio(codes: np.ndarray, values: np.ndarray, k: int) -> float:
    """η: the share of the numeric variable's spread explained by the categorical one."""
    if len(values) < 2 or np.var(values) == 0:
        return 0.0
    counts = np.bincount(codes, minlength=k)
    means = np.bincount(codes, weights=values, minlength=k) / np.maximum(counts, 1)
    between = np.sum(counts * (means - values.mean()) ** 2)
    return float(math.sqrt(between / np.sum((values - values.mean()) ** 2)))


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 2 or np.std(a) == 0 or np.std(b) == 0:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def association_matrix(table: pd.DataFrame, codes: np.ndarray, schema: Schema) -> np.ndarray:
    """Pairwise associations: Cramér's V (categorical–categorical), the correlation ratio η
    (categorical–numeric) and Pearson's r (numeric–numeric). Numeric columns use their values
    (missing values as the lower bound), categorical columns their codes."""
    d = len(schema)
    numeric: dict[int, np.ndarray] = {}
    for j, col in enumerate(schema.columns):
        if col.kind != "categorical":
            assert col.bounds is not None
            numeric[j] = np.nan_to_num(numeric_values(table[col.name], col, schema), nan=col.bounds[0])
    m = np.eye(d)
    for a in range(d):
        for b in range(a + 1, d):
            ca, cb = schema.columns[a], schema.columns[b]
            if a in numeric and b in numeric:
                v = _pearson(numeric[a], numeric[b])
            elif a in numeric:
                v = _correlation_ratio(codes[:, b], numeric[a], cb.size)
            elif b in numeric:
                v = _correlation_ratio(codes[:, a], numeric[b], ca.size)
            else:
                v = _cramers_v(codes[:, a], codes[:, b], ca.size, cb.size)
            m[a, b] = m[b, a] = v
    return m


def association_difference(
    real: pd.DataFrame, synthetic: pd.DataFrame, real_codes: np.ndarray, synthetic_codes: np.ndarray, schema: Schema
) -> dict[str, Any]:
    """Mean and max absolute difference of the real and synthetic association matrices."""
    r = association_matrix(real, real_codes, schema)
    s = association_matrix(synthetic, synthetic_codes, schema)
    iu = np.triu_indices(len(schema), k=1)
    diff = np.abs(r - s)[iu]
    worst = int(np.argmax(diff)) if len(diff) else 0
    return {
        "mean": float(diff.mean()) if len(diff) else 0.0,
        "max": float(diff.max()) if len(diff) else 0.0,
        "max_pair": [schema.names[iu[0][worst]], schema.names[iu[1][worst]]] if len(diff) else [],
    }
