"""Counting on DuckDB: validation, encoding and marginals of files (or a relation) inside the engine.

:class:`DuckDBSource` holds a private table where DuckDB reads it — a CSV file (``.csv``,
``.csv.gz``), a Parquet file, a folder of Parquet files, a glob, or an existing
``duckdb.DuckDBPyRelation`` — and answers only aggregates, through one fetch function
(:meth:`DuckDBSource.fetch`) that refuses a result of more rows than the public domain allows:
per-column counts of bad cells, GROUPING SETS marginal counts (densified here to the public domain),
a histogram over a public grid, an aggregate hash. The rows never reach Python.

For a path, an in-memory DuckDB connection is opened with a ``memory_limit`` and a
``temp_directory`` (DuckDB spills there: larger-than-memory tables work) and ``threads``. CSV is
read as dpsynth reads it with pandas (:func:`dpsynth.io.read_table`): every cell as text, a header,
``,`` and ``"``, no type sniffing; an empty cell is the empty string (missing only if ``""`` is one
of the schema's ``missing_values``, as by default) and leading spaces are stripped
(``skipinitialspace``). Residual difference: leading spaces inside quotes are stripped too.

One pass over the file encodes and validates it: the codes and per-column problem flags are
aggregated into a temporary table of distinct tuples with their multiplicity (``validate`` reads its
counts of problems; ``counter(schema)`` reuses it); every marginal query then scans that table, not
the file. It holds private data and stays in the engine (dropped by ``close``).
"""

from __future__ import annotations

import csv
import glob
import gzip
import io
import itertools
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dpsynth.exceptions import DataError, ParameterError
from dpsynth.marginals import sql, sql_bounding
from dpsynth.marginals.grouping import GroupingCounter
from dpsynth.schema.schema import Schema

__all__ = ["DuckDBCounter", "DuckDBSource"]

#: rows per batch of :meth:`DuckDBSource.reduce_batches`
BATCH_ROWS = 65_536
_HEADER_BYTES = 1 << 20
_ids = itertools.count()


def _format_of(path: str) -> str:
    lowered = path.lower()
    if lowered.endswith((".csv", ".csv.gz")):
        return "csv"
    if lowered.endswith(".parquet"):
        return "parquet"
    raise ParameterError(f"data ({path!r}) must end in .csv, .csv.gz or .parquet, or be a folder of Parquet files")


def _resolve(data: str | Path) -> tuple[str, str]:
    """(what DuckDB reads, ``csv`` or ``parquet``) of a path, folder or glob, or a one-line DataError."""
    text = str(data)
    if any(ch in text for ch in "*?["):
        files = glob.glob(text, recursive=True)
        if not files:
            raise DataError(f"data {text!r} matches no file")
        formats = {_format_of(f) for f in files}
        if len(formats) != 1:
            raise ParameterError(f"data ({text!r}) matches both CSV and Parquet files; give one format")
        return text, formats.pop()
    p = Path(text)
    if not p.exists():
        raise DataError(f"data file {text!r} does not exist")
    if p.is_dir():
        if not any(p.rglob("*.parquet")):
            raise DataError(f"data folder {text!r} holds no .parquet file")
        return str(p / "**" / "*.parquet"), "parquet"
    fmt = _format_of(text)
    if not os.access(p, os.R_OK):
        raise DataError(f"data file {text!r} cannot be read: permission denied")
    return text, fmt


def _csv_header(path: str) -> list[str]:
    """The header of a CSV file (first line only, at most 1 MiB read), as pandas reads it."""
    try:
        with open(path, "rb") as raw:
            stream: Any = gzip.GzipFile(fileobj=raw) if path.lower().endswith(".gz") else raw
            head = stream.read(_HEADER_BYTES)
        # utf-8-sig: a byte-order mark is no part of the first name (as in pandas)
        text = head.decode("utf-8-sig", errors="strict") if len(head) < _HEADER_BYTES else \
            head.decode("utf-8-sig", errors="ignore")
    except UnicodeDecodeError:
        raise DataError(f"data file {path!r} cannot be read as csv: it is not UTF-8 text") from None
    except (OSError, EOFError) as exc:
        raise DataError(f"data file {path!r} cannot be read as csv: {exc.__class__.__name__}") from None
    rows = csv.reader(io.StringIO(text), skipinitialspace=True)
    first = next(rows, [])
    return [str(n) for n in first]


