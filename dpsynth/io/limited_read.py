"""Reading a table within the input limits of ``docs/limits.md`` (:mod:`dpsynth._limits`).

A CSV table is read through :class:`LimitedReader`, which refuses it as soon as the bytes read pass a
limit (decompressed size, longest line, memory of the cells read so far); a Parquet table is checked
from its footer and its dictionaries before it is read (:func:`check_parquet_size`). Either refusal
is one :class:`~dpsynth.exceptions.ParameterError` line naming the file, the limit and the position,
never a value of the table.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import pandas as pd

from dpsynth.exceptions import ParameterError

__all__ = ["LimitedReader", "check_parquet_size", "read_csv_limited"]


class LimitedReader(io.RawIOBase):
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
        """Always: the reader only reads."""
        return True

    def readinto(self, buffer: Any) -> int:
        """Read the next piece into ``buffer``, refusing it when it passes a limit."""
        piece = self._stream.read(max(1, min(len(buffer), self._max_line)))
        if piece:
            self._check(piece)
        n = len(piece)
        buffer[:n] = piece
        return n

    def close(self) -> None:
        """Close the decompressor (if any) and the file."""
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


def read_csv_limited(p: Path, *, columns: int = 0, **kwargs: Any) -> pd.DataFrame:
    """``pd.read_csv`` of ``p`` through :class:`LimitedReader` (UTF-8, every cell as text)."""
    with LimitedReader(p, columns=columns) as raw:
        text = io.TextIOWrapper(io.BufferedReader(raw, buffer_size=min(1 << 20, raw._max_line)),
                                encoding="utf-8", newline="")
        try:
            return pd.read_csv(text, dtype=str, keep_default_na=False, skipinitialspace=True, **kwargs)
        finally:
            text.detach()  # the reader is closed by the with


def check_parquet_size(p: Path) -> None:
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
    n_private = meta.num_rows  # the private table's own row count: in this refusal only (a local error)
    cells = n_private * meta.num_columns
    if cells * _limits.CELL_BYTES > limit:
        raise ParameterError(f"{where} has too many cells for the limit of {limit:,} bytes of memory: "
                             f"{n_private:,} rows of {meta.num_columns} columns, at least "
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
