"""Reading and writing tables (CSV or Parquet by extension) and schema files, written atomically."""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from dpsynth.exceptions import DataError, DPSynthError, ParameterError

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
    if not os.access(p, os.R_OK):
        raise DataError(f"data file {str(p)!r} cannot be read: permission denied")
    return p, fmt


class _LimitedReader(io.RawIOBase):
    """The bytes of a CSV table (gzip-decompressed for ``.csv.gz``), read in pieces and refused, with one
    line naming the file, the limit and the position, as soon as they pass a limit of ``dpsynth._limits``:
    the decompressed size, the longest line, or the memory the cells read so far need at the least
    (``columns`` × rows × ``CELL_BYTES``). Never more than one piece (at most the line limit) is held
    here, so a compression bomb or a line without end costs little memory.

    Only the first and last line break of each piece are looked for (a piece is never longer than the
    line limit, so a line inside it cannot pass it), and line breaks are counted with ``bytes.count``:
    the checks run at the speed of ``memchr``.
    """

    def __init__(self, path: Path, *, columns: int = 0) -> None:
        from dpsynth import _limits

        super().__init__()
        self._path = path
        self._max_bytes = _limits.max_input_bytes()
        self._max_line = _limits.max_line_bytes()
        self._columns = columns
        self._raw = open(path, "rb")  # noqa: SIM115 - closed by close()
        self._compressed = path.name.lower().endswith(".gz")
        if self._compressed:
            import gzip

            self._stream: Any = gzip.GzipFile(fileobj=self._raw, mode="rb")
        else:
            self._stream = self._raw
            size = os.fstat(self._raw.fileno()).st_size
            if size > self._max_bytes:
                self.close()
                raise self._over(f"is {size:,} bytes, more than the limit of {self._max_bytes:,} bytes")
        self._offset = 0  # decompressed bytes read so far
        self._breaks = 0  # line breaks so far (\r\n counted once)
        self._line_start = 0  # offset of the line not yet ended
        self._after_cr = False  # whether the last piece ended in \r

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        piece = self._stream.read(max(1, min(len(buffer), self._max_line)))
        if piece:
            self._check(piece)
        n = len(piece)
        buffer[:n] = piece
        return n

    def close(self) -> None:
        if not self.closed:
            try:
                if self._stream is not self._raw:
                    self._stream.close()
            finally:
                self._raw.close()
        super().close()

    def _over(self, what: str, *, line: bool = False) -> ParameterError:
        from dpsynth import _limits

        env = _limits.LINE_ENV if line else _limits.INPUT_ENV
        return ParameterError(f"data file {str(self._path)!r} {what} (set ${env} to change the limit; "
                              "docs/limits.md)")

    def _check(self, piece: bytes) -> None:
        from dpsynth._limits import CELL_BYTES

        base, n = self._offset, len(piece)
        first = min((i for i in (piece.find(b"\n"), piece.find(b"\r")) if i >= 0), default=-1)
        end = base + (n if first < 0 else first)  # where the line not yet ended stops in this piece
        if end - self._line_start > self._max_line:
            gz = " of the decompressed text" if self._compressed else ""
            raise self._over(f"has a line longer than the limit of {self._max_line:,} bytes: line "
                             f"{self._breaks + 1:,}, from byte offset {self._line_start:,}{gz}", line=True)
        breaks = piece.count(b"\n") + piece.count(b"\r") - piece.count(b"\r\n")
        if self._after_cr and piece.startswith(b"\n"):
            breaks -= 1
        self._breaks += breaks
        self._after_cr = piece.endswith(b"\r")
        if first >= 0:
            self._line_start = base + max(piece.rfind(b"\n"), piece.rfind(b"\r")) + 1
        self._offset = base + n
        if self._offset > self._max_bytes:
            where = (f"decompresses to more than the limit of {self._max_bytes:,} bytes (passed at compressed "
                     f"byte offset {self._raw.tell():,})" if self._compressed
                     else f"is more than the limit of {self._max_bytes:,} bytes")
            raise self._over(where)
        cells = (self._breaks + 1) * self._columns
        if cells * CELL_BYTES > self._max_bytes:
            raise self._over(f"has too many cells for the limit of {self._max_bytes:,} bytes of memory: by line "
                             f"{self._breaks + 1:,} (byte offset {self._offset:,}) about {cells:,} cells of "
                             f"{self._columns} columns, at least {CELL_BYTES} bytes each once read")


