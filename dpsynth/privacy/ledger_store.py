"""Where a ledger lives: its tables, the SQLite and PostgreSQL backends, and their migrations.

A ledger exists once its head row does. Opening one that does not exist is an error unless the
caller creates it (``dpsynth ledger create``, ``Ledger(url, create=True)``): a mistyped path must
not become a fresh, empty and therefore "intact" ledger. A SQLite file that this process may not
write (or whose folder it may not write) is opened read-only: it can be shown and verified, and
every write is refused with a :class:`LedgerError`.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dpsynth.exceptions import DPSynthError, ParameterError
from dpsynth.privacy.redact import redact_url

GENESIS = "0" * 64
# 2: entries carry an additive delta (a column that version-1 ledgers gain on first use).
# 3: reservations carry a Rényi-DP curve (a column that older ledgers gain on first use).
# 4: reservations carry the additive ε of (ε, δ) claims (a column that older ledgers gain on first use).
# 5: entries and the head carry a keyed MAC (the seal; ledger_seal.py), the head its key's id.
SCHEMA_VERSION = 5


class LedgerError(DPSynthError):
    """The ledger cannot be used as asked (unknown dataset, bad URL, unreachable server …)."""


#: Each dataset's sealed account: what its charges add up, as dpsynth last wrote it, with its keyed
#: MAC (ledger_chain.Chain.sealed_account). Not part of the hash chain; a ledger made before it
#: gains it on its next charge, and a charge that finds no sealed account checks every entry.
ACCOUNTS_TABLE = """CREATE TABLE IF NOT EXISTS dpsynth_ledger_accounts (
        dataset TEXT PRIMARY KEY,
        digest TEXT NOT NULL,
        mac TEXT NOT NULL)"""

_TABLES = [
    """CREATE TABLE IF NOT EXISTS dpsynth_ledger_entries (
        seq INTEGER PRIMARY KEY,
        created_at TEXT NOT NULL,
        kind TEXT NOT NULL,
        dataset TEXT NOT NULL,
        rho DOUBLE PRECISION NOT NULL,
        content TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL,
        additive_delta DOUBLE PRECISION NOT NULL DEFAULT 0,
        rdp TEXT NOT NULL DEFAULT '',
        additive_epsilon DOUBLE PRECISION NOT NULL DEFAULT 0,
        mac TEXT NOT NULL DEFAULT '')""",
    """CREATE TABLE IF NOT EXISTS dpsynth_ledger_head (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        seq INTEGER NOT NULL,
        hash TEXT NOT NULL,
        version INTEGER NOT NULL,
        key_id TEXT NOT NULL DEFAULT '',
        mac TEXT NOT NULL DEFAULT '')""",
    # The key of keyed fingerprints: one row (the primary key admits no second), written once on
    # first need. Not part of the hash chain, never in any statement.
    """CREATE TABLE IF NOT EXISTS dpsynth_ledger_secret (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        secret TEXT NOT NULL)""",
    ACCOUNTS_TABLE,
]
# Columns that older ledgers gain on first writable use: (table, column, type and default).
_COLUMNS = [
    ("dpsynth_ledger_entries", "additive_delta", "DOUBLE PRECISION NOT NULL DEFAULT 0"),  # version 1
    ("dpsynth_ledger_entries", "rdp", "TEXT NOT NULL DEFAULT ''"),  # versions 1–2
    ("dpsynth_ledger_entries", "additive_epsilon", "DOUBLE PRECISION NOT NULL DEFAULT 0"),  # versions 1–3
    ("dpsynth_ledger_entries", "mac", "TEXT NOT NULL DEFAULT ''"),  # versions 1–4
    ("dpsynth_ledger_head", "key_id", "TEXT NOT NULL DEFAULT ''"),
    ("dpsynth_ledger_head", "mac", "TEXT NOT NULL DEFAULT ''"),
]
# Run after _TABLES and after an older table has gained its additive_delta and additive_epsilon columns.
_INDEXES = [
    "DROP INDEX IF EXISTS dpsynth_ledger_spending",
    "DROP INDEX IF EXISTS dpsynth_ledger_spending_v2",
    # Covers the charge's queries (Σρ, the additive δ and ε of a dataset's reservations) without
    # touching the table.
    "CREATE INDEX IF NOT EXISTS dpsynth_ledger_spending_v3 ON dpsynth_ledger_entries (dataset, kind, rho, "
    "additive_delta, additive_epsilon)",
]


class Backend:
    """A DB-API connection factory plus the two transaction shapes the ledger needs."""

    placeholder = "?"
    url: str
    #: opened read-only: shown and verified, never written
    read_only = False

    def sql(self, text: str) -> str:
        """``text`` with this backend's placeholders for the ``?`` of SQLite."""
        return text if self.placeholder == "?" else text.replace("?", self.placeholder)

    def exists(self) -> bool:  # pragma: no cover - abstract
        """Whether the ledger's head table exists (a SQLite file: whether the file does)."""
        raise NotImplementedError

    def write(self) -> contextlib.AbstractContextManager[Any]:  # pragma: no cover - abstract
        """A cursor in a transaction that no other writer runs beside, committed at the end."""
        raise NotImplementedError

    def read(self) -> contextlib.AbstractContextManager[Any]:  # pragma: no cover - abstract
        """A cursor in a read transaction that sees one state of the ledger."""
        raise NotImplementedError

    def columns(self, cur: Any, table: str) -> set[str]:  # pragma: no cover - abstract
        """The column names of ``table``."""
        raise NotImplementedError

    def tables(self, cur: Any) -> set[str]:  # pragma: no cover - abstract
        """The names of the ledger's tables."""
        raise NotImplementedError

    def initialise(self, step: Any) -> None:  # pragma: no cover - abstract
        """Run ``step(cursor)`` in a transaction that no other initialiser runs beside."""
        raise NotImplementedError

    def refuse_write(self) -> None:
        """Refuse any write to a ledger opened read-only."""
        if self.read_only:
            raise LedgerError(f"ledger {redact_url(self.url)!r} is read-only here: it can be shown and verified, "
                              "not charged or changed")


