"""A privacy odometer: the budget reserved for one computation, spent event by event."""

from __future__ import annotations

from dpsynth.exceptions import PrivacyAccountingError
from dpsynth.privacy.accounting import sum_up
from dpsynth.privacy.budgets import RDP, ZCDP
from dpsynth.privacy.events import PrivacyEvent, total_rdp

# Relative slack on Rényi-DP curves only (their sums are rounded per order and may be grouped
# differently from the reservation's). ρ and δ need none: both sides are exact sums rounded up,
# independent of order, so spending exactly the reserved events reaches exactly the reservation.
_SLACK = 1e-12


class Odometer:
    """Tracks what the mechanisms of one fit have spent against what was reserved for it.

    A mechanism calls :meth:`spend` with its event *before* its noisy value is released; if the
    sum would exceed the reservation (its ρ, its additive δ for thresholding mechanisms and
    (ε, δ) claims, its additive ε for (ε, δ) claims, or its Rényi-DP curve, order by order, for
    DP-SGD) the
    mechanism is stopped (that is a dpsynth bug, never a user mistake, so it is not a
    :class:`~dpsynth.exceptions.DPSynthError`). Sums of ρ and δ are exact and rounded up
    (:func:`~dpsynth.privacy.accounting.sum_up`) and compared with the reservation without slack;
    so are sums of additive ε.

    An (ε, δ) claim (:class:`~dpsynth.privacy.events.ApproxDPEvent`, a generator dpsynth did not
    write) is spent whole, once, before the generator is fitted: it has no ρ, and its ε and δ are
    checked against the reservation's additive ε and δ.
    """

    def __init__(self, reserved: ZCDP, delta: float = 0.0, rdp: RDP | None = None, epsilon: float = 0.0):
        self.reserved = reserved
        self.reserved_delta = float(delta)
        self.reserved_rdp = rdp
        self.reserved_epsilon = float(epsilon)
        self.events: list[PrivacyEvent] = []

    @property
    def spent_rdp(self) -> RDP | None:
        """The Rényi-DP curve of the RDP-accounted events spent so far (None when there is none)."""
        return total_rdp(self.events)

    @property
    def spent(self) -> ZCDP:
        """ρ spent so far: the exact sum of the events' ρ, rounded up."""
        return ZCDP(sum_up(e.rho for e in self.events))

    @property
    def spent_delta(self) -> float:
        """Additive δ spent so far (thresholding events): the exact sum, rounded up."""
        return sum_up(e.delta for e in self.events)

    @property
    def spent_epsilon(self) -> float:
        """Additive ε spent so far ((ε, δ) claims): the exact sum, rounded up."""
        return sum_up(e.additive_epsilon for e in self.events)

    def _check_additive(self, event: PrivacyEvent, name: str, attribute: str, reserved: float) -> None:
        """Refuse ``event`` if its additive ``name`` (δ, or ε of a claim) takes the total past ``reserved``."""
        cost = getattr(event, attribute)
        if not cost:
            return
        after = sum_up([*(getattr(e, attribute) for e in self.events), cost])
        if after > reserved:
            raise PrivacyAccountingError(
                f"mechanism {event.label or event.kind!r} would spend {name}={cost:.6g}, "
                f"bringing the total to {after:.6g} > reserved {name}={reserved:.6g}"
            )

    def spend(self, event: PrivacyEvent) -> None:
        """Record ``event``, or refuse it when it would spend more than was reserved."""
        if not (event.additive_epsilon >= 0 and event.delta >= 0):  # False for NaN too: never give budget back
            raise PrivacyAccountingError(
                f"mechanism {event.label or event.kind!r} has epsilon={event.additive_epsilon!r}, "
                f"delta={event.delta!r}: both must be >= 0"
            )
        after = sum_up([*(e.rho for e in self.events), event.rho])
        if after > self.reserved.rho:
            raise PrivacyAccountingError(
                f"mechanism {event.label or event.kind!r} would spend rho={event.rho:.6g}, "
                f"bringing the total to {after:.6g} > reserved rho={self.reserved.rho:.6g}"
            )
        self._check_additive(event, "delta", "delta", self.reserved_delta)
        self._check_additive(event, "epsilon", "additive_epsilon", self.reserved_epsilon)
        if event.rdp is not None:
            spent = self.spent_rdp
            after_rdp = event.rdp if spent is None else spent + event.rdp
            reserved = self.reserved_rdp
            slack = RDP(reserved.orders, tuple(e * (1.0 + _SLACK) for e in reserved.epsilons)) if reserved else None
            if slack is None or not after_rdp <= slack:
                raise PrivacyAccountingError(
                    f"mechanism {event.label or event.kind!r} would spend a Rényi-DP curve that, with what was "
                    "spent, exceeds the reserved curve" + ("" if reserved else " (none was reserved)")
                )
        self.events.append(event)
