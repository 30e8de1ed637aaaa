"""Where a series' snapshots come from: a glob or a folder of dated files.

Each snapshot's date is read from its file name (``2026-03-01``, ``20260301`` or ``2026-03``: the
first such date in the name), never from its content or its modification time, so that the order of
a series is public and reproducible. A file whose name carries no date is an error (exit 2).
"""

from __future__ import annotations

import datetime as dt
import glob
import re
from dataclasses import dataclass
from pathlib import Path

from dpsynth.refresh.plan import PlanError

#: the table files a snapshot may be
SUFFIXES = (".csv", ".csv.gz", ".parquet")
_DATE = re.compile(r"(?<![0-9])(\d{4})-?(\d{2})(?:-?(\d{2}))?(?![0-9])")


@dataclass(frozen=True)
class Snapshot:
    """One snapshot file and the date its name carries."""

    path: Path
    date: dt.date

    @property
    def name(self) -> str:
        """The file's name (public: it names the snapshot in the history)."""
        return self.path.name


def snapshot_date(name: str) -> dt.date | None:
    """The first date in a file name (a month alone is its first day), or None."""
    for m in _DATE.finditer(name):
        year, month, day = int(m.group(1)), int(m.group(2)), int(m.group(3) or 1)
        try:
            return dt.date(year, month, day)
        except ValueError:
            continue
    return None


def find_snapshots(where: str) -> list[Snapshot]:
    """The snapshots a plan's ``snapshots`` names, oldest first (by the date in the name, then the name).

    Raises:
        PlanError: nothing matches, or a matching file's name carries no date.
    """
    folder = Path(where)
    if folder.is_dir():
        paths = [p for p in folder.iterdir() if p.is_file() and p.name.lower().endswith(SUFFIXES)]
    else:
        paths = [Path(p) for p in glob.glob(where) if Path(p).is_file()]
    if not paths:
        raise PlanError(f"snapshots ({where!r}): no snapshot file matches (expected {', '.join(SUFFIXES)} files "
                        "whose names carry a date)")
    out = []
    for p in sorted(paths):
        if not p.name.lower().endswith(SUFFIXES):
            raise PlanError(f"snapshots: file {p.name!r} is not a table (expected {', '.join(SUFFIXES)})")
        date = snapshot_date(p.name)
        if date is None:
            raise PlanError(f"snapshots: file {p.name!r} carries no date in its name (expected YYYY-MM-DD, "
                            "YYYYMMDD or YYYY-MM): a series is ordered by the dates in its file names")
        out.append(Snapshot(p, date))
    return sorted(out, key=lambda s: (s.date, s.name))


__all__ = ["SUFFIXES", "Snapshot", "find_snapshots", "snapshot_date"]
