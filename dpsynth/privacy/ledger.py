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
A ledger URL that does not exist is an error unless it is being created (``create=True``).

This module is the :class:`Ledger` itself (registering datasets, changing caps, reserving); its parts
live beside it: the storage in :mod:`~dpsynth.privacy.ledger_store`, the hash chain and the seal in
:mod:`~dpsynth.privacy.ledger_chain`, the statements in :mod:`~dpsynth.privacy.ledger_statement`, the
costs, reservations and ``UNTRACKED`` in :mod:`~dpsynth.privacy.ledger_charge`, the cap check in
:mod:`~dpsynth.privacy.overdraft`, the keyed fingerprints in :mod:`~dpsynth.privacy.ledger_fingerprint`.

A ledger also keeps a secret of its own (32 random bytes, in its own table, created on first
need) with which :meth:`Ledger.keyed_fingerprint` turns the plain SHA-256 of a private input (kept
in the ledger) into an HMAC that may travel with a release: without the secret it cannot be
linked to the input, so it leaks no fingerprint of the data.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import Any

from dpsynth import _validation as check
from dpsynth.exceptions import ParameterError
from dpsynth.privacy.accounting import approx_dp_to_rho, thresholding_delta
from dpsynth.privacy.budgets import ZCDP, ApproxDP
from dpsynth.privacy.events import PrivacyEvent
from dpsynth.privacy.ledger_chain import Chain
from dpsynth.privacy.ledger_charge import (
    UNTRACKED,
    Reservation,
    Untracked,
    UntrackedPrivacyWarning,
    account_digest,
    charged_costs,
    read_account,
)
from dpsynth.privacy.ledger_fingerprint import FINGERPRINT_PREFIX, keyed_fingerprint, ledger_secret
from dpsynth.privacy.ledger_seal import LedgerTamperedError, key_source
from dpsynth.privacy.ledger_statement import (
    UNIT_DESCRIPTIONS,
    DatasetStatement,
    Entry,
    ReservationView,
    dataset_entries,
    describe_unit,
    statement_of,
)
from dpsynth.privacy.ledger_store import GENESIS, SCHEMA_VERSION, LedgerError, backend, open_tables
from dpsynth.privacy.ledger_verify import VerifyResult, canonical, entry_hash
from dpsynth.privacy.overdraft import Account, refuse_overdraft, rho_cap, spent_epsilon
from dpsynth.privacy.redact import redact_url
from dpsynth.privacy.unit import PrivacyUnit, unit_refusal

__all__ = ["FINGERPRINT_PREFIX", "GENESIS", "SCHEMA_VERSION", "UNIT_DESCRIPTIONS", "UNTRACKED", "DatasetStatement",
           "Entry", "Ledger", "LedgerError", "LedgerTamperedError", "Reservation", "ReservationView", "Untracked",
           "UntrackedPrivacyWarning", "VerifyResult", "canonical", "charged_costs", "check_ledger_argument",
           "describe_unit"]

