"""The privacy-budget ledger: one persistent, tamper-evident account per private dataset.

A ledger is an append-only, hash-chained list of entries in SQLite (``sqlite:///path``, the
default, created on first use) or PostgreSQL (``postgresql://…``, for a team):

* ``dataset``  registers a private dataset with its cap (ε, δ) and privacy unit;
* ``cap``      changes a cap (with the reason, which is recorded);
* ``reserve``  a synthesizer's whole planned privacy events, appended atomically *before* any
  private computation, and refused if the dataset's cap would be exceeded;
* ``complete`` / ``fail`` close a reservation. A reservation is final: its budget stays spent
  whatever happens after it, and one with neither is shown as not completed.

Composition is tight: every reservation stores its events, zCDP ρ add up, and the total is
converted to (ε, δ) at the dataset's δ with the Canonne–Kamath–Steinke conversion; the plain sum
of the releases' own ε is shown next to it. The cap is enforced on the tight total, which is
equivalent to Σρ ≤ ρ_cap with ρ_cap the largest ρ whose conversion fits the cap.

Thresholding mechanisms (DP partition selection, e.g. ``dpsynth schema infer``) are approximately
zCDP: besides their ρ they carry an additive δ. Those δ add up too (Σδ_thr), and the cap check
becomes Σδ_thr < δ_cap and Σρ ≤ approx_dp_to_rho(ε_cap, δ_cap − Σδ_thr/(1 − Σδ_thr)) (see
:func:`~dpsynth.privacy.accounting.thresholding_delta`). The additive δ of an entry is stored in
its own column and covered by its hash; entries written before it existed read as δ = 0 and
still verify.

DP-SGD (``dpctgan``, ``dpvae``) is accounted in Rényi DP: its events carry a Rényi-DP curve at a
fixed grid of orders (:data:`~dpsynth.privacy.accounting.RDP_ORDERS`). A reservation stores the sum
of its events' curves in its own column (covered by its hash; entries without one hash as before).
Once a dataset has such a curve, its total is the curve Σρ·α + Σ curves, converted with the
improved RDP conversion (Balle et al. 2020) minimised over the orders, at δ_cap − Σδ_thr/(1 − Σδ_thr);
the cap check is ε_total ≤ ε_cap. A dataset with only zCDP releases keeps the CKS20 conversion.

A generator dpsynth did not write charges its claim (ε, δ) as one
:class:`~dpsynth.privacy.events.ApproxDPEvent`, taken as given. Claims compose with everything else
by basic composition: their ε add up (Σε_claim, the entry's ``additive_epsilon`` column, covered by
its hash when it is not 0; entries without one hash as before) and their δ join the additive δ.
The total at the cap's δ is Σε_claim + the conversion of (Σρ, Σ curves) at δ_cap − Σδ/(1 − Σδ)
(for a claim's δ, p/(1 − p) is an upper bound of p, so the figure stays valid); with no ρ and no
curve it is Σε_claim, provided Σδ ≤ δ_cap. A charge fits iff that total, with the request, is at
most ε_cap. Once claims are spent, the ρ the cap still admits is the ρ that fits in
(ε_cap − Σε_claim, δ_cap) beside the additive δ and the curves.

Each entry holds the SHA-256 of its canonical content and of its predecessor's; a head row holds
the last one. :meth:`Ledger.verify` finds the first entry that was edited, deleted or reordered.

A ledger also keeps a secret of its own (32 random bytes, in its own table, created on first
need) with which :meth:`Ledger.keyed_fingerprint` turns the plain SHA-256 of a private input (kept
in the ledger) into an HMAC that may travel with a release: without the secret it cannot be
linked to the input, so it leaks no fingerprint of the data.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import math
import os
import re
import secrets
import sqlite3
import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dpsynth import _validation as check
from dpsynth.exceptions import BudgetExceededError, DPSynthError, ParameterError
from dpsynth.privacy.accounting import (
    approx_dp_to_rho,
    rho_within,
    rho_within_claims,
    sum_up,
    thresholding_delta,
    total_epsilon_within,
)
from dpsynth.privacy.budgets import RDP, ZCDP, ApproxDP
from dpsynth.privacy.events import PrivacyEvent, total_delta, total_rdp, total_rho
from dpsynth.privacy.odometer import Odometer

GENESIS = "0" * 64
# 2: entries carry an additive delta (a column that version-1 ledgers gain on first use).
# 3: reservations carry a Rényi-DP curve (a column that older ledgers gain on first use).
# 4: reservations carry the additive ε of (ε, δ) claims (a column that older ledgers gain on first use).
SCHEMA_VERSION = 4
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")
_UNIT = re.compile(r"^(row|user:[1-9][0-9]*)$")
_SHA256_HEX = re.compile(r"[0-9A-Fa-f]{64}")
#: Prefix of a keyed fingerprint (:meth:`Ledger.keyed_fingerprint`).
FINGERPRINT_PREFIX = "hmac-sha256:"
UNIT_DESCRIPTIONS = {"row": "add/remove one row"}


class LedgerError(DPSynthError):
    """The ledger cannot be used as asked (unknown dataset, bad URL, unreachable server …)."""


class UntrackedPrivacyWarning(UserWarning):
    """A fit ran without a ledger: its privacy loss is recorded nowhere."""


def describe_unit(unit: str) -> str:
    if unit == "row":
        return UNIT_DESCRIPTIONS["row"]
    return f"add/remove one user with at most {unit.split(':', 1)[1]} rows"


def canonical(obj: Any) -> str:
    """The canonical JSON text that entry hashes are computed over."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _entry_hash(
    seq: int, created_at: str, kind: str, dataset: str, rho: float, content: str, prev: str,
    additive_delta: float = 0.0, rdp: str = "", additive_epsilon: float = 0.0,
) -> str:
    fields: dict[str, Any] = {"seq": seq, "created_at": created_at, "kind": kind, "dataset": dataset, "rho": rho,
                              "content": content, "prev_hash": prev}
    # An entry without an additive δ hashes exactly as before the column existed, so old chains
    # still verify; one with a δ covers it, so setting it to 0 (or giving an old entry one) shows.
    if additive_delta:
        fields["additive_delta"] = additive_delta
    if rdp:  # likewise for the Rényi-DP curve of a DP-SGD reservation
        fields["rdp"] = rdp
    if additive_epsilon:  # and for the additive ε of (ε, δ) claims
        fields["additive_epsilon"] = additive_epsilon
    return hashlib.sha256(canonical(fields).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Entry:
    """One ledger entry as stored."""

    seq: int
    created_at: str
    kind: str
    dataset: str
    rho: float
    content: dict[str, Any]
    prev_hash: str
    hash: str
    additive_delta: float = 0.0
    rdp: str = ""
    additive_epsilon: float = 0.0


@dataclass
class ReservationView:
    """A reservation as the ledger shows it (no data, only accounting and provenance)."""

    id: int
    created_at: str
    synthesizer: str
    rho: float
    epsilon: float
    delta: float
    events: list[dict[str, Any]]
    status: str
    dpsynth_version: str
    input_sha256: str | None
    completed_at: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    #: additive δ of thresholding events and (ε, δ) claims (0 for pure zCDP releases)
    additive_delta: float = 0.0
    #: named opt-ins the release was built on (e.g. a schema read from the data without privacy)
    opt_ins: list[str] = field(default_factory=list)
    #: the Rényi-DP curve of RDP-accounted events ({"orders": [...], "rdp": [...]}), None for zCDP
    rdp: dict[str, list[float]] | None = None
    #: additive ε of (ε, δ) claims taken as given (ApproxDPEvent; 0 for the others)
    additive_epsilon: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))


