"""Contribution bounding in SQL (DuckDB and Spark): the rule of :mod:`dpsynth.marginals.bounding`, in the engine.

Each person (the rows sharing a value of the privacy unit's key column) keeps the ``max_rows`` rows of
smallest ``md5('seed|key|c0,c1,...')`` over their encoded codes: ``ROW_NUMBER()`` over a window
partitioned by the key and ordered by that digest. The digest of a row depends on that row alone, so
whether it is kept depends only on its own person's rows; the kept rows are those the in-memory rule
keeps (its text and its digest are the same), so every engine counts the same bounded table.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dpsynth.exceptions import DataError
from dpsynth.marginals import sql
from dpsynth.marginals.bounding import BOUNDING_SEED
from dpsynth.schema.schema import Schema

__all__ = ["bounded_codes_query", "check_keys", "missing_keys_message", "missing_keys_query", "rows_schema"]


def rows_schema(schema: Schema) -> Schema:
    """``schema`` at the row unit: what validation and the input fingerprint read (every row, unbounded)."""
    from dpsynth.privacy.unit import ROW

    return schema if not schema.privacy_unit.is_user else schema.with_unit(ROW)


def _text(dialect: sql.Dialect) -> str:
    return "VARCHAR" if dialect == "duckdb" else "STRING"


def bounded_codes_query(schema: Schema, source: str, kinds: Mapping[str, sql.SourceKind], dialect: sql.Dialect,
                        lookups: Mapping[int, str] | None = None) -> str:
    """The encoded rows ``c0 .. c{k-1}`` of ``source`` with at most ``max_rows`` rows a person (the schema's
    user unit). Private data that stays in the engine."""
    unit = schema.privacy_unit
    assert unit.column is not None, "bounding needs a user unit with its key column"
    encoded = sql.encoded_query(schema, source, kinds, dialect, lookups, keep=[unit.column])
    text = _text(dialect)
    cols = ", ".join(f"c{j}" for j in range(len(schema)))
    cells = ", ".join(f"CAST(c{j} AS {text})" for j in range(len(schema)))
    digest = f"md5(concat('{int(BOUNDING_SEED)}|', CAST(k0 AS {text}), '|', concat_ws(',', {cells})))"
    return (f"SELECT {cols} FROM (SELECT {cols}, ROW_NUMBER() OVER (PARTITION BY k0 ORDER BY {digest}) "
            f"AS dpsynth_rank FROM ({encoded}) AS e) AS b WHERE dpsynth_rank <= {int(unit.max_rows)}")


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
    column = schema.privacy_unit.column
    if column is None:
        return
    if column not in source.columns:
        raise DataError(f"data has no column {column!r}: the schema's privacy unit is keyed by it")
    n = source.fetch(missing_keys_query(column, source.table, source.engine), 1)["n"][0]
    if n is not None and int(n) > 0:
        raise DataError(missing_keys_message(column, int(n)))
