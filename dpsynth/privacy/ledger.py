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
the last one. A ledger is also *sealed* (:mod:`~dpsynth.privacy.ledger_seal`): a key kept outside
the database puts a keyed MAC on every entry and on the head, so that nobody without the key can
rebuild the chain, delete the newest entries and set the head back, or empty the ledger unseen.
:meth:`Ledger.verify` checks all of it and names the first entry that was edited, deleted or
reordered; every write first checks the head, the newest entry and (a charge) every entry of its
dataset (:func:`~dpsynth.privacy.ledger_verify.check_before_charge`) and refuses a damaged ledger.
A ledger URL that does not exist is an error unless it is being created (``create=True``); the
storage is in :mod:`~dpsynth.privacy.ledger_store`, the cap check in
:mod:`~dpsynth.privacy.overdraft`.

A ledger also keeps a secret of its own (32 random bytes, in its own table, created on first
need) with which :meth:`Ledger.keyed_fingerprint` turns the plain SHA-256 of a private input (kept
in the ledger) into an HMAC that may travel with a release: without the secret it cannot be
linked to the input, so it leaks no fingerprint of the data.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import os
import re
import secrets
import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from dpsynth import _validation as check
from dpsynth.exceptions import ParameterError
from dpsynth.privacy.accounting import approx_dp_to_rho, sum_up, thresholding_delta
from dpsynth.privacy.budgets import RDP, ZCDP, ApproxDP
from dpsynth.privacy.events import PrivacyEvent, total_delta, total_rdp, total_rho
from dpsynth.privacy.ledger_seal import (
    KeySource,
    LedgerTamperedError,
    entry_mac,
    head_mac,
    key_id,
    key_source,
    make_key,
    read_key,
)
from dpsynth.privacy.ledger_store import GENESIS, SCHEMA_VERSION, LedgerError, backend, open_tables, redact
from dpsynth.privacy.ledger_verify import (
    ROW_COLUMNS,
    VerifyResult,
    canonical,
    check_before_charge,
    check_key,
    entry_hash,
    verify_rows,
)
from dpsynth.privacy.odometer import Odometer
from dpsynth.privacy.overdraft import Account, refuse_overdraft, rho_cap, spent_epsilon

__all__ = ["GENESIS", "SCHEMA_VERSION", "UNTRACKED", "DatasetStatement", "Entry", "Ledger", "LedgerError",
           "LedgerTamperedError", "Reservation", "ReservationView", "UntrackedPrivacyWarning", "VerifyResult",
           "canonical", "charged_costs", "check_ledger_argument", "describe_unit"]

# The names older code and tests import from here.
_redact = redact
_entry_hash = entry_hash
_backend = backend

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")
_UNIT = re.compile(r"^(row|user:[1-9][0-9]*)$")
_SHA256_HEX = re.compile(r"[0-9A-Fa-f]{64}")
#: Prefix of a keyed fingerprint (:meth:`Ledger.keyed_fingerprint`).
FINGERPRINT_PREFIX = "hmac-sha256:"
UNIT_DESCRIPTIONS = {"row": "add/remove one row"}


class UntrackedPrivacyWarning(UserWarning):
    """A fit ran without a ledger: its privacy loss is recorded nowhere."""