def _unique(names: Sequence[str], where: str) -> None:
    seen: set[str] = set()
    for position, n in enumerate(names, start=1):
        if n in seen:
            raise DataError(f"{where}: column {n!r} appears more than once (again at position {position}); "
                            "column names must be unique")
        seen.add(n)


class DuckDBSource(sql_bounding.BoundedRows):
    """A private table read by DuckDB (:class:`~dpsynth.marginals.backend.TableSource`).

    Args:
        data: a path (CSV, ``.csv.gz``, Parquet, a folder of Parquet files, a glob) or a
            ``duckdb.DuckDBPyRelation`` (queried in its own connection, whose settings are left alone).
        memory_limit: DuckDB's memory limit for a path (e.g. ``"2GB"``); beyond it, it spills.
        temp_directory: where it spills (default: DuckDB's own, beside the process).
        threads: DuckDB's worker threads for a path (default: DuckDB's, one per core).

    Privacy: reads the private table; returns aggregates only (see the module docstring).
    """

    engine = "duckdb"
    #: the SQL dialect of :mod:`dpsynth.marginals.sql`, and the name a query reads the table by
    dialect: sql.Dialect = "duckdb"
    table = "dpsynth_src"

    def __init__(self, data: Any, *, memory_limit: str = "2GB", temp_directory: str | Path | None = None,
                 threads: int | None = None, connection: Any = None):
        import duckdb

        #: whether ``close`` closes the connection (not one lent by :meth:`beside`)
        self._owns = connection is None
        self._tables: list[str] = []
        self._levels: dict[tuple[tuple[str, int], ...], str] = {}
        self._coded: dict[Schema, str] = {}
        #: rows of every result fetched so far (tests check that only aggregates come back)
        self.fetched_rows: list[int] = []
        if isinstance(data, duckdb.DuckDBPyRelation):
            self.name, self.format = "relation", "relation"
            self._con = connection  # a relation of this package's own connection (e.g. :meth:`bounded`), or None
            raw = data
        else:
            target, self.format = _resolve(data)
            self.name = str(data)
            config: dict[str, Any] = {"memory_limit": str(memory_limit), "preserve_insertion_order": False}
            if temp_directory is not None:
                config["temp_directory"] = str(temp_directory)
            if threads is not None:
                config["threads"] = int(threads)
            try:
                self._con = duckdb.connect(":memory:", config=config) if connection is None else connection
            except duckdb.Error as exc:
                raise ParameterError(f"DuckDB settings (memory_limit={memory_limit!r}, threads={threads!r}) "
                                     f"are not accepted: {exc.__class__.__name__}") from None
            raw = self._guard(lambda: self._reader(target))
        self._columns = self._guard(lambda: [str(c) for c in raw.columns])
        self._types = self._guard(lambda: [str(t) for t in raw.types])
        _unique(self._columns, f"data {self.name!r}")
        if self.format == "csv":  # text as pandas reads it: "" for an empty cell, leading spaces skipped
            # ltrim only where a cell starts with a space (ltrim on every cell costs 2x the whole read)
            cols = ", ".join(f"COALESCE(CASE WHEN prefix({q}, ' ') THEN ltrim({q}, ' ') ELSE {q} END, '') AS {q}"
                             for q in (sql.quote_identifier(c, "duckdb") for c in self._columns))
            self._src: Any = raw.query("dpsynth_raw", f"SELECT {cols} FROM dpsynth_raw")
        else:
            self._src = raw
        self.kinds = {c: sql.source_kind(t) for c, t in zip(self._columns, self._types, strict=True)}

    # -- the engine -----------------------------------------------------------------------------

    def _reader(self, target: str) -> Any:
        assert self._con is not None
        path = sql.quote_string(target, "duckdb")
        if self.format == "csv":
            files = sorted(glob.glob(target, recursive=True)) if any(ch in target for ch in "*?[") else [target]
            if not files:
                raise DataError(f"data {target!r} matches no file")
            names = _csv_header(files[0])
            if not names:
                raise DataError(f"data file {files[0]!r} has no columns")
            _unique(names, f"data file {files[0]!r}")
            for other in files[1:]:  # the columns are read by position: every file must have the same header
                if _csv_header(other) != names:
                    raise DataError(f"data file {other!r} has another header than {files[0]!r} (same glob {target!r})")
            # the header's names, every column text, no sniffing: a row of more fields is an error (as
            # in pandas), a row of fewer is padded with empty cells
            columns = ", ".join(f"{sql.quote_string(n, 'duckdb')}: 'VARCHAR'" for n in names)
            return self._con.sql(f"SELECT * FROM read_csv({path}, columns = {{{columns}}}, auto_detect = false, "
                                 "header = true, delim = ',', quote = '\"', escape = '\"', null_padding = true, "
                                 "strict_mode = true, encoding = 'utf-8')")
        return self._con.sql(f"SELECT * FROM read_parquet({path})")

    def _guard(self, run: Any) -> Any:
        """``run()``, with what DuckDB raises turned into one line without its message (which may quote
        the file or a cell): a file it cannot read is a DataError; anything else is a bug of dpsynth's
        SQL, a RuntimeError naming DuckDB's error class only."""
        import duckdb

        try:
            return run()
        except duckdb.OutOfMemoryException:
            raise DataError(f"data {self.name!r}: DuckDB ran out of memory (raise memory_limit, or give it a "
                            "temp_directory with room)") from None
        except (duckdb.IOException, duckdb.InvalidInputException, duckdb.HTTPException) as exc:
            message = str(exc).lower()
            what = "it is not UTF-8 text" if ("utf-8" in message or "unicode" in message) else exc.__class__.__name__
            raise DataError(f"data {self.name!r} cannot be read as {self.format}: {what}") from None
        except duckdb.Error as exc:
            raise RuntimeError(f"DuckDB refused a query dpsynth generated ({exc.__class__.__name__}); this is a "
                               "bug of dpsynth (the message is withheld: it may quote the data)") from None

    def _run(self, text: str) -> Any:
        """Run a statement in the engine (nothing comes back)."""
        return self._guard(lambda: self._src.query("dpsynth_src", text))

    def fetch(self, text: str, max_rows: int, *, overflow: str | None = None) -> dict[str, np.ndarray]:
        """The ONE way results leave the engine: an aggregate of at most ``max_rows`` rows (a bug
        otherwise, refused before anything is read into Python)."""
        bounded = f"SELECT * FROM ({text}) AS r LIMIT {int(max_rows) + 1}"
        out: dict[str, np.ndarray] = self._guard(lambda: self._src.query("dpsynth_src", bounded).fetchnumpy())
        rows = len(next(iter(out.values()))) if out else 0
        if rows > max_rows:
            if overflow is not None:  # a limit of the data's own (e.g. distinct values), not a bug
                raise DataError(overflow)
            raise RuntimeError(f"an aggregate query returned more than {max_rows} rows")
        self.fetched_rows.append(rows)
        return out

    def beside(self, data: str | Path) -> DuckDBSource:
        """A source over another path, read in this source's connection, so that one query can join the
        two (their temporary tables live there); closing it leaves the connection to this source."""
        if self._con is None:
            raise ParameterError("a DuckDB relation's source cannot open another table beside it: give paths")
        return DuckDBSource(data, connection=self._con)

    def beside_frame(self, frame: Any) -> DuckDBSource:
        """A source over a pandas DataFrame (a synthetic table: public, or about to be checked) in this
        source's connection, so that one query can join it with this table."""
        if self._con is None:
            raise ParameterError("a DuckDB relation's source cannot register a table beside it: give paths")
        return DuckDBSource(self._con.from_df(frame), connection=self._con)

    def bounded(self, schema: Schema) -> DuckDBSource:
        """A source over the rows each person keeps under the schema's user unit (the fit's rule, in SQL:
        :func:`~dpsynth.marginals.sql_bounding.bounded_rows_query`), the schema's columns only, in this
        source's connection. Private data that stays in DuckDB; close it before this source."""
        text = sql_bounding.bounded_rows_query(schema, "dpsynth_src", self.kinds, "duckdb", self._lookups(schema))
        view = DuckDBSource(self._guard(lambda: self._src.query("dpsynth_src", text)), connection=self._con)
        view.already_bounded = True  # its rows are a bounded table: counted at the row unit from here on
        return view

    def bounded_raw(self, columns: Sequence[str], key: str, max_rows: int) -> DuckDBSource:
        """A source over the rows each person keeps before any schema exists (the key and ``columns``;
        :func:`~dpsynth.marginals.sql_bounding.bounded_raw_query`), in this source's connection."""
        text = sql_bounding.bounded_raw_query("dpsynth_src", columns, key, max_rows, "duckdb")
        return DuckDBSource(self._guard(lambda: self._src.query("dpsynth_src", text)), connection=self._con)

    def persist(self, text: str, what: str) -> str:
        """Run ``text`` into a temporary table of the connection (private data that stays in DuckDB, dropped
        by ``close``); its name."""
        name = f"dpsynth_{what}_{next(_ids)}"
        self._run(f"CREATE TEMP TABLE {name} AS {text}")
        self._tables.append(name)
        return name

    def sample_rows(self, names: Sequence[str], rows: int, seed: int) -> Any:
        """A seeded reservoir sample of at most ``rows`` rows of the columns ``names``, as a pandas DataFrame.

        ROWS LEAVE THE ENGINE here, and only here: for the internal checks that need rows (KS distances,
        associations, utility), which state the sample in their report. Repeatable for the same input and
        settings (DuckDB's ``REPEATABLE``). Not DP.
        """
        cols = ", ".join(sql.quote_identifier(n, "duckdb") for n in names)
        text = f"SELECT {cols} FROM dpsynth_src USING SAMPLE reservoir({int(rows)} ROWS) REPEATABLE ({int(seed)})"
        return self._guard(lambda: self._src.query("dpsynth_src", text).df())

    def reduce_batches(self, names: Sequence[str], fn: Callable[[Any], np.ndarray], width: int, *,
                       batch_rows: int = BATCH_ROWS) -> np.ndarray:
        """Σ ``fn(batch)`` over every row of the columns ``names``, read in pandas batches of at most
        ``batch_rows`` rows; ``fn`` returns an int64 vector of ``width`` counts.

        ROWS LEAVE THE ENGINE here, batch by batch, into this process (DuckDB runs in it); only the
        running sum is kept, so memory stays at one batch whatever the table's length. For the checks
        that score every real row with a model of public data (the DP utility check). Decimals come as
        float64, as :meth:`sample_rows` gives them.
        """
        types = dict(zip(self._columns, self._types, strict=True))
        cols = ", ".join(f"CAST({q} AS DOUBLE) AS {q}" if types[n].upper().startswith("DECIMAL") else q
                         for n, q in ((n, sql.quote_identifier(n, "duckdb")) for n in names))
        reader = self._guard(lambda: self._src.query("dpsynth_src", f"SELECT {cols} FROM dpsynth_src")
                             .to_arrow_reader(int(batch_rows)))
        total = np.zeros(int(width), dtype=np.int64)
        batches = iter(reader)
        try:
            while (batch := self._guard(lambda: next(batches, None))) is not None:
                total += np.asarray(fn(batch.to_pandas(date_as_object=False)), dtype=np.int64)
        finally:
            reader.close()  # an unread result would keep the connection busy for every later query
        return total

    # -- TableSource ----------------------------------------------------------------------------

    @property
    def columns(self) -> list[str]:
        """The table's column names (public: its header)."""
        return list(self._columns)

    def validate(self, schema: Schema) -> None:
        """Raise the DataError ``encode`` raises if the table does not fit ``schema``.

        One pass encodes the table with per-column problem flags into the aggregated codes table
        (:meth:`materialize`, kept for the counter); ONE row of counts leaves the engine: per column,
        missing cells of a column not nullable, values outside the levels, text that is not a number
        or a date/time.
        """
        schema = self._unit_schema(schema)
        sql.check_columns(schema, self._columns)
        every_row = sql_bounding.rows_schema(schema)  # bad cells are looked for in every row, bounded or not
        table = self.materialize(every_row)
        row = self.fetch(sql.codes_validation_query(table, every_row, weight="w"), 1)
        error = sql.validation_error(schema, {k: v[0] for k, v in row.items()})
        if error is None:
            sql_bounding.check_keys(self, schema)
        if error is not None:
            self._drop(self._coded.pop(schema))
            raise error

    def below_counts(self, column: str, schema: Schema, grid: np.ndarray) -> tuple[np.ndarray, int]:
        """(#{x < c} for each c of ``grid``, the number of non-missing values), values clamped to the
        column's bounds; a histogram of at most ``len(grid) + 1`` cells leaves the engine."""
        sql.check_columns(schema, self._columns)
        points = np.asarray(grid, dtype=float)
        text = sql.below_query(schema, column, "dpsynth_src", self.kinds, points.tolist(), "duckdb")
        out = self.fetch(text, len(points) + 1)
        return sql.below_from_histogram(out["b"], out["n"], len(points))

    def fingerprint(self, schema: Schema) -> str:
        """SHA-256 hex of order-independent sums of hashes of the encoded rows, every row (one aggregate row)."""
        return self.counter(sql_bounding.rows_schema(schema)).fingerprint()

    def counter(self, schema: Schema) -> DuckDBCounter:
        """The marginal counts of the table encoded under ``schema`` (validate it first)."""
        schema = self._unit_schema(schema)
        sql.check_columns(schema, self._columns)
        return DuckDBCounter(self, schema)

    def _lookups(self, schema: Schema) -> dict[int, str]:
        """A (k, code) table of the levels of each categorical column of many levels (public), made
        once per column and source; their names by column index."""
        out: dict[int, str] = {}
        for j, col in enumerate(schema.columns):
            if col.kind != "categorical" or len(col.levels) <= sql.CASE_LEVELS:
                continue
            key = tuple(sql.level_pairs(col))
            if key not in self._levels:
                name = f"dpsynth_levels_{next(_ids)}"
                if self._con is not None:  # our own connection: an Arrow table, registered without a copy
                    import pyarrow as pa

                    self._con.register(name, pa.table({"k": pa.array([k for k, _ in key], pa.string()),
                                                       "code": pa.array([c for _, c in key], pa.int32())}))
                else:  # a user's relation: a temporary table in its connection
                    values = ", ".join(f"({sql.quote_string(k, 'duckdb')}, {c})" for k, c in key)
                    self._run(f"CREATE TEMP TABLE {name} AS SELECT * FROM (VALUES {values}) AS v(k, code)")
                self._tables.append(name)
                self._levels[key] = name
            out[j] = self._levels[key]
        return out

    def materialize(self, schema: Schema) -> str:
        """The temporary table of the encoded table aggregated (distinct tuples of codes ``c{j}`` and
        problem flags ``p{j}``, their count ``w``), made in one pass on first need; its name. Private
        data that stays in the engine."""
        schema = self._unit_schema(schema)
        if schema not in self._coded:
            name = f"dpsynth_codes_{next(_ids)}"
            if schema.privacy_unit.is_user:  # each person's rows beyond K dropped, in DuckDB
                encoded = sql_bounding.bounded_codes_query(schema, "dpsynth_src", self.kinds, "duckdb",
                                                           self._lookups(schema))
            else:
                encoded = sql.encoded_query(schema, "dpsynth_src", self.kinds, "duckdb", self._lookups(schema),
                                            problems=True)
            self._run(f"CREATE TEMP TABLE {name} AS SELECT *, COUNT(*) AS w FROM ({encoded}) AS e GROUP BY ALL")
            self._tables.append(name)
            self._coded[schema] = name
        return self._coded[schema]

    def _drop(self, name: str) -> None:
        self._run(f"DROP TABLE IF EXISTS {name}")
        self._tables.remove(name)

    def close(self) -> None:
        """Drop the temporary tables (and close the connection this source opened)."""
        for name in reversed(self._tables):
            try:
                if self._con is not None:
                    self._con.unregister(name) if name.startswith("dpsynth_levels_") else \
                        self._con.execute(f"DROP TABLE IF EXISTS {name}")
                else:
                    self._run(f"DROP TABLE IF EXISTS {name}")
            except Exception:  # noqa: BLE001,S110 - best effort on the way out
                pass
        self._tables.clear()
        self._coded.clear()
        if self._con is not None and self._owns:
            self._con.close()
        self._con = None


class DuckDBCounter(GroupingCounter):
    """Marginal counts under one schema by GROUPING SETS over the aggregated codes table."""
