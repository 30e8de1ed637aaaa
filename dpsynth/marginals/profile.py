"""What schema inference reads, counted inside DuckDB or Spark: per-column aggregates only.

:class:`EngineCounts` answers :class:`~dpsynth.schema.infer_counts.ColumnCounts` for a table held by
a :class:`~dpsynth.marginals.duckdb_backend.DuckDBSource` or a
:class:`~dpsynth.marginals.spark_backend.SparkSource`, with the answers of
:class:`~dpsynth.schema.infer_counts.FrameCounts` on the same table read by pandas (the cells' text,
missing values and numbers as :mod:`dpsynth.marginals.sql` reads them). Passes over the table:

1. on opening, ONE row: the row count, an aggregate hash (the ledger's fingerprint) and, per column,
   its missing cells, finite numbers and integral finite numbers (the [integers, other numbers,
   text] counts of the kinds step);
2. on the first value count, ONE GROUPING SETS query for every column asked for at once, or
   (:meth:`EngineCounts.prefetch`) every column the step will read: each column's distinct
   non-missing texts with their counts (at most :data:`MAX_DISTINCT` per column reach Python);
3. on the first bounds histogram, ONE GROUPING SETS query of the log-scale bin of every numeric
   column's finite numbers (at most the grid's bins per column).

Nothing else leaves the engine; the noise is drawn by :mod:`dpsynth.mechanisms` in Python, as for an
in-memory table.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np

from dpsynth.exceptions import DataError
from dpsynth.marginals import sql
from dpsynth.marginals.backend import EngineSource
from dpsynth.marginals.sql_cells import cell_missing, cell_number, cell_text
from dpsynth.schema.infer_steps import bounds_grid

__all__ = ["MAX_DISTINCT", "EngineCounts", "EngineTable", "open_table"]

#: distinct values of one column that may come back for the partition selection of its levels
MAX_DISTINCT = 5_000_000
#: columns per GROUPING SETS query (a grouping id is a 64-bit integer in both engines)
_SETS = 48


def _finite(x: str, dialect: sql.Dialect) -> str:
    """``x`` is a finite number (NULL, NaN and ±inf are not: NaN sorts above every number in both engines)."""
    top = sql.double_literal(1.7976931348623157e308, dialect)
    return f"({x} BETWEEN -{top} AND {top})"


def _integral(x: str, dialect: sql.Dialect) -> str:
    # Spark's floor of a double is a 64-bit integer (it saturates); round(x, 0) stays a double
    return f"(round({x}, 0) = {x})" if dialect == "spark" else f"(floor({x}) = {x})"


def _cells(names: Sequence[str], source: EngineSource, tokens: Sequence[str], *, raw: bool = False,
           extra: str = "") -> str:
    """One row per table row: ``m{j}`` (missing), ``x{j}`` (the number read, or NULL/NaN) and ``v{j}`` (the
    text) of each column, (``raw``) the columns themselves, and ``extra`` (``, expression AS name``)."""
    dialect = source.dialect
    parts = [sql.quote_identifier(name, dialect) for name in names] if raw else []
    for j, name in enumerate(names):
        ref, kind = sql.quote_identifier(name, dialect), source.kinds[name]
        parts.append(f"{cell_missing(ref, kind, tokens, dialect)} AS m{j}, {cell_number(ref, kind, dialect)} AS x{j}, "
                     f"{cell_text(ref, kind, dialect)} AS v{j}")
    return f"SELECT {', '.join(parts)}{extra} FROM {source.table}"


def _hash(names: Sequence[str], dialect: sql.Dialect) -> str:
    refs = ", ".join(sql.quote_identifier(n, dialect) for n in names)
    if dialect == "spark":
        return (f"SUM(CAST(xxhash64({refs}) AS DECIMAL(38, 0))) AS h1, "
                f"SUM(CAST(hash({refs}) AS DECIMAL(38, 0))) AS h2")
    return f"SUM(CAST(hash({refs}) AS HUGEINT)) AS h1, SUM(CAST(hash({refs}, 1) AS HUGEINT)) AS h2"


def kinds_query(names: Sequence[str], source: EngineSource, tokens: Sequence[str]) -> str:
    """ONE row: ``n`` rows, the hash sums ``h1``, ``h2`` and per column ``m{j}`` (missing cells), ``f{j}``
    (finite numbers among the others) and ``i{j}`` (integral ones)."""
    dialect = source.dialect
    sums = []
    for j in range(len(names)):
        number = f"(NOT m{j} AND {_finite(f'x{j}', dialect)})"
        sums.append(f"SUM(CASE WHEN m{j} THEN 1 ELSE 0 END) AS m{j}, SUM(CASE WHEN {number} THEN 1 ELSE 0 END) AS "
                    f"f{j}, SUM(CASE WHEN {number} AND {_integral(f'x{j}', dialect)} THEN 1 ELSE 0 END) AS i{j}")
    return (f"SELECT COUNT(*) AS n, {_hash(names, dialect)}, {', '.join(sums)} "
            f"FROM ({_cells(names, source, tokens, raw=True)}) AS c")


def _grouping(keys: Sequence[str], dialect: sql.Dialect) -> tuple[str, str]:
    """(the grouping id expression, the GROUP BY clause) of one set per key."""
    fn = "grouping_id" if dialect == "spark" else "GROUPING"
    listed = ", ".join(keys) + " " if dialect == "spark" else ""
    return f"{fn}({', '.join(keys)})", f"GROUP BY {listed}GROUPING SETS ({', '.join(f'({k})' for k in keys)})"


def values_query(names: Sequence[str], wanted: Sequence[int], source: EngineSource, tokens: Sequence[str],
                 person: str | None = None) -> str:
    """Rows ``(g, k{i}.., n)``: per wanted column ``names[wanted[i]]`` its non-missing texts and their counts
    (``g`` has every bit set but the column's, bit ``len(wanted) - 1 - i``); with ``person`` (the key column
    of a user unit), the number of distinct people holding each text instead of rows."""
    keys = [f"k{i}" for i in range(len(wanted))]
    cols = ", ".join(f"CASE WHEN m{j} THEN NULL ELSE v{j} END AS k{i}" for i, j in enumerate(wanted))
    gid, group = _grouping(keys, source.dialect)
    count = "COUNT(*)" if person is None else "COUNT(DISTINCT dpsynth_person)"
    carried = "" if person is None else f", {sql.quote_identifier(person, source.dialect)} AS dpsynth_person"
    inner = _cells(names, source, tokens, extra=carried)
    keep = "" if person is None else ", dpsynth_person"
    return (f"SELECT {gid} AS g, {', '.join(keys)}, {count} AS n FROM (SELECT {cols}{keep} FROM "
            f"({inner}) AS c) AS s {group}")


def bins_query(names: Sequence[str], wanted: Sequence[int], source: EngineSource, tokens: Sequence[str]) -> str:
    """Rows ``(g, b{i}.., n)``: per wanted column, the count of its finite numbers ``x`` by
    ``b = #{edges <= x}`` over :func:`~dpsynth.schema.infer_steps.bounds_grid` (NULL: no finite number)."""
    dialect = source.dialect
    edges = bounds_grid().tolist()
    keys = [f"b{i}" for i in range(len(wanted))]
    cols = ", ".join(f"CASE WHEN NOT m{j} AND {_finite(f'x{j}', dialect)} THEN "
                     f"{sql.searchsorted_sql(f'x{j}', edges, dialect)} END AS b{i}" for i, j in enumerate(wanted))
    gid, group = _grouping(keys, dialect)
    return (f"SELECT {gid} AS g, {', '.join(keys)}, COUNT(*) AS n FROM (SELECT {cols} FROM "
            f"({_cells(names, source, tokens)}) AS c) AS s {group}")


