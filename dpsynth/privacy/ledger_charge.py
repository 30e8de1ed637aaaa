"""What a charge costs and what it hands out: the costs of planned events, the account a charge is
checked against, the reservation a computation spends from, and the loud ``UNTRACKED`` opt-out.

A reservation (:class:`Reservation`) is what :meth:`~dpsynth.privacy.ledger.Ledger.reserve` returns
once the events fit: its odometer holds what was reserved, and ``complete`` / ``fail`` close it in
the ledger. ``UNTRACKED`` hands out the same reservation without recording it anywhere, with a
warning.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dpsynth.exceptions import DPSynthWarning, ParameterError
from dpsynth.privacy.accounting import sum_up
from dpsynth.privacy.budgets import RDP, ZCDP, ApproxDP
from dpsynth.privacy.events import PrivacyEvent, total_delta, total_rdp, total_rho
from dpsynth.privacy.ledger_fingerprint import keyed_fingerprint, process_secret
from dpsynth.privacy.ledger_store import LedgerError
from dpsynth.privacy.odometer import Odometer
from dpsynth.privacy.overdraft import Account

if TYPE_CHECKING:
    from dpsynth.privacy.ledger import Ledger

__all__ = ["UNTRACKED", "Reservation", "Untracked", "UntrackedPrivacyWarning", "charged_costs", "read_account"]


class UntrackedPrivacyWarning(DPSynthWarning):
    """A fit ran without a ledger: its privacy loss is recorded nowhere."""


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


def read_account(cur: Any, sql: Callable[[str], str], dataset: str) -> Account:
    """What a charge needs, without reading every entry's content: the current cap, the unit and
    the ρ, additive δ and additive ε of every reservation (columns covered by the entry hashes).

    Raises:
        LedgerError: the dataset is not registered.
    """
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


def account_digest(cur: Any, sql: Callable[[str], str], account: Account) -> str:
    """``account`` (what a charge of its dataset adds up, :func:`read_account`) and the number of
    the dataset's newest reservation, as canonical JSON: what a dataset's sealed account holds."""
    cur.execute(sql("SELECT COALESCE(MAX(seq), 0) FROM dpsynth_ledger_entries WHERE dataset = ? AND kind = 'reserve'"),
                (account.dataset,))
    newest = int(cur.fetchone()[0])
    rdp = None if account.rdp_spent is None else account.rdp_spent.to_dict()
    return json.dumps([account.dataset, account.unit, account.cap.epsilon, account.cap.delta, account.rho_spent,
                       account.releases, account.delta_spent, account.epsilon_spent, rdp, newest],
                      separators=(",", ":"), allow_nan=False)


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
        """Close the reservation as completed, with what was spent and ``detail``."""
        if self.ledger is not None and self.dataset is not None and self.id is not None:
            self.ledger._close(self.dataset, self.id, "complete", {**self._spent(), **detail})

    def fail(self, error: str) -> None:
        """Close the reservation as failed, with what was spent and ``error``."""
        if self.ledger is not None and self.dataset is not None and self.id is not None:
            self.ledger._close(self.dataset, self.id, "fail", {**self._spent(), "error": error})


class Untracked:
    """The explicit, loud opt-out: fit without recording the privacy loss anywhere (``dpsynth.UNTRACKED``,
    its only instance)."""

    def __repr__(self) -> str:
        return "dpsynth.UNTRACKED"

    def keyed_fingerprint(self, sha256_hex: str) -> str:
        """Like :meth:`~dpsynth.privacy.ledger.Ledger.keyed_fingerprint`, keyed with a fresh random secret of
        this process.

        There is no ledger to keep a secret in, so the key is 32 random bytes drawn once per
        process (again in a forked child) and never stored: the fingerprint is NOT stable (another
        run gives another for the same input) and nothing can link it to the input or to the
        plain hash.

        Privacy: reveals nothing about the input (the key is random and discarded).

        Raises:
            ParameterError: ``sha256_hex`` is not 64 hexadecimal characters.
        """
        return keyed_fingerprint(process_secret, sha256_hex)

    def reserve(self, dataset: str | None, events: Sequence[PrivacyEvent], **_: Any) -> Reservation:
        """Warn loudly that nothing records this fit, and reserve ``events`` unrecorded."""
        warnings.warn(
            "fitting WITHOUT a privacy ledger: this release's privacy loss is recorded nowhere and "
            "does not count against any budget",
            UntrackedPrivacyWarning,
            stacklevel=3,
        )
        return Reservation.unrecorded(events)


UNTRACKED = Untracked()
