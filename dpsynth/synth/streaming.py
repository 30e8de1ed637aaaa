"""Bounds on the number of synthetic rows, and a chunked (streaming) write of a synthetic table.

A row count is a PUBLIC input; what it may be is bounded, before any budget is reserved, by what
this machine can hold (``release``: the whole synthetic table stays in memory for the checks) or
write (``fit --out``: the table streams to disk in chunks of :data:`CHUNK_ROWS` rows). The sizes
are estimates from the public schema only (never from the data): the widest value each column can
print, or a per-cell size in memory, times the rows, against this machine's free disk or memory.
:data:`MAX_ROWS` is a hard ceiling on top of both.

Sampling each chunk is post-processing of the fitted model: it reads no private data and costs
no budget.
"""

from __future__ import annotations

import gzip
import inspect
import shutil
import time
from pathlib import Path
from typing import Any

from dpsynth._limits import available_memory  # the one reading of free memory (patched in tests here)
from dpsynth.exceptions import ParameterError, PluginError

#: The most synthetic rows any command samples, whatever the machine (documented in docs/release.md).
MAX_ROWS = 1_000_000_000
#: Rows sampled and written per chunk by :func:`write_sampled` (a module constant tests may patch).
CHUNK_ROWS = 100_000
#: Estimated bytes in memory of one cell of an object (text) column, and of a numeric one.
OBJECT_CELL_BYTES = 64
NUMERIC_CELL_BYTES = 8
#: Copies of the synthetic table a release's checks hold at once (values, codes, per-check frames).
MEMORY_COPIES = 4
#: Printed width of a float (``repr`` of a double: sign, 17 digits, point, exponent).
FLOAT_WIDTH = 24


def memory_row_bytes(schema: Any) -> int:
    """Estimated bytes in memory per synthetic row held for the checks (from the public schema)."""
    per_row = 0
    for col in schema.columns:
        text = col.kind == "datetime" or (col.kind == "categorical" and not all(
            isinstance(v, int) for v in col.levels))
        per_row += (OBJECT_CELL_BYTES if text else NUMERIC_CELL_BYTES) + NUMERIC_CELL_BYTES  # value + code
    return max(1, per_row * MEMORY_COPIES)


def _csv_width(value: Any) -> int:
    text = str(value)
    if any(ch in text for ch in ',"\r\n'):
        text = '"' + text.replace('"', '""') + '"'
    return len(text.encode("utf-8"))


def csv_row_bytes(schema: Any, na_rep: str = "") -> int:
    """Estimated largest bytes of one CSV row (the widest value of every column, separators, newline)."""
    total = 0
    for col in schema.columns:
        if col.kind == "categorical":
            values = [*col.levels, *([col.other] if col.other is not None else [])]
            width = max((_csv_width(v) for v in values), default=0)
        elif col.kind == "datetime":
            width = 10 if col.resolution == "day" else 19
        elif col.kind == "integer" and col.bounds is not None:
            width = max(len(str(int(col.bounds[0]))), len(str(int(col.bounds[1]))))
        else:
            width = FLOAT_WIDTH
        if col.nullable:
            width = max(width, _csv_width(na_rep))
        total += width + 1  # a comma, or the newline after the last column
    return max(1, total)


def _too_many(name: str, rows: int, limit: int, why: str) -> ParameterError:
    return ParameterError(f"{name} ({rows:,}) must be at most {max(limit, 0):,}: {why}")


def check_rows_in_memory(rows: int, schema: Any, *, name: str = "rows") -> int:
    """``rows`` if a synthetic table of that many rows fits in this machine's free memory."""
    if rows > MAX_ROWS:
        raise _too_many(name, rows, MAX_ROWS, "dpsynth's ceiling on synthetic rows")
    free = available_memory()
    if free is not None:
        per_row = memory_row_bytes(schema)
        limit = free // per_row
        if rows > limit:
            raise _too_many(name, rows, limit, f"the synthetic table is held in memory for the checks, about "
                            f"{per_row:,} bytes a row (an estimate from the schema and this machine's free "
                            "memory)")
    return rows


def check_rows_on_disk(rows: int, schema: Any, out: str | Path, *, na_rep: str = "", name: str = "--rows") -> int:
    """``rows`` if a synthetic table of that many rows fits in the free disk space of ``out``'s folder."""
    if rows > MAX_ROWS:
        raise _too_many(name, rows, MAX_ROWS, "dpsynth's ceiling on synthetic rows")
    p = Path(out)
    folder = p.parent if str(p.parent) else Path(".")
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return rows  # the folder's own checks (check_writable) say what is wrong with it
    per_row = csv_row_bytes(schema, na_rep)
    header = sum(_csv_width(c) + 1 for c in schema.names)
    limit = max(0, free - header) // per_row
    if rows > limit:
        raise _too_many(name, rows, limit, f"the output's folder has room for about that many rows of up to "
                        f"{per_row:,} bytes (an estimate from the schema and this machine's free disk)")
    return rows


def _takes_random_state(synth: Any) -> bool:
    try:
        params = inspect.signature(synth.sample).parameters
    except (TypeError, ValueError):
        return False
    return "random_state" in params


