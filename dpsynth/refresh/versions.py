"""A series on disk: ``releases/<dataset>/`` with its versions ``v0001/``, ``v0002/``, …, the record
of the refresh in flight (``attempt.json``), the refreshes that were stopped before they wrote their
version (``interrupted.jsonl``) and a lock that lets one refresh of the series run at a time.

A version folder holds what ``dpsynth release`` writes (``publish/``, ``internal/``) plus
``version.json`` (the record ``dpsynth history`` reads, written last and atomically: a folder
without it is not a version yet) and, when the synthesizer exposes them, ``measurements.json``
(its noisy measurements, DP output, for the next version's drift). Nothing here holds a row, a
count of the private table or a plain hash of it: snapshots are named by their file name and their
fingerprint keyed with the ledger's secret.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dpsynth.exceptions import ParameterError
from dpsynth.refresh.history import FORMAT, VERSION_DIR

VERSION_FILE, MEASUREMENTS_FILE, ATTEMPT_FILE = "version.json", "measurements.json", "attempt.json"
INTERRUPTED_FILE, LOCK_FILE, INDEX_FILE = "interrupted.jsonl", ".lock", "index.html"


def label_of(number: int) -> str:
    """The folder name of version ``number``: ``v0007``."""
    return f"v{number:04d}"


def write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as JSON atomically (a temporary file in the same folder, fsynced, renamed)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(obj, f, indent=2, sort_keys=True, ensure_ascii=False)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@dataclass(frozen=True)
class Version:
    """One version folder and its record (None: the folder has no ``version.json`` yet)."""

    number: int
    path: Path
    record: dict[str, Any] | None

    @property
    def label(self) -> str:
        """``v0003``."""
        return label_of(self.number)

    @property
    def status(self) -> str | None:
        """released, blocked (or None for an incomplete folder)."""
        return None if self.record is None else str(self.record.get("status"))

    @property
    def fingerprint(self) -> str | None:
        """The keyed fingerprint of the snapshot it was made from."""
        return None if self.record is None else (self.record.get("snapshot") or {}).get("fingerprint")


class Series:
    """The folder of one dataset's series of releases."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def versions(self) -> list[Version]:
        """Every version folder, oldest first (a folder without its record is listed with ``record=None``)."""
        if not self.folder.is_dir():
            return []
        out = []
        for child in self.folder.iterdir():
            m = VERSION_DIR.fullmatch(child.name)
            if m and child.is_dir():
                out.append(Version(int(m.group(1)), child, self._record(child)))
        return sorted(out, key=lambda v: v.number)

    def _record(self, folder: Path) -> dict[str, Any] | None:
        path = folder / VERSION_FILE
        if not path.is_file():
            return None
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise ParameterError(f"series {str(self.folder)!r}: {folder.name}/{VERSION_FILE} is not readable JSON "
                                 "(restore it from a backup; nothing was changed)") from None
        if not isinstance(record, dict) or record.get("format") != FORMAT:
            raise ParameterError(f"series {str(self.folder)!r}: {folder.name}/{VERSION_FILE} is not a version "
                                 f"record (format {FORMAT!r} expected)")
        return record

    def complete(self) -> list[Version]:
        """The versions with a record, oldest first."""
        return [v for v in self.versions() if v.record is not None]

    def next_number(self) -> int:
        """The number the next version gets (one past every folder, complete or not)."""
        versions = self.versions()
        return versions[-1].number + 1 if versions else 1

    def last_released(self) -> Version | None:
        """The newest released version."""
        released = [v for v in self.complete() if v.status == "released"]
        return released[-1] if released else None

    # -- the refresh in flight --------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the series' lock (one refresh at a time); refuse at once when another holds it."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / LOCK_FILE, "a+") as f:
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise ParameterError(f"another dpsynth refresh of series {str(self.folder)!r} is running (it holds "
                                     f"{LOCK_FILE}); try again once it has finished") from None
            try:
                yield
            finally:
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)

    def attempt(self) -> dict[str, Any] | None:
        """The record of a refresh that started and did not finish (None: none)."""
        path = self.folder / ATTEMPT_FILE
        if not path.is_file():
            return None
        try:
            value = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {"label": None, "snapshot": {}, "started_at": None, "unreadable": True}
        return value if isinstance(value, dict) else {"label": None, "snapshot": {}, "unreadable": True}

    def start_attempt(self, record: dict[str, Any]) -> None:
        """Record the refresh about to reserve (before its reservation: a kill after it is then seen)."""
        write_json(self.folder / ATTEMPT_FILE, record)

    def end_attempt(self) -> None:
        """Forget the refresh in flight (its version is written, or it stopped before any charge)."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.folder / ATTEMPT_FILE)

    def add_interrupted(self, record: dict[str, Any]) -> None:
        """Append a refresh that stopped before it wrote its version to ``interrupted.jsonl``."""
        with open(self.folder / INTERRUPTED_FILE, "a", encoding="utf-8") as f:
            f.write(json.dumps(record, sort_keys=True, ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def interrupted(self) -> list[dict[str, Any]]:
        """The refreshes that stopped before they wrote their version, oldest first."""
        path = self.folder / INTERRUPTED_FILE
        if not path.is_file():
            return []
        out = []
        for line in path.read_text(encoding="utf-8").splitlines():
            with contextlib.suppress(ValueError):
                item = json.loads(line)
                if isinstance(item, dict):
                    out.append(item)
        return out


__all__ = ["ATTEMPT_FILE", "FORMAT", "INDEX_FILE", "INTERRUPTED_FILE", "MEASUREMENTS_FILE", "VERSION_FILE", "Series",
           "Version", "label_of", "write_json"]
