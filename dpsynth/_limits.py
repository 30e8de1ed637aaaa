"""Resource limits on what dpsynth reads (documented in ``docs/limits.md``).

Every input is bounded before it can take more memory than this machine has: a table by its
decompressed size, its longest line and an estimate of the memory its cells take; a config file
(schema, hints, policy, suite, workload) by its size; a schema by the number of values (levels or
bins) of each column and of all columns together. An input over a limit is refused with one line
naming the file, the limit and where it was passed, before any budget is charged; never with a
value from the file.

The table limits can be changed with environment variables (a number of bytes, optionally with a
binary suffix: ``512M``, ``64G``, ``1GiB``); the schema limits are fixed.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from dpsynth.exceptions import ParameterError

#: Environment variable: the most bytes of memory a table may need (its decompressed text, and
#: :data:`CELL_BYTES` per cell); by default the memory available when the read starts.
INPUT_ENV = "DPSYNTH_MAX_INPUT_BYTES"
#: Environment variable: the longest line of a CSV table, in bytes (default :data:`MAX_LINE_BYTES`).
LINE_ENV = "DPSYNTH_MAX_LINE_BYTES"
#: Environment variable: the largest config file (schema, hints, policy, suite, workload), in bytes.
CONFIG_ENV = "DPSYNTH_MAX_CONFIG_BYTES"

#: The longest line of a CSV table: 1 MiB (Python's own ``csv`` module stops at 128 KiB a field).
#: A line is what lies between two line breaks (``\n``, ``\r`` or ``\r\n``) of the decompressed text.
MAX_LINE_BYTES = 1 << 20
#: The least memory one cell of a table takes once read: pandas' pointer to its text (8 bytes)
#: and dpsynth's integer code of it (8 bytes). Rows × columns × this must fit the input limit.
CELL_BYTES = 16
#: The input limit where this machine's available memory cannot be read.
FALLBACK_INPUT_BYTES = 64 << 30
#: The input limit is never below this, however little memory is free (small tables always read).
MIN_INPUT_BYTES = 1 << 30
#: The largest config file: 32 MiB. PyYAML holds about 50 times a YAML file's size while it parses it
#: (a schema of a million levels is about 15 MB).
MAX_CONFIG_BYTES = 32 << 20

#: The most levels of a categorical column (its ``other`` level included), or of a Private-PGM
#: domain column. With at most this many codes a column, a 3-way marginal's cells still fit an
#: int64 index, and a 1-way marginal is 8 MB.
MAX_LEVELS = 1_000_000
#: The most bins of a numeric or datetime column (``bins: K`` or ``len(edges) - 1``).
MAX_BINS = 1_000_000
#: The most bins chosen with DP (``bins: {dp_quantiles: K}``): the candidate grid of the quantiles
#: has 1,024 points (``dpsynth.schema.dp_bins.GRID_POINTS``), so more bins cannot be told apart,
#: and every bin is one more charged selection.
MAX_DP_QUANTILE_BINS = 1024
#: The most codes of all the columns of a schema together (the sum of the columns' sizes).
MAX_SCHEMA_VALUES = 10_000_000

_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_BYTES = re.compile(r"\s*([0-9][0-9_]*)\s*([kmgt]?)(?:i?b)?\s*", re.IGNORECASE)


def env_bytes(name: str, default: int) -> int:
    """A number of bytes from the environment variable ``name`` (``default`` when unset or empty)."""
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    match = _BYTES.fullmatch(raw)
    value = int(match.group(1)) * _UNITS[match.group(2).lower()] if match else 0
    if value < 1:
        shown = raw if len(raw) <= 40 else raw[:40] + "..."
        raise ParameterError(f"${name} ({shown!r}) must be a number of bytes >= 1, optionally with a suffix "
                             "K, M, G or T (powers of 1024)")
    return value


def available_memory() -> int | None:
    """Bytes of memory this process may still use: MemAvailable (or free pages), and a cgroup limit."""
    avail: int | None = None
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError, IndexError):
        avail = None
    if avail is None:
        try:
            avail = int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
        except (ValueError, OSError, AttributeError):
            avail = None
    try:  # a cgroup v2 memory limit (a container) is tighter than the machine's free memory
        limit = Path("/sys/fs/cgroup/memory.max").read_text(encoding="ascii").strip()
        used = Path("/sys/fs/cgroup/memory.current").read_text(encoding="ascii").strip()
        if limit.isdigit() and used.isdigit():
            left = max(0, int(limit) - int(used))
            avail = left if avail is None else min(avail, left)
    except OSError:
        pass
    return avail


def max_input_bytes() -> int:
    """The most bytes of memory a table may need: ``$DPSYNTH_MAX_INPUT_BYTES``, or by default the memory
    available now (at least :data:`MIN_INPUT_BYTES`; :data:`FALLBACK_INPUT_BYTES` when unknown)."""
    free = available_memory()
    default = FALLBACK_INPUT_BYTES if free is None else max(free, MIN_INPUT_BYTES)
    return env_bytes(INPUT_ENV, default)


def max_line_bytes() -> int:
    """The longest line of a CSV table: ``$DPSYNTH_MAX_LINE_BYTES`` or :data:`MAX_LINE_BYTES`."""
    return env_bytes(LINE_ENV, MAX_LINE_BYTES)


def max_config_bytes() -> int:
    """The largest config file: ``$DPSYNTH_MAX_CONFIG_BYTES`` or :data:`MAX_CONFIG_BYTES`."""
    return env_bytes(CONFIG_ENV, MAX_CONFIG_BYTES)
