"""SQL text that validates, encodes and counts a private table inside an engine, under a public schema.

Pure string generation from the public schema (no engine is imported): the DuckDB backend and the
Spark backend run the same queries, in their ``dialect`` (``"duckdb"`` or ``"spark"``). Only
aggregates come back: per-column counts of bad cells, marginal counts (at most the public domain's
cells), a histogram over a public grid, an aggregate hash. What the queries read is the private
table; what they return is exact (sensitivity 1 per count under add/remove-one-row); noise is drawn
by :mod:`dpsynth.mechanisms` outside the engine.

Stable functions (every one takes ``dialect``, where it matters):

* ``quote_identifier(name, dialect)``, ``quote_string(text, dialect)``, ``double_literal(x, dialect)``;
* ``source_kind(type_name)``: an engine column type (DuckDB or Spark spelling) as a :data:`SourceKind`;
* ``check_columns(schema, names)``: the ``no column(s) ...`` DataError of ``encode``;
* ``level_pairs(column)``: the (text, code) lookup of a categorical column: up to :data:`CASE_LEVELS`
  levels, the position in a list literal (``list_position`` / ``array_position``); beyond, a LEFT
  JOIN with a (k, code) table (registered by the backend under ``lookups[j]``, else an inline
  ``VALUES`` list), never a giant CASE chain;
* ``encoded_query(schema, source, kinds, dialect, lookups=None)``: one row of integer codes
  ``c0 .. c{k-1}`` per source row (a relation; never fetched);
* ``validation_query(...)`` (same arguments): ONE row of counts (one pass over every column), and
  ``validation_error(schema, row)``: the DataError ``encode`` raises (same messages), or None;
  or both in one pass: ``encoded_query(..., problems=True)`` adds per-column problem flags ``p{j}``
  and ``codes_validation_query(codes, schema, weight)`` counts them (the same row);
* ``searchsorted_sql(value, points, dialect)``: #{points <= value} (numpy's ``side="right"``), by
  arithmetic for consecutive integers, else a balanced nested CASE (O(log n) per value);
* ``marginal_queries(codes, schema, cliques, dialect, weight=None, max_sets=...)``: GROUPING SETS
  queries (chunks of at most ``max_sets`` sets) returning ``(g, c.., n)`` aggregates, and
  ``densify(query, schema, columns)``: their dense int64 histograms (C order over the clique);
* ``below_query(...)`` / ``below_from_histogram(...)``: #{x < c} over a public grid (DP quantile bins);
* ``fingerprint_query(codes, schema, dialect, weight=None)`` / ``fingerprint_hex(...)``.

Reference semantics are :func:`dpsynth.schema.encode.encode`'s; how each cell is read (its text,
missing flag, number, date/time) and what differs on unusual input: :mod:`dpsynth.marginals.sql_cells`.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from dpsynth.exceptions import DataError, ParameterError
from dpsynth.marginals.sql_cells import (
    _PLACE,
    ISO_DATETIME,
    PANDAS_NUMBER,
    Dialect,
    SourceKind,
    _dialect,
    _micros,
    _missing,
    _number,
    _text,
    _units,
    double_literal,
    quote_identifier,
    quote_string,
    searchsorted_sql,
    source_kind,
)
from dpsynth.schema.column import Column
from dpsynth.schema.schema import Schema

#: categorical columns with more levels are looked up by a join, not a CASE chain
CASE_LEVELS = 64
#: GROUPING SETS per query by default (a chunk scans the codes once)
MAX_SETS = 128
#: most columns in the union of one query's grouping sets (its grouping id has a bit per column)
MAX_UNION = 62

__all__ = [
    "CASE_LEVELS", "ISO_DATETIME", "MAX_SETS", "PANDAS_NUMBER", "Dialect", "GroupingQuery", "SourceKind",
    "below_from_histogram", "below_query", "check_columns", "codes_validation_query", "densify", "double_literal",
    "encoded_query", "fingerprint_hex", "fingerprint_query", "layers_query", "level_pairs", "marginal_queries",
    "quote_identifier", "quote_string", "searchsorted_sql", "source_kind", "validation_error", "validation_query",
]


def check_columns(schema: Schema, names: Sequence[str]) -> None:
    """Raise the ``encode`` DataError when the table lacks a column the schema declares."""
    present = set(names)
    absent = [c for c in schema.names if c not in present]
    if absent:
        raise DataError(
            f"the data has no column(s) {', '.join(repr(c) for c in absent)} that the schema declares"
        )


def level_pairs(column: Column) -> list[tuple[str, int]]:
    """The (text, code) pairs of a categorical column, as ``encode``'s ``{str(level): code}`` lookup."""
    lookup = {str(level): code for code, level in enumerate(column.levels)}
    return list(lookup.items())