def _read_csv(p: Path, *, columns: int = 0, **kwargs: Any) -> pd.DataFrame:
    """``pd.read_csv`` of ``p`` through :class:`_LimitedReader` (UTF-8, every cell as text)."""
    with _LimitedReader(p, columns=columns) as raw:
        text = io.TextIOWrapper(io.BufferedReader(raw, buffer_size=min(1 << 20, raw._max_line)),
                                encoding="utf-8", newline="")
        try:
            return pd.read_csv(text, dtype=str, keep_default_na=False, skipinitialspace=True, **kwargs)
        finally:
            text.detach()  # the reader is closed by the with


def _check_parquet(p: Path) -> None:
    """Refuse a Parquet table whose size passes the input limit, before it is read as a DataFrame.

    First from its footer: the file's size, the uncompressed size of its row groups and its cells
    (rows × columns × ``CELL_BYTES``). Then the size its text takes once decoded: a value repeated by a
    dictionary or run-length encoding costs the footer its length once but memory on every row (440
    bytes of Parquet can hold 2 GB of text), so the text columns are read as dictionaries (memory of the
    order of the file) and their decoded length summed before anything is expanded.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from dpsynth import _limits

    limit = _limits.max_input_bytes()
    where = f"data file {str(p)!r}"
    hint = f" (set ${_limits.INPUT_ENV} to change the limit; docs/limits.md)"
    size = p.stat().st_size
    if size > limit:
        raise ParameterError(f"{where} is {size:,} bytes, more than the limit of {limit:,} bytes{hint}")
    meta = pq.ParquetFile(p).metadata
    total = 0
    for i in range(meta.num_row_groups):  # the footer's own account of each row group, uncompressed
        total += meta.row_group(i).total_byte_size
        if total > limit:
            raise ParameterError(f"{where} decompresses to more than the limit of {limit:,} bytes (passed in row "
                                 f"group {i + 1:,} of {meta.num_row_groups:,}){hint}")
    cells = meta.num_rows * meta.num_columns
    if cells * _limits.CELL_BYTES > limit:
        raise ParameterError(f"{where} has too many cells for the limit of {limit:,} bytes of memory: "
                             f"{meta.num_rows:,} rows of {meta.num_columns} columns, at least "
                             f"{_limits.CELL_BYTES} bytes each once read{hint}")

    def is_text(t: Any) -> bool:
        if pa.types.is_dictionary(t):
            return is_text(t.value_type)
        return bool(pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_binary(t)
                    or pa.types.is_large_binary(t))

    text = [f.name for f in pq.read_schema(p) if is_text(f.type)]
    if not text:
        return
    table = pq.read_table(p, columns=text, read_dictionary=text)
    decoded = 0
    for name in text:
        for chunk in table.column(name).chunks:
            if pa.types.is_dictionary(chunk.type):
                lengths = pc.binary_length(chunk.dictionary)
                decoded += int(pc.sum(pc.take(lengths, chunk.indices)).as_py() or 0) + 8 * len(chunk)
            else:
                decoded += chunk.nbytes
            if decoded > limit:
                raise ParameterError(f"{where} decodes to more than the limit of {limit:,} bytes (passed in column "
                                     f"{name!r}: its text repeated on every row){hint}")


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


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a private table as text (CSV) or typed columns (Parquet); nothing is inferred.

    CSV cells are read as strings, so the schema alone decides what they mean. A table over a limit of
    ``docs/limits.md`` (decompressed size, longest line, memory of its cells) is refused with a
    ParameterError as the read passes it, without reading the rest.
    """
    p, fmt = _existing_file(path)
    names = read_header(p)  # refuses duplicate column names before pandas renames them ("age" -> "age.1")
    try:
        if fmt == "csv":
            df = _read_csv(p, columns=len(names))
        else:
            _check_parquet(p)
            df = pd.read_parquet(p)
    except pd.errors.EmptyDataError:
        raise DataError(f"data file {str(p)!r} is empty") from None
    except (OSError, EOFError, zlib.error, UnicodeDecodeError, ValueError, pd.errors.ParserError) as exc:
        if isinstance(exc, DPSynthError):  # a limit passed (a ParameterError is a ValueError too)
            raise
        raise _cannot_read(p, fmt, exc) from None
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
            first = _read_csv(p, nrows=1, header=None)
            names = [str(n) for n in first.iloc[0].tolist()] if len(first) else []
        else:
            import pyarrow.parquet as pq

            names = list(pq.read_schema(p).names)
    except pd.errors.EmptyDataError:
        raise DataError(f"data file {str(p)!r} is empty") from None
    except (OSError, EOFError, zlib.error, UnicodeDecodeError, ValueError, pd.errors.ParserError) as exc:
        if isinstance(exc, DPSynthError):  # a limit passed (a ParameterError is a ValueError too)
            raise
        raise _cannot_read(p, fmt, exc) from None
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