# The names older code and tests import from here.
_redact = redact_url
_entry_hash = entry_hash
_backend = backend
_Untracked = Untracked

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")


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
        self._chain = Chain(self._db, url, key_source(url, key_file))
        own = self._chain.key_source
        if own.own and own.path is not None and own.path.exists() and not self._db.exists():
            raise LedgerError(f"ledger {redact_url(url)!r} does not exist, but its key file {str(own.path)!r} does: "
                              "the ledger was deleted or moved (restore it, or remove the key file to start a new "
                              "ledger)")
        open_tables(self._db, create=create, on_create=self._chain.seal_new)
        self._fingerprint_key: bytes | None = None  # read from the database on first need

    def __repr__(self) -> str:
        return f"Ledger({redact_url(self.url)!r})"

    @property
    def read_only(self) -> bool:
        """Opened read-only (a file this process may not write): shown and verified, never charged."""
        return self._db.read_only

    # -- the seal -----------------------------------------------------------------------------
    def seal(self) -> int:
        """Seal a ledger made before ledgers were sealed: check its hash chain, make its key and put
        a keyed MAC on every entry and on the head. Returns the number of entries sealed.

        Raises:
            LedgerError: it is sealed already, or read-only.
            LedgerTamperedError: its chain does not verify, or its own key file exists already
                (a sealed ledger whose seal was removed, or an interrupted seal).
        """
        return self._chain.seal()

    def verify(self, anchor: tuple[int, str] | None = None) -> VerifyResult:
        """Check the whole ledger: the hash chain from the first entry to the head, and, sealed, every
        entry's and the head's keyed MAC; name the first bad entry. ``anchor`` (an entry's number and
        hash, as :attr:`VerifyResult.head` gave them earlier) must still be in the chain.

        Raises:
            LedgerError: the ledger is sealed and its key is missing or not this ledger's.
        """
        return self._chain.verify(anchor)

    # -- reading ------------------------------------------------------------------------------
    def _guard_dataset(self, cur: Any, dataset: str) -> tuple[tuple[Any, ...], Account | None]:
        """The check before a charge of ``dataset`` (:meth:`Chain.guard` with its account), and the
        account it read (:func:`read_account`), or None when the dataset is not registered."""
        read: list[Account] = []

        def digest() -> str | None:
            try:
                read.append(self._account(cur, dataset))
            except LedgerError:
                return None
            return account_digest(cur, self._db.sql, read[0])

        head = self._chain.guard(cur, dataset, digest)
        return head, read[0] if read else None

    def _guard_charge(self, cur: Any, dataset: str) -> tuple[tuple[Any, ...], Account]:
        """:meth:`_guard_dataset` of a dataset that must be registered (else a LedgerError)."""
        head, account = self._guard_dataset(cur, dataset)
        return head, self._account(cur, dataset) if account is None else account

    def _seal_account(self, cur: Any, dataset: str) -> None:
        """Seal ``dataset``'s account as it is after this transaction's entry."""
        self._chain.seal_account(cur, dataset, account_digest(cur, self._db.sql, self._account(cur, dataset)))

    def _account(self, cur: Any, dataset: str) -> Account:
        """What a charge needs (:func:`~dpsynth.privacy.ledger_charge.read_account`)."""
        return read_account(cur, self._db.sql, dataset)

    def datasets(self) -> list[str]:
        """The names of the datasets registered in this ledger, sorted."""
        with self._db.read() as cur:
            cur.execute("SELECT DISTINCT dataset FROM dpsynth_ledger_entries WHERE kind = 'dataset' ORDER BY dataset")
            return [row[0] for row in cur.fetchall()]

    def statement(self, dataset: str) -> DatasetStatement:
        """The current account of ``dataset``."""
        with self._db.read() as cur:
            return statement_of(dataset, dataset_entries(cur, self._db.sql, dataset))

    # -- datasets -----------------------------------------------------------------------------
    def create_dataset(self, dataset: str, budget: ApproxDP, *, unit: str | PrivacyUnit = "row") -> int:
        """Register ``dataset`` with its total budget (cap) and privacy unit (``row``, ``user:K`` or a
        :class:`~dpsynth.privacy.unit.PrivacyUnit`). Returns the entry id."""
        _check_name(dataset)
        budget = _check_cap(budget)
        unit = unit.label if isinstance(unit, PrivacyUnit) else PrivacyUnit.parse(unit).label
        with self._db.write() as cur:
            head = self._chain.guard(cur, None)
            cur.execute(self._db.sql("SELECT 1 FROM dpsynth_ledger_entries WHERE dataset = ? AND kind = 'dataset'"),
                        (dataset,))
            if cur.fetchone() is not None:
                raise LedgerError(f"dataset {dataset!r} is already registered in this ledger")
            return self._chain.append(cur, head, "dataset", dataset, 0.0, {
                "epsilon": budget.epsilon, "delta": budget.delta, "unit": unit, "rho_cap":
                approx_dp_to_rho(budget.epsilon, budget.delta)})

    def set_cap(self, dataset: str, budget: ApproxDP, *, reason: str) -> int:
        """Change the cap of ``dataset``; the reason is recorded. Never below what is spent."""
        budget = _check_cap(budget)
        if not isinstance(reason, str) or not reason.strip():
            raise ParameterError("reason must be given to change a dataset's cap (it is recorded)")
        with self._db.write() as cur:
            head, statement = self._guard_charge(cur, dataset)
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
            seq = self._chain.append(cur, head, "cap", dataset, 0.0, {
                "epsilon": budget.epsilon, "delta": budget.delta, "reason": reason.strip(),
                "previous": {"epsilon": statement.cap.epsilon, "delta": statement.cap.delta}})
            self._seal_account(cur, dataset)
            return seq

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
            if dataset is None:
                self._chain.guard(cur, None)
            else:
                self._guard_dataset(cur, dataset)

    def check(self, dataset: str, events: Sequence[PrivacyEvent], *, claimed: ApproxDP) -> Account:
        """Raise if ``events`` would not fit (without reserving); return the statement."""
        self._db.refuse_write()
        with self._db.read() as cur:
            _, account = self._guard_charge(cur, dataset)
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
        unit: str | PrivacyUnit = "row",
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
        from dpsynth._version import __version__

        events = list(events)
        fit_unit = unit if isinstance(unit, PrivacyUnit) else PrivacyUnit.parse(unit)
        rho, delta, rdp, epsilon = charged_costs(events)
        with self._db.write() as cur:
            head, statement = self._guard_charge(cur, dataset)
            refusal = unit_refusal(dataset, statement.unit, fit_unit, synthesizer)
            if refusal is not None:
                raise LedgerError(refusal)
            refuse_overdraft(statement, rho, delta, claimed, rdp, epsilon)
            seq = self._chain.append(cur, head, "reserve", dataset, rho, {
                "synthesizer": synthesizer,
                "claimed": {"epsilon": claimed.epsilon, "delta": claimed.delta},
                "events": [e.to_dict() for e in events],
                "dpsynth_version": __version__,
                "input_sha256": input_sha256,
                "parameters": parameters or {},
                "opt_ins": list(opt_ins),
            }, additive_delta=delta, rdp=rdp, additive_epsilon=epsilon)
            self._seal_account(cur, dataset)
        return Reservation(self, dataset, seq, ZCDP(rho), delta, rdp, epsilon)

    def _close(self, dataset: str, reservation: int, kind: str, detail: dict[str, Any]) -> int:
        """Append the ``complete`` or ``fail`` entry of ``reservation`` (:class:`Reservation` calls it)."""
        with self._db.write() as cur:
            head = self._chain.guard(cur, None)
            return self._chain.append(cur, head, kind, dataset, 0.0, {"reservation": reservation, **detail})

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
        return keyed_fingerprint(self._secret, sha256_hex)

    def _secret(self) -> bytes:
        """The ledger's fingerprint key, created in its table on first need."""
        if self._fingerprint_key is None:
            self._fingerprint_key = ledger_secret(self._db, self.url)
        return self._fingerprint_key


def check_ledger_argument(ledger: object, dataset: object, *, doing: str) -> None:
    """A ``ledger=`` argument must be a Ledger (then ``dataset`` a valid name) or the explicit
    ``dpsynth.UNTRACKED`` opt-out; ``doing`` names the action in the message ("fit", "infer")."""
    if not isinstance(ledger, (Ledger, Untracked)):
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