def _position(text: str, pairs: Sequence[tuple[str, int]], dialect: Dialect) -> str:
    """The code of ``text`` among a few levels (NULL if none): its position in a list literal (5× faster
    than a CASE chain in DuckDB), or a CASE when the codes are not 0, 1, ... in order."""
    if not pairs:
        return "CAST(NULL AS INT)"
    if [c for _, c in pairs] != list(range(len(pairs))):
        whens = " ".join(f"WHEN {quote_string(k, dialect)} THEN {c}" for k, c in pairs)
        return f"CASE {text} {whens} END"
    listed = ", ".join(quote_string(k, dialect) for k, _ in pairs)
    if dialect == "spark":
        return f"(NULLIF(array_position(array({listed}), {text}), 0) - 1)"
    return f"(list_position([{listed}], {text}) - 1)"


def _values(pairs: Sequence[tuple[str, int]], dialect: Dialect) -> str:
    rows = ", ".join(f"({quote_string(k, dialect)}, {c})" for k, c in pairs)
    return f"(VALUES {rows})"


@dataclass(frozen=True)
class _Layers:
    sql: str  # relation with m{j} (missing), l{j} (level code or NULL) / x{j} (number or NULL/NaN)


def _kind_of(kinds: Mapping[str, SourceKind], name: str) -> SourceKind:
    return kinds.get(name, "text")


def _layers(schema: Schema, source: str, kinds: Mapping[str, SourceKind], dialect: Dialect,
            lookups: Mapping[int, str] | None, keep: Sequence[str] = ()) -> _Layers:
    """``source`` read per column: missing flag, level code (categorical) or parsed number.

    Dates/times in text are parsed in two inner steps (normalised text ``dpsynth_n{j}``, then its
    microseconds ``dpsynth_u{j}``), each once per cell.
    """
    _dialect(dialect)
    inner: list[str] = []
    outer: list[str] = []
    joins: list[str] = []
    normalised: list[str] = []
    micros: list[str] = []
    for i, name in enumerate(keep):
        inner.append(f"{quote_identifier(name, dialect)} AS k{i}")
        outer.append(f"s.k{i} AS k{i}")
    for j, col in enumerate(schema.columns):
        ref = quote_identifier(col.name, dialect)
        kind = _kind_of(kinds, col.name)
        inner.append(f"{_missing(ref, kind, schema.missing_values, dialect)} AS m{j}")
        outer.append(f"s.m{j} AS m{j}")
        if col.kind == "categorical":
            pairs = level_pairs(col)
            text = _text(ref, kind, dialect)
            if len(pairs) <= CASE_LEVELS:
                inner.append(f"{_position(text, pairs, dialect)} AS l{j}")
                outer.append(f"s.l{j} AS l{j}")
            else:
                inner.append(f"{text} AS t{j}")
                table = f"{lookups[j]} AS lv{j}" if lookups and j in lookups else \
                    f"{_values(pairs, dialect)} AS lv{j}(k, code)"
                joins.append(f"LEFT JOIN {table} ON s.t{j} = lv{j}.k")
                outer.append(f"lv{j}.code AS l{j}")
            continue
        if col.kind == "datetime":
            assert col.resolution is not None
            norm, us = _micros(ref, kind, dialect)
            if norm is not None:
                normalised.append(f"{norm} AS dpsynth_n{j}")
                column = f"dpsynth_n{j}"
                micros.append(f"{us.replace(_PLACE, column)} AS dpsynth_u{j}")
                us = f"dpsynth_u{j}"
            inner.append(f"{_units(us, col.resolution)} AS x{j}")
        else:
            inner.append(f"{_number(ref, kind, dialect)} AS x{j}")
        outer.append(f"s.x{j} AS x{j}")
    if normalised:
        source = (f"(SELECT *, {', '.join(micros)} FROM (SELECT *, {', '.join(normalised)} FROM {source}) AS d0) "
                  "AS d1")
    sql = (f"SELECT {', '.join(outer)} FROM (SELECT {', '.join(inner)} FROM {source}) AS s"
           + "".join(" " + j for j in joins))
    return _Layers(sql)