@dataclass
class DatasetStatement:
    """The account of one dataset: its cap, what was spent (tight and plain sum), what is left."""

    dataset: str
    unit: str
    cap: ApproxDP
    cap_history: list[dict[str, Any]]
    reservations: list[ReservationView]

    @property
    def rdp_spent(self) -> RDP | None:
        """Σ of the Rényi-DP curves of the RDP-accounted releases (None when there is none)."""
        return RDP.total([RDP.from_dict(r.rdp) for r in self.reservations if r.rdp])

    @property
    def rho_cap(self) -> float:
        """The ρ the cap admits once the additive ε and δ and the Rényi-DP curves already spent are
        set aside (with no curve and no claim: the ρ of the cap at δ less the additive δ; with
        claims, the ρ that fits in (ε_cap − Σε_claim, δ_cap) beside the additive δ)."""
        return _rho_cap(self.cap, self.delta_spent, self.rdp_spent, self.epsilon_additive_spent)

    @property
    def rho_spent(self) -> float:
        return sum_up(r.rho for r in self.reservations)  # a cost: the exact sum, rounded up

    @property
    def delta_spent(self) -> float:
        """Σ of the additive δ of thresholding events (approximate zCDP) and of (ε, δ) claims."""
        return sum_up(r.additive_delta for r in self.reservations)

    @property
    def epsilon_additive_spent(self) -> float:
        """Σ of the ε of (ε, δ) claims (basic composition), the exact sum rounded up."""
        return sum_up(r.additive_epsilon for r in self.reservations)

    @property
    def rho_remaining(self) -> float:
        """The ρ a further zCDP release could still spend: the ρ that fits in (ε_cap − Σε_claim,
        δ_cap) beside the additive δ and the curves spent, less the ρ spent."""
        if self.rdp_spent is None:
            return max(0.0, self.rho_cap - self.rho_spent)
        # With a curve, the ρ that still fits beside everything spent (curves do not add like ρ).
        curve = self.rdp_spent + RDP.from_zcdp(self.rho_spent, self.rdp_spent.orders)
        return _rho_cap(self.cap, self.delta_spent, curve, self.epsilon_additive_spent)

    @property
    def delta_remaining(self) -> float:
        """Additive δ that could still be spent (with no further ρ)."""
        return max(0.0, self.cap.delta - thresholding_delta(self.delta_spent))

    @property
    def epsilon_additive_remaining(self) -> float:
        """Additive ε that a further (ε, 0) claim could still take: ε_cap less the tight ε spent
        (a claim with a δ of its own leaves the conversion of what is spent less δ, so it may fit
        less)."""
        return max(0.0, self.cap.epsilon - self.epsilon_spent_tight)

    @property
    def composition(self) -> str:
        """How the total is converted: ``zcdp`` (CKS20) or ``rdp`` (once a release carries a curve)."""
        return "zcdp" if self.rdp_spent is None else "rdp"

    @property
    def epsilon_spent_tight(self) -> float:
        """ε of everything spent, composed (zCDP, or RDP once a release carries a curve) and
        converted at the dataset's δ (less the part of it that the additive δ of thresholding
        events and claims takes), plus the additive ε of (ε, δ) claims (basic composition)."""
        return _spent_epsilon(self.rho_spent, self.rdp_spent, self.cap.delta, self.delta_spent,
                              self.epsilon_additive_spent)

    @property
    def epsilon_spent_plain_sum(self) -> float:
        """Σ of the releases' own ε (basic composition): what a reviewer can add up by hand. A
        release's own ε is its claimed ε, and never less than the ε of the claims it charged."""
        return math.fsum(max(r.epsilon, r.additive_epsilon) for r in self.reservations)

    @property
    def delta_spent_plain_sum(self) -> float:
        return math.fsum(r.delta for r in self.reservations)

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "unit": self.unit,
            "unit_description": describe_unit(self.unit),
            "cap": {"epsilon": self.cap.epsilon, "delta": self.cap.delta, "rho": self.rho_cap},
            "spent": {
                "rho": self.rho_spent,
                "additive_delta": self.delta_spent,
                "additive_epsilon": self.epsilon_additive_spent,
                "epsilon_tight": self.epsilon_spent_tight,
                "delta": self.cap.delta,
                "composition": self.composition,
                "epsilon_plain_sum": self.epsilon_spent_plain_sum,
                "delta_plain_sum": self.delta_spent_plain_sum,
            },
            "remaining": {"rho": self.rho_remaining, "additive_delta": self.delta_remaining,
                          "additive_epsilon": self.epsilon_additive_remaining},
            "releases": len(self.reservations),
            "not_completed": sum(1 for r in self.reservations if r.status == "reserved"),
            "cap_history": self.cap_history,
            "entries": [r.to_dict() for r in self.reservations],
        }


@dataclass(frozen=True)
class _Account:
    """The part of a dataset's statement that a charge needs."""

    dataset: str
    unit: str
    cap: ApproxDP
    rho_spent: float
    releases: int
    delta_spent: float = 0.0
    rdp_spent: RDP | None = None
    #: Σ of the additive ε of (ε, δ) claims
    epsilon_spent: float = 0.0

    @property
    def rho_cap(self) -> float:
        """The ρ the cap admits once the additive ε and δ and the curves already spent are set aside."""
        return _rho_cap(self.cap, self.delta_spent, self.rdp_spent, self.epsilon_spent)


