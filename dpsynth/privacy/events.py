"""Privacy events: what one mechanism invocation costs, declared before it runs.

A synthesizer's plan is a list of events; the plan is data-independent (it depends only on the
public schema and the parameters), is reserved in full before any private row is read, and each
mechanism spends its own event from that reservation at the moment it draws noise.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

from dpsynth.privacy import accounting


class _Event:
    kind: ClassVar[str]
    rho: float

    def to_dict(self) -> dict[str, Any]:
        """The event as stored in reports and the ledger, with its ρ."""
        return {"kind": self.kind, **asdict(self), "rho": self.rho}  # type: ignore[call-overload]


@dataclass(frozen=True)
class GaussianEvent(_Event):
    """Discrete Gaussian noise of ``scale`` on a query of L2 sensitivity ``l2_sensitivity``.

    Privacy: (Δ₂² / 2σ²)-zCDP (Canonne, Kamath, Steinke 2020, Theorem 14).
    """

    scale: float
    l2_sensitivity: float
    label: str = ""

    kind: ClassVar[str] = "gaussian"

    @property
    def rho(self) -> float:
        return self.l2_sensitivity**2 / (2.0 * self.scale**2)


@dataclass(frozen=True)
class ExponentialEvent(_Event):
    """One exponential-mechanism selection at ``epsilon`` (scores of sensitivity Δ).

    Privacy: ε-DP and ε-bounded range, hence (ε²/8)-zCDP (Cesar and Rogers 2021).
    """

    epsilon: float
    sensitivity: float
    label: str = ""

    kind: ClassVar[str] = "exponential"

    @property
    def rho(self) -> float:
        return accounting.bounded_range_to_rho(self.epsilon)


@dataclass(frozen=True)
class ZCDPFilterEvent(_Event):
    """A budget of ``rho_budget`` for an adaptive sequence of zCDP mechanisms (e.g. AIM's rounds).

    The mechanisms, their number and their costs are chosen as the computation goes; an odometer
    refuses any that would take the sum past ``rho_budget``. Privacy: at most ρ-zCDP in total
    (zCDP composes under fully adaptive choice of the costs with a fixed total; Whitehouse et al.
    2023, "Fully adaptive composition in differential privacy").
    """

    rho_budget: float
    max_rounds: int
    label: str = ""

    kind: ClassVar[str] = "zcdp_filter"

    @property
    def rho(self) -> float:
        return self.rho_budget


PrivacyEvent = GaussianEvent | ExponentialEvent | ZCDPFilterEvent


def total_rho(events: list[PrivacyEvent]) -> float:
    """ρ of the composition of ``events`` (zCDP composes additively)."""
    return math.fsum(e.rho for e in events)
