"""What a ledger shows of one dataset: its entries as stored, its reservations, and its statement.

A statement (:class:`DatasetStatement`) is read from every entry of a dataset, in order: the
registration and the cap changes give the cap and its history, the reservations what was
spent, and their ``complete`` / ``fail`` entries how each ended. The figures it derives (ρ and
additive δ and ε spent, the tight ε at the cap's δ, what remains) follow the composition of the
ledger's docstring (:mod:`~dpsynth.privacy.ledger`); the cap check itself is
:mod:`~dpsynth.privacy.overdraft`'s.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dpsynth.privacy.accounting import sum_up, thresholding_delta
from dpsynth.privacy.budgets import RDP, ApproxDP
from dpsynth.privacy.ledger_store import LedgerError
from dpsynth.privacy.overdraft import rho_cap, spent_epsilon
from dpsynth.privacy.unit import PrivacyUnit

__all__ = ["UNIT_DESCRIPTIONS", "DatasetStatement", "Entry", "ReservationView", "dataset_entries", "describe_unit",
           "statement_of"]

UNIT_DESCRIPTIONS = {"row": "add/remove one row"}


def describe_unit(unit: str) -> str:
    """The privacy unit of a ledger label in words: ``row``, or ``user:K`` (one person with up to K rows)."""
    return PrivacyUnit.parse(unit).describe()


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
        """The reservation as plain data."""
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
        """Σ of the reservations' ρ."""
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
        """Σ of the releases' own δ."""
        return math.fsum(r.delta for r in self.reservations)

    def to_dict(self) -> dict[str, Any]:
        """The statement as ``ledger show --json`` prints it."""
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


def dataset_entries(cur: Any, sql: Callable[[str], str], dataset: str) -> list[Entry]:
    """Every entry of ``dataset``, in order (``sql`` adapts the placeholders to the backend)."""
    cur.execute(
        sql(
            "SELECT seq, created_at, kind, dataset, rho, content, prev_hash, hash, additive_delta, rdp, "
            "additive_epsilon FROM dpsynth_ledger_entries WHERE dataset = ? ORDER BY seq"
        ),
        (dataset,),
    )
    return [
        Entry(int(s), c, k, d, float(r), json.loads(t), p, h, float(a), v or "", float(ae))
        for s, c, k, d, r, t, p, h, a, v, ae in cur.fetchall()
    ]


def statement_of(dataset: str, entries: list[Entry]) -> DatasetStatement:
    """The statement of ``dataset`` from its ``entries`` (in order, the registration first).

    Raises:
        LedgerError: the dataset is not registered (its first entry is not its registration).
    """
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
