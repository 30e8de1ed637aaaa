"""Counting on Spark: validation, encoding and marginals of a table inside Spark, never collecting rows.

:class:`SparkSource` holds a private table where Spark reads it — a path Spark can read (CSV, gzip CSV,
Parquet, a folder or a glob of them, on any file system Spark knows) or an existing
``pyspark.sql.DataFrame`` — and answers only aggregates, through one fetch function
(:meth:`SparkSource.fetch`) that collects the result of a query only when its plan aggregates and
refuses one of more rows than the public domain allows: per-column counts of bad cells (validation),
GROUPING SETS marginal counts (densified here to the public domain), a histogram over a public grid
(DP quantile bins), an aggregate hash (the ledger's fingerprint). The queries are
:mod:`dpsynth.marginals.sql`'s, in its ``spark`` dialect; their semantics are
:func:`dpsynth.schema.encode.encode`'s.

CSV is read as dpsynth reads it with pandas (:func:`dpsynth.io.read_table`): a header, every cell as
text (no schema inference), ``"`` quoting with doubled quotes, leading spaces skipped
(``skipinitialspace``), and an empty cell is the empty string (Spark reads it as NULL; it is missing
only when ``""`` is one of the schema's ``missing_values``, as by default). A row of too many fields
fails the read (pandas' ``ParserError``). Residual differences, on unusual files: a row of too few
fields is padded with empty strings (pandas: missing), whitespace other than spaces is skipped too,
and a quoted field may not span lines.

The session is the DataFrame's, the one given, or the process's own (:mod:`.spark_session`: started on
first need, kept for the process, quiet). Every query runs with the SQL options it is written for
(UTC time zone, ANSI mode), the caller's values put back after it. An error of Spark becomes one
:class:`~dpsynth.exceptions.DataError` line with its error class, never its message.

``counter(schema)`` aggregates the encoded table once into a persisted DataFrame of distinct code
tuples with their multiplicity (inside Spark: executors' memory, spilling to their disks); every
marginal query then reads that, not the source. :meth:`SparkSource.close` unpersists it.
"""

from __future__ import annotations

import gzip
import io
import itertools
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import numpy as np

from dpsynth.exceptions import DataError, ParameterError
from dpsynth.marginals import sql, sql_bounding
from dpsynth.marginals.grouping import GroupingCounter
from dpsynth.marginals.spark_session import (
    engine_errors,
    pandas_interop,
    quiet_python_loggers,
    session_conf,
    spark_session,
)
from dpsynth.schema.schema import Schema

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

__all__ = ["SparkCounter", "SparkSource", "is_aggregate_plan"]

_HEADER_BYTES = 1 << 20
#: GROUPING SETS per query: on Spark fewer, larger queries cost less (planning and code generation of
#: each query dominate on small tables: Adult's 120 sets take ~40% less CPU in one query than in two)
_ids = itertools.count()
#: reading options of a CSV file: pandas' ``read_csv(dtype=str, keep_default_na=False, skipinitialspace=True)``
CSV_OPTIONS = {"header": "true", "inferSchema": "false", "quote": '"', "escape": '"', "mode": "FAILFAST",
               "ignoreLeadingWhiteSpace": "true", "ignoreTrailingWhiteSpace": "false", "encoding": "UTF-8",
               "multiLine": "false", "enforceSchema": "false"}


def is_aggregate_plan(df: DataFrame) -> bool:
    """Whether every relation ``df`` reads is under an Aggregate of its optimized plan (no row of the
    table can be in its result; a literal table, such as public levels, counts as an aggregate)."""
    def covered(node: Any) -> bool:
        name = str(node.nodeName())
        if name == "Aggregate":
            return True
        children = node.children()
        if children.size() == 0:
            return name in ("LocalRelation", "OneRowRelation", "Range")
        return all(covered(children.apply(i)) for i in range(children.size()))

    return covered(df._jdf.queryExecution().optimizedPlan())


def _local_path(text: str) -> Path | None:
    """The local path of ``text`` (a plain path or a ``file:`` URL), or None for another file system."""
    parsed = urlparse(text)
    if parsed.scheme in ("", "file") or (len(parsed.scheme) == 1 and os.name == "nt"):
        return Path(parsed.path if parsed.scheme == "file" else text)
    return None