def layers_query(schema: Schema, source: str, kinds: Mapping[str, SourceKind], dialect: Dialect,
                 keep: Sequence[str] = ()) -> str:
    """``source`` read per column of ``schema``: ``m{j}`` (missing), ``l{j}`` (categorical: level code or
    NULL) or ``x{j}`` (numeric, date/time: the number in the column's units, NULL/NaN where unreadable),
    and the columns ``keep`` unchanged as ``k0, k1 ...`` (a relation's SQL text; never fetched)."""
    return _layers(schema, source, kinds, dialect, None, keep).sql


def encoded_query(schema: Schema, source: str, kinds: Mapping[str, SourceKind], dialect: Dialect,
                  lookups: Mapping[int, str] | None = None, keep: Sequence[str] = (), problems: bool = False) -> str:
    """One row of integer codes ``c0 .. c{k-1}`` per row of ``source`` (a relation's SQL text).

    ``source`` is a table name or ``(SELECT ...)`` with the schema's columns; ``kinds`` says how each
    is typed (absent: text); ``lookups[j]`` names a registered (k, code) table of column j's levels.
    ``keep``: source columns carried through unchanged as ``k0, k1 ...`` (e.g. a person id for
    contribution bounding). A bad cell gets an arbitrary code; with ``problems``, each column that
    can hold one also gets ``p{j}`` (0: fits, 1: missing but not nullable, 2: outside the levels,
    3: not a number / date-time), so that one pass both encodes and validates
    (:func:`codes_validation_query`).
    """
    layers = _layers(schema, source, kinds, dialect, lookups, keep)
    clamped: list[str] = [f"k{i}" for i in range(len(keep))]
    codes: list[str] = [f"k{i}" for i in range(len(keep))]
    flags: list[str] = []
    for j, col in enumerate(schema.columns):
        clamped.append(f"m{j}")
        missing = col.missing_code if col.nullable else 0
        if col.kind == "categorical":
            clamped.append(f"l{j}")
            value = f"l{j}" if col.other_code is None else f"COALESCE(l{j}, {col.other_code})"
        else:
            assert col.bounds is not None
            lo, hi = (double_literal(b, dialect) for b in col.bounds)
            clamped.append(f"LEAST(GREATEST(x{j}, {lo}), {hi}) AS v{j}")
            clamped.append(f"x{j}")
            value = searchsorted_sql(f"v{j}", col.edges[1:-1], dialect)
        codes.append(f"CAST(CASE WHEN m{j} THEN {missing} ELSE {value} END AS INT) AS c{j}")
        whens = _problem_whens(j, col)
        if problems and whens:
            flags.append(f"CAST(CASE {' '.join(whens)} ELSE 0 END AS TINYINT) AS p{j}")
    return f"SELECT {', '.join(codes + flags)} FROM (SELECT {', '.join(clamped)} FROM ({layers.sql}) AS p) AS q"