def range_query(names: Sequence[str], j: int, source: EngineSource, tokens: Sequence[str]) -> str:
    """ONE row ``(lo, hi)``: the smallest and largest finite number of column ``names[j]``."""
    finite = f"NOT m{j} AND {_finite(f'x{j}', source.dialect)}"
    return (f"SELECT MIN(CASE WHEN {finite} THEN x{j} END) AS lo, MAX(CASE WHEN {finite} THEN x{j} END) AS hi "
            f"FROM ({_cells(names, source, tokens)}) AS c")


def _groups(out: dict[str, np.ndarray], prefix: str, count: int) -> list[list[tuple[Any, int]]]:
    """The rows of a GROUPING SETS result split by set: (key, n) of the set's non-NULL keys."""
    per: list[list[tuple[Any, int]]] = [[] for _ in range(count)]
    full = (1 << count) - 1
    g = [int(v) for v in out["g"]]
    n = [int(v) for v in out["n"]]
    for i in range(count):
        keys = out[f"{prefix}{i}"]
        mask = getattr(keys, "mask", None)  # DuckDB gives a masked array where a column holds NULL
        want = full ^ (1 << (count - 1 - i))
        for row, gid in enumerate(g):
            if gid != want:
                continue
            key = keys[row]
            if key is None or (mask is not None and np.ndim(mask) and mask[row]):
                continue  # the set's NULL key: the missing (or non-numeric) cells
            per[i].append((key, n[row]))
    return per