def _format_of(text: str, fmt: str | None) -> str:
    if fmt is not None:
        if fmt not in ("csv", "parquet"):
            raise ParameterError(f"format ({fmt!r}) must be 'csv' or 'parquet'")
        return fmt
    lowered = text.lower().rstrip("/")
    if lowered.endswith((".csv", ".csv.gz")):
        return "csv"
    if lowered.endswith(".parquet"):
        return "parquet"
    raise ParameterError(f"data ({text!r}) must end in .csv, .csv.gz or .parquet, be a folder of such files, "
                         "or name its format")


def _resolve(data: str | Path, fmt: str | None) -> tuple[str, str]:
    """(what Spark reads, ``csv`` or ``parquet``) of a path, folder, glob or URL, or a one-line DataError."""
    text = str(data)
    local = _local_path(text)
    if local is None or any(ch in text for ch in "*?["):
        return text, _format_of(text, fmt)
    if not local.exists():
        raise DataError(f"data file {text!r} does not exist")
    if local.is_dir():
        if fmt is None:
            kinds = {_format_of(p.name, None) for p in local.rglob("*")
                     if p.is_file() and p.name.lower().endswith((".csv", ".csv.gz", ".parquet"))}
            if len(kinds) != 1:
                raise DataError(f"data folder {text!r} must hold .parquet files or .csv/.csv.gz files, not "
                                f"{'both' if kinds else 'neither'}")
            fmt = kinds.pop()
        return text, _format_of(text, fmt)
    if not os.access(local, os.R_OK):
        raise DataError(f"data file {text!r} cannot be read: permission denied")
    return text, _format_of(text, fmt)


def _csv_header(path: Path) -> list[str]:
    """The header of a local CSV file (its first line, at most 1 MiB read), as pandas reads it."""
    import csv

    try:
        with open(path, "rb") as raw:
            stream: Any = gzip.GzipFile(fileobj=raw) if path.name.lower().endswith(".gz") else raw
            head = stream.read(_HEADER_BYTES)
        text = head.decode("utf-8", errors="strict" if len(head) < _HEADER_BYTES else "ignore")
    except UnicodeDecodeError:
        raise DataError(f"data file {str(path)!r} cannot be read as csv: it is not UTF-8 text") from None
    except (OSError, EOFError) as exc:
        raise DataError(f"data file {str(path)!r} cannot be read as csv: {exc.__class__.__name__}") from None
    return [str(n) for n in next(csv.reader(io.StringIO(text), skipinitialspace=True), [])]


def _unique(names: Sequence[str], where: str) -> None:
    seen: set[str] = set()
    for position, n in enumerate(names, start=1):
        if n in seen:
            raise DataError(f"{where}: column {n!r} appears more than once (again at position {position}); "
                            "column names must be unique")
        seen.add(n)