def sample_chunks(synth: Any, rows: int, *, chunk_rows: int | None = None,
                  timings: dict[str, float] | None = None, conditions: Any = None) -> Any:
    """Yield ``rows`` synthetic rows in frames of at most ``chunk_rows`` rows (post-processing).

    One chunk is one ``synth.sample(rows)`` call, as before; with a seeded run (``insecure_seed``)
    chunk ``i > 0`` gets its own ``random_state`` so that chunks differ. ``conditions`` (see
    :mod:`dpsynth.synth.conditions`) go to every chunk; a stated mix is split over the whole table
    first (:class:`~dpsynth.synth.conditions.ChunkedConditions`), so the table holds exactly its
    largest-remainder counts.
    """
    size = int(chunk_rows if chunk_rows is not None else CHUNK_ROWS)
    seeded = getattr(synth, "insecure_seed", None)
    takes = _takes_random_state(synth)
    chunked = None
    if conditions is not None:
        from dpsynth.synth.conditions import ChunkedConditions

        chunked = ChunkedConditions(conditions, synth.schema_, rows)
    done, i = 0, 0
    while done < rows:
        n = min(size, rows - done)
        t = time.perf_counter()
        extra = {} if chunked is None else {"conditions": chunked.next(n)}
        if i > 0 and seeded is not None and takes:
            frame = synth.sample(n, random_state=int(seeded) + 1 + i, **extra)
        else:
            frame = synth.sample(n, **extra)
        if timings is not None:
            timings["sample"] = timings.get("sample", 0.0) + time.perf_counter() - t
        if len(frame) != n:
            raise PluginError(f"synthesizer ({getattr(synth, 'name', type(synth).__name__)!r}): its sample({n}) "
                              f"returned {len(frame)} rows, not {n}")
        yield frame
        done += n
        i += 1


def write_sampled(synth: Any, rows: int, out: str | Path, *, na_rep: str = "",
                  chunk_rows: int | None = None, timings: dict[str, float] | None = None,
                  conditions: Any = None) -> Path:
    """Sample ``rows`` rows chunk by chunk into a temporary file beside ``out``, renamed into place at
    the end: a reader sees the whole table or none of it, and a failure leaves no partial file.

    ``timings`` (optional) receives the seconds spent sampling (``sample``) and the rest (``write``);
    ``conditions`` are those of :func:`sample_chunks`.
    """
    start = time.perf_counter()
    phases: dict[str, float] = {"sample": 0.0}
    from dpsynth.io import staged_file

    p = Path(out)
    lowered = p.name.lower()
    with staged_file(p) as tmp:  # removed on any failure (SIGTERM included); a killed run's, by the next write
        if lowered.endswith(".parquet"):
            chunks = sample_chunks(synth, rows, chunk_rows=chunk_rows, timings=phases, conditions=conditions)
            _write_parquet(chunks, tmp, getattr(synth, "schema_", None))
        else:
            opener: Any = gzip.open if lowered.endswith(".gz") else open
            with opener(tmp, "wt", encoding="utf-8", newline="") as fh:
                chunks = sample_chunks(synth, rows, chunk_rows=chunk_rows, timings=phases, conditions=conditions)
                for i, frame in enumerate(chunks):
                    frame.to_csv(fh, index=False, header=i == 0, na_rep=na_rep)
    if timings is not None:
        timings.update(sample=phases["sample"], write=time.perf_counter() - start - phases["sample"])
    return p


def parquet_fields(schema: Any) -> list[Any]:
    """The Arrow fields of a synthetic table's Parquet file, from its PUBLIC schema (never from a chunk's
    values, whose types change with what a chunk happens to hold): text for categorical columns and
    dates/times (as the CSV output writes them), int64 for integer columns (a missing cell is a null),
    float64 for continuous ones."""
    import pyarrow as pa

    types = {"categorical": pa.string(), "datetime": pa.string(), "integer": pa.int64(), "continuous": pa.float64()}
    return [pa.field(col.name, types.get(col.kind, pa.string()), nullable=True) for col in schema.columns]


def _write_parquet(frames: Any, tmp: str, schema: Any = None) -> None:
    """Chunks into one Parquet file of the schema's types (the first chunk's types without a schema)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    writer = None
    fields = parquet_fields(schema) if schema is not None else None
    try:
        for frame in frames:
            if fields is not None and list(frame.columns) == [f.name for f in fields]:
                table = pa.Table.from_arrays([_column(frame[f.name], f.type) for f in fields],
                                             schema=pa.schema(fields))
            else:
                table = pa.Table.from_pandas(frame, preserve_index=False)
            if writer is None:
                first = [pa.field(f.name, pa.string()) if pa.types.is_null(f.type) else f for f in table.schema]
                writer = pq.ParquetWriter(tmp, pa.schema(first))
            writer.write_table(table.cast(writer.schema))
    finally:
        if writer is not None:
            writer.close()


def _column(values: Any, arrow_type: Any) -> Any:
    """One column as an Arrow array of ``arrow_type`` (NaN and None are nulls; text as the CSV writes it)."""
    import pyarrow as pa

    if pa.types.is_string(arrow_type):
        text = values.astype("string")  # dates, numbers-as-levels: their text, missing stays missing
        return pa.array(text, type=arrow_type, from_pandas=True)
    return pa.array(values, type=arrow_type, from_pandas=True)
