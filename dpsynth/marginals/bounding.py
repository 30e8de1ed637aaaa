"""Contribution bounding: each person keeps at most K rows, chosen by a rule that ignores every other person.

Under a user privacy unit (:class:`~dpsynth.privacy.unit.PrivacyUnit` ``users(column, max_rows=K)``)
the neighbouring tables differ by one whole person. Bounding makes the sensitivities finite: of each
person's rows (those sharing a value of the key column), the K rows with the smallest priority are kept
and the rest dropped, before any measurement. The priority of a row is the MD5 digest of the public
``seed``, the person's key (as text) and the row's encoded codes, so it is a function of that row
alone: whether a row is kept depends only on its own person's rows. Adding or removing one person
therefore adds or removes at most K rows of the bounded table and changes nothing else, which is
what every mechanism's sensitivity (scaled by K) assumes. MD5 is used as a well-spread, portable
hash (SQL engines compute the same digest), not for secrecy: DP holds whatever the rule, as long as
it does not look at other people.

Identical rows of one person have equal priorities; which of them is kept does not matter (they are
the same row). How many rows were dropped is private and is never reported.

What is read: the key column and the encoded codes, in memory. Returns row indices only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import numpy as np
import pandas as pd

from dpsynth.exceptions import DataError

__all__ = ["BOUNDING_SEED", "bound_contributions", "bound_raw_rows", "check_keys", "row_priorities"]

#: The public seed of the bounding rule's digest (the same in memory and in every engine).
BOUNDING_SEED = 0


def check_keys(frame: pd.DataFrame, column: str) -> pd.Series:
    """The person key column of ``frame`` as text; a DataError (one line, no value) when it is absent
    or a key is missing."""
    if column not in frame.columns:
        raise DataError(f"data has no column {column!r}: the schema's privacy unit is keyed by it")
    keys = frame[column]
    missing = keys.isna().to_numpy() | (keys.astype(str).str.strip(" ") == "").to_numpy()  # SQL's trim
    if missing.any():
        first = int(np.flatnonzero(missing)[0])
        raise DataError(f"column {column!r}, row {first + 1}: the person key is missing ({int(missing.sum())} "
                        "row(s)); every row must name its person")
    return keys.astype(str)


def row_priorities(keys: pd.Series, codes: np.ndarray, seed: int) -> np.ndarray:
    """Each row's priority: MD5 of the text ``seed|key|c0,c1,...`` as two big-endian unsigned 64-bit
    halves (shape (n, 2); ordering rows by them orders them by the hex digest, as the SQL engines do,
    :func:`dpsynth.marginals.sql_bounding.bounded_codes_query`)."""
    rows = np.ascontiguousarray(codes, dtype=np.int64)
    return _digests(keys, (",".join(map(str, row)) for row in rows.tolist()), seed)


def bound_contributions(keys: pd.Series, codes: np.ndarray, max_rows: int, *, seed: int = BOUNDING_SEED) -> np.ndarray:
    """The indices (ascending) of the rows kept when every person keeps at most ``max_rows`` rows: those
    of smallest :func:`row_priorities`. Reads private data; returns indices only."""
    if len(keys) == 0:
        return np.zeros(0, dtype=np.int64)
    return _smallest_per_person(keys, row_priorities(keys, codes, seed), max_rows)


def bound_raw_rows(keys: pd.Series, frame: pd.DataFrame, max_rows: int, *, seed: int = BOUNDING_SEED) -> np.ndarray:
    """As :func:`bound_contributions`, for a table without a schema yet (DP schema inference): a row's
    priority is the MD5 of ``seed|key|`` and its cells' text (every column of ``frame``, in order,
    separated by the unit separator). Reads private data; returns indices only."""
    if len(keys) == 0:
        return np.zeros(0, dtype=np.int64)
    cells = frame.astype("string").fillna("").to_numpy()
    return _smallest_per_person(keys, _digests(keys, ("\x1f".join(row) for row in cells), seed), max_rows)


def _digests(keys: pd.Series, rows: Iterable[str], seed: int) -> np.ndarray:
    """MD5 of ``seed|key|row`` for each row's text, as two big-endian unsigned 64-bit halves (n × 2)."""
    out = np.empty((len(keys), 2), dtype=np.uint64)
    prefix = f"{int(seed)}|".encode()
    for i, (key, row) in enumerate(zip(keys.tolist(), rows, strict=True)):
        digest = hashlib.md5(prefix + str(key).encode("utf-8") + b"|" + row.encode("utf-8"),
                             usedforsecurity=False).digest()
        out[i] = (int.from_bytes(digest[:8], "big"), int.from_bytes(digest[8:], "big"))
    return out


def _smallest_per_person(keys: pd.Series, priority: np.ndarray, max_rows: int) -> np.ndarray:
    """The rows of smallest ``priority`` (n × 2 unsigned halves), at most ``max_rows`` a person, ascending."""
    person = pd.factorize(keys, sort=False)[0]  # only a grouping: which rows share a person
    order = np.lexsort((priority[:, 1], priority[:, 0], person))
    grouped = person[order]
    starts = np.r_[0, np.flatnonzero(grouped[1:] != grouped[:-1]) + 1]
    rank = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
    return np.sort(order[rank < int(max_rows)])