def describe_unit(unit: str) -> str:
    if unit == "row":
        return UNIT_DESCRIPTIONS["row"]
    return f"add/remove one user with at most {unit.split(':', 1)[1]} rows"


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
        return rho_cap(self.cap, self.delta_spent, self.rdp_spent, self.epsilon_additive_spent)

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
        return rho_cap(self.cap, self.delta_spent, curve, self.epsilon_additive_spent)

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
        return spent_epsilon(self.rho_spent, self.rdp_spent, self.cap.delta, self.delta_spent,
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





# ---------------------------------------------------------------------------------------------
# the ledger
# ---------------------------------------------------------------------------------------------


class Ledger:
    """A persistent privacy-budget ledger at ``url`` (``sqlite:///PATH`` or ``postgresql://…``)."""

    def __init__(self, url: str, *, create: bool = False, key_file: str | os.PathLike[str] | None = None):
        """Open the ledger at ``url``; with ``create``, make it first if it does not exist.

        A new ledger is sealed at once (``dpsynth.privacy.ledger_seal``): its key is taken from
        ``key_file``, ``$DPSYNTH_LEDGER_KEY``, ``$DPSYNTH_LEDGER_KEY_FILE``, or made as the ledger's
        own key file (``PATH.key`` beside a SQLite ledger). The key is read when first needed.

        Raises:
            LedgerError: the ledger does not exist (and ``create`` is false), or it does not but its
                own key file does (deleted or moved), or it cannot be opened.
            ParameterError: a malformed URL.
        """
        self.url = url
        self._db = backend(url)
        self._key_source: KeySource = key_source(url, key_file)
        self._key: bytes | None = None
        own = self._key_source
        if own.own and own.path is not None and own.path.exists() and not self._db.exists():
            raise LedgerError(f"ledger {redact(url)!r} does not exist, but its key file {str(own.path)!r} does: the "
                              "ledger was deleted or moved (restore it, or remove the key file to start a new ledger)")
        open_tables(self._db, create=create, on_create=self._seal_new)
        self._fingerprint_key: bytes | None = None  # read from the database on first need

    def __repr__(self) -> str:
        return f"Ledger({redact(self.url)!r})"

    @property
    def read_only(self) -> bool:
        """Opened read-only (a file this process may not write): shown and verified, never charged."""
        return self._db.read_only

    # -- the seal -----------------------------------------------------------------------------
    def _seal_new(self, cur: Any) -> None:
        """Seal a ledger being created (in its creating transaction): its key, and the head's MAC."""
        key = make_key(self._key_source)
        kid = key_id(key)
        cur.execute(self._db.sql("UPDATE dpsynth_ledger_head SET key_id = ?, mac = ? WHERE id = 1"),
                    (kid, head_mac(key, 0, GENESIS, kid)))
        self._key = key

    def _head(self, cur: Any) -> tuple[Any, ...] | None:
        cur.execute("SELECT seq, hash, key_id, mac FROM dpsynth_ledger_head WHERE id = 1")
        row = cur.fetchone()
        return None if row is None else tuple(row)

    def _own_key_exists(self) -> bool:
        src = self._key_source
        return src.own and src.path is not None and src.path.exists()

    def _ledger_key(self, head: Sequence[Any]) -> bytes:
        """The key of this (sealed) ledger, checked against the head's key id."""
        if self._key is None:
            key = read_key(self._key_source)
            if key is None:
                raise LedgerError(
                    f"the key of ledger {redact(self.url)!r} was not found ({self._key_source.describe()}): give it "
                    "with $DPSYNTH_LEDGER_KEY_FILE or $DPSYNTH_LEDGER_KEY")
            check_key(head, key, self._key_source.describe(), redact(self.url))
            self._key = key
        return self._key

    def _guard(self, cur: Any, dataset: str | None) -> tuple[Any, ...]:
        """What every write does first: refuse an unsealed or damaged ledger; return its head."""
        head = self._head(cur)
        if head is None:
            raise LedgerTamperedError(f"ledger {redact(self.url)!r} is damaged: its head row is missing; nothing "
                                      "was charged or changed")
        if not head[2]:
            if self._own_key_exists():
                raise LedgerTamperedError(
                    f"ledger {redact(self.url)!r} is damaged: it has no seal, but its key file exists (its seal was "
                    "removed); nothing was charged or changed")
            raise LedgerError(f"ledger {redact(self.url)!r} was made by an older dpsynth and is not sealed: run "
                              "'dpsynth ledger seal' once (it checks the chain and keys every entry)")
        check_before_charge(cur, self._db.sql, self._ledger_key(head), head, redact(self.url), dataset)
        return head

    def seal(self) -> int:
        """Seal a ledger made before ledgers were sealed: check its hash chain, make its key and put
        a keyed MAC on every entry and on the head. Returns the number of entries sealed.

        Raises:
            LedgerError: it is sealed already, or read-only.
            LedgerTamperedError: its chain does not verify, or its own key file exists already
                (a sealed ledger whose seal was removed, or an interrupted seal).
        """
        with self._db.write() as cur:
            head = self._head(cur)
            if head is not None and head[2]:
                raise LedgerError(f"ledger {redact(self.url)!r} is sealed already")
            cur.execute(f"SELECT {ROW_COLUMNS} FROM dpsynth_ledger_entries ORDER BY seq")
            rows = cur.fetchall()
            result = verify_rows(rows, head, None)
            if not result.ok:
                raise LedgerTamperedError(f"ledger {redact(self.url)!r} cannot be sealed: {result.problem}")
            if self._own_key_exists():
                raise LedgerTamperedError(
                    f"ledger {redact(self.url)!r} has no seal, but its key file exists: its seal was removed (or an "
                    "earlier seal was interrupted); remove the key file to seal it again")
            key = make_key(self._key_source)
            sql = self._db.sql
            for row in rows:
                cur.execute(sql("UPDATE dpsynth_ledger_entries SET mac = ? WHERE seq = ?"), (
                    entry_mac(key, int(row[0]), row[2], row[3], float(row[4]), float(row[8]), float(row[10]),
                              row[9] or "", row[7]), int(row[0])))
            assert head is not None  # verify_rows refused a missing head
            kid = key_id(key)
            cur.execute(sql("UPDATE dpsynth_ledger_head SET key_id = ?, mac = ? WHERE id = 1"),
                        (kid, head_mac(key, int(head[0]), head[1], kid)))
        self._key = key
        return len(rows)

    # -- low level ----------------------------------------------------------------------------
    def _append(
        self, cur: Any, head: Sequence[Any], kind: str, dataset: str, rho: float, content: dict[str, Any],
        additive_delta: float = 0.0, rdp: RDP | None = None, additive_epsilon: float = 0.0,
    ) -> int:
        """Append one entry after ``head`` (what :meth:`_guard` returned in this transaction)."""
        sql = self._db.sql
        key = self._ledger_key(head)
        last_seq, last_hash = int(head[0]), head[1]
        seq = last_seq + 1
        created_at = datetime.now(UTC).isoformat(timespec="microseconds")
        text = canonical(content)
        curve = canonical(rdp.to_dict()) if rdp is not None else ""
        digest = entry_hash(seq, created_at, kind, dataset, float(rho), text, last_hash, float(additive_delta), curve,
                            float(additive_epsilon))
        mac = entry_mac(key, seq, kind, dataset, float(rho), float(additive_delta), float(additive_epsilon), curve,
                        digest)
        cur.execute(
            sql(
                "INSERT INTO dpsynth_ledger_entries "
                "(seq, created_at, kind, dataset, rho, content, prev_hash, hash, additive_delta, rdp, "
                "additive_epsilon, mac) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            ),
            (seq, created_at, kind, dataset, float(rho), text, last_hash, digest, float(additive_delta), curve,
             float(additive_epsilon), mac),
        )
        cur.execute(sql("UPDATE dpsynth_ledger_head SET seq = ?, hash = ?, mac = ? WHERE id = 1"),
                    (seq, digest, head_mac(key, seq, digest, head[2])))
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

    def _account(self, cur: Any, dataset: str) -> Account:
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
        return Account(dataset, unit, ApproxDP(last["epsilon"], last["delta"]), spent, int(count), spent_delta,
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
            head = self._guard(cur, None)
            cur.execute(self._db.sql("SELECT 1 FROM dpsynth_ledger_entries WHERE dataset = ? AND kind = 'dataset'"),
                        (dataset,))
            if cur.fetchone() is not None:
                raise LedgerError(f"dataset {dataset!r} is already registered in this ledger")
            return self._append(cur, head, "dataset", dataset, 0.0, {
                "epsilon": budget.epsilon, "delta": budget.delta, "unit": unit, "rho_cap":
                approx_dp_to_rho(budget.epsilon, budget.delta)})

    def set_cap(self, dataset: str, budget: ApproxDP, *, reason: str) -> int:
        """Change the cap of ``dataset``; the reason is recorded. Never below what is spent."""
        budget = _check_cap(budget)
        if not isinstance(reason, str) or not reason.strip():
            raise ParameterError("reason must be given to change a dataset's cap (it is recorded)")
        with self._db.write() as cur:
            head = self._guard(cur, dataset)
            statement = self._account(cur, dataset)
            spent = spent_epsilon(statement.rho_spent, statement.rdp_spent, budget.delta, statement.delta_spent,
                                   statement.epsilon_spent)
            if statement.epsilon_spent:  # claims: the total at the new δ must fit the new ε
                below = spent > budget.epsilon
            elif statement.rdp_spent is None:
                new_rho_cap = rho_cap(budget, statement.delta_spent, None)
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
            return self._append(cur, head, "cap", dataset, 0.0, {
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
    def check_integrity(self, dataset: str | None = None) -> None:
        """What every charge checks first (see :func:`~dpsynth.privacy.ledger_verify.check_before_charge`),
        without charging: the seal, the head and the newest entry, and ``dataset``'s entries.

        Raises:
            LedgerTamperedError: the ledger was changed behind dpsynth's back (the damage named).
            LedgerError: it is read-only or not sealed, or its key is missing or another ledger's.
        """
        self._db.refuse_write()  # a charge writes: a read-only ledger is refused first
        with self._db.read() as cur:
            self._guard(cur, dataset)


    def check(self, dataset: str, events: Sequence[PrivacyEvent], *, claimed: ApproxDP) -> Account:
        """Raise if ``events`` would not fit (without reserving); return the statement."""
        self._db.refuse_write()
        with self._db.read() as cur:
            self._guard(cur, dataset)
            account = self._account(cur, dataset)
        rho, delta, rdp, epsilon = charged_costs(events)
        refuse_overdraft(account, rho, delta, claimed, rdp, epsilon)
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
            head = self._guard(cur, dataset)
            statement = self._account(cur, dataset)
            if statement.unit != unit:
                raise LedgerError(
                    f"dataset {dataset!r} is registered with privacy unit {statement.unit!r} "
                    f"({describe_unit(statement.unit)}), but {synthesizer} protects {describe_unit(unit)}"
                )
            refuse_overdraft(statement, rho, delta, claimed, rdp, epsilon)
            seq = self._append(cur, head, "reserve", dataset, rho, {
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
            head = self._guard(cur, None)
            return self._append(cur, head, kind, dataset, 0.0, {"reservation": reservation, **detail})

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
    def verify(self, anchor: tuple[int, str] | None = None) -> VerifyResult:
        """Check the whole ledger: the hash chain from the first entry to the head, and, sealed, every
        entry's and the head's keyed MAC; name the first bad entry. ``anchor`` (an entry's number and
        hash, as :attr:`VerifyResult.head` gave them earlier) must still be in the chain.

        Raises:
            LedgerError: the ledger is sealed and its key is missing or not this ledger's.
        """
        with self._db.read() as cur:
            cur.execute(f"SELECT {ROW_COLUMNS} FROM dpsynth_ledger_entries ORDER BY seq")
            rows = cur.fetchall()
            head = self._head(cur)
        key = self._ledger_key(head) if head is not None and head[2] else None
        result = verify_rows(rows, head, key, anchor)
        if result.ok and not result.sealed and self._own_key_exists():
            return VerifyResult(False, result.entries, result.entries + 1, "the ledger has no seal, but its key file "
                                "exists: its seal was removed", False, result.head, result.anchor)
        return result


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


