"""Monthly snapshots of the bundled Adult table with a planted drift, for the refresh demo and tests."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd

from dpsynth.exceptions import ParameterError

#: The salts of the two public hashes: which month a row goes to, and which rows the drift changes.
_MONTH_SALT = "dpsynth-adult-snapshots:month"
_DRIFT_SALT = "dpsynth-adult-snapshots:drift"


def _position_hash(n: int, salt: str) -> np.ndarray:
    """A uniform number in [0, 1) for each row position 0..n−1 (BLAKE2b of the salt and the position):
    a public rule that never reads a value of the row."""
    out = np.empty(n)
    for i in range(n):
        digest = hashlib.blake2b(f"{salt}:{i}".encode(), digest_size=8).digest()
        out[i] = int.from_bytes(digest, "big") / 2.0**64
    return out


def _month_names(start: str, months: int) -> list[str]:
    try:
        year, month = (int(part) for part in start.split("-"))
    except ValueError as err:
        raise ParameterError(f"start ({start!r}) must be a month as YYYY-MM") from err
    if not 1 <= month <= 12:
        raise ParameterError(f"start ({start!r}) must be a month as YYYY-MM")
    index = year * 12 + month - 1
    return [f"{(index + k) // 12:04d}-{(index + k) % 12 + 1:02d}" for k in range(months)]


def adult_snapshots(folder: str | Path, *, months: int = 3, drift_month: int | None = 3, income_share: float = 0.25,
                    start: str = "2026-01") -> list[Path]:
    """Write ``months`` monthly snapshots of the bundled Adult table into ``folder``, with a planted drift.

    The files are ``adult-2026-01.csv``, ``adult-2026-02.csv``, ``adult-2026-03.csv`` (by default: from
    ``start``, one a month), CSV text exactly like the bundled table's (same header, values as text,
    missing values ``?``), readable with the bundled public schema (:func:`~dpsynth.datasets.adult_schema_path`).

    The split is public: row i of the bundled table goes to month ⌊h(i)·months⌋, where h(i) ∈ [0, 1)
    is a BLAKE2b hash of the row's *position* (never of its values); the months are disjoint, about
    32,561 / months rows each (10,921, 10,774 and 10,866 rows for three months), in the table's order.

    The planted drift, in month ``drift_month`` (1-based; ``None``: no drift): a share ``income_share``
    of that month's ``<=50K`` rows (chosen by a second position hash) is moved to ``>50K``, so its
    ``income`` marginal moves by TVD ≈ income_share × P(<=50K) ≈ 0.25 × 0.76 ≈ 0.19. Exactly, on the
    default snapshots: 2,129 rows change, a planted TVD of 0.1959 (month 3 against itself undrifted);
    income's TVD is 0.1974 from month 2 to month 3 and 0.0042 from month 1 to month 2, and the largest
    month-1-to-2 TVD of any column on the schema's codes is 0.0206 (``occupation``; of any pair, 0.0698),
    all below their sampling noise floors (:func:`dpsynth.quality.drift.table_drift`). That is far above
    the noise of an MST release at ε = 1 on ~11k rows (1-way σ ≈ 39 counts: a TVD of ``income`` of about
    0.005 between two releases). The drift also shows in every pair with ``income``; nothing else changes.

    The output is deterministic (the same bytes on every call). Returns the paths written, oldest first.
    """
    from dpsynth.datasets import load_adult

    if not (isinstance(months, int) and months >= 1):
        raise ParameterError(f"months ({months!r}) must be a positive integer")
    if drift_month is not None and not (isinstance(drift_month, int) and 1 <= drift_month <= months):
        raise ParameterError(f"drift_month ({drift_month!r}) must be one of the months 1..{months}, or None")
    if not (isinstance(income_share, int | float) and 0 <= income_share <= 1):
        raise ParameterError(f"income_share ({income_share!r}) must be in [0, 1]")
    names = _month_names(start, months)
    table, _ = load_adult()
    month_of = np.minimum((_position_hash(len(table), _MONTH_SALT) * months).astype(np.int64), months - 1)
    changed = _position_hash(len(table), _DRIFT_SALT) < income_share
    out_dir = Path(folder)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for k, name in enumerate(names):
        rows = month_of == k
        part = table.loc[rows].copy()
        if drift_month is not None and k == drift_month - 1:
            flip = changed[rows] & (part["income"] == "<=50K").to_numpy()
            part.loc[flip, "income"] = ">50K"
        path = out_dir / f"adult-{name}.csv"
        path.write_bytes(_csv_bytes(part))
        paths.append(path)
    return paths


def _csv_bytes(part: pd.DataFrame) -> bytes:
    return part.to_csv(index=False, lineterminator="\n").encode("utf-8")


__all__ = ["adult_snapshots"]
