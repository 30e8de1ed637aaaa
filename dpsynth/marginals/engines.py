"""Which engine counts a private table: ``--engine auto|numpy|duckdb|spark`` and the Python ``data``.

* ``numpy``: the table is read into memory (pandas) and encoded there, as before the engines.
* ``duckdb``: embedded DuckDB scans the file(s) — CSV, gzip CSV, Parquet, a folder or glob of
  Parquet files — and only aggregates leave it; it spills to disk beyond its memory limit, so a
  table larger than memory is fine.
* ``spark``: pyspark reads the path (or a DataFrame in Python) and only aggregates reach the driver;
  ``--spark-master URL`` (or the active session's master) for a cluster, ``local[*]`` by default.
* ``auto`` (the default): a DuckDB relation goes to DuckDB and a Spark DataFrame to Spark; a path
  goes to Spark when a Spark master is given, else to DuckDB when it is a folder of Parquet files, a glob or a file
  over :data:`IN_MEMORY_BYTES`, else into memory. A synthesizer that trains on rows (DP-SGD, a
  plug-in) always reads the table into memory under ``auto``, and refuses ``duckdb``/``spark``.

The choice changes where the counts are computed, never what they are: every engine gives the
same exact counts (``tests/marginals/``), so the same seeded noise gives the same model. The size
of the file decides only where it is read; it is not reported in any published artifact. ``release``
does not let it decide (``by_size=False``): its DP replay split is the engine's hash.
"""

from __future__ import annotations

import contextlib
import glob
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dpsynth.exceptions import ParameterError
from dpsynth.marginals.backend import TableSource

if TYPE_CHECKING:
    from dpsynth.marginals.duckdb_backend import DuckDBSource
    from dpsynth.marginals.spark_backend import SparkSource

__all__ = ["ENGINES", "IN_MEMORY_BYTES", "choose_engine", "close_sources", "held_by", "is_engine_data", "open_source",
           "open_sources", "register_frame", "registered"]

ENGINES = ("auto", "numpy", "duckdb", "spark")
#: ``auto`` reads a file of at most this many bytes into memory; larger ones are scanned by DuckDB.
IN_MEMORY_BYTES = 256 * 2**20


def held_by(data: Any) -> str | None:
    """``duckdb`` for a DuckDB relation, ``spark`` for a Spark DataFrame, None otherwise (no import)."""
    module = type(data).__module__ or ""
    if module.startswith("duckdb") and type(data).__name__ == "DuckDBPyRelation":
        return "duckdb"
    if module.startswith("pyspark.sql") and type(data).__name__ == "DataFrame":
        return "spark"
    return None


def is_engine_data(data: Any) -> bool:
    """Whether ``data`` is a table held by an engine (a DuckDB relation, a Spark DataFrame, a source)."""
    return isinstance(data, TableSource) or held_by(data) is not None


def _is_many_files(path: str) -> bool:
    """A glob, or a folder holding Parquet files (any other folder is left to the reader's own error)."""
    if any(ch in path for ch in "*?["):
        return True
    return os.path.isdir(path) and any(Path(path).rglob("*.parquet"))


def choose_engine(engine: str, data: Any, *, fits_on_marginals: bool, spark_master: str | None = None,
                  by_size: bool = True) -> str:
    """The engine that will count ``data`` (a path, a DataFrame, a relation) for a synthesizer.

    ``by_size=False``: under ``auto`` a file's size never picks DuckDB (only the path's form and the
    Spark master do), for a command whose published figures differ by engine (the release's DP replay
    split is the engine's hash): the size is a function of the private rows, so it must not choose.

    Raises:
        ParameterError: an unknown engine, an engine that cannot hold this data, or ``duckdb``/``spark``
            for a synthesizer that trains on rows.
    """
    if engine not in ENGINES:
        raise ParameterError(f"engine ({engine!r}) must be one of: {', '.join(ENGINES)}")
    held = held_by(data)
    if engine == "auto":
        if held is not None:
            engine = held
        elif not fits_on_marginals:
            engine = "numpy"
        elif spark_master is not None:
            engine = "spark"
        elif isinstance(data, (str, Path)) and (_is_many_files(str(data)) or (by_size and _large(str(data)))):
            engine = "duckdb"
        else:
            engine = "numpy"
    if engine != "numpy" and not fits_on_marginals:
        raise ParameterError(f"engine ({engine!r}) counts marginals only: this synthesizer trains on rows, so its "
                             "table is read into memory (engine numpy or auto)")
    if held is not None and engine != held:
        raise ParameterError(f"engine ({engine!r}) cannot count a {held} table: use engine {held} or auto")
    if engine == "numpy" and isinstance(data, (str, Path)) and _is_many_files(str(data)):
        raise ParameterError(f"data ({str(data)!r}) is a folder or glob: engine numpy reads one file; use duckdb, "
                             "spark or auto")
    return engine