class EngineCounts:
    """:class:`~dpsynth.schema.infer_counts.ColumnCounts` of a table in an engine, under the hints'
    ``missing_values`` (pass 1 runs here)."""

    def __init__(self, source: EngineSource, missing_values: Sequence[str], *, names: Sequence[str] | None = None,
                 person: str | None = None):
        self.source = source
        self.names = list(source.columns) if names is None else list(names)
        self.tokens = list(missing_values)
        #: at a user unit, the key column: the values are then counted in distinct people (the rows already bounded)
        self.person = person
        row = source.fetch(kinds_query(self.names, source, self.tokens), 1)
        first = {k: v[0] for k, v in row.items()}
        self.rows = int(first["n"] or 0)
        if self.rows == 0:
            raise DataError("the data has no rows")
        self._hash = (int(first["h1"] or 0), int(first["h2"] or 0))
        self._kinds = {name: (int(first[f"m{j}"] or 0), int(first[f"f{j}"] or 0), int(first[f"i{j}"] or 0))
                       for j, name in enumerate(self.names)}
        self._values: dict[str, dict[str, int]] = {}
        self._bins: dict[str, np.ndarray] = {}

    @property
    def columns(self) -> list[str]:
        """The table's header."""
        return list(self.names)

    def cell_counts(self, name: str) -> np.ndarray:
        """[integers, other finite numbers, text] among the non-missing cells (from pass 1)."""
        missing, finite, integral = self._kinds[name]
        return np.array([integral, finite - integral, self.rows - missing - finite], dtype=np.int64)

    def missing_count(self, name: str) -> int:
        """Missing cells of the column (from pass 1)."""
        return self._kinds[name][0]

    def prefetch(self, values: Sequence[str] = (), bins: Sequence[str] = ()) -> None:
        """Count the distinct values of ``values`` and the histograms of ``bins`` (columns), one query each
        per :data:`_SETS` columns, before the steps ask for them one by one."""
        todo = [n for n in dict.fromkeys(values) if n not in self._values]
        for start in range(0, len(todo), _SETS):
            chunk = todo[start:start + _SETS]
            wanted = [self.names.index(n) for n in chunk]
            out = self.source.fetch(
                values_query(self.names, wanted, self.source, self.tokens, self.person),
                MAX_DISTINCT * len(chunk) + len(chunk),
                overflow=f"a column among {', '.join(repr(n) for n in chunk)} has more distinct values than "
                         f"{MAX_DISTINCT:,} per column: declare its kind or levels in the hints")
            for name, pairs in zip(chunk, _groups(out, "k", len(chunk)), strict=True):
                if len(pairs) > MAX_DISTINCT:
                    raise DataError(f"column {name!r} has more than {MAX_DISTINCT:,} distinct values: declare its "
                                    "kind or levels in the hints")
                self._values[name] = {str(k): int(v) for k, v in pairs}
        todo = [n for n in dict.fromkeys(bins) if n not in self._bins]
        size = len(bounds_grid()) - 1
        for start in range(0, len(todo), _SETS):
            chunk = todo[start:start + _SETS]
            wanted = [self.names.index(n) for n in chunk]
            out = self.source.fetch(bins_query(self.names, wanted, self.source, self.tokens),
                                    (size + 2) * len(chunk))
            for name, pairs in zip(chunk, _groups(out, "b", len(chunk)), strict=True):
                hist = np.zeros(size, dtype=np.int64)
                for b, n in pairs:  # bin i is [edge i, edge i+1): b - 1, the outermost bins take the rest
                    hist[min(max(int(b) - 1, 0), size - 1)] += int(n)
                self._bins[name] = hist

    def value_counts(self, name: str) -> dict[str, int]:
        """The count of each distinct non-missing text of the column."""
        self.prefetch(values=[name])
        return dict(self._values[name])

    def bounds_histogram(self, name: str) -> np.ndarray:
        """The column's finite numbers counted in the bins of the public log-scale grid."""
        self.prefetch(bins=[name])
        return self._bins[name].copy()

    def number_range(self, name: str) -> tuple[float, float] | None:
        """(smallest, largest) finite number, or None (one pass)."""
        if self._kinds[name][1] == 0:
            return None
        out = self.source.fetch(range_query(self.names, self.names.index(name), self.source, self.tokens), 1)
        return float(out["lo"][0]), float(out["hi"][0])

    def fingerprint(self) -> str:
        """SHA-256 of the engine's order-independent sums of row hashes and the row count (engine-specific)."""
        h1, h2 = self._hash
        text = (f"dpsynth-rows-v1|{self.source.dialect}|{self.names!r}|{h1 % (1 << 64)}|{h2 % (1 << 64)}|"
                f"{self.rows}")
        return hashlib.sha256(text.encode()).hexdigest()


