"""Reading and writing tables: CSV or Parquet by extension, written atomically."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pandas as pd

from dpsynth.exceptions import DataError, ParameterError

TABLE_SUFFIXES = (".csv", ".csv.gz", ".parquet")


def table_format(path: str | Path, *, name: str = "out") -> str:
    """``"csv"`` (also gzip-compressed) or ``"parquet"`` from the file name, or a ParameterError."""
    lowered = Path(path).name.lower()
    for suffix in TABLE_SUFFIXES:
        if lowered.endswith(suffix):
            return "parquet" if suffix == ".parquet" else "csv"
    raise ParameterError(f"{name} ({str(path)!r}) must end in .csv, .csv.gz or .parquet")


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a private table as text (CSV) or typed columns (Parquet); nothing is inferred.

    CSV cells are read as strings, so the schema alone decides what they mean.
    """
    p = Path(path)
    fmt = table_format(p, name="data")
    if not p.exists():
        raise DataError(f"data file {str(p)!r} does not exist")
    if not p.is_file():
        raise DataError(f"data file {str(p)!r} is not a file")
    try:
        if fmt == "csv":
            df = pd.read_csv(p, dtype=str, keep_default_na=False, skipinitialspace=True)
        else:
            df = pd.read_parquet(p)
    except pd.errors.EmptyDataError:
        raise DataError(f"data file {str(p)!r} is empty") from None
    except (OSError, UnicodeDecodeError, ValueError, pd.errors.ParserError) as exc:
        raise DataError(f"data file {str(p)!r} cannot be read as {fmt}: {exc.__class__.__name__}") from None
    if len(df) == 0:
        raise DataError(f"data file {str(p)!r} has no rows")
    return df


def check_writable(path: str | Path, *, name: str = "out") -> Path:
    """Check, before any budget is spent, that ``path`` can be written."""
    p = Path(path)
    table_format(p, name=name)
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
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".partial", dir=p.parent if str(p.parent) else ".")
    os.close(fd)
    try:
        if fmt == "csv":
            df.to_csv(tmp, index=False, na_rep=na_rep)
        else:
            df.to_parquet(tmp, index=False)
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return p