def _problem_whens(j: int, col: Column) -> list[str]:
    """The CASE branches of column j's problem flag (none when its cells always fit)."""
    whens = [] if col.nullable else [f"WHEN m{j} THEN 1"]
    if col.kind == "categorical":
        if col.other is None:
            whens.append(f"WHEN NOT m{j} AND l{j} IS NULL THEN 2")
    else:
        whens.append(f"WHEN NOT m{j} AND (x{j} IS NULL OR isnan(x{j})) THEN 3")
    return whens


def codes_validation_query(codes: str, schema: Schema, weight: str | None = None) -> str:
    """ONE row with the columns of :func:`validation_query`, from a relation of
    ``encoded_query(..., problems=True)`` (optionally aggregated, with multiplicities ``weight``)."""
    w = weight or "1"
    parts = [f"COALESCE(SUM({w}), 0) = 0 AS empty"]
    for j, col in enumerate(schema.columns):
        if not _problem_whens(j, col):
            continue
        if not col.nullable:
            parts.append(f"COALESCE(SUM(CASE WHEN p{j} = 1 THEN {w} ELSE 0 END), 0) AS vm{j}")
        if col.kind == "categorical":
            if col.other is None:
                parts.append(f"COALESCE(SUM(CASE WHEN p{j} = 2 THEN {w} ELSE 0 END), 0) AS vu{j}")
        else:
            parts.append(f"COALESCE(SUM(CASE WHEN p{j} = 3 THEN {w} ELSE 0 END), 0) AS vb{j}")
    return f"SELECT {', '.join(parts)} FROM {codes}"


def validation_query(schema: Schema, source: str, kinds: Mapping[str, SourceKind], dialect: Dialect,
                     lookups: Mapping[int, str] | None = None) -> str:
    """ONE row, one pass: ``empty`` (no rows) and, per column j, ``vm{j}`` (missing cells of a column
    not nullable), ``vu{j}`` (values outside the levels, no ``other``), ``vb{j}`` (not a number/date)."""
    layers = _layers(schema, source, kinds, dialect, lookups)
    parts = ["count(*) = 0 AS empty"]
    for j, col in enumerate(schema.columns):
        if not col.nullable:
            parts.append(f"count_if(m{j}) AS vm{j}")
        if col.kind == "categorical":
            if col.other is None:
                parts.append(f"count_if(NOT m{j} AND l{j} IS NULL) AS vu{j}")
        else:
            parts.append(f"count_if(NOT m{j} AND (x{j} IS NULL OR isnan(x{j}))) AS vb{j}")
    return f"SELECT {', '.join(parts)} FROM ({layers.sql}) AS p"


def _rows(n: int) -> str:
    return f"{n:,} row{'s' if n != 1 else ''}"


def validation_error(schema: Schema, row: Mapping[str, object]) -> DataError | None:
    """The DataError ``encode`` raises for the counts of :func:`validation_query` (None: it fits)."""
    if bool(row["empty"]):
        return DataError("the data has no rows")
    problems: list[str] = []
    for j, col in enumerate(schema.columns):
        n_missing = int(row.get(f"vm{j}") or 0)  # type: ignore[call-overload]
        if n_missing:
            problems.append(f"column {col.name!r}: a missing value in {_rows(n_missing)}, but the column is not "
                            "declared nullable")
        n_unknown = int(row.get(f"vu{j}") or 0)  # type: ignore[call-overload]
        if n_unknown:
            problems.append(f"column {col.name!r}: a value outside the {len(col.levels)} declared levels in "
                            f"{_rows(n_unknown)}")
        n_bad = int(row.get(f"vb{j}") or 0)  # type: ignore[call-overload]
        if n_bad:
            what = "a date/time" if col.kind == "datetime" else "a number"
            problems.append(f"column {col.name!r}: text that is not {what} in {_rows(n_bad)}")
    return DataError("; ".join(problems)) if problems else None


