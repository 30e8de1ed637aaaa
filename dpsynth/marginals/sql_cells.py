"""How a cell of a private table is read in SQL: the dialects, quoting, column types, and the text,
missing flag, number and date/time of a cell, as :func:`dpsynth.schema.encode.encode` reads it in pandas.

Pure string generation from public inputs (no engine is imported), for
:mod:`dpsynth.marginals.sql` (encoding, validation, marginals) and the other queries of the
engines (schema inference's counts, the copy checks' keys).

* ``quote_identifier(name, dialect)``, ``quote_string(text, dialect)``, ``double_literal(x, dialect)``;
* ``source_kind(type_name)``: an engine column type (DuckDB or Spark spelling) as a :data:`SourceKind`;
* ``cell_text(ref, kind, dialect)``, ``cell_missing(ref, kind, tokens, dialect)``,
  ``cell_number(ref, kind, dialect)``: a cell's text, missing flag and number;
* ``searchsorted_sql(value, points, dialect)``: #{points <= value} (numpy's ``side="right"``), by
  arithmetic for consecutive integers, else a balanced nested CASE (O(log n) per value).

Reference semantics are :func:`dpsynth.schema.encode.encode`'s. Cells are read as text (CSV) or typed
(Parquet, a DataFrame); the text of a typed value is pandas' ``astype("string")`` (ints ``39``,
floats ``39.0`` — shortest round-trip, as Python's ``repr``; booleans ``True``/``False``). Residual
differences, all on unusual input: a Parquet integer column holding a null is text ``39`` here but
``39.0`` in pandas (pandas turns it into floats); numbers in a numeric column over typed dates/times
are not numbers here (pandas reads nanoseconds); ISO dates/times are the forms ``YYYY``, ``YYYY-MM``,
``YYYYMMDD``, ``YYYY-M-D`` or ``YYYY/M/D``, optionally ``[T ]HH:MM[:SS[.f]]`` and ``Z`` / ``±HH[[:]MM]``
(pandas also reads ``now``/``today``, here not a date/time); pandas refuses years outside 1677-2262
when a cell of the column has digits past microseconds (its resolution is then nanoseconds), here
they are read, and digits past microseconds are cut, not rounded; Spark's string-to-double cast is guarded by a regular
expression of the forms pandas reads.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

from dpsynth.exceptions import ParameterError
from dpsynth.schema.column import RESOLUTIONS

__all__ = [
    "ISO_DATETIME", "PANDAS_NUMBER", "Dialect", "SourceKind", "cell_missing", "cell_number", "cell_text",
    "double_literal", "quote_identifier", "quote_string", "searchsorted_sql", "source_kind",
]

Dialect = Literal["duckdb", "spark"]
#: what an engine's column type means for the reference semantics
SourceKind = Literal["text", "number", "float", "boolean", "date", "timestamp", "timestamptz", "other"]
_DATE = "[0-9]{4}(-[0-9]{1,2}-[0-9]{1,2}|/[0-9]{1,2}/[0-9]{1,2})"
_TIME = "([T ]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9]([.][0-9]+)?)?(Z|[+-][0-9]{2}(:?[0-9]{2})?)?)?"
ISO_DATETIME = f" *{_DATE}{_TIME}"
#: the text pandas' ``to_numeric`` reads as a number (the Spark guard; DuckDB's cast differs only on ``_``)
PANDAS_NUMBER = (r"\s*[+-]?(([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][+-]?[0-9]+)?|[iI][nN][fF]([iI][nN][iI][tT][yY])?"
                 r"|[nN][aA][nN])\s*")



def _dialect(dialect: str) -> Dialect:
    if dialect not in ("duckdb", "spark"):
        raise ParameterError(f"dialect ({dialect!r}) must be 'duckdb' or 'spark'")
    return dialect  # type: ignore[return-value]


def quote_identifier(name: str, dialect: Dialect) -> str:
    """``name`` as a quoted identifier (``"a""b"`` in DuckDB, ```a``b``` in Spark)."""
    if _dialect(dialect) == "spark":
        return "`" + name.replace("`", "``") + "`"
    return '"' + name.replace('"', '""') + '"'


def quote_string(text: str, dialect: Dialect) -> str:
    """``text`` as a string literal (Spark reads backslash escapes, DuckDB does not)."""
    if "\x00" in text:
        raise ParameterError("a schema string holds a NUL character, which SQL cannot quote")
    if _dialect(dialect) == "spark":
        return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return "'" + text.replace("'", "''") + "'"


def double_literal(x: float, dialect: Dialect) -> str:
    """``x`` as an exact DOUBLE constant (the shortest round-trip text, cast)."""
    x = float(x)
    if not math.isfinite(x):
        raise ParameterError(f"a bound or edge ({x!r}) must be finite")
    return f"CAST({quote_string(repr(x), dialect)} AS DOUBLE)"


def source_kind(type_name: str) -> SourceKind:
    """What an engine column type (``VARCHAR``, ``BIGINT``, ``string``, ``double`` ...) holds."""
    t = type_name.strip().lower()
    if t in ("varchar", "string", "text") or t.startswith(("varchar(", "char(")):
        return "text"
    if t in ("double", "float", "real", "float4", "float8"):
        return "float"
    if t.startswith("decimal") or t in ("tinyint", "smallint", "integer", "int", "bigint", "hugeint", "utinyint",
                                        "usmallint", "uinteger", "ubigint", "uhugeint", "byte", "short", "long"):
        return "number"
    if t in ("boolean", "bool"):
        return "boolean"
    if t == "date":
        return "date"
    if t in ("timestamp with time zone", "timestamptz"):
        return "timestamptz"
    if t.startswith("timestamp"):  # DuckDB TIMESTAMP[_S|_MS|_NS], Spark timestamp_ntz
        return "timestamp"
    return "other"


def _text(ref: str, kind: SourceKind, dialect: Dialect) -> str:
    """The cell as pandas' ``astype("string")`` writes it (NULL where missing)."""
    string = "STRING" if dialect == "spark" else "VARCHAR"
    if kind == "text":
        return ref
    if kind == "float":
        return f"CASE WHEN isnan({ref}) THEN NULL ELSE CAST({ref} AS {string}) END"
    if kind == "boolean":
        return f"CASE WHEN {ref} THEN 'True' WHEN NOT {ref} THEN 'False' END"
    return f"CAST({ref} AS {string})"


