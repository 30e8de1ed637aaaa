"""What schema inference reads from the private table, behind one small interface.

Every step of :mod:`dpsynth.schema.infer` (and the no-privacy opt-in) reads only per-column
aggregates: the [integers, other numbers, text] counts and the missing count of a column, the
counts of its distinct values (as text), its histogram over the public log-scale grid of
:func:`~dpsynth.schema.infer_steps.bounds_grid`, and (the opt-in only) the smallest and largest
finite number. :class:`ColumnCounts` names them; :class:`FrameCounts` answers them for a pandas
table, and :class:`dpsynth.marginals.profile.EngineCounts` inside DuckDB or Spark, with the same
answers on the same table (``tests/marginals/test_profile.py``).

Sensitivity: each row adds one to at most one of a column's three kind counts, one value count, one
histogram bin; what :mod:`dpsynth.schema.infer` measures with noise is exactly these counts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd

from dpsynth.schema.encode import missing_mask
from dpsynth.schema.infer_steps import bounds_histogram, cell_counts, finite_numbers, value_counts

__all__ = ["ColumnCounts", "FrameCounts"]


@runtime_checkable
class ColumnCounts(Protocol):
    """Exact per-column aggregates of one private table, its missing values fixed (the hints')."""

    @property
    def columns(self) -> list[str]:
        """The table's column names (public: its header)."""
        ...

    def cell_counts(self, name: str) -> np.ndarray:
        """[integers, other finite numbers, text] among the column's non-missing cells (int64)."""
        ...

    def prefetch(self, values: Sequence[str] = (), bins: Sequence[str] = ()) -> None:
        """Count the distinct values of the columns ``values`` and the histograms of ``bins`` at once (an
        engine's one pass), before they are asked for one column at a time."""
        ...

    def missing_count(self, name: str) -> int:
        """How many of the column's cells are missing."""
        ...

    def value_counts(self, name: str) -> dict[str, int]:
        """The count of each distinct non-missing value of the column, as text."""
        ...

    def bounds_histogram(self, name: str) -> np.ndarray:
        """Counts of the column's finite numbers in the bins of the public log-scale grid."""
        ...

    def number_range(self, name: str) -> tuple[float, float] | None:
        """(smallest, largest) finite number of the column, or None when it holds none."""
        ...

    def fingerprint(self) -> str:
        """A SHA-256 hex digest identifying the table's content (the ledger's input fingerprint)."""
        ...


class FrameCounts:
    """:class:`ColumnCounts` of a pandas table (the reference semantics)."""

    def __init__(self, frame: pd.DataFrame, missing_values: Sequence[str]):
        self.frame = frame
        self.missing_values = list(missing_values)

    @property
    def columns(self) -> list[str]:
        """The DataFrame's column names."""
        return [str(c) for c in self.frame.columns]

    def _numbers(self, name: str) -> np.ndarray:
        values = self.frame[name]
        numbers = finite_numbers(values, missing_mask(values, self.missing_values))
        return numbers[~np.isnan(numbers)]

    def cell_counts(self, name: str) -> np.ndarray:
        """:func:`~dpsynth.schema.infer_steps.cell_counts` of the column."""
        return cell_counts(self.frame[name], self.missing_values)

    def prefetch(self, values: Sequence[str] = (), bins: Sequence[str] = ()) -> None:
        """Nothing: a table in memory is counted column by column."""

    def missing_count(self, name: str) -> int:
        """Missing cells: NA, or one of the missing values."""
        return int(missing_mask(self.frame[name], self.missing_values).sum())

    def value_counts(self, name: str) -> dict[str, int]:
        """:func:`~dpsynth.schema.infer_steps.value_counts` of the column."""
        return value_counts(self.frame[name], self.missing_values)

    def bounds_histogram(self, name: str) -> np.ndarray:
        """:func:`~dpsynth.schema.infer_steps.bounds_histogram` of the column's finite numbers."""
        return bounds_histogram(self._numbers(name))

    def number_range(self, name: str) -> tuple[float, float] | None:
        """The smallest and largest finite number, or None."""
        numbers = self._numbers(name)
        return (float(numbers.min()), float(numbers.max())) if len(numbers) else None

    def fingerprint(self) -> str:
        """SHA-256 of pandas' row hashes of the table."""
        hashed = pd.util.hash_pandas_object(self.frame, index=False).to_numpy()
        return hashlib.sha256(np.ascontiguousarray(hashed).tobytes()).hexdigest()


class PersonCounts(FrameCounts):
    """:class:`ColumnCounts` of a table at a user privacy unit, each person's rows already bounded at K
    (:func:`~dpsynth.marginals.bounding.bound_raw_rows`). The kinds' counts and the bounds' histograms
    count rows (a person moves each by at most K); :meth:`value_counts` counts the distinct PEOPLE
    holding each value, so a person moves a value's count by at most one and touches at most K values
    of a column: the partition selection's L0 is K per column."""

    def __init__(self, frame: pd.DataFrame, people: np.ndarray, missing_values: Sequence[str]):
        super().__init__(frame, missing_values)
        self.people = np.asarray(people)

    def value_counts(self, name: str) -> dict[str, int]:
        """Distinct people per non-missing value of the column, as text."""
        values = self.frame[name]
        missing = missing_mask(values, self.missing_values)
        pairs = pd.DataFrame({"v": values[~missing].astype("string").to_numpy(), "p": self.people[~missing]})
        counted = pairs.drop_duplicates().value_counts("v", sort=False)
        return {str(k): int(v) for k, v in counted.items()}