@dataclass(frozen=True)
class GroupingQuery:
    """One GROUPING SETS query: ``sql`` returns ``g`` (grouping id), ``c{j}`` of ``union`` and ``n``.

    ``cliques`` are (position in the request, clique); ``max_rows`` bounds the rows it may return
    (the cells of its sets' domains), for a check that only aggregates come back.
    """

    sql: str
    union: tuple[int, ...]
    cliques: tuple[tuple[int, tuple[int, ...]], ...]
    max_rows: int


def _gid(union: Sequence[int], grouped: set[int]) -> int:
    """The grouping id of a set: bit (len-1-i) is set when ``union[i]`` is NOT grouped."""
    return sum(1 << (len(union) - 1 - i) for i, c in enumerate(union) if c not in grouped)


def marginal_queries(codes: str, schema: Schema, cliques: Sequence[Sequence[int]], dialect: Dialect,
                     weight: str | None = None, max_sets: int = MAX_SETS) -> list[GroupingQuery]:
    """GROUPING SETS queries over the relation ``codes`` (columns ``c{j}``) for every clique.

    ``weight``: a column of row multiplicities (a pre-aggregated codes table), else each row counts 1.
    A clique's set of columns is grouped once however many cliques (in any order) share it.
    """
    _dialect(dialect)
    sizes = schema.sizes
    sets: dict[frozenset[int], list[tuple[int, tuple[int, ...]]]] = {}
    for i, cl in enumerate(cliques):
        clique = tuple(int(c) for c in cl)
        if len(set(clique)) != len(clique) or any(not 0 <= c < len(sizes) for c in clique):
            raise ParameterError(f"clique {clique!r} must list distinct column indices below {len(sizes)}")
        sets.setdefault(frozenset(clique), []).append((i, clique))
    grouping = "grouping_id" if dialect == "spark" else "GROUPING"
    count = f"SUM({weight})" if weight else "COUNT(*)"
    out: list[GroupingQuery] = []
    for chunk in _chunks(list(sets), max(1, max_sets)):
        union = tuple(sorted(set().union(*chunk)))
        spec = ", ".join("(" + ", ".join(f"c{c}" for c in sorted(s)) + ")" for s in chunk)
        cols = "".join(f", COALESCE(c{c}, 0) AS c{c}" for c in union)
        gid = f"{grouping}({', '.join(f'c{c}' for c in union)})" if union else "0"
        # Spark takes grouping_id's column order from the GROUP BY list (else from the sets' order of
        # first appearance), so it is given the sorted union explicitly.
        listed = ", ".join(f"c{c}" for c in union) + " " if dialect == "spark" and union else ""
        sql = f"SELECT {gid} AS g{cols}, {count} AS n FROM {codes} GROUP BY {listed}GROUPING SETS ({spec})"
        max_rows = sum(math.prod(sizes[c] for c in s) for s in chunk)
        out.append(GroupingQuery(sql, union, tuple(x for s in chunk for x in sets[s]), max_rows))
    return out


def _chunks(keys: list[frozenset[int]], max_sets: int) -> list[list[frozenset[int]]]:
    """``keys`` cut in order into chunks of at most ``max_sets`` sets whose union has at most
    :data:`MAX_UNION` columns (the grouping id is a bit mask over the union, a signed 64-bit integer)."""
    chunks: list[list[frozenset[int]]] = []
    chunk: list[frozenset[int]] = []
    union: set[int] = set()
    for key in keys:
        if chunk and (len(chunk) >= max_sets or len(union | key) > MAX_UNION):
            chunks.append(chunk)
            chunk, union = [], set()
        chunk.append(key)
        union |= key
    if chunk:
        chunks.append(chunk)
    return chunks


