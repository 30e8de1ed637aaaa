"""Staged writes: a file is written beside its target under a temporary name and renamed onto it at
the end, so a reader sees the whole file or none of it.

A temporary's name says which process made it (host, boot, pid and start time, :func:`owner_tag`):
the process removes its own temporaries when it fails or is terminated (SIGTERM and SIGHUP become a
``SystemExit`` while a write runs, :func:`terminate_as_exit`), and the next write of the same target
removes those of a process that is certainly gone (:func:`remove_stale_leftovers`).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["KEPT_RECORD", "leftover_prefix", "owner_tag", "remove_stale_leftovers", "staged_file",
           "terminate_as_exit", "write_text"]

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