_SQLITE_BUSY_SECONDS = 60.0  # how long a ledger user waits for another to let go


class SQLite(Backend):
    """A ledger in a SQLite file (WAL, one writer at a time across processes)."""
    def __init__(self, path: Path, url: str):
        self.path = path
        self.url = url
        parent = path.parent if str(path.parent) else Path(".")
        if not parent.is_dir():
            raise ParameterError(f"ledger ({url!r}) must be in an existing directory")
        if path.exists() and not path.is_file():
            raise LedgerError(f"ledger {url!r} is not a file")
        # Root may write anything; everyone else gets the read-only mode for a file (or folder,
        # where WAL keeps its side files) that they may not write.
        self.read_only = path.exists() and not (os.access(path, os.W_OK) and os.access(parent, os.W_OK))

    def exists(self) -> bool:
        """Whether the file exists."""
        return self.path.is_file()

    def _connect(self) -> sqlite3.Connection:
        if self.read_only:
            try:
                reader = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=_SQLITE_BUSY_SECONDS,
                                         isolation_level=None)
                reader.execute(f"PRAGMA busy_timeout={int(_SQLITE_BUSY_SECONDS * 1000)}")
                return reader
            except sqlite3.Error as exc:
                raise LedgerError(f"ledger {self.url!r} cannot be opened read-only: {exc}") from None
        # Switching a fresh file to WAL takes an exclusive lock, and SQLite answers "database is
        # locked" at once, without its busy handler, when another connection holds the file while it
        # is being created. Racing first users retry that step for as long as the busy timeout.
        deadline = time.monotonic() + _SQLITE_BUSY_SECONDS
        pause = 0.005
        while True:
            conn: sqlite3.Connection | None = None
            try:
                conn = sqlite3.connect(self.path, timeout=_SQLITE_BUSY_SECONDS, isolation_level=None)
                conn.execute(f"PRAGMA busy_timeout={int(_SQLITE_BUSY_SECONDS * 1000)}")
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=FULL")
                return conn
            except sqlite3.Error as exc:
                if conn is not None:
                    conn.close()
                busy = isinstance(exc, sqlite3.OperationalError) and (
                    "locked" in str(exc) or "busy" in str(exc))
                if not busy or time.monotonic() + pause > deadline:
                    raise LedgerError(f"ledger {self.url!r} cannot be opened: {exc}") from None
                time.sleep(pause * (1.0 + secrets.randbelow(1000) / 1000.0))  # jitter, not a mechanism
                pause = min(pause * 2.0, 0.25)

    @contextlib.contextmanager
    def write(self) -> Iterator[sqlite3.Cursor]:
        """A cursor in an immediate transaction (one writer at a time, across processes)."""
        self.refuse_write()
        conn = self._connect()
        try:
            try:
                conn.execute("BEGIN IMMEDIATE")  # one writer at a time, across processes
            except sqlite3.Error as exc:
                raise LedgerError(f"ledger {self.url!r} cannot be written: {exc}") from None
            cur = conn.cursor()
            try:
                yield cur
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            try:
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise LedgerError(f"ledger {self.url!r} cannot be written: {exc}") from None
        finally:
            conn.close()

    @contextlib.contextmanager
    def read(self) -> Iterator[sqlite3.Cursor]:
        """A cursor in a read transaction."""
        conn = self._connect()
        try:
            conn.execute("BEGIN")
            yield conn.cursor()
            conn.execute("COMMIT")
        except sqlite3.DatabaseError as exc:  # not a database, or not a ledger's tables
            raise LedgerError(f"ledger {self.url!r} cannot be read: {exc}") from None
        finally:
            conn.close()

    def columns(self, cur: Any, table: str) -> set[str]:
        """The column names of ``table``."""
        cur.execute(f"PRAGMA table_info({table})")
        return {row[1] for row in cur.fetchall()}

    def tables(self, cur: Any) -> set[str]:
        """The names of the tables in the file."""
        cur.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        return {row[0] for row in cur.fetchall()}

    def initialise(self, step: Any) -> None:
        """Run ``step(cursor)`` in a write transaction."""
        with self.write() as cur:
            step(cur)