class EngineTable:
    """A table opened in an engine for :func:`dpsynth.schema.infer.infer_schema` (header, counts, close)."""

    def __init__(self, source: EngineSource):
        self.source = source

    def header(self) -> list[str]:
        """The table's column names (public)."""
        return list(self.source.columns)

    def counts(self, header: list[str], missing_values: Sequence[str]) -> EngineCounts:
        """Pass 1 over the rows (after everything public has been checked)."""
        return EngineCounts(self.source, missing_values)

    def person_counts(self, header: list[str], missing_values: Sequence[str], key: str,
                      max_rows: int) -> EngineCounts:
        """Pass 1 over the rows each person keeps (at most ``max_rows`` by the digest of their cells' text, the
        in-memory rule), ``header`` only, the levels counted in distinct people; a missing key is a DataError."""
        from dpsynth.marginals import sql_bounding

        sql_bounding.check_key_column(self.source, key)
        self._view = cast(Any, self.source).bounded_raw(header, key, max_rows)
        return EngineCounts(self._view, missing_values, names=header, person=key)

    def fingerprint(self, counts: Any) -> str:
        """The counts' aggregate hash."""
        return str(counts.fingerprint())

    def close(self) -> None:
        """Drop what the source made in the engine (a bounded view first)."""
        view = getattr(self, "_view", None)
        if view is not None:
            view.close()
        self.source.close()


def open_table(data: Any, engine: str, *, spark_master: str | None = None) -> EngineTable:
    """``data`` (a path, a DuckDB relation, a Spark DataFrame) opened in ``engine`` (``duckdb`` or ``spark``)."""
    from dpsynth.marginals.engines import open_source

    if isinstance(data, Path):
        data = str(data)
    source: Any = open_source(data, engine, spark_master=spark_master)
    return EngineTable(source)