# -- temporaries of a write: owned by one process, removed by it or, once it is gone, by the next write -

#: the part of a temporary's name that says which process made it: ``dpsynth-HOST-BOOT-PID-START``
_OWNER = r"dpsynth-(?P<host>[0-9a-f]{8})-(?P<boot>[0-9a-f]{8})-(?P<pid>[1-9][0-9]{0,9})-(?P<start>[0-9]{1,20})"
#: the random part ``tempfile`` adds (8 characters of ``[a-z0-9_]``)
_RANDOM = r"[a-z0-9_]{8}"
#: the name of the record a failed release leaves in its kept folder: a folder holding it is kept, never
#: removed as a leftover (``dpsynth.release.artifacts``)
KEPT_RECORD = "failure.json"


def _short_hash(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:8]


def _host_id() -> str:
    """A short hash of this machine's name and of this process's pid namespace (two containers sharing a
    folder see each other's pids as dead: their temporaries never match)."""
    import socket

    try:
        namespace = f"/{os.stat('/proc/self/ns/pid').st_ino}"
    except OSError:
        namespace = ""
    return _short_hash(socket.gethostname() + namespace)


def _boot_id() -> str:
    """A short hash of this boot's id (Linux), or ``00000000`` when it is unknown."""
    try:
        return _short_hash(Path("/proc/sys/kernel/random/boot_id").read_text(encoding="ascii").strip())
    except (OSError, UnicodeDecodeError):
        return "0" * 8