class Postgres(Backend):
    """A ledger in a PostgreSQL database (writers serialised on the head row)."""
    placeholder = "%s"

    def __init__(self, url: str):
        try:
            import psycopg
        except ImportError:  # pragma: no cover - depends on the install
            raise LedgerError(
                "a postgresql:// ledger needs psycopg: pip install 'dpsynth[postgres]'"
            ) from None
        self._psycopg = psycopg
        self.url = url
        self._conn: Any = None

    def _connect(self) -> Any:
        """One connection per Ledger object, opened on first use and reopened if it broke."""
        if self._conn is not None and not self._conn.closed and not self._conn.broken:
            return self._conn
        try:
            self._conn = self._psycopg.connect(self.url, connect_timeout=10, autocommit=True)
        except self._psycopg.Error as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
            raise LedgerError(f"cannot connect to ledger {redact_url(self.url)!r}: {reason}") from None
        return self._conn

    def close(self) -> None:
        """Close the connection, if one is open."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()

    def exists(self) -> bool:
        """Whether the head table exists in the current schema."""
        with self.read() as cur:
            return "dpsynth_ledger_head" in self.tables(cur)

    def tables(self, cur: Any) -> set[str]:
        """The names of the ledger's tables in the current schema."""
        cur.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() "
                    "AND table_name LIKE 'dpsynth_ledger_%%'")
        return {row[0] for row in cur.fetchall()}

    def initialise(self, step: Any) -> None:
        """Run ``step(cursor)`` in a transaction holding the initialisers' advisory lock."""
        conn = self._connect()
        with self._refusing_read_only(), conn.transaction():
            cur = conn.cursor()
            cur.execute("SELECT pg_advisory_xact_lock(7366047411)")  # one initialiser at a time
            step(cur)

    @contextlib.contextmanager
    def _refusing_read_only(self) -> Iterator[None]:
        errors = self._psycopg.errors
        try:
            yield
        except (errors.ReadOnlySqlTransaction, errors.InsufficientPrivilege):
            raise LedgerError(f"ledger {redact_url(self.url)!r} is read-only here: it can be shown and verified, "
                              "not charged or changed") from None

    @contextlib.contextmanager
    def write(self) -> Iterator[Any]:
        """A cursor in a transaction that holds the head row (one writer at a time)."""
        conn = self._connect()
        with self._refusing_read_only(), conn.transaction():
            cur = conn.cursor()
            # Serialise writers on the head row (created by init).
            cur.execute("SELECT seq FROM dpsynth_ledger_head WHERE id = 1 FOR UPDATE")
            yield cur

    @contextlib.contextmanager
    def read(self) -> Iterator[Any]:
        """A cursor in a repeatable-read transaction."""
        conn = self._connect()
        with conn.transaction():
            cur = conn.cursor()
            cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            yield cur

    def columns(self, cur: Any, table: str) -> set[str]:
        """The column names of ``table`` in the current schema."""
        cur.execute("SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() "
                    "AND table_name = %s", (table,))
        return {row[0] for row in cur.fetchall()}