def _rho_cap(cap: ApproxDP, delta_spent: float, rdp: RDP | None, epsilon_spent: float = 0.0) -> float:
    return rho_within_claims(cap.epsilon, cap.delta, epsilon_spent, delta_spent, rdp.orders if rdp else (),
                             rdp.epsilons if rdp else None)


def _spent_epsilon(rho: float, rdp: RDP | None, delta: float, additive_delta: float,
                   additive_epsilon: float = 0.0) -> float:
    """ε at ``delta`` of what was spent: the additive ε of claims + the conversion of (ρ, curve)."""
    if rdp is None and rho <= 0 and not additive_epsilon:
        return 0.0
    return total_epsilon_within(additive_epsilon, rho, rdp.orders if rdp else (), rdp.epsilons if rdp else None,
                                delta, additive_delta)


def charged_costs(events: Sequence[PrivacyEvent]) -> tuple[float, float, RDP | None, float]:
    """What ``events`` cost together: (ρ, additive δ, Rényi-DP curve, additive ε).

    ρ and the curve as :func:`~dpsynth.privacy.events.total_rho` and ``total_rdp`` compute them.
    The additive ε of (ε, δ) claims is their exact sum rounded up (one claim is charged exactly
    its ε, so a claim equal to the cap fits); the additive δ is ``total_delta`` of the other events
    plus the claims' δ, the exact sum rounded up (without claims: ``total_delta`` as before).

    Raises:
        ParameterError: an event with a negative or NaN ε or δ (it would give budget back).
    """
    events = list(events)
    for e in events:
        eps, delta = e.additive_epsilon, e.delta
        if not (eps >= 0 and delta >= 0):  # False for NaN too
            raise ParameterError(f"privacy event {e.label or e.kind!r} must have epsilon >= 0 and delta >= 0 "
                                 f"(it has epsilon={eps!r}, delta={delta!r})")
    claims = [e for e in events if e.additive_epsilon or e.kind == "approx_dp"]
    others = [e for e in events if not (e.additive_epsilon or e.kind == "approx_dp")]
    epsilon = sum_up(e.additive_epsilon for e in claims)
    delta = total_delta(others)
    if claims:
        delta = sum_up([delta, *(e.delta for e in claims)])
    return total_rho(events), delta, total_rdp(events), epsilon


@dataclass
class VerifyResult:
    ok: bool
    entries: int
    first_bad: int | None = None
    problem: str = ""


