"""Table files: their format from the name (CSV, gzip-compressed CSV or Parquet), reading a private table
as text within the input limits, its header, its fingerprint, and writing a table atomically."""

from __future__ import annotations

import contextlib
import os
import zlib
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from dpsynth.exceptions import DataError, DPSynthError, ParameterError
from dpsynth.io.limited_read import check_parquet_size, read_csv_limited
from dpsynth.io.staging import staged_file

__all__ = ["TABLE_SUFFIXES", "check_writable", "read_header", "read_table", "sha256_file", "table_format",
           "writable_location", "write_table"]

TABLE_SUFFIXES = (".csv", ".csv.gz", ".parquet")


def table_format(path: str | Path, *, name: str = "out") -> str:
    """``"csv"`` (also gzip-compressed) or ``"parquet"`` from the file name, or a ParameterError."""
    lowered = Path(path).name.lower()
    for suffix in TABLE_SUFFIXES:
        if lowered.endswith(suffix):
            return "parquet" if suffix == ".parquet" else "csv"
    raise ParameterError(f"{name} ({str(path)!r}) must end in .csv, .csv.gz or .parquet")


def _existing_file(path: str | Path) -> tuple[Path, str]:
    p = Path(path)
    fmt = table_format(p, name="data")
    if not p.exists():
        raise DataError(f"data file {str(p)!r} does not exist")
    if not p.is_file():
        raise DataError(f"data file {str(p)!r} is not a file")
    if not os.access(p, os.R_OK):
        raise DataError(f"data file {str(p)!r} cannot be read: permission denied")
    return p, fmt


def _cannot_read(p: Path, fmt: str, exc: BaseException) -> DataError:
    """The one-line error of a table that cannot be read (never its content, nor the parser's message)."""
    if isinstance(exc, UnicodeDecodeError):
        return DataError(f"data file {str(p)!r} cannot be read as {fmt}: it is not UTF-8 text")
    if isinstance(exc, PermissionError):
        return DataError(f"data file {str(p)!r} cannot be read: permission denied")
    if isinstance(exc, (EOFError, zlib.error)) or exc.__class__.__name__ == "BadGzipFile":
        return DataError(f"data file {str(p)!r} cannot be read as {fmt}: it is not a complete gzip file "
                         f"({exc.__class__.__name__})")
    return DataError(f"data file {str(p)!r} cannot be read as {fmt}: {exc.__class__.__name__}")


@contextlib.contextmanager
def _reading(p: Path, fmt: str) -> Iterator[None]:
    """Turn what a reader of ``p`` raises into one DataError line (a limit's own error passes)."""
    try:
        yield
    except pd.errors.EmptyDataError:
        raise DataError(f"data file {str(p)!r} is empty") from None
    except (OSError, EOFError, zlib.error, UnicodeDecodeError, ValueError, pd.errors.ParserError) as exc:
        if isinstance(exc, DPSynthError):  # a limit passed (a ParameterError is a ValueError too)
            raise
        raise _cannot_read(p, fmt, exc) from None


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a private table as text (CSV) or typed columns (Parquet); nothing is inferred.

    CSV cells are read as strings, so the schema alone decides what they mean. A table over a limit of
    ``docs/limits.md`` (decompressed size, longest line, memory of its cells) is refused with a
    ParameterError as the read passes it, without reading the rest.
    """
    p, fmt = _existing_file(path)
    names = read_header(p)  # refuses duplicate column names before pandas renames them ("age" -> "age.1")
    with _reading(p, fmt):
        if fmt == "csv":
            df = read_csv_limited(p, columns=len(names))
        else:
            check_parquet_size(p)
            df = pd.read_parquet(p)
    _unique_columns([str(c) for c in df.columns], p)
    if len(df) == 0:
        raise DataError(f"data file {str(p)!r} has no rows")
    return df


def _unique_columns(names: list[str], p: Path) -> None:
    seen: set[str] = set()
    for position, n in enumerate(names, start=1):
        if n in seen:
            raise DataError(f"data file {str(p)!r}: column {n!r} appears more than once (again at position "
                            f"{position}); column names must be unique")
        seen.add(n)


def read_header(path: str | Path) -> list[str]:
    """The column names of a table (public), without reading its rows."""
    p, fmt = _existing_file(path)
    with _reading(p, fmt):
        if fmt == "csv":
            first = read_csv_limited(p, nrows=1, header=None)
            names = [str(n) for n in first.iloc[0].tolist()] if len(first) else []
        else:
            import pyarrow.parquet as pq

            names = list(pq.read_schema(p).names)
    if not names:
        raise DataError(f"data file {str(p)!r} has no columns")
    names = [str(n) for n in names]
    _unique_columns(names, p)
    return names


def sha256_file(path: str | Path) -> str:
    """SHA-256 of a file's bytes (the input fingerprint the ledger records)."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_writable(path: str | Path, *, name: str = "out") -> Path:
    """Check, before any budget is spent, that ``path`` can be written."""
    p = Path(path)
    table_format(p, name=name)
    return writable_location(p, name)


def writable_location(p: Path, name: str) -> Path:
    """``p`` when a file may be written there (an existing, writable folder; not a folder itself)."""
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise ParameterError(f"{name} ({str(p)!r}) must be in an existing directory")
    if not os.access(parent, os.W_OK):
        raise ParameterError(f"{name} ({str(p)!r}) must be in a writable directory")
    if p.is_dir():
        raise ParameterError(f"{name} ({str(p)!r}) must be a file, not a directory")
    return p


def write_table(df: pd.DataFrame, path: str | Path, *, na_rep: str = "") -> Path:
    """Write ``df`` to ``path`` atomically: a reader sees the whole file or none of it."""
    p = check_writable(path)
    fmt = table_format(p)
    with staged_file(p) as tmp:
        if fmt == "csv":  # the temporary name ends in .partial: say the target's compression
            df.to_csv(tmp, index=False, na_rep=na_rep, compression="gzip" if p.name.endswith(".gz") else None)
        else:
            df.to_parquet(tmp, index=False)
    return p