def _missing(ref: str, kind: SourceKind, tokens: Sequence[str], dialect: Dialect) -> str:
    """NA (NULL, or NaN in a float column) or one of the schema's missing-value strings."""
    na = f"({ref} IS NULL OR isnan({ref}))" if kind == "float" else f"{ref} IS NULL"
    if not tokens:
        return f"({na})"
    listed = ", ".join(quote_string(t, dialect) for t in tokens)
    return f"({na} OR {_text(ref, kind, dialect)} IN ({listed}))"


def _number(ref: str, kind: SourceKind, dialect: Dialect) -> str:
    """The cell as ``pd.to_numeric(errors="coerce")`` reads it (NULL or NaN where it is no number)."""
    if kind in ("number", "float", "boolean"):
        return f"CAST({ref} AS DOUBLE)"
    text = _text(ref, kind, dialect)
    if dialect == "spark":
        guard = quote_string("^" + PANDAS_NUMBER + "$", dialect)
        return f"CASE WHEN {text} RLIKE {guard} THEN TRY_CAST({text} AS DOUBLE) END"
    return f"CASE WHEN instr({text}, '_') > 0 THEN NULL ELSE TRY_CAST({text} AS DOUBLE) END"


def _iso_text(text: str, dialect: Dialect) -> str:
    """ISO text normalised to what both engines cast: ``YYYY``, ``YYYY-MM``, ``YYYYMMDD`` completed."""
    def match(pattern: str) -> str:
        if dialect == "spark":
            return f"{text} RLIKE {quote_string('^' + pattern + '$', dialect)}"
        return f"regexp_full_match({text}, {quote_string(pattern, dialect)})"

    return (f"CASE WHEN {match(' *[0-9]{4}')} THEN concat(ltrim({text}), '-01-01') "
            f"WHEN {match(' *[0-9]{4}-[0-9]{2}')} THEN concat(ltrim({text}), '-01') "
            f"WHEN {match(' *[0-9]{8}')} THEN concat(substr(ltrim({text}), 1, 4), '-', substr(ltrim({text}), 5, 2), "
            f"'-', substr(ltrim({text}), 7, 2)) "
            f"WHEN {match(ISO_DATETIME)} THEN replace(ltrim({text}), '/', '-') END")