def _large(path: str) -> bool:
    try:
        return os.path.getsize(path) > IN_MEMORY_BYTES
    except OSError:
        return False  # the in-memory reader says what is wrong with the path


def open_source(
    data: Any, engine: str, *, spark_master: str | None = None, memory_limit: str | None = None,
    threads: int | None = None,
) -> TableSource | DuckDBSource | SparkSource:
    """The :class:`TableSource` of ``data`` in ``engine`` (``duckdb`` or ``spark``), opened (no rows read).

    Raises:
        ParameterError: ``engine`` is not ``duckdb`` or ``spark``; the path matches no file.
        DataError: the engine cannot read the data (one line, no content).
    """
    if isinstance(data, TableSource):
        return data
    _check_exists(data)
    if engine == "duckdb":
        from dpsynth.marginals.duckdb_backend import DuckDBSource

        options: dict[str, Any] = {"threads": threads}
        if memory_limit is not None:
            options["memory_limit"] = memory_limit
        return DuckDBSource(data, **options)
    if engine == "spark":
        from dpsynth.marginals.spark_backend import SparkSource

        return SparkSource(data, master=spark_master)
    raise ParameterError(f"engine ({engine!r}) must be duckdb or spark to open a counting source")


def open_sources(paths: list[str | Path | None], engine: str, *,
                 spark_master: str | None = None) -> list[DuckDBSource | SparkSource | None]:
    """Sources over ``paths`` (None stays None) in ONE DuckDB connection or Spark session, so that a query
    can join them; close them in reverse order (the first holds the connection).

    Raises:
        ParameterError, DataError: as :func:`open_source`; what was opened is closed again.
    """
    opened: list[Any] = []
    try:
        for path in paths:
            if path is None:
                opened.append(None)
            elif not opened or all(s is None for s in opened):
                opened.append(open_source(path, engine, spark_master=spark_master))
            else:
                first = next(s for s in opened if s is not None)
                _check_exists(path)
                opened.append(first.beside(path))
    except BaseException:
        close_sources(opened)
        raise
    return opened


def close_sources(sources: list[Any]) -> None:
    """Close what :func:`open_sources` opened, in reverse order (None entries skipped)."""
    for source in reversed(sources):
        if source is not None:
            source.close()


def _check_exists(data: Any) -> None:
    """A local path that matches no file is a ParameterError (a URL is left to the engine)."""
    if isinstance(data, (str, Path)) and not glob.glob(str(data)) and "://" not in str(data):
        raise ParameterError(f"data ({str(data)!r}) does not exist")


def register_frame(source: Any, frame: Any, na_rep: str) -> Any:
    """A source over ``frame`` (a synthetic table) beside ``source``, holding what its CSV would read back:
    every cell as text, a missing cell as ``na_rep`` (the checks then read exactly what would be released)."""
    import io

    import pandas as pd

    text = io.StringIO(frame.to_csv(index=False, na_rep=na_rep))
    return source.beside_frame(pd.read_csv(text, dtype=str, keep_default_na=False, skipinitialspace=True))


@contextlib.contextmanager
def registered(source: Any, frame: Any, schema: Any) -> Iterator[Any]:
    """:func:`register_frame` of ``frame`` with ``schema``'s missing-value text, closed when the block ends."""
    beside = register_frame(source, frame, schema.missing_values[0] if schema.missing_values else "")
    try:
        yield beside
    finally:
        beside.close()