# ---------------------------------------------------------------------------------------------
# storage backends
# ---------------------------------------------------------------------------------------------

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
        additive_epsilon DOUBLE PRECISION NOT NULL DEFAULT 0)""",
    """CREATE TABLE IF NOT EXISTS dpsynth_ledger_head (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        seq INTEGER NOT NULL,
        hash TEXT NOT NULL,
        version INTEGER NOT NULL)""",
    # The key of keyed fingerprints: one row (the primary key admits no second), written once on
    # first need. Not part of the hash chain, never in any statement.
    """CREATE TABLE IF NOT EXISTS dpsynth_ledger_secret (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        secret TEXT NOT NULL)""",
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


class _Backend:
    """A DB-API connection factory plus the two transaction shapes the ledger needs."""

    placeholder = "?"

    def sql(self, text: str) -> str:
        return text if self.placeholder == "?" else text.replace("?", self.placeholder)

    @contextlib.contextmanager
    def write(self) -> Iterator[Any]:  # pragma: no cover - abstract
        raise NotImplementedError
        yield

    @contextlib.contextmanager
    def read(self) -> Iterator[Any]:  # pragma: no cover - abstract
        raise NotImplementedError
        yield


_SQLITE_BUSY_SECONDS = 60.0  # how long a ledger user waits for another to let go


class _SQLite(_Backend):
    def __init__(self, path: Path, url: str):
        self.path = path
        self.url = url
        parent = path.parent if str(path.parent) else Path(".")
        if not parent.is_dir():
            raise ParameterError(f"ledger ({url!r}) must be in an existing directory")

    def _connect(self) -> sqlite3.Connection:
        # Switching a fresh file to WAL takes an exclusive lock, and SQLite answers "database is
        # locked" at once, without its busy handler, when another connection holds the file while it
        # is being created. Racing first users retry that step for as long as the busy timeout.
        deadline = time.monotonic() + _SQLITE_BUSY_SECONDS
        pause = 0.005
        while True:
            conn = None
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
        conn = self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE")  # one writer at a time, across processes
            cur = conn.cursor()
            try:
                yield cur
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        finally:
            conn.close()

    @contextlib.contextmanager
    def read(self) -> Iterator[sqlite3.Cursor]:
        conn = self._connect()
        try:
            conn.execute("BEGIN")
            yield conn.cursor()
            conn.execute("COMMIT")
        finally:
            conn.close()


class _Postgres(_Backend):
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
            raise LedgerError(f"cannot connect to ledger {_redact(self.url)!r}: {reason}") from None
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()

    @contextlib.contextmanager
    def write(self) -> Iterator[Any]:
        conn = self._connect()
        with conn.transaction():
            cur = conn.cursor()
            # Serialise writers on the head row (created by init).
            cur.execute("SELECT seq FROM dpsynth_ledger_head WHERE id = 1 FOR UPDATE")
            yield cur

    @contextlib.contextmanager
    def read(self) -> Iterator[Any]:
        conn = self._connect()
        with conn.transaction():
            cur = conn.cursor()
            cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            yield cur

    def init(self) -> None:
        conn = self._connect()
        with conn.transaction():
            cur = conn.cursor()
            cur.execute("SELECT pg_advisory_xact_lock(7366047411)")  # one initialiser at a time
            for statement in _TABLES:
                cur.execute(statement)
            # An older ledger gains the columns (checked first: ALTER TABLE locks out readers).
            cur.execute("SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() "
                        "AND table_name = 'dpsynth_ledger_entries' AND column_name IN ('additive_delta', 'rdp', "
                        "'additive_epsilon')")
            present = {row[0] for row in cur.fetchall()}
            if "rdp" not in present:  # a version-1 or -2 ledger gains the column
                cur.execute("ALTER TABLE dpsynth_ledger_entries ADD COLUMN rdp TEXT NOT NULL DEFAULT ''")
            if "additive_delta" not in present:  # a version-1 ledger
                cur.execute("ALTER TABLE dpsynth_ledger_entries ADD COLUMN additive_delta "
                            "DOUBLE PRECISION NOT NULL DEFAULT 0")
            if "additive_epsilon" not in present:  # a version-1, -2 or -3 ledger
                cur.execute("ALTER TABLE dpsynth_ledger_entries ADD COLUMN additive_epsilon "
                            "DOUBLE PRECISION NOT NULL DEFAULT 0")
            if not {"additive_delta", "additive_epsilon"} <= present:  # the covering index changes
                for statement in _INDEXES:
                    cur.execute(statement)
            else:
                cur.execute(_INDEXES[-1])
            cur.execute(
                "INSERT INTO dpsynth_ledger_head (id, seq, hash, version) VALUES (1, 0, %s, %s) "
                "ON CONFLICT (id) DO NOTHING",
                (GENESIS, SCHEMA_VERSION),
            )
            cur.execute("UPDATE dpsynth_ledger_head SET version = %s WHERE id = 1 AND version < %s",
                        (SCHEMA_VERSION, SCHEMA_VERSION))


def _redact(url: str) -> str:
    return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", url)


def _backend(url: str) -> _Backend:
    if not isinstance(url, str) or not url:
        raise ParameterError(f"ledger ({url!r}) must be sqlite:///PATH or postgresql://…")
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///"):]
        if not path or path.endswith("/"):
            raise ParameterError(f"ledger ({url!r}) must name a file: sqlite:///PATH")
        return _SQLite(Path(path), url)
    if url.startswith(("postgresql://", "postgres://")):
        return _Postgres(url)
    raise ParameterError(f"ledger ({_redact(url)!r}) must be sqlite:///PATH or postgresql://…")


# ---------------------------------------------------------------------------------------------
# the ledger
# ---------------------------------------------------------------------------------------------


class Ledger:
    """A persistent privacy-budget ledger at ``url`` (``sqlite:///PATH`` or ``postgresql://…``)."""

    def __init__(self, url: str):
        self.url = url
        self._db = _backend(url)
        self._ensure_tables()
        self._fingerprint_key: bytes | None = None  # read from the database on first need

    def __repr__(self) -> str:
        return f"Ledger({_redact(self.url)!r})"

    # -- set-up -------------------------------------------------------------------------------
    def _ensure_tables(self) -> None:
        if isinstance(self._db, _Postgres):
            self._db.init()
            return
        with self._db.write() as cur:
            for statement in _TABLES:
                cur.execute(statement)
            cur.execute("PRAGMA table_info(dpsynth_ledger_entries)")
            columns = {row[1] for row in cur.fetchall()}
            if "additive_delta" not in columns:  # a version-1 ledger
                cur.execute("ALTER TABLE dpsynth_ledger_entries ADD COLUMN additive_delta "
                            "DOUBLE PRECISION NOT NULL DEFAULT 0")
            if "rdp" not in columns:  # a version-1 or -2 ledger
                cur.execute("ALTER TABLE dpsynth_ledger_entries ADD COLUMN rdp TEXT NOT NULL DEFAULT ''")
            if "additive_epsilon" not in columns:  # a version-1, -2 or -3 ledger
                cur.execute("ALTER TABLE dpsynth_ledger_entries ADD COLUMN additive_epsilon "
                            "DOUBLE PRECISION NOT NULL DEFAULT 0")
            for statement in _INDEXES:
                cur.execute(statement)
            cur.execute(
                "INSERT OR IGNORE INTO dpsynth_ledger_head (id, seq, hash, version) VALUES (1, 0, ?, ?)",
                (GENESIS, SCHEMA_VERSION),
            )
            cur.execute("UPDATE dpsynth_ledger_head SET version = ? WHERE id = 1 AND version < ?",
                        (SCHEMA_VERSION, SCHEMA_VERSION))

    # -- low level ----------------------------------------------------------------------------
    def _append(
        self, cur: Any, kind: str, dataset: str, rho: float, content: dict[str, Any], additive_delta: float = 0.0,
        rdp: RDP | None = None, additive_epsilon: float = 0.0,
    ) -> int:
        sql = self._db.sql
        cur.execute(sql("SELECT seq, hash FROM dpsynth_ledger_head WHERE id = 1"))
        last_seq, last_hash = cur.fetchone()
        seq = int(last_seq) + 1
        created_at = datetime.now(UTC).isoformat(timespec="microseconds")
        text = canonical(content)
        curve = canonical(rdp.to_dict()) if rdp is not None else ""
        digest = _entry_hash(seq, created_at, kind, dataset, float(rho), text, last_hash, float(additive_delta), curve,
                             float(additive_epsilon))
        cur.execute(
            sql(
                "INSERT INTO dpsynth_ledger_entries "
                "(seq, created_at, kind, dataset, rho, content, prev_hash, hash, additive_delta, rdp, "
                "additive_epsilon) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            ),
            (seq, created_at, kind, dataset, float(rho), text, last_hash, digest, float(additive_delta), curve,
             float(additive_epsilon)),
        )
        cur.execute(sql("UPDATE dpsynth_ledger_head SET seq = ?, hash = ? WHERE id = 1"), (seq, digest))
        return seq

    def _dataset_entries(self, cur: Any, dataset: str) -> list[Entry]:
        cur.execute(
            self._db.sql(
                "SELECT seq, created_at, kind, dataset, rho, content, prev_hash, hash, additive_delta, rdp, "
                "additive_epsilon FROM dpsynth_ledger_entries WHERE dataset = ? ORDER BY seq"
            ),
            (dataset,),
        )
        return [
            Entry(int(s), c, k, d, float(r), json.loads(t), p, h, float(a), v or "", float(ae))
            for s, c, k, d, r, t, p, h, a, v, ae in cur.fetchall()
        ]

    def _account(self, cur: Any, dataset: str) -> _Account:
        """What a charge needs, without reading every entry's content: the current cap, the unit
        and the ρ, additive δ and additive ε of every reservation (columns covered by the entry
        hashes)."""
        sql = self._db.sql
        cur.execute(
            sql("SELECT kind, content FROM dpsynth_ledger_entries WHERE dataset = ? AND kind IN ('dataset', 'cap') "
                "ORDER BY seq"),
            (dataset,),
        )
        caps = cur.fetchall()
        if not caps or caps[0][0] != "dataset":
            raise LedgerError(f"dataset {dataset!r} is not registered in this ledger (dpsynth ledger create)")
        unit = json.loads(caps[0][1])["unit"]
        last = json.loads(caps[-1][1])
        cur.execute(
            sql("SELECT COALESCE(SUM(rho), 0), COUNT(*) FROM dpsynth_ledger_entries "
                "WHERE dataset = ? AND kind = 'reserve'"),
            (dataset,),
        )
        total, count = cur.fetchone()
        # The database adds in floating point: round the sum up by its worst-case error (n ulps).
        spent = float(total) * (1.0 + int(count) * 2.3e-16)
        # The additive δ and ε are added here, exactly and rounded up (only the thresholding and
        # claim reservations have them), so that claims that fill the cap exactly still fit.
        cur.execute(
            sql("SELECT additive_delta, additive_epsilon FROM dpsynth_ledger_entries WHERE dataset = ? "
                "AND kind = 'reserve' AND (additive_delta <> 0 OR additive_epsilon <> 0)"),
            (dataset,),
        )
        additive = cur.fetchall()
        spent_delta = sum_up(float(row[0]) for row in additive)
        spent_epsilon = sum_up(float(row[1]) for row in additive)
        # Curves are added here, order by order, each sum rounded up (RDP.__add__).
        cur.execute(
            sql("SELECT rdp FROM dpsynth_ledger_entries WHERE dataset = ? AND kind = 'reserve' AND rdp <> '' "
                "ORDER BY seq"),
            (dataset,),
        )
        curves = [RDP.from_dict(json.loads(row[0])) for row in cur.fetchall()]
        return _Account(dataset, unit, ApproxDP(last["epsilon"], last["delta"]), spent, int(count), spent_delta,
                        RDP.total(curves), spent_epsilon)

    @staticmethod
    def _statement(dataset: str, entries: list[Entry]) -> DatasetStatement:
        if not entries or entries[0].kind != "dataset":
            raise LedgerError(f"dataset {dataset!r} is not registered in this ledger (dpsynth ledger create)")
        first = entries[0].content
        cap = ApproxDP(first["epsilon"], first["delta"])
        history = [{"seq": entries[0].seq, "time": entries[0].created_at, "epsilon": cap.epsilon,
                    "delta": cap.delta, "reason": "created"}]
        reservations: dict[int, ReservationView] = {}
        for e in entries[1:]:
            c = e.content
            if e.kind == "cap":
                cap = ApproxDP(c["epsilon"], c["delta"])
                history.append({"seq": e.seq, "time": e.created_at, "epsilon": cap.epsilon,
                                "delta": cap.delta, "reason": c["reason"]})
            elif e.kind == "reserve":
                reservations[e.seq] = ReservationView(
                    id=e.seq, created_at=e.created_at, synthesizer=c["synthesizer"], rho=e.rho,
                    epsilon=c["claimed"]["epsilon"], delta=c["claimed"]["delta"], events=c["events"],
                    status="reserved", dpsynth_version=c["dpsynth_version"], input_sha256=c.get("input_sha256"),
                    additive_delta=e.additive_delta, opt_ins=list(c.get("opt_ins", [])),
                    rdp=json.loads(e.rdp) if e.rdp else None, additive_epsilon=e.additive_epsilon,
                )
            elif e.kind in ("complete", "fail") and c["reservation"] in reservations:
                view = reservations[c["reservation"]]
                view.status = "completed" if e.kind == "complete" else "failed"
                view.completed_at = e.created_at
                view.detail = {k: v for k, v in c.items() if k != "reservation"}
        return DatasetStatement(dataset, first["unit"], cap, history, list(reservations.values()))

    # -- datasets -----------------------------------------------------------------------------
    def create_dataset(self, dataset: str, budget: ApproxDP, *, unit: str = "row") -> int:
        """Register ``dataset`` with its total budget (cap) and privacy unit. Returns the entry id."""
        _check_name(dataset)
        budget = _check_cap(budget)
        if not isinstance(unit, str) or not _UNIT.match(unit):
            raise ParameterError(f"unit ({unit!r}) must be 'row' or 'user:K' (at most K rows per user)")
        with self._db.write() as cur:
            cur.execute(self._db.sql("SELECT 1 FROM dpsynth_ledger_entries WHERE dataset = ? AND kind = 'dataset'"),
                        (dataset,))
            if cur.fetchone() is not None:
                raise LedgerError(f"dataset {dataset!r} is already registered in this ledger")
            return self._append(cur, "dataset", dataset, 0.0, {
                "epsilon": budget.epsilon, "delta": budget.delta, "unit": unit, "rho_cap":
                approx_dp_to_rho(budget.epsilon, budget.delta)})

    def set_cap(self, dataset: str, budget: ApproxDP, *, reason: str) -> int:
        """Change the cap of ``dataset``; the reason is recorded. Never below what is spent."""
        budget = _check_cap(budget)
        if not isinstance(reason, str) or not reason.strip():
            raise ParameterError("reason must be given to change a dataset's cap (it is recorded)")
        with self._db.write() as cur:
            statement = self._account(cur, dataset)
            spent = _spent_epsilon(statement.rho_spent, statement.rdp_spent, budget.delta, statement.delta_spent,
                                   statement.epsilon_spent)
            if statement.epsilon_spent:  # claims: the total at the new δ must fit the new ε
                below = spent > budget.epsilon
            elif statement.rdp_spent is None:
                new_rho_cap = _rho_cap(budget, statement.delta_spent, None)
                below = thresholding_delta(statement.delta_spent) >= budget.delta or new_rho_cap < statement.rho_spent
            else:
                below = thresholding_delta(statement.delta_spent) >= budget.delta or spent > budget.epsilon
            if below:
                additive = f", additive delta={statement.delta_spent:.6g}" if statement.delta_spent else ""
                if statement.epsilon_spent:
                    additive += f", additive epsilon={statement.epsilon_spent:.6g}"
                raise LedgerError(
                    f"cap (epsilon={budget.epsilon:g}, delta={budget.delta:g}) is below what dataset {dataset!r} "
                    f"has already spent (rho={statement.rho_spent:.6g}{additive}, epsilon={spent:.6g} at that delta)"
                )
            return self._append(cur, "cap", dataset, 0.0, {
                "epsilon": budget.epsilon, "delta": budget.delta, "reason": reason.strip(),
                "previous": {"epsilon": statement.cap.epsilon, "delta": statement.cap.delta}})

    def datasets(self) -> list[str]:
        with self._db.read() as cur:
            cur.execute("SELECT DISTINCT dataset FROM dpsynth_ledger_entries WHERE kind = 'dataset' ORDER BY dataset")
            return [row[0] for row in cur.fetchall()]

    def statement(self, dataset: str) -> DatasetStatement:
        """The current account of ``dataset``."""
        with self._db.read() as cur:
            return self._statement(dataset, self._dataset_entries(cur, dataset))

    # -- charging -----------------------------------------------------------------------------
    def check(self, dataset: str, events: Sequence[PrivacyEvent], *, claimed: ApproxDP) -> _Account:
        """Raise if ``events`` would not fit (without reserving); return the statement."""
        with self._db.read() as cur:
            account = self._account(cur, dataset)
        rho, delta, rdp, epsilon = charged_costs(events)
        _refuse_overdraft(account, rho, delta, claimed, rdp, epsilon)
        return account

    def reserve(
        self,
        dataset: str,
        events: Sequence[PrivacyEvent],
        *,
        synthesizer: str,
        claimed: ApproxDP,
        input_sha256: str | None = None,
        parameters: dict[str, Any] | None = None,
        unit: str = "row",
        opt_ins: Sequence[str] = (),
    ) -> Reservation:
        """Atomically append a reservation of ``events``, or refuse it before anything is spent.

        ``opt_ins`` names the loud opt-outs of privacy the release is built on (e.g.
        ``schema_read_from_data_without_privacy``); they are recorded with the reservation.

        An (ε, δ) claim (:class:`~dpsynth.privacy.events.ApproxDPEvent`) is charged in full, its ε
        in the entry's additive ε and its δ in its additive δ (see the module's docstring).

        Raises:
            BudgetExceededError: the dataset's cap would be exceeded (both numbers in the message).
            LedgerError: unknown dataset, or a privacy unit the synthesizer does not provide.
            ParameterError: an event with a negative or NaN ε or δ.
        """
        from dpsynth import __version__

        events = list(events)
        rho, delta, rdp, epsilon = charged_costs(events)
        with self._db.write() as cur:
            statement = self._account(cur, dataset)
            if statement.unit != unit:
                raise LedgerError(
                    f"dataset {dataset!r} is registered with privacy unit {statement.unit!r} "
                    f"({describe_unit(statement.unit)}), but {synthesizer} protects {describe_unit(unit)}"
                )
            _refuse_overdraft(statement, rho, delta, claimed, rdp, epsilon)
            seq = self._append(cur, "reserve", dataset, rho, {
                "synthesizer": synthesizer,
                "claimed": {"epsilon": claimed.epsilon, "delta": claimed.delta},
                "events": [e.to_dict() for e in events],
                "dpsynth_version": __version__,
                "input_sha256": input_sha256,
                "parameters": parameters or {},
                "opt_ins": list(opt_ins),
            }, additive_delta=delta, rdp=rdp, additive_epsilon=epsilon)
        return Reservation(self, dataset, seq, ZCDP(rho), delta, rdp, epsilon)

    def _close(self, dataset: str, reservation: int, kind: str, detail: dict[str, Any]) -> int:
        with self._db.write() as cur:
            return self._append(cur, kind, dataset, 0.0, {"reservation": reservation, **detail})

    # -- keyed fingerprints -------------------------------------------------------------------
    def keyed_fingerprint(self, sha256_hex: str) -> str:
        """A fingerprint of a private input that may be published: HMAC-SHA256 of its SHA-256.

        Returns ``"hmac-sha256:"`` + HMAC-SHA256(secret, bytes.fromhex(sha256_hex)) in hex, with
        this ledger's secret: 32 random bytes (``secrets``) stored in the ledger's own table,
        created on first need (one per ledger, also when several processes ask at once: the
        table's primary key admits one row and the first writer's is kept). The same input gives
        the same fingerprint from this ledger, in every process; another ledger gives another.
        The secret is never printed nor shown in any statement, and the ledger keeps the plain
        hash (``input_sha256`` of its reservations).

        Privacy: without the secret the fingerprint cannot be tested against guesses of the input
        (the plain SHA-256 can: whoever knows all rows but one can confirm a guess of the last),
        so it reveals nothing about the data; whoever holds the ledger can link it to the input.

        Raises:
            ParameterError: ``sha256_hex`` is not 64 hexadecimal characters (the message does not
                repeat it).
        """
        digest = _sha256_digest(sha256_hex)
        return FINGERPRINT_PREFIX + hmac.new(self._secret(), digest, hashlib.sha256).hexdigest()

    def _secret(self) -> bytes:
        """The ledger's fingerprint key, created in its table on first need."""
        if self._fingerprint_key is None:
            select = "SELECT secret FROM dpsynth_ledger_secret WHERE id = 1"
            with self._db.read() as cur:
                cur.execute(select)
                row = cur.fetchone()
            if row is None:
                with self._db.write() as cur:  # one writer at a time; the primary key keeps one row
                    cur.execute(self._db.sql("INSERT INTO dpsynth_ledger_secret (id, secret) VALUES (1, ?) "
                                             "ON CONFLICT (id) DO NOTHING"), (secrets.token_hex(32),))
                    cur.execute(select)
                    row = cur.fetchone()
            key = bytes.fromhex(str(row[0]))
            if len(key) != 32:
                raise LedgerError(f"ledger {_redact(self.url)!r} holds a fingerprint secret that is not 32 bytes")
            self._fingerprint_key = key
        return self._fingerprint_key

    # -- tamper evidence ----------------------------------------------------------------------
    def verify(self) -> VerifyResult:
        """Check the hash chain from the first entry to the head; name the first bad entry."""
        with self._db.read() as cur:
            cur.execute(
                "SELECT seq, created_at, kind, dataset, rho, content, prev_hash, hash, additive_delta, rdp, "
                "additive_epsilon FROM dpsynth_ledger_entries ORDER BY seq"
            )
            rows = cur.fetchall()
            cur.execute("SELECT seq, hash FROM dpsynth_ledger_head WHERE id = 1")
            head = cur.fetchone()
        prev = GENESIS
        for i, (seq, created_at, kind, dataset, rho, content, prev_hash, digest, additive_delta, rdp,
                additive_epsilon) in enumerate(rows, start=1):
            if int(seq) != i:
                return VerifyResult(False, len(rows), i, f"entry {i} is missing (the next stored entry is {seq}): "
                                    "deleted or renumbered")
            if prev_hash != prev:
                return VerifyResult(False, len(rows), i, f"entry {i} does not follow entry {i - 1} "
                                    "(its predecessor hash differs): an entry before it was changed, deleted or moved")
            if _entry_hash(int(seq), created_at, kind, dataset, float(rho), content, prev_hash,
                           float(additive_delta), rdp or "", float(additive_epsilon)) != digest:
                return VerifyResult(False, len(rows), i, f"entry {i} ({kind}, dataset {dataset!r}) does not match "
                                    "its hash: it was edited")
            prev = digest
        if head is None or int(head[0]) != len(rows) or head[1] != prev:
            n = len(rows)
            return VerifyResult(False, n, n + 1, f"the ledger head records entry {head[0] if head else '?'} but "
                                f"{n} entries remain: entries after {n} were deleted")
        return VerifyResult(True, len(rows))


@dataclass
class Reservation:
    """Budget reserved for one computation; the computation spends it through :attr:`odometer`."""

    ledger: Ledger | None
    dataset: str | None
    id: int | None
    reserved: ZCDP
    reserved_delta: float = 0.0
    reserved_rdp: RDP | None = None
    #: additive ε of the (ε, δ) claims reserved
    reserved_epsilon: float = 0.0
    odometer: Odometer = field(init=False)

    def __post_init__(self) -> None:
        self.odometer = Odometer(self.reserved, self.reserved_delta, self.reserved_rdp, self.reserved_epsilon)

    @classmethod
    def unrecorded(cls, events: Sequence[PrivacyEvent]) -> Reservation:
        """A reservation of ``events`` that no ledger records (what ``UNTRACKED`` and audit fits
        hand out): its odometer holds their ρ, additive δ, Rényi-DP curve and additive ε."""
        rho, delta, rdp, epsilon = charged_costs(events)
        return cls(None, None, None, ZCDP(rho), delta, rdp, epsilon)

    def _spent(self) -> dict[str, Any]:
        """What the odometer spent, for the closing entry (with the claims' ε and δ when it reserved any)."""
        out: dict[str, Any] = {"spent_rho": self.odometer.spent.rho}
        if self.reserved_epsilon:
            out.update(spent_epsilon=self.odometer.spent_epsilon, spent_delta=self.odometer.spent_delta)
        return out

    def complete(self, **detail: Any) -> None:
        if self.ledger is not None and self.dataset is not None and self.id is not None:
            self.ledger._close(self.dataset, self.id, "complete", {**self._spent(), **detail})

    def fail(self, error: str) -> None:
        if self.ledger is not None and self.dataset is not None and self.id is not None:
            self.ledger._close(self.dataset, self.id, "fail", {**self._spent(), "error": error})


class _Untracked:
    """The explicit, loud opt-out: fit without recording the privacy loss anywhere."""

    def __repr__(self) -> str:
        return "dpsynth.UNTRACKED"

    def keyed_fingerprint(self, sha256_hex: str) -> str:
        """Like :meth:`Ledger.keyed_fingerprint`, keyed with a fresh random secret of this process.

        There is no ledger to keep a secret in, so the key is 32 random bytes drawn once per
        process (again in a forked child) and never stored: the fingerprint is NOT stable (another
        run gives another for the same input) and nothing can link it to the input or to the
        plain hash.

        Privacy: reveals nothing about the input (the key is random and discarded).

        Raises:
            ParameterError: ``sha256_hex`` is not 64 hexadecimal characters.
        """
        digest = _sha256_digest(sha256_hex)
        return FINGERPRINT_PREFIX + hmac.new(_process_secret(), digest, hashlib.sha256).hexdigest()

    def reserve(self, dataset: str | None, events: Sequence[PrivacyEvent], **_: Any) -> Reservation:
        warnings.warn(
            "fitting WITHOUT a privacy ledger: this release's privacy loss is recorded nowhere and "
            "does not count against any budget",
            UntrackedPrivacyWarning,
            stacklevel=3,
        )
        return Reservation.unrecorded(events)


UNTRACKED = _Untracked()

_PROCESS_SECRET: tuple[int, bytes] | None = None
_PROCESS_SECRET_LOCK = threading.Lock()


def _process_secret() -> bytes:
    """32 random bytes drawn once per process (a forked child draws its own)."""
    global _PROCESS_SECRET
    with _PROCESS_SECRET_LOCK:
        if _PROCESS_SECRET is None or _PROCESS_SECRET[0] != os.getpid():
            _PROCESS_SECRET = (os.getpid(), secrets.token_bytes(32))
        return _PROCESS_SECRET[1]


def _sha256_digest(sha256_hex: object) -> bytes:
    """The 32 bytes of a SHA-256 given in hex; the value is not repeated in the error (it could be
    a fingerprint of private data)."""
    if not isinstance(sha256_hex, str) or not _SHA256_HEX.fullmatch(sha256_hex):
        raise ParameterError("input_sha256 must be 64 hexadecimal characters")
    return bytes.fromhex(sha256_hex)


def check_ledger_argument(ledger: object, dataset: object, *, doing: str) -> None:
    """A ``ledger=`` argument must be a Ledger (then ``dataset`` a valid name) or the explicit
    ``dpsynth.UNTRACKED`` opt-out; ``doing`` names the action in the message ("fit", "infer")."""
    if not isinstance(ledger, (Ledger, _Untracked)):
        raise ParameterError(
            f"ledger ({ledger!r}) must be a dpsynth Ledger (with dataset=NAME), or dpsynth.UNTRACKED to {doing} "
            "without recording the privacy loss"
        )
    if isinstance(ledger, Ledger):
        _check_name(dataset)


def _check_name(dataset: object) -> str:
    if not isinstance(dataset, str) or not _NAME.match(dataset):
        raise ParameterError(
            f"dataset ({dataset!r}) must be 1–128 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return dataset


def _check_cap(budget: object) -> ApproxDP:
    if not isinstance(budget, ApproxDP):
        raise ParameterError(f"budget ({budget!r}) must be an ApproxDP(epsilon, delta)")
    check.positive_finite("epsilon", budget.epsilon)
    check.open_unit("delta", budget.delta)
    return budget


def _refuse_overdraft(
    statement: _Account, rho: float, delta: float, claimed: ApproxDP, rdp: RDP | None = None, epsilon: float = 0.0
) -> None:
    """Refuse a request of ``rho``, additive ``delta``, Rényi-DP curve ``rdp`` and additive
    ``epsilon`` ((ε, δ) claims) that the cap cannot hold, naming both the requested and the
    remaining numbers.

    With additive δ (thresholding) the cap holds iff Σδ_thr < δ_cap and
    Σρ ≤ approx_dp_to_rho(ε_cap, δ_cap − Σδ_thr/(1 − Σδ_thr)), Σ over what was spent and this request.
    Once a curve is involved (spent or requested), it holds iff Σδ_thr < δ_cap and the curve
    Σρ·α + Σ curves converts to at most ε_cap at δ_cap − Σδ_thr/(1 − Σδ_thr).
    Once a claim is involved (spent or requested), it holds iff Σε_claim + that conversion is at
    most ε_cap (with no ρ and no curve: Σε_claim ≤ ε_cap and Σδ ≤ δ_cap).
    """
    cap = statement.cap
    if epsilon or statement.epsilon_spent:
        _refuse_claim_overdraft(statement, rho, delta, claimed, rdp, epsilon)
        return
    if rdp is not None or statement.rdp_spent is not None:
        _refuse_rdp_overdraft(statement, rho, delta, claimed, rdp)
        return
    if not delta and not statement.delta_spent:
        remaining = statement.rho_cap - statement.rho_spent
        if rho > remaining:
            raise BudgetExceededError(
                f"requested rho={rho:.6g} (epsilon={claimed.epsilon:g}, delta={claimed.delta:g}) exceeds the "
                f"remaining rho={max(remaining, 0.0):.6g} of dataset {statement.dataset!r} (cap "
                f"epsilon={cap.epsilon:g}, delta={cap.delta:g}; spent rho={statement.rho_spent:.6g} in "
                f"{statement.releases} release(s))",
                requested=rho,
                remaining=max(remaining, 0.0),
            )
        return
    delta_after = statement.delta_spent + delta
    remaining_delta = max(0.0, cap.delta - thresholding_delta(statement.delta_spent))
    # The ρ left if this request's additive δ is taken as well (0 when the δ alone does not fit).
    remaining = rho_within(cap.epsilon, cap.delta, delta_after) - statement.rho_spent
    if thresholding_delta(delta_after) >= cap.delta or rho > remaining:
        raise BudgetExceededError(
            f"requested rho={rho:.6g} and additive delta={delta:.6g} (epsilon={claimed.epsilon:g}, "
            f"delta={claimed.delta:g}) exceeds the remaining rho={max(remaining, 0.0):.6g} (with this additive delta "
            f"taken) and additive delta={remaining_delta:.6g} of dataset {statement.dataset!r} (cap "
            f"epsilon={cap.epsilon:g}, delta={cap.delta:g}; spent rho={statement.rho_spent:.6g}, additive "
            f"delta={statement.delta_spent:.6g} in {statement.releases} release(s))",
            requested=rho,
            remaining=max(remaining, 0.0),
        )


def _refuse_rdp_overdraft(statement: _Account, rho: float, delta: float, claimed: ApproxDP, rdp: RDP | None) -> None:
    cap = statement.cap
    spent_eps = _spent_epsilon(statement.rho_spent, statement.rdp_spent, cap.delta, statement.delta_spent)
    curves = [c for c in (statement.rdp_spent, rdp) if c is not None]
    after_curve = RDP.total(curves)
    assert after_curve is not None
    delta_after = statement.delta_spent + delta
    total = _spent_epsilon(statement.rho_spent + rho, after_curve, cap.delta, delta_after)
    if thresholding_delta(delta_after) < cap.delta and total <= cap.epsilon:
        return
    alone_curve = rdp if rdp is not None else RDP.zero(after_curve.orders)
    requested = _spent_epsilon(rho, alone_curve, cap.delta, delta)
    remaining = max(0.0, cap.epsilon - spent_eps)
    additive = f" and additive delta={delta:.6g}" if delta else ""
    raise BudgetExceededError(
        f"requested epsilon={requested:.6g}{additive} at delta={cap.delta:g} (rho={rho:.6g} with a Rényi-DP "
        f"curve; claimed epsilon={claimed.epsilon:g}, delta={claimed.delta:g}) exceeds the remaining "
        f"epsilon={remaining:.6g} of dataset {statement.dataset!r}: composed in RDP the total would be "
        f"epsilon={total:.6g} > cap epsilon={cap.epsilon:g} at delta={cap.delta:g} (spent epsilon={spent_eps:.6g} "
        f"in {statement.releases} release(s))",
        requested=requested,
        remaining=remaining,
    )


def _refuse_claim_overdraft(
    statement: _Account, rho: float, delta: float, claimed: ApproxDP, rdp: RDP | None, epsilon: float
) -> None:
    """The cap check once (ε, δ) claims are involved; the numbers in the message are ε at the cap's δ."""
    cap = statement.cap
    spent_eps = _spent_epsilon(statement.rho_spent, statement.rdp_spent, cap.delta, statement.delta_spent,
                               statement.epsilon_spent)
    curves = [c for c in (statement.rdp_spent, rdp) if c is not None]
    delta_after = sum_up([statement.delta_spent, delta])
    epsilon_after = sum_up([statement.epsilon_spent, epsilon])
    total = _spent_epsilon(sum_up([statement.rho_spent, rho]), RDP.total(curves), cap.delta, delta_after,
                           epsilon_after)
    if total <= cap.epsilon:
        return
    requested = _spent_epsilon(rho, rdp, cap.delta, delta, epsilon)
    remaining = max(0.0, cap.epsilon - spent_eps)
    parts = ([f"additive epsilon={epsilon:.6g}"] if epsilon else []) + ([f"rho={rho:.6g}"] if rho else []) + (
        ["a Rényi-DP curve"] if rdp is not None else []) + ([f"additive delta={delta:.6g}"] if delta else [])
    parts = parts or ["no cost"]
    spent = [f"additive epsilon={statement.epsilon_spent:.6g}", f"rho={statement.rho_spent:.6g}"] + (
        [f"additive delta={statement.delta_spent:.6g}"] if statement.delta_spent else [])
    raise BudgetExceededError(
        f"requested epsilon={requested:.6g} at delta={cap.delta:g} ({', '.join(parts)}; claimed "
        f"epsilon={claimed.epsilon:g}, delta={claimed.delta:g}) exceeds the remaining epsilon={remaining:.6g} of "
        f"dataset {statement.dataset!r}: composed with the (epsilon, delta) claims the total would be "
        f"epsilon={total:.6g} (additive delta={delta_after:.6g}) > cap epsilon={cap.epsilon:g} at "
        f"delta={cap.delta:g} (spent epsilon={spent_eps:.6g}: {', '.join(spent)} in {statement.releases} "
        "release(s))",
        requested=requested,
        remaining=remaining,
    )
