"""The counting-backend interface: what a marginal-based fit reads from the private table.

MST and AIM need only exact marginal counts over the public domain, never the rows. A backend
holds the private table where it already lives (numpy in memory, a DuckDB scan of files, a Spark
DataFrame) and answers aggregates only:

* :class:`TableSource` — a private table in an engine: ``validate(schema)`` (per-column counts of
  cells that do not fit the schema, raised as one :class:`~dpsynth.exceptions.DataError` before any
  reservation, with the same messages as :func:`dpsynth.schema.encode.encode` and no value shown),
  ``below_counts`` (the #{x < c} counts DP quantile bins score), ``fingerprint`` (the ledger's
  input fingerprint, an aggregate) and ``counter(schema)`` (the marginals under a schema);
* :class:`MarginalCounter` — ``counts(cliques)``: the dense int64 histogram of every clique (column
  indices into the schema, C order over the schema's sizes), computed in as few passes as the
  engine allows and densified to the public domain (an engine drops empty cells).

Sensitivity: every histogram is an exact count, so under add/remove-one-row one cell of each
clique's histogram moves by one; the noise is drawn by :mod:`dpsynth.mechanisms` on the dense
counts, outside the engine.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from dpsynth.marginals.numpy_backend import marginal_counts
from dpsynth.schema.schema import Schema

if TYPE_CHECKING:
    from dpsynth.marginals.sql_cells import Dialect, SourceKind

Clique = tuple[int, ...]

__all__ = ["Clique", "CodesCounter", "EngineSource", "MarginalCounter", "TableSource"]


@runtime_checkable
class MarginalCounter(Protocol):
    """Exact marginal counts of one private table under one schema."""

    schema: Schema

    def counts(self, cliques: Sequence[Sequence[int]]) -> list[np.ndarray]:
        """The dense int64 histogram (flattened, C order over ``schema.sizes``) of each clique."""
        ...


@runtime_checkable
class TableSource(Protocol):
    """A private table held by a counting engine (aggregates only leave it)."""

    #: ``numpy``, ``duckdb`` or ``spark``
    engine: str

    def validate(self, schema: Schema) -> None:
        """Raise :class:`~dpsynth.exceptions.DataError` (the messages of ``encode``) if the table
        does not fit ``schema``; reads per-column counts of bad cells only."""
        ...

    def below_counts(self, column: str, schema: Schema, grid: np.ndarray) -> tuple[np.ndarray, int]:
        """(#{x < c} for every c of ``grid``, the number of non-missing values) of a numeric column,
        its values clamped to the schema's bounds and missing cells left out."""
        ...

    def fingerprint(self, schema: Schema) -> str:
        """A SHA-256 hex digest identifying the table's content under ``schema`` (for the ledger)."""
        ...

    def counter(self, schema: Schema) -> MarginalCounter:
        """The marginal counts of the table encoded under ``schema`` (validated already)."""
        ...


@runtime_checkable
class EngineSource(TableSource, Protocol):
    """A :class:`TableSource` in an SQL engine (DuckDB, Spark), for the queries beyond a fit's (schema
    inference's counts, the copy checks' joins, the samples of ``eval`` and ``replay``)."""

    dialect: Dialect
    kinds: dict[str, SourceKind]

    @property
    def table(self) -> str:
        """The name a query reads the table by."""
        ...

    @property
    def columns(self) -> list[str]:
        """The table's column names (public: its header)."""
        ...

    def fetch(self, text: str, max_rows: int, *, overflow: str | None = None) -> dict[str, np.ndarray]:
        """The result of an aggregate query of at most ``max_rows`` rows (the one way results leave)."""
        ...

    def beside_frame(self, frame: Any) -> EngineSource:
        """A source over a pandas DataFrame in the same connection or session (a query can join both)."""
        ...

    def persist(self, text: str, what: str) -> str:
        """Run ``text`` into a temporary table or view of the engine; its name."""
        ...

    def bounded(self, schema: Schema) -> EngineSource:
        """A source over the rows each person keeps under the schema's user unit (the schema's columns),
        in the same connection or session; closed before this one."""
        ...

    def sample_rows(self, names: Sequence[str], rows: int, seed: int) -> Any:
        """A seeded sample of at most ``rows`` rows as a pandas DataFrame (ROWS LEAVE THE ENGINE)."""
        ...

    def reduce_batches(self, names: Sequence[str], fn: Callable[[Any], np.ndarray], width: int) -> np.ndarray:
        """Σ ``fn(batch)`` (an int64 vector of ``width`` counts) over every row, in pandas batches; only the
        sum is kept (DuckDB: batches in this process; Spark: on the executors, one vector per task back)."""
        ...

    def close(self) -> None:
        """Drop what this source made in the engine."""
        ...


class CodesCounter:
    """:class:`MarginalCounter` of an integer-coded table in memory (``n_rows × n_columns``)."""

    engine = "numpy"

    def __init__(self, codes: np.ndarray, schema: Schema):
        self.codes = codes
        self.schema = schema

    def counts(self, cliques: Sequence[Sequence[int]]) -> list[np.ndarray]:
        """One ``np.bincount`` pass per clique."""
        sizes = self.schema.sizes
        return [marginal_counts(self.codes, list(cl), sizes) for cl in cliques]
