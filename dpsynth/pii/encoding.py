"""Tables encoded for comparing rows: shared categorical codes, numbers scaled by the PUBLIC bounds,
row hashes, and the Gower distance to the closest record (DCR).

Used by the copy checks (:mod:`dpsynth.pii.replay`, :mod:`dpsynth.pii.dp_replay`) and the
distance-based attacks of the black-box audit (:mod:`dpsynth.audit`).

Privacy: encodes the tables it is given (real ones too); nothing here is DP, and nothing here
reports a row.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from dpsynth.exceptions import DataError, InternalError
from dpsynth.schema.encode import missing_mask, numbers_of
from dpsynth.schema.schema import Schema

_CHUNK_CELLS = 8_000_000  # query rows × reference rows × columns compared at once


class EncodedTable:
    """A table as categorical codes (int32; -1 missing) and scaled numbers (float32 in [0, 1]; NaN missing)."""

    def __init__(self, cat: np.ndarray, num: np.ndarray):
        self.cat, self.num = cat, num

    def __len__(self) -> int:
        return len(self.cat)

    def take(self, idx: np.ndarray) -> EncodedTable:
        """The rows at ``idx``."""
        return EncodedTable(self.cat[idx], self.num[idx])

    def keys(self, cat_cols: list[int], num_cols: list[int]) -> np.ndarray:
        """A 64-bit hash of each row on the given columns (missing is a value of its own)."""
        parts = {f"c{j}": self.cat[:, j] for j in cat_cols}
        parts.update({f"n{j}": np.where(np.isnan(self.num[:, j]), np.float32(-1.0), self.num[:, j]) for j in num_cols})
        if not parts:
            return np.zeros(len(self), dtype=np.uint64)
        return pd.util.hash_pandas_object(pd.DataFrame(parts), index=False).to_numpy()


def encode_tables(tables: list[pd.DataFrame], schema: Schema, names: list[str]) -> list[EncodedTable]:
    """Encode every table with shared categorical codes (text compared; levels beyond the schema's
    are codes too, so that a copied rare value counts as a copy) and numbers scaled by public bounds.

    Raises:
        DataError: text that is not a number (or a date/time) in a numeric (datetime) column; the
            message counts rows, never shows a value.
    """
    cats = [c for c in schema.columns if c.name in names and c.kind == "categorical"]
    nums = [c for c in schema.columns if c.name in names and c.kind != "categorical"]
    out = []
    problems: list[str] = []
    vocab: dict[str, dict[str, int]] = {c.name: {} for c in cats}
    for table in tables:
        cat = np.empty((len(table), len(cats)), dtype=np.int32)
        num = np.empty((len(table), len(nums)), dtype=np.float32)
        for j, col in enumerate(cats):
            values = table[col.name]
            missing = missing_mask(values, schema.missing_values)
            text = values.astype("string").fillna("")
            codes, uniques = pd.factorize(text)
            lookup = vocab[col.name]
            mapped = np.array([lookup.setdefault(u, len(lookup)) for u in uniques], dtype=np.int32)
            cat[:, j] = np.where(missing, -1, mapped[codes] if len(mapped) else -1)
        for j, col in enumerate(nums):
            values = table[col.name]
            missing = missing_mask(values, schema.missing_values)
            raw = numbers_of(values, missing, col)
            bad = int((np.isnan(raw) & ~missing).sum())
            if bad:
                what = "a date/time" if col.kind == "datetime" else "a number"
                problems.append(f"column {col.name!r}: text that is not {what} in {bad:,} row{'s' if bad != 1 else ''}")
            if col.bounds is None:
                raise InternalError(f"column {col.name!r} is {col.kind} without bounds: the schema let it through")
            low, high = col.bounds
            num[:, j] = (np.clip(raw, low, high) - low) / (high - low)
        out.append(EncodedTable(cat, num))
    if problems:
        raise DataError("; ".join(problems))
    return out


def nearest_distances(query: EncodedTable, reference: EncodedTable) -> np.ndarray:
    """Gower distance from each query row to its closest reference row (chunked numpy): categorical
    columns 0 when equal and 1 otherwise, numeric and date columns ``|a - b|`` on the scaled values,
    missing equal to missing (0) and unequal to a value (1), averaged over columns. NaN for every
    row when the reference is empty, 0 when there are no columns."""
    n_cols = query.cat.shape[1] + query.num.shape[1]
    out = np.empty(len(query), dtype=np.float32)
    if len(reference) == 0 or n_cols == 0:
        out[:] = np.nan if len(reference) == 0 else 0.0
        return out
    ref_cat, ref_num = reference.cat, reference.num
    ref_num_missing = np.isnan(ref_num)
    ref_num0 = np.nan_to_num(ref_num)
    chunk = max(1, _CHUNK_CELLS // max(1, len(reference) * n_cols))
    for start in range(0, len(query), chunk):
        qc = query.cat[start:start + chunk]
        qn = query.num[start:start + chunk]
        dist = np.zeros((len(qc), len(reference)), dtype=np.float32)
        for j in range(qc.shape[1]):
            dist += qc[:, j, None] != ref_cat[None, :, j]
        for j in range(qn.shape[1]):
            q_missing = np.isnan(qn[:, j])
            diff = np.abs(np.nan_to_num(qn[:, j])[:, None] - ref_num0[None, :, j])
            both = q_missing[:, None] & ref_num_missing[None, :, j]
            one = q_missing[:, None] ^ ref_num_missing[None, :, j]
            dist += np.where(both, 0.0, np.where(one, 1.0, diff))
        out[start:start + chunk] = dist.min(axis=1) / n_cols
    return out