#: ISO text that ends in a UTC offset (after the minutes), cast with its zone; else read as UTC
_OFFSET = "[0-9]:[0-9]{2}(:[0-9]{2}([.][0-9]+)?)?(Z|[+-][0-9]{2}(:?[0-9]{2})?)"


_PLACE = "\x01"


def _iso_micros(norm: str, dialect: Dialect) -> str:
    """Microseconds since 1970 (UTC) of normalised ISO text, independent of the session's time zone."""
    if dialect == "spark":  # the session's time zone must be UTC for text without an offset
        return f"unix_micros(TRY_CAST({norm} AS TIMESTAMP))"
    return (f"CASE WHEN regexp_matches({norm}, {quote_string(_OFFSET + '$', dialect)}) "
            f"THEN epoch_us(TRY_CAST({norm} AS TIMESTAMPTZ)) ELSE epoch_us(TRY_CAST({norm} AS TIMESTAMP)) END")


def _micros(ref: str, kind: SourceKind, dialect: Dialect) -> tuple[str | None, str]:
    """(normalised ISO text or None, microseconds since 1970, with ``_PLACE`` for the text's column)."""
    micros = "unix_micros" if dialect == "spark" else "epoch_us"
    if kind in ("timestamp", "timestamptz"):
        return None, f"{micros}({ref})"
    if kind == "date":
        return None, f"{micros}(CAST({ref} AS TIMESTAMP))"
    return _iso_text(_text(ref, kind, dialect), dialect), _iso_micros(_PLACE, dialect)


def _units(us: str, resolution: str) -> str:
    """Whole ``resolution`` units since 1970 (UTC), floored as ``numbers_of`` does (seconds as
    microseconds / 10^6 in float64, then / the resolution); NULL where unreadable."""
    return f"floor((CAST({us} AS DOUBLE) / 1000000.0) / {float(RESOLUTIONS[resolution])!r})"


def searchsorted_sql(value: str, points: Sequence[float], dialect: Dialect) -> str:
    """#{p in ``points`` : p <= value} (``np.searchsorted(points, value, side="right")``), exact.

    ``points`` are non-decreasing. Consecutive integers: ``floor(value)`` less the first, clamped;
    otherwise a balanced nested CASE of depth ⌈log2(n + 1)⌉.
    """
    pts = [float(p) for p in points]
    if not pts:
        return "0"
    if any(b < a for a, b in zip(pts, pts[1:], strict=False)):
        raise ParameterError("bin edges must be sorted")
    if all(p.is_integer() for p in pts) and all(b - a == 1 for a, b in zip(pts, pts[1:], strict=False)):
        first, last = int(pts[0]), int(pts[-1])  # clamped first, so that the cast cannot overflow
        inside = f"LEAST(GREATEST({value}, {double_literal(first - 1, dialect)}), {double_literal(last, dialect)})"
        return f"CAST(floor({inside}) AS BIGINT) - ({first - 1})"

    def part(lo: int, hi: int) -> str:
        if lo == hi:
            return str(lo)
        mid = (lo + hi) // 2
        edge = double_literal(pts[mid], dialect)
        return f"CASE WHEN {value} < {edge} THEN {part(lo, mid)} ELSE {part(mid + 1, hi)} END"

    return part(0, len(pts))


#: public names of the cell readers, for the other queries of the engines
cell_text, cell_missing, cell_number = _text, _missing, _number