def backend(url: str) -> Backend:
    """The backend of ``url``: ``sqlite:///PATH`` or ``postgresql://…``."""
    if not isinstance(url, str) or not url:
        raise ParameterError(f"ledger ({url!r}) must be sqlite:///PATH or postgresql://…")
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///"):]
        if not path or path.endswith("/"):
            raise ParameterError(f"ledger ({url!r}) must name a file: sqlite:///PATH")
        return SQLite(Path(path), url)
    if url.startswith(("postgresql://", "postgres://")):
        return Postgres(url)
    raise ParameterError(f"ledger ({redact_url(url)!r}) must be sqlite:///PATH or postgresql://…")


def _migrate(db: Backend, cur: Any) -> None:
    """Give an older ledger's tables the columns and the index of this version (in a write)."""
    added = False
    for table, column, kind in _COLUMNS:
        if column not in db.columns(cur, table):
            cur.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
            added = True
    # The covering index changed with the additive columns; making it again is cheap.
    for statement in (_INDEXES if added or isinstance(db, SQLite) else _INDEXES[-1:]):
        cur.execute(statement)
    cur.execute(db.sql("UPDATE dpsynth_ledger_head SET version = ? WHERE id = 1 AND version < ?"),
                (SCHEMA_VERSION, SCHEMA_VERSION))


def _state(db: Backend, cur: Any) -> str:
    """``missing``, ``headless`` (tables without their head row: emptied or damaged), ``old`` or ``current``."""
    tables = db.tables(cur)
    if "dpsynth_ledger_head" not in tables:
        return "missing"
    cur.execute("SELECT COUNT(*) FROM dpsynth_ledger_head")
    if int(cur.fetchone()[0]) != 1:
        return "headless"
    if "dpsynth_ledger_secret" not in tables or "dpsynth_ledger_entries" not in tables:
        return "old"
    cur.execute("SELECT version FROM dpsynth_ledger_head WHERE id = 1")
    if int(cur.fetchone()[0]) < SCHEMA_VERSION:
        return "old"
    if any(c not in db.columns(cur, t) for t, c, _ in _COLUMNS):
        return "old"
    return "current"


def open_tables(db: Backend, *, create: bool, on_create: Any = None) -> None:
    """Make sure the ledger at ``db`` exists in this version's format.

    With ``create`` a missing ledger is made, and ``on_create(cur)`` completes its head (inside the
    creating transaction, so that racing creators make one). Without it a missing ledger is a
    :class:`LedgerError`. A current ledger is only read; migrating an older one needs a writable
    one. A head table without its head row is damage, and never repaired here.
    """
    missing = f"ledger {redact_url(db.url)!r} does not exist (dpsynth ledger create makes one; in Python, " \
              "Ledger(url, create=True))"
    exists = db.exists()
    if not create and not exists:
        raise LedgerError(missing)
    if exists:
        with db.read() as cur:
            state = _state(db, cur)
        if state == "current":
            return
        _refuse_state(db, state, create)
        if db.read_only:
            raise LedgerError(f"ledger {redact_url(db.url)!r} is read-only here and in an older format: open it once "
                              "where it can be written, to upgrade it")
    db.initialise(lambda cur: _initialise(db, cur, create, on_create))


def _refuse_state(db: Backend, state: str, create: bool) -> None:
    if state == "headless":
        raise LedgerError(f"ledger {redact_url(db.url)!r} has lost its head row: it was emptied or damaged")
    if state == "missing" and not create:
        raise LedgerError(f"ledger {redact_url(db.url)!r} is not a dpsynth ledger (dpsynth ledger create makes one)")


def _initialise(db: Backend, cur: Any, create: bool, on_create: Any) -> None:
    state = _state(db, cur)  # again, inside the writer's lock: another process may have made it
    _refuse_state(db, state, create)
    if state == "current":
        return
    for statement in _TABLES:  # a fresh ledger, or the secret table of one older than it
        cur.execute(statement)
    if state == "missing":
        cur.execute(db.sql("INSERT INTO dpsynth_ledger_head (id, seq, hash, version) VALUES (1, 0, ?, ?)"),
                    (GENESIS, SCHEMA_VERSION))
        for statement in _INDEXES:
            cur.execute(statement)
        if on_create is not None:
            on_create(cur)
        return
    _migrate(db, cur)