def _start_ticks(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks since boot, ``/proc/PID/stat``), or None when unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
        return int(stat[stat.rindex(b")") + 2:].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def owner_tag() -> str:
    """This process's part of a temporary's name: host, boot, pid and start time (a reused pid differs
    in its start time)."""
    pid = os.getpid()
    return f"dpsynth-{_host_id()}-{_boot_id()}-{pid}-{_start_ticks(pid) or 0}"


def _stem(name: str) -> str:
    """The target's name as temporaries carry it (a long name is hashed: a file name has at most 255 bytes)."""
    return name if len(os.fsencode(name)) <= 120 else "h" + _short_hash(name) + _short_hash(name[::-1])


def leftover_prefix(name: str) -> str:
    """The prefix of this process's temporaries for a target called ``name`` (``tempfile`` adds the rest)."""
    return f".{_stem(name)}.{owner_tag()}."


def _owner_gone(host: str, boot: str, pid: int, start: int) -> bool:
    """True only when the process that made a temporary is certainly gone; unsure means alive."""
    if host != _host_id():
        return False  # another machine's run (a shared folder): nothing here can tell
    here = _boot_id()
    if boot != here:
        return "0" * 8 not in (boot, here)  # made before this machine last started
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # alive, another user's
    except (OSError, OverflowError, ValueError):
        return False
    now = _start_ticks(pid)
    return bool(start) and now is not None and now != start  # the pid was reused by a later process


def remove_stale_leftovers(parent: str | Path, name: str, *, folder: bool = False) -> list[Path]:
    """Remove the temporaries of target ``name`` in ``parent`` that a process now gone left behind.

    Only names of the exact pattern this module gives a temporary of that target are considered
    (``.NAME.dpsynth-HOST-BOOT-PID-START.RANDOM.partial``, or without ``.partial`` for a release's
    staging folder when ``folder``); a symbolic link, a file where a folder is expected (or the
    reverse), another machine's temporary, a living (or unknown) process's and a kept failed
    release (a folder holding ``failure.json``) are left alone. Best effort: returns what was removed.
    """
    import re
    import shutil

    suffix = "" if folder else r"\.partial"
    pattern = re.compile(rf"\.{re.escape(_stem(name))}\.{_OWNER}\.{_RANDOM}{suffix}")
    removed: list[Path] = []
    try:
        entries = list(os.scandir(parent))
    except OSError:
        return removed
    for entry in entries:
        match = pattern.fullmatch(entry.name)
        if match is None:
            continue
        try:
            kind_ok = entry.is_dir(follow_symlinks=False) if folder else entry.is_file(follow_symlinks=False)
            if not kind_ok or entry.is_symlink():
                continue
            if not _owner_gone(match["host"], match["boot"], int(match["pid"]), int(match["start"])):
                continue
            if folder:
                if os.path.lexists(os.path.join(entry.path, KEPT_RECORD)):
                    continue
                shutil.rmtree(entry.path)  # refuses a link put in its place; never follows one inside
            else:
                os.unlink(entry.path)
        except FileNotFoundError:
            continue  # another run removed it first
        except OSError:
            continue
        removed.append(Path(entry.path))
    return removed


def _terminate(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def terminate_as_exit() -> Iterator[None]:
    """While inside: SIGTERM and SIGHUP raise ``SystemExit(128 + signal)``, so that the cleanups of the
    block run (a temporary removed, a failed release kept). Only in the main thread, and only where
    the signal still has its default action; restored on the way out."""
    import signal
    import threading

    installed: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
            if sig is None:
                continue
            try:
                if signal.getsignal(sig) is signal.SIG_DFL:
                    installed[sig] = signal.signal(sig, _terminate)
            except (OSError, ValueError):
                continue
    try:
        yield
    finally:
        for sig, previous in installed.items():
            signal.signal(sig, previous)


@contextlib.contextmanager
def staged_file(path: str | Path) -> Iterator[str]:
    """A temporary file beside ``path`` for the block to write, renamed onto ``path`` when the block ends
    without an error and removed when it does not (SIGTERM included): a reader sees the whole file or
    none of it. A temporary of the same target left by a killed run is removed first."""
    p = Path(path)
    parent = p.parent if str(p.parent) else Path(".")
    remove_stale_leftovers(parent, p.name)
    tmp: str | None = None
    with terminate_as_exit():
        try:
            fd, tmp = tempfile.mkstemp(prefix=leftover_prefix(p.name), suffix=".partial", dir=parent)
            os.close(fd)
            yield tmp
            os.replace(tmp, p)
        except BaseException:
            if tmp is not None:
                Path(tmp).unlink(missing_ok=True)
            raise


def write_text(text: str, path: str | Path) -> Path:
    """Write ``text`` to ``path`` atomically: a reader sees the whole file or none of it."""
    p = Path(path)
    with staged_file(p) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
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


def read_config(path: str | Path, *, what: str, error: type[Exception], fmt: str | None = None) -> tuple[object, bytes]:
    """The parsed content of a YAML or JSON file a user wrote, and its bytes.

    Every failure raises ``error`` with one line naming the file, the line and column and a generic
    reason: never the file's text (a private table given by mistake must not reach the screen).
    ``fmt`` is ``"json"`` or ``"yaml"`` (JSON is YAML, so YAML also reads JSON); by default the suffix decides.
    """
    from dpsynth import _limits

    p = Path(path)
    where = f"{what} {str(p)!r}"
    limit = _limits.max_config_bytes()
    try:
        with open(p, "rb") as f:
            data = f.read(limit + 1)  # at most the limit: /dev/zero or a table given by mistake stops there
    except FileNotFoundError:
        raise error(f"{where} does not exist") from None
    except IsADirectoryError:
        raise error(f"{where} is a directory, not a file") from None
    except PermissionError:
        raise error(f"{where} cannot be read: permission denied") from None
    except OSError as exc:
        raise error(f"{where} cannot be read ({exc.__class__.__name__})") from None
    if len(data) > limit:
        raise error(f"{where} is more than the limit of {limit:,} bytes for a config file (set "
                    f"${_limits.CONFIG_ENV} to change it; docs/limits.md)")
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
