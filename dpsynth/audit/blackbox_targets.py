"""The targets of the black-box audit: the records whose membership its attacks try to infer.

* **canaries** built from the public schema domain: every column at one of its rarest levels in
  the base data (canary 0 at the rarest; further canaries at random among the rarest quarter),
  numeric columns at a value drawn inside the chosen bin's public bounds. (Choosing the rarest
  levels reads the base data's level counts: the audit is not DP.)
* **outliers**: the real records most isolated by their nearest-neighbour Gower distance in the
  audited data, the most vulnerable real people.

For each target, world 0 is its base data without it and world 1 the same plus the target.
A target is described in results by kind and index (and an outlier's nearest-neighbour distance),
never by its values.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from dpsynth.schema.encode import decode, encode
from dpsynth.schema.schema import Schema

#: Columns of a target's rarest values matched by the counting attack's tie-break.
RARE_COLUMNS = 3
_CHUNK_CELLS = 4_000_000


@dataclass
class Target:
    """One attacked record with its two worlds and what the attacks need about it."""

    kind: str
    index: int
    row: pd.DataFrame  # one row (private for an outlier: never reported)
    base: pd.DataFrame  # world 0
    codes: np.ndarray
    rare_columns: np.ndarray
    log_reference: float
    nn_distance: float | None = None

    def describe(self) -> dict[str, Any]:
        """The target as the result reports it: kind and index (an outlier's distance too), never values."""
        out: dict[str, Any] = {"kind": self.kind, "index": self.index}
        if self.nn_distance is not None:
            out["nn_distance"] = round(self.nn_distance, 6)
        return out


def _gower_block(query: Any, reference: Any, q: slice) -> np.ndarray:
    """Gower distances (× number of columns) of query rows ``q`` to every reference row, with
    :func:`dpsynth.pii.encoding.nearest_distances`'s conventions (missing equal to missing)."""
    qc, qn = query.cat[q], query.num[q]
    dist = np.zeros((len(qc), len(reference)), dtype=np.float32)
    for j in range(qc.shape[1]):
        dist += qc[:, j, None] != reference.cat[None, :, j]
    for j in range(qn.shape[1]):
        q_missing, r_missing = np.isnan(qn[:, j]), np.isnan(reference.num[:, j])
        diff = np.abs(np.nan_to_num(qn[:, j])[:, None] - np.nan_to_num(reference.num[:, j])[None, :])
        one = q_missing[:, None] ^ r_missing[None, :]
        both = q_missing[:, None] & r_missing[None, :]
        dist += np.where(both, 0.0, np.where(one, 1.0, diff))
    return dist


def isolation(table: pd.DataFrame, schema: Schema) -> np.ndarray:
    """Each row's Gower distance to its nearest *other* row (0 for a row with a duplicate)."""
    from dpsynth.pii.encoding import encode_tables

    (enc,) = encode_tables([table], schema, schema.names)
    n, n_cols = len(enc), enc.cat.shape[1] + enc.num.shape[1]
    out = np.zeros(n, dtype=float)
    if n < 2 or n_cols == 0:
        return out
    chunk = max(1, _CHUNK_CELLS // (n * n_cols))
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        dist = _gower_block(enc, enc, slice(start, stop))
        dist[np.arange(stop - start), np.arange(start, stop)] = np.inf
        out[start:stop] = dist.min(axis=1) / n_cols
    return out


def _as_like(values: pd.DataFrame, like: pd.DataFrame) -> pd.DataFrame:
    """A decoded canary row with the real table's column types (text stays text)."""
    out = {}
    for name in like.columns:
        if name not in values.columns:
            out[name] = [None]
            continue
        v = values[name].iloc[0]
        if v is not None and not pd.isna(v) and not pd.api.types.is_numeric_dtype(like[name].dtype):
            v = str(v)
        out[name] = [v]
    return pd.DataFrame(out)


def _canary_codes(codes: np.ndarray, schema: Schema, k: int, rng: np.random.Generator) -> np.ndarray:
    """Canary ``k``: every column at one of its rarest (non-missing, non-``other``) values in the
    base data; canary 0 at the rarest, the others at random among the rarest quarter."""
    out = np.empty(len(schema), dtype=np.int64)
    for j, col in enumerate(schema.columns):
        n_values = len(col.levels) if col.kind == "categorical" else col.n_values
        counts = np.bincount(codes[:, j], minlength=col.size)[:n_values]
        order = np.argsort(counts, kind="stable")
        pool = order[: max(1, n_values // 4)]
        out[j] = pool[0] if k == 0 else rng.choice(pool)
    return out


def _rare_columns(target: np.ndarray, base_codes: np.ndarray) -> np.ndarray:
    freq = (base_codes == target[None, :]).sum(axis=0)
    return np.argsort(freq, kind="stable")[: min(RARE_COLUMNS, len(target))]


def choose_targets(pool: pd.DataFrame, pool_codes: np.ndarray, pool_idx: np.ndarray, schema: Schema, *,
                   canaries: int, outliers: int, rng: np.random.Generator,
                   log_reference: Callable[[np.ndarray], float]) -> list[Target]:
    """The ``outliers`` most isolated rows of the audited ``pool`` (indexed in the real table by
    ``pool_idx``) and ``canaries`` canaries drawn with ``rng``: canaries first, then outliers."""
    targets: list[Target] = []
    if outliers:
        distances = isolation(pool, schema)
        for p in np.argsort(-distances, kind="stable")[:outliers]:
            base = pool.drop(index=int(p)).reset_index(drop=True)
            codes = pool_codes[p]
            base_codes = np.delete(pool_codes, p, axis=0)
            targets.append(Target("outlier", int(pool_idx[p]), pool.iloc[[int(p)]].reset_index(drop=True), base,
                                  codes, _rare_columns(codes, base_codes), log_reference(codes),
                                  float(distances[p])))
    for k in range(canaries):
        codes = _canary_codes(pool_codes, schema, k, rng)
        row = _as_like(decode(codes[None, :], schema, rng), pool)
        targets.append(Target("canary", k, row, pool, encode(row, schema)[0], _rare_columns(codes, pool_codes),
                              log_reference(codes)))
    targets.sort(key=lambda t: (t.kind != "canary", t.index))
    return targets