class SparkSource(sql_bounding.BoundedRows):
    """A private table read by Spark (:class:`~dpsynth.marginals.backend.TableSource`).

    Args:
        data: a path Spark can read (``.csv``, ``.csv.gz``, ``.parquet``, a folder or glob of them, a URL
            of a file system Spark knows) or a ``pyspark.sql.DataFrame`` (counted in its own session).
        session: the SparkSession to read a path with (default: :func:`.spark_session` of ``master``).
        master: the master of the session started when there is none (default ``local[*]``).
        format: ``csv`` or ``parquet`` when the path's name does not say.

    Privacy: reads the private table inside Spark; only aggregates (at most the public domain's cells)
    reach the driver, through :meth:`fetch`.
    """

    engine = "spark"
    #: the SQL dialect of :mod:`dpsynth.marginals.sql`
    dialect: sql.Dialect = "spark"

    def __init__(self, data: Any, *, session: SparkSession | None = None, master: str | None = None,
                 format: str | None = None):  # noqa: A002 (the reader's own word)
        from pyspark.sql import DataFrame

        quiet_python_loggers()
        self._views: list[str] = []
        self._persisted: list[DataFrame] = []
        #: rows of every result collected so far (tests check that only aggregates come back)
        self.fetched_rows: list[int] = []
        if isinstance(data, DataFrame):
            self.name, self.format = "dataframe", "dataframe"
            self.session: SparkSession = data.sparkSession
            raw = data
        else:
            target, self.format = _resolve(data, format)
            self.name = str(data)
            self.session = session if session is not None else spark_session(master)
            local = _local_path(target)
            if self.format == "csv" and local is not None and local.is_file():
                _unique(_csv_header(local), f"data file {target!r}")
            with engine_errors(f"reading data {self.name!r}"):
                reader = self.session.read.format(self.format)
                raw = (reader.options(**CSV_OPTIONS) if self.format == "csv" else reader).load(target)
        with engine_errors(f"reading data {self.name!r}"):
            self._columns = [str(f.name) for f in raw.schema.fields]
            self._types = [str(f.dataType.simpleString()) for f in raw.schema.fields]
        _unique(self._columns, f"data {self.name!r}")
        self.kinds = {c: sql.source_kind(t) for c, t in zip(self._columns, self._types, strict=True)}
        self.view = self._register(raw, "src")
        if self.format == "csv":  # an empty cell is "" (pandas' keep_default_na=False), not NULL
            cols = ", ".join(f"COALESCE({q}, '') AS {q}" for q in (sql.quote_identifier(c, "spark")
                                                                    for c in self._columns))
            with engine_errors(f"reading data {self.name!r}"):
                self.view = self._register(self.session.sql(f"SELECT {cols} FROM {self.view}"), "text")

    # -- the engine -----------------------------------------------------------------------------

    def _register(self, df: DataFrame, what: str) -> str:
        """Register ``df`` as a temporary view of this source's session; its name."""
        name = f"dpsynth_{what}_{os.getpid()}_{next(_ids)}"
        with engine_errors(f"data {self.name!r}"):
            df.createOrReplaceTempView(name)
        self._views.append(name)
        return name

    def query(self, text: str) -> DataFrame:
        """The DataFrame of a query over this source's views (lazy: nothing runs, nothing is collected)."""
        with engine_errors(f"counting on data {self.name!r}"), session_conf(self.session):
            return self.session.sql(text)

    def fetch(self, text: str, max_rows: int, *, overflow: str | None = None) -> dict[str, np.ndarray]:
        """The ONE way results leave Spark: an aggregate of at most ``max_rows`` rows, as numpy columns.

        The query's optimized plan must read every relation under an Aggregate, and at most
        ``max_rows + 1`` rows are collected; anything else is a bug of dpsynth, refused before a row
        reaches Python.
        """
        with engine_errors(f"counting on data {self.name!r}"), session_conf(self.session):
            df = self.session.sql(f"SELECT * FROM ({text}) AS r LIMIT {int(max_rows) + 1}")
            aggregated = is_aggregate_plan(df)
            names = list(df.columns)
            rows = df.collect() if aggregated else []
        if not aggregated:
            raise RuntimeError("a query sent to Spark does not aggregate; nothing was collected")
        if len(rows) > max_rows:
            if overflow is not None:  # a limit of the data's own (e.g. distinct values), not a bug
                raise DataError(overflow)
            raise RuntimeError(f"an aggregate query returned more than {max_rows} rows")
        self.fetched_rows.append(len(rows))
        return {name: np.array([r[i] for r in rows], dtype=object) for i, name in enumerate(names)}

    def beside(self, data: str | Path) -> SparkSource:
        """A source over another path in this source's session, so that one query can join the two."""
        return SparkSource(data, session=self.session)

    def beside_frame(self, frame: Any) -> SparkSource:
        """A source over a pandas DataFrame of text columns (a synthetic table: public, or about to be
        checked) in this source's session, sent from the driver."""
        from pyspark.sql.types import StringType, StructField, StructType

        fields = StructType([StructField(str(c), StringType(), True) for c in frame.columns])
        with engine_errors("registering a table beside data"), pandas_interop():
            df = self.session.createDataFrame(frame.astype(object).where(frame.notna(), None), fields)
        return SparkSource(df)

    def bounded(self, schema: Schema) -> SparkSource:
        """A source over the rows each person keeps under the schema's user unit (the fit's rule, in SQL:
        :func:`~dpsynth.marginals.sql_bounding.bounded_rows_query`), the schema's columns only, in this
        source's session. Private data that stays in Spark; close it before this source."""
        text = sql_bounding.bounded_rows_query(schema, self.view, self.kinds, "spark", self.lookups(schema))
        view = SparkSource(self.query(text), session=self.session)
        view.already_bounded = True  # its rows are a bounded table: counted at the row unit from here on
        return view

    def bounded_raw(self, columns: Sequence[str], key: str, max_rows: int) -> SparkSource:
        """A source over the rows each person keeps before any schema exists (the key and ``columns``;
        :func:`~dpsynth.marginals.sql_bounding.bounded_raw_query`), in this source's session."""
        text = sql_bounding.bounded_raw_query(self.view, columns, key, max_rows, "spark")
        return SparkSource(self.query(text), session=self.session)

    def persist(self, text: str, what: str) -> str:
        """Persist the result of ``text`` as a temporary view of this source (private data that stays in
        Spark, dropped by ``close``); its name."""
        from pyspark import StorageLevel

        df = self.query(text)
        with engine_errors(f"counting on data {self.name!r}"), session_conf(self.session):  # the cache's plan
            df = df.persist(StorageLevel.MEMORY_AND_DISK)
        self._persisted.append(df)
        return self._register(df, what)

    def sample_rows(self, names: Sequence[str], rows: int, seed: int) -> Any:
        """A seeded Bernoulli sample of at most ``rows`` rows (about ``rows``) of the columns ``names``, as a
        pandas DataFrame.

        ROWS REACH THE DRIVER here, and only here: for the internal checks that need rows (KS distances,
        associations, utility), which state the sample in their report. Repeatable for the same input and
        partitioning (Spark's seeded ``sample``). Not DP.
        """
        import pandas as pd

        total = int(self.fetch(f"SELECT COUNT(*) AS n FROM {self.view}", 1)["n"][0])
        fraction = 1.0 if total <= rows else min(1.0, (rows + 10.0 * rows ** 0.5 + 10.0) / total)
        cols = ", ".join(sql.quote_identifier(n, "spark") for n in names)
        with engine_errors(f"sampling data {self.name!r}"), session_conf(self.session):
            frame = self.session.sql(f"SELECT {cols} FROM {self.view}")
            picked = (frame if fraction >= 1.0 else frame.sample(False, fraction, int(seed))).limit(int(rows))
            collected = picked.collect()
        return pd.DataFrame.from_records([tuple(r) for r in collected], columns=list(names))

    def reduce_batches(self, names: Sequence[str], fn: Callable[[Any], np.ndarray], width: int) -> np.ndarray:
        """Σ ``fn(batch)`` over every row of the columns ``names``; ``fn`` maps a pandas batch to an int64
        vector of ``width`` counts.

        ``fn`` runs on the executors (``mapInPandas``, shipped there by pickling: it and what it holds must
        be picklable, and the executors' Python must have dpsynth); each task sums its batches and only one
        vector per task reaches the driver, never a row. Decimals come as float64.
        """
        import pandas as pd

        kinds = dict(zip(self._columns, self._types, strict=True))
        cols = ", ".join(f"CAST({q} AS DOUBLE) AS {q}" if kinds[n].startswith("decimal") else q
                         for n, q in ((n, sql.quote_identifier(n, "spark")) for n in names))
        size = int(width)

        def partial(frames: Any) -> Any:
            total = np.zeros(size, dtype=np.int64)
            for frame in frames:
                total += np.asarray(fn(frame), dtype=np.int64)
            yield pd.DataFrame({"h": [total.tolist()]})

        with engine_errors(f"scoring data {self.name!r}"), session_conf(self.session), pandas_interop():
            rows = self.query(f"SELECT {cols} FROM {self.view}").mapInPandas(partial, "h array<bigint>").collect()
        self.fetched_rows.append(len(rows))
        out = np.zeros(size, dtype=np.int64)
        for row in rows:
            out += np.asarray(row[0], dtype=np.int64)
        return out

    # -- TableSource ----------------------------------------------------------------------------

    @property
    def table(self) -> str:
        """The name a query reads the table by (this source's view)."""
        return self.view

    @property
    def columns(self) -> list[str]:
        """The table's column names (public: its header)."""
        return list(self._columns)

    def validate(self, schema: Schema) -> None:
        """Raise the DataError ``encode`` raises if the table does not fit ``schema`` (one aggregation:
        per column, counts of missing cells of a column not nullable, values outside the levels, text
        that is not a number or a date/time)."""
        schema = self._unit_schema(schema)
        sql.check_columns(schema, self._columns)
        text = sql.validation_query(schema, self.view, self.kinds, "spark", self.lookups(schema))
        row = self.fetch(text, 1)
        error = sql.validation_error(schema, {k: v[0] for k, v in row.items()})
        if error is not None:
            raise error
        sql_bounding.check_keys(self, schema)

    def below_counts(self, column: str, schema: Schema, grid: np.ndarray) -> tuple[np.ndarray, int]:
        """(#{x < c} for each c of ``grid``, the number of non-missing values), values clamped to the
        column's bounds; a histogram of at most ``len(grid) + 1`` cells leaves Spark."""
        sql.check_columns(schema, self._columns)
        points = np.asarray(grid, dtype=float)
        out = self.fetch(sql.below_query(schema, column, self.view, self.kinds, points.tolist(), "spark"),
                         len(points) + 1)
        return sql.below_from_histogram(out["b"].astype(np.int64), out["n"].astype(np.int64), len(points))

    def fingerprint(self, schema: Schema) -> str:
        """SHA-256 hex of order-independent sums of hashes of the encoded rows, every row (one aggregate row)."""
        return self.counter(sql_bounding.rows_schema(schema)).fingerprint()

    def counter(self, schema: Schema) -> SparkCounter:
        """The marginal counts of the table encoded under ``schema`` (validate it first)."""
        schema = self._unit_schema(schema)
        sql.check_columns(schema, self._columns)
        return SparkCounter(self, schema)

    def lookups(self, schema: Schema) -> dict[int, str]:
        """Register the (k, code) view of each categorical column of many levels (public levels only,
        sent from Python); their names."""
        out: dict[int, str] = {}
        for j, col in enumerate(schema.columns):
            if col.kind != "categorical" or len(col.levels) <= sql.CASE_LEVELS:
                continue
            with engine_errors(f"data {self.name!r}"):
                table = self.session.createDataFrame(sql.level_pairs(col), "k STRING, code INT")
            out[j] = self._register(table, "levels")
        return out

    def materialize(self, schema: Schema) -> str:
        """Aggregate the encoded table once into a persisted view (distinct code tuples ``c{j}`` and
        their count ``w``); its name. Private data that stays in Spark."""
        schema = self._unit_schema(schema)
        from pyspark import StorageLevel

        if schema.privacy_unit.is_user:  # each person's rows beyond K dropped, in Spark
            encoded = sql_bounding.bounded_codes_query(schema, self.view, self.kinds, "spark", self.lookups(schema))
        else:
            encoded = sql.encoded_query(schema, self.view, self.kinds, "spark", self.lookups(schema))
        cols = ", ".join(f"c{j}" for j in range(len(schema)))
        codes = self.query(f"SELECT {cols}, COUNT(*) AS w FROM ({encoded}) AS e GROUP BY {cols}")
        with engine_errors(f"counting on data {self.name!r}"), session_conf(self.session):  # the cache's plan
            codes = codes.persist(StorageLevel.MEMORY_AND_DISK)
        self._persisted.append(codes)
        return self._register(codes, "codes")

    def close(self) -> None:
        """Unpersist the aggregated codes and drop this source's temporary views."""
        for df in self._persisted:
            with engine_errors(f"data {self.name!r}"):
                df.unpersist()
        self._persisted.clear()
        for name in reversed(self._views):
            with engine_errors(f"data {self.name!r}"):
                self.session.catalog.dropTempView(name)
        self._views.clear()


class SparkCounter(GroupingCounter):
    """Marginal counts under one schema by GROUPING SETS over the aggregated codes of
    :meth:`SparkSource.materialize`."""
