"""Reading and writing tables (CSV or Parquet by extension) and schema files, written atomically."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from dpsynth.exceptions import DataError, ParameterError

TABLE_SUFFIXES = (".csv", ".csv.gz", ".parquet")
SCHEMA_SUFFIXES = (".yaml", ".yml", ".json")


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
    return p, fmt


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a private table as text (CSV) or typed columns (Parquet); nothing is inferred.

    CSV cells are read as strings, so the schema alone decides what they mean.
    """
    p, fmt = _existing_file(path)
    read_header(p)  # refuses duplicate column names before pandas renames them ("age" -> "age.1")
    try:
        if fmt == "csv":
            df = pd.read_csv(p, dtype=str, keep_default_na=False, skipinitialspace=True)
        else:
            df = pd.read_parquet(p)
    except pd.errors.EmptyDataError:
        raise DataError(f"data file {str(p)!r} is empty") from None
    except (OSError, UnicodeDecodeError, ValueError, pd.errors.ParserError) as exc:
        raise DataError(f"data file {str(p)!r} cannot be read as {fmt}: {exc.__class__.__name__}") from None
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
    try:
        if fmt == "csv":
            first = pd.read_csv(p, dtype=str, nrows=1, header=None, keep_default_na=False, skipinitialspace=True)
            names = [str(n) for n in first.iloc[0].tolist()] if len(first) else []
        else:
            import pyarrow.parquet as pq

            names = list(pq.read_schema(p).names)
    except pd.errors.EmptyDataError:
        raise DataError(f"data file {str(p)!r} is empty") from None
    except (OSError, UnicodeDecodeError, ValueError, pd.errors.ParserError) as exc:
        raise DataError(f"data file {str(p)!r} cannot be read as {fmt}: {exc.__class__.__name__}") from None
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
    return _writable_location(p, name)


def _writable_location(p: Path, name: str) -> Path:
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise ParameterError(f"{name} ({str(p)!r}) must be in an existing directory")
    if not os.access(parent, os.W_OK):
        raise ParameterError(f"{name} ({str(p)!r}) must be in a writable directory")
    if p.is_dir():
        raise ParameterError(f"{name} ({str(p)!r}) must be a file, not a directory")
    return p


def check_schema_writable(path: str | Path, *, name: str = "out") -> Path:
    """Check, before any budget is spent, that a schema file (YAML or JSON) can be written at ``path``."""
    p = Path(path)
    if not p.name.lower().endswith(SCHEMA_SUFFIXES):
        raise ParameterError(f"{name} ({str(p)!r}) must end in .yaml, .yml or .json")
    return _writable_location(p, name)


def write_text(text: str, path: str | Path) -> Path:
    """Write ``text`` to ``path`` atomically: a reader sees the whole file or none of it."""
    p = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".partial", dir=p.parent if str(p.parent) else ".")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return p


def write_table(df: pd.DataFrame, path: str | Path, *, na_rep: str = "") -> Path:
    """Write ``df`` to ``path`` atomically: a reader sees the whole file or none of it."""
    p = check_writable(path)
    fmt = table_format(p)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".partial", dir=p.parent if str(p.parent) else ".")
    os.close(fd)
    try:
        if fmt == "csv":  # the temporary name ends in .partial: say the target's compression
            df.to_csv(tmp, index=False, na_rep=na_rep, compression="gzip" if p.name.endswith(".gz") else None)
        else:
            df.to_parquet(tmp, index=False)
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return p


def read_config(path: str | Path, *, what: str, error: type[Exception], fmt: str | None = None) -> tuple[object, bytes]:
    """The parsed content of a YAML or JSON file a user wrote, and its bytes.

    Every failure raises ``error`` with one line naming the file, the line and column and a generic
    reason: never the file's text (a private table given by mistake must not reach the screen).
    ``fmt`` is ``"json"`` or ``"yaml"`` (JSON is YAML, so YAML also reads JSON); by default the suffix decides.
    """
    p = Path(path)
    where = f"{what} {str(p)!r}"
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise error(f"{where} does not exist") from None
    except OSError as exc:
        raise error(f"{where} cannot be read ({exc.__class__.__name__})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{where} is not UTF-8 text (invalid byte at offset {exc.start})") from None
    fmt = fmt or ("json" if p.suffix.lower() == ".json" else "yaml")
    if fmt == "json":
        import json

        try:
            return json.loads(text), data
        except json.JSONDecodeError as exc:
            raise error(f"{where} is not valid JSON at line {exc.lineno}, column {exc.colno}") from None
        except RecursionError:
            raise error(f"{where} is nested too deeply") from None
    import yaml

    try:
        return yaml.safe_load(text), data
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise error(f"{where} is not valid YAML{at} ({exc.__class__.__name__})") from None
    except RecursionError:
        raise error(f"{where} is nested too deeply") from None


def key_names(keys: Any, *, listed: bool = False) -> str:
    """Unknown keys of a config file for an error message: names that look like a setting are shown,
    anything else (a row of a table given by mistake) only counted, never quoted."""
    import re

    shown = sorted({str(k) for k in keys if re.fullmatch(r"[a-z_][a-z0-9_.-]{0,39}", str(k))})
    hidden = len({str(k) for k in keys}) - len(shown)
    note = [f"{hidden} other key(s) not shown (not a dpsynth setting)"] if hidden else []
    return (repr(shown) + (f" and {note[0]}" if note else "")) if listed else ", ".join(shown + note)