def densify(query: GroupingQuery, schema: Schema, columns: Mapping[str, np.ndarray]) -> dict[int, np.ndarray]:
    """The dense int64 histogram (C order over the clique) of each clique of ``query``, from its
    fetched aggregates ``columns`` (``g``, ``c{j}``, ``n``), keyed by position in the request."""
    sizes = schema.sizes
    g = np.asarray(columns["g"], dtype=np.int64)
    n = np.asarray(columns["n"], dtype=np.int64)
    out: dict[int, np.ndarray] = {}
    for i, clique in query.cliques:
        rows = g == _gid(query.union, set(clique))
        shape = tuple(sizes[c] for c in clique)
        dense = np.zeros(math.prod(shape), dtype=np.int64)
        if clique:
            cells = tuple(np.asarray(columns[f"c{c}"], dtype=np.int64)[rows] for c in clique)
            flat = np.ravel_multi_index(cells, shape)
            dense[flat] = n[rows]
        else:
            dense[0] = int(n[rows].sum())
        out[i] = dense
    return out


def below_query(schema: Schema, column: str, source: str, kinds: Mapping[str, SourceKind], grid: Sequence[float],
                dialect: Dialect) -> str:
    """Rows ``(b, n)``: how many non-missing readable values, clamped to the bounds, have
    ``b = #{c in grid : c <= x}`` (at most ``len(grid) + 1`` rows)."""
    col = schema[column]
    if col.kind == "categorical" or col.bounds is None:
        raise ParameterError(f"column {column!r} must be numeric or a date/time for below counts")
    one = Schema(columns=(col,), missing_values=schema.missing_values)
    layers = _layers(one, source, kinds, dialect, None)
    lo, hi = (double_literal(b, dialect) for b in col.bounds)
    b = searchsorted_sql("v", grid, dialect)
    return (f"SELECT {b} AS b, COUNT(*) AS n FROM (SELECT LEAST(GREATEST(x0, {lo}), {hi}) AS v "
            f"FROM ({layers.sql}) AS p WHERE NOT m0 AND x0 IS NOT NULL AND NOT isnan(x0)) AS q GROUP BY 1")


def below_from_histogram(b: np.ndarray, n: np.ndarray, grid_size: int) -> tuple[np.ndarray, int]:
    """(#{x < grid[i]} for every i, the number of values) from the rows of :func:`below_query`."""
    hist = np.zeros(grid_size + 1, dtype=np.int64)
    np.add.at(hist, np.asarray(b, dtype=np.int64), np.asarray(n, dtype=np.int64))
    return np.cumsum(hist)[:grid_size], int(hist.sum())


def fingerprint_query(codes: str, schema: Schema, dialect: Dialect, weight: str | None = None) -> str:
    """ONE row of order-independent sums of two hashes of each row's code tuple (and the row count)."""
    cols = ", ".join(f"c{j}" for j in range(len(schema)))
    w = f" * {weight}" if weight else ""
    count = f"SUM({weight})" if weight else "COUNT(*)"
    if _dialect(dialect) == "spark":
        return (f"SELECT SUM(CAST(xxhash64({cols}) AS DECIMAL(38, 0)){w}) AS h1, "
                f"SUM(CAST(hash({cols}) AS DECIMAL(38, 0)){w}) AS h2, {count} AS n FROM {codes}")
    return (f"SELECT SUM(CAST(hash({cols}) AS HUGEINT){w}) AS h1, SUM(CAST(hash({cols}, 1) AS HUGEINT){w}) AS h2, "
            f"{count} AS n FROM {codes}")


def fingerprint_hex(schema: Schema, dialect: Dialect, row: Sequence[object]) -> str:
    """SHA-256 hex of the schema's columns and the sums of :func:`fingerprint_query` (engine-specific:
    DuckDB and Spark hash differently)."""
    h1, h2, n = (int(v or 0) for v in row)  # type: ignore[call-overload]
    text = f"dpsynth-codes-v1|{dialect}|{schema.names!r}|{schema.sizes!r}|{h1 % (1 << 64)}|{h2 % (1 << 64)}|{n}"
    return hashlib.sha256(text.encode()).hexdigest()
