"""Schema-driven encoding of a table to integer codes, and decoding back to values.

Encoding reads the private table, but learns nothing from it: the codes are fixed by the schema.
Numeric values are clamped to the declared bounds before binning; a categorical column with an
``other`` level encodes every value outside its levels to that level. Every problem found is
collected and raised at once as a :class:`~dpsynth.exceptions.DataError` naming the column and
the number of rows, never a value.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from dpsynth.exceptions import DataError
from dpsynth.schema.column import EPOCH, RESOLUTIONS, Column, from_units, integer_bin
from dpsynth.schema.schema import Schema


def missing_mask(values: pd.Series, missing_values: Sequence[str]) -> np.ndarray:
    """Which cells are missing: NA, or one of the ``missing_values`` strings (a schema's)."""
    mask = np.array(values.isna().to_numpy(), dtype=bool)
    if missing_values:
        tokens = values.astype("string").isin(list(missing_values)).fillna(False)
        mask |= np.asarray(tokens.to_numpy(dtype=bool))
    return mask


def _rows(n: int) -> str:
    return f"{n:,} row{'s' if n != 1 else ''}"


def encode(data: pd.DataFrame, schema: Schema) -> np.ndarray:
    """Integer codes (``n_rows × n_columns``, int64) of ``data`` under ``schema``.

    Raises:
        DataError: a schema column is missing from the data, the table is empty, or values do
            not fit the schema (outside the declared levels, non-numeric text in a numeric
            column, missing values in a column not declared nullable).
    """
    absent = [c for c in schema.names if c not in data.columns]
    if absent:
        raise DataError(
            f"the data has no column(s) {', '.join(repr(c) for c in absent)} that the schema declares"
        )
    if len(data) == 0:
        raise DataError("the data has no rows")
    problems: list[str] = []
    out = np.empty((len(data), len(schema)), dtype=np.int64)
    for j, col in enumerate(schema.columns):
        codes, errs = _encode_column(data[col.name], col, schema)
        problems.extend(errs)
        if codes is not None:
            out[:, j] = codes
    if problems:
        raise DataError("; ".join(problems))
    return out


def _encode_column(values: pd.Series, col: Column, schema: Schema) -> tuple[np.ndarray | None, list[str]]:
    missing = missing_mask(values, schema.missing_values)
    errs: list[str] = []
    n_missing = int(missing.sum())
    if n_missing and not col.nullable:
        errs.append(
            f"column {col.name!r}: a missing value in {_rows(n_missing)}, but the column is not "
            "declared nullable"
        )
    if col.kind == "categorical":
        lookup = {str(level): code for code, level in enumerate(col.levels)}
        text = values.astype("string")
        codes_f = text.map(lookup, na_action="ignore").astype("Float64").to_numpy(dtype=float, na_value=np.nan)
        unknown = np.isnan(codes_f) & ~missing
        if col.other_code is not None:
            codes_f[unknown] = col.other_code
            unknown[:] = False
        n_unknown = int(unknown.sum())
        if n_unknown:
            errs.append(
                f"column {col.name!r}: a value outside the {len(col.levels)} declared levels in "
                f"{_rows(n_unknown)}"
            )
        if errs:
            return None, errs
        codes = np.asarray(np.where(missing, col.missing_code if col.nullable else 0, np.nan_to_num(codes_f)))
        codes = codes.astype(np.int64)
        return codes, []
    numeric = numbers_of(values, missing, col)
    bad = np.isnan(numeric) & ~missing
    n_bad = int(bad.sum())
    if n_bad:
        what = "a date/time" if col.kind == "datetime" else "a number"
        errs.append(f"column {col.name!r}: text that is not {what} in {_rows(n_bad)}")
    if errs:
        return None, errs
    assert col.bounds is not None
    clamped = np.clip(np.nan_to_num(numeric, nan=col.bounds[0]), col.bounds[0], col.bounds[1])
    inner = np.asarray(col.edges[1:-1], dtype=float)
    codes = np.searchsorted(inner, clamped, side="right").astype(np.int64)
    if col.nullable:
        codes[missing] = col.n_values
    return codes, []


def numbers_of(values: pd.Series, missing: np.ndarray, col: Column | None = None) -> np.ndarray:
    """Float values of the cells (dates/times in the units of a datetime ``col``); NaN where
    ``missing`` or unreadable."""
    kept = values.where(~missing)
    if col is not None and col.kind == "datetime":
        assert col.resolution is not None
        stamps = pd.to_datetime(kept, errors="coerce", format="ISO8601", utc=True).dt.tz_localize(None)
        seconds = (stamps - pd.Timestamp(EPOCH)).dt.total_seconds().to_numpy(dtype=float, na_value=np.nan)
        return np.floor(seconds / RESOLUTIONS[col.resolution])
    return pd.to_numeric(kept, errors="coerce").astype("Float64").to_numpy(dtype=float, na_value=np.nan)


def numeric_values(values: pd.Series, col: Column, schema: Schema) -> np.ndarray:
    """Values of a numeric or datetime column as floats clamped to its bounds (NaN where missing
    or unreadable); dates and times in the column's units."""
    assert col.bounds is not None
    return np.clip(numbers_of(values, missing_mask(values, schema.missing_values), col), col.bounds[0], col.bounds[1])


def decode(codes: np.ndarray, schema: Schema, rng: np.random.Generator) -> pd.DataFrame:
    """Values for integer codes. Post-processing: uses only the schema and ``rng``.

    A numeric bin decodes to a value drawn uniformly inside it (an integer for integer columns);
    a missing code decodes to a missing value.
    """
    codes = np.asarray(codes)
    cols: dict[str, pd.Series] = {}
    for j, col in enumerate(schema.columns):
        c = codes[:, j]
        missing = (c == col.missing_code) if col.nullable else np.zeros(len(c), dtype=bool)
        safe = np.where(missing, 0, c)
        if col.kind == "categorical":
            values = [*col.levels, *([col.other] if col.other is not None else [])]
            levels = np.empty(len(values), dtype=object)
            levels[:] = values
            vals = levels[safe]
            vals[missing] = None
            if all(isinstance(v, int) for v in values) and not missing.any():
                cols[col.name] = pd.Series(vals.astype(np.int64))
            else:
                cols[col.name] = pd.Series(vals, dtype=object)
        elif col.integral:
            assert col.bounds is not None
            bins = [integer_bin(col.edges, b, col.bounds[1]) for b in range(col.n_values)]
            low = np.array([b[0] for b in bins], dtype=np.int64)[safe]
            high = np.array([b[1] for b in bins], dtype=np.int64)[safe]
            vals_i = rng.integers(low, high + 1)
            if col.kind == "datetime":
                assert col.resolution is not None
                text = from_units(vals_i, col.resolution)
                text[missing] = None
                cols[col.name] = pd.Series(text, dtype=object)
                continue
            series = pd.Series(vals_i, dtype="Int64")
            series[missing] = pd.NA
            cols[col.name] = series if missing.any() else series.astype(np.int64)
        else:
            edges = np.asarray(col.edges, dtype=float)
            vals_f = rng.uniform(edges[safe], edges[safe + 1])
            vals_f[missing] = np.nan
            cols[col.name] = pd.Series(vals_f)
    return pd.DataFrame(cols)
