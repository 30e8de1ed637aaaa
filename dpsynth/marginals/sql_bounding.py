"""Contribution bounding in SQL (DuckDB and Spark): the rule of :mod:`dpsynth.marginals.bounding`, in the engine.

Each person (the rows sharing a value of the privacy unit's key column) keeps the ``max_rows`` rows of
smallest ``md5('seed|key|c0,c1,...')`` over their encoded codes: ``ROW_NUMBER()`` over a window
partitioned by the key and ordered by that digest. The digest of a row depends on that row alone, so
whether it is kept depends only on its own person's rows; the kept rows are those the in-memory rule
keeps (its text and its digest are the same), so every engine counts the same bounded table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from dpsynth.exceptions import DataError
from dpsynth.marginals import sql
from dpsynth.marginals.bounding import BOUNDING_SEED
from dpsynth.schema.schema import Schema

__all__ = ["BoundedRows", "bounded_codes_query", "bounded_raw_query", "bounded_rows_query", "check_key_column",
           "check_keys", "missing_keys_message", "missing_keys_query", "rows_schema"]


def rows_schema(schema: Schema) -> Schema:
    """``schema`` at the row unit: what validation and the input fingerprint read (every row, unbounded)."""
    from dpsynth.privacy.unit import ROW

    return schema if not schema.privacy_unit.is_user else schema.with_unit(ROW)


class BoundedRows:
    """What an engine's source knows of bounding: whether its rows are already bounded (a view of the kept
    rows, ``bounded``), in which case a user unit's schema is counted as the row unit's (bounding again would
    look for the key column, which the view does not hold)."""

    already_bounded: bool = False

    def _unit_schema(self, schema: Schema) -> Schema:
        return rows_schema(schema) if self.already_bounded else schema


def _text(dialect: sql.Dialect) -> str:
    return "VARCHAR" if dialect == "duckdb" else "STRING"


def _ranked(schema: Schema, encoded: str, carried: str, dialect: sql.Dialect, raw: int = 0) -> str:
    """``carried`` (columns of ``encoded``, which has the key as ``k0`` and the codes ``c{j}``) of the rows
    each person keeps: ROW_NUMBER over the key, ordered by the row's digest, at most K.

    Rows of one person with the same codes tie; for counts of codes it does not matter which is kept.
    With ``raw`` carried columns ``k1 .. k{raw}`` (raw values), ties are broken by the digest of their
    text, so that which raw row is kept is still a function of that person's rows alone (never of the
    engine's physical row order, which other people's rows can change)."""
    text = _text(dialect)
    cells = ", ".join(f"CAST(c{j} AS {text})" for j in range(len(schema)))
    order = f"md5(concat('{int(BOUNDING_SEED)}|', CAST(k0 AS {text}), '|', concat_ws(',', {cells})))"
    if raw:
        values = ", ".join(f"COALESCE(CAST(k{i} AS {text}), '')" for i in range(1, raw + 1))
        order += f", md5(concat_ws('|', {values}))"
    return (f"SELECT {carried} FROM (SELECT {carried}, ROW_NUMBER() OVER (PARTITION BY k0 ORDER BY {order}) "
            f"AS dpsynth_rank FROM ({encoded}) AS e) AS b WHERE dpsynth_rank <= {int(schema.privacy_unit.max_rows)}")


def bounded_codes_query(schema: Schema, source: str, kinds: Mapping[str, sql.SourceKind], dialect: sql.Dialect,
                        lookups: Mapping[int, str] | None = None) -> str:
    """The encoded rows ``c0 .. c{k-1}`` of ``source`` with at most ``max_rows`` rows a person (the schema's
    user unit). Private data that stays in the engine."""
    unit = schema.privacy_unit
    assert unit.column is not None, "bounding needs a user unit with its key column"
    encoded = sql.encoded_query(schema, source, kinds, dialect, lookups, keep=[unit.column])
    return _ranked(schema, encoded, ", ".join(f"c{j}" for j in range(len(schema))), dialect)


def bounded_rows_query(schema: Schema, source: str, kinds: Mapping[str, sql.SourceKind], dialect: sql.Dialect,
                       lookups: Mapping[int, str] | None = None) -> str:
    """The rows of ``source`` that each person keeps (the same rows as :func:`bounded_codes_query`), as
    they are: the schema's columns, unchanged and under their names, without the key (what the release's
    DP checks read at a user unit). Private data that stays in the engine."""
    unit = schema.privacy_unit
    assert unit.column is not None, "bounding needs a user unit with its key column"
    names = schema.names
    encoded = sql.encoded_query(schema, source, kinds, dialect, lookups, keep=[unit.column, *names])
    kept = _ranked(schema, encoded, ", ".join(f"k{i + 1}" for i in range(len(names))), dialect, raw=len(names))
    columns = ", ".join(f"k{i + 1} AS {sql.quote_identifier(n, dialect)}" for i, n in enumerate(names))
    return f"SELECT {columns} FROM ({kept}) AS kept"


def missing_keys_query(column: str, source: str, dialect: sql.Dialect) -> str:
    """One row: ``n``, the rows of ``source`` whose person key is missing (NULL, or only spaces)."""
    key = sql.quote_identifier(column, dialect)
    return (f"SELECT SUM(CASE WHEN {key} IS NULL OR trim(CAST({key} AS {_text(dialect)})) = '' THEN 1 ELSE 0 END) "
            f"AS n FROM {source}")


def missing_keys_message(column: str, n: int) -> str:
    """The DataError line of ``n`` missing keys (an engine knows counts, not positions)."""
    return f"column {column!r}: the person key is missing in {n} row(s); every row must name its person"


def check_keys(source: Any, schema: Schema) -> None:
    """Under a user unit, a DataError (one line, no value) when ``source`` (a DuckDB or Spark source) lacks
    the key column or a key is missing; one aggregate row leaves the engine."""
    if schema.privacy_unit.column is not None:
        check_key_column(source, schema.privacy_unit.column)


def check_key_column(source: Any, column: str) -> None:
    """A DataError (one line, no value) when ``source`` lacks the key ``column`` or a key is missing; one
    aggregate row leaves the engine."""
    if column not in source.columns:
        raise DataError(f"data has no column {column!r}: the schema's privacy unit is keyed by it")
    n = source.fetch(missing_keys_query(column, source.table, source.engine), 1)["n"][0]
    if n is not None and int(n) > 0:
        raise DataError(missing_keys_message(column, int(n)))


def bounded_raw_query(source: str, columns: Sequence[str], key: str, max_rows: int, dialect: sql.Dialect) -> str:
    """The rows of ``source`` each person (``key``) keeps when no schema exists yet (DP schema inference): the
    ``max_rows`` of smallest ``md5('seed|key|' + cells' text joined by U+001F)``, the rule of
    :func:`~dpsynth.marginals.bounding.bound_raw_rows`; the key and ``columns``, unchanged. Private data that
    stays in the engine."""
    text = _text(dialect)
    ref = sql.quote_identifier(key, dialect)
    refs = [sql.quote_identifier(c, dialect) for c in columns]
    cells = ", ".join(f"COALESCE(CAST({r} AS {text}), '')" for r in refs)
    digest = f"md5(concat('{int(BOUNDING_SEED)}|', CAST({ref} AS {text}), '|', concat_ws(chr(31), {cells})))"
    carried = ", ".join([ref, *refs])
    return (f"SELECT {carried} FROM (SELECT {carried}, ROW_NUMBER() OVER (PARTITION BY {ref} ORDER BY {digest}) "
            f"AS dpsynth_rank FROM {source}) AS b WHERE dpsynth_rank <= {int(max_rows)}")
