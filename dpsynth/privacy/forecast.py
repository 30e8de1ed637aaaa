"""How many more releases of one plan a dataset's cap allows: the budget over time of a series.

A refresh spends the same planned events every time (the fit and the DP checks of one plan). The
number of refreshes still affordable is the largest ``k`` such that what the ledger has spent plus
``k`` copies of those events passes the ledger's own cap check
(:func:`~dpsynth.privacy.overdraft.refuse_overdraft`): the same tight composition the ledger
enforces (zCDP ρ add up, Rényi-DP curves add order by order, additive δ and claims' ε add up), not
``ε × k``. :func:`spending_curve` gives the composed ε spent after each of those ``k``, for a plot.

Everything here reads the ledger's statement and the plan: public, and free.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from dpsynth.exceptions import BudgetExceededError
from dpsynth.privacy.budgets import RDP, ApproxDP
from dpsynth.privacy.events import PrivacyEvent
from dpsynth.privacy.ledger_charge import charged_costs
from dpsynth.privacy.overdraft import Account, refuse_overdraft, spent_epsilon

#: the most refreshes a forecast counts (a plan this cheap is affordable "at least" that often)
MAX_FORECAST = 100_000


def _times(x: float, k: int) -> float:
    """``x·k`` rounded up (a cost: never below the exact product)."""
    y = x * k
    return math.nextafter(y, math.inf) if y > 0 else 0.0


@dataclass(frozen=True)
class Costs:
    """What one release of a plan costs the ledger: ρ, additive δ, Rényi-DP curve and additive ε."""

    rho: float
    delta: float
    rdp: RDP | None
    epsilon: float

    @classmethod
    def of(cls, events: Sequence[PrivacyEvent]) -> Costs:
        """The costs the ledger charges for ``events`` (:func:`~dpsynth.privacy.ledger_charge.charged_costs`)."""
        rho, delta, rdp, epsilon = charged_costs(events)
        return cls(rho, delta, rdp, epsilon)

    def times(self, k: int) -> Costs:
        """The costs of ``k`` releases of the plan (each part rounded up)."""
        rdp = None if self.rdp is None else RDP(self.rdp.orders, tuple(_times(e, k) for e in self.rdp.epsilons))
        return Costs(_times(self.rho, k), _times(self.delta, k), rdp, _times(self.epsilon, k))


def fits(account: Account, costs: Costs, k: int) -> bool:
    """Whether ``k`` more releases of ``costs`` fit the cap beside what ``account`` has spent."""
    if k <= 0:
        return True
    more = costs.times(k)
    try:
        refuse_overdraft(account, more.rho, more.delta, ApproxDP(0.0, 0.0), more.rdp, more.epsilon)
    except BudgetExceededError:
        return False
    return True


def affordable(account: Account, events: Sequence[PrivacyEvent], *, limit: int = MAX_FORECAST) -> int:
    """The largest number of further releases of ``events`` the cap allows (at most ``limit``).

    Affordability is monotone in ``k`` (costs only grow), so it doubles then bisects.
    """
    costs = Costs.of(events)
    if not fits(account, costs, 1):
        return 0
    lo, hi = 1, 2
    while hi <= limit and fits(account, costs, hi):
        lo, hi = hi, hi * 2
    if hi > limit:
        return limit if fits(account, costs, limit) else _bisect(account, costs, lo, limit)
    return _bisect(account, costs, lo, hi)


def _bisect(account: Account, costs: Costs, lo: int, hi: int) -> int:
    """The largest k in [lo, hi) that fits, given that lo fits and hi does not."""
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if fits(account, costs, mid):
            lo = mid
        else:
            hi = mid
    return lo


def epsilon_after(account: Account, costs: Costs, k: int) -> float:
    """The composed ε spent (at the cap's δ) once ``k`` more releases of ``costs`` are spent."""
    more = costs.times(k)
    curves = [c for c in (account.rdp_spent, more.rdp) if c is not None]
    return spent_epsilon(account.rho_spent + more.rho, RDP.total(curves), account.cap.delta,
                         account.delta_spent + more.delta, account.epsilon_spent + more.epsilon)


def spending_curve(account: Account, events: Sequence[PrivacyEvent], upto: int, *,
                   points: int = 60) -> list[dict[str, float]]:
    """The composed ε spent after k = 0 … ``upto`` more releases of ``events`` (at most ``points``
    evenly spaced k, always 0 and ``upto``): ``[{"refreshes": k, "epsilon": ε}, …]``."""
    costs = Costs.of(events)
    upto = max(0, int(upto))
    ks = sorted({0, upto, *(round(i * upto / max(1, points - 1)) for i in range(points))})
    return [{"refreshes": int(k), "epsilon": float(epsilon_after(account, costs, k))} for k in ks if k <= upto]


__all__ = ["MAX_FORECAST", "Costs", "affordable", "epsilon_after", "fits", "spending_curve"]
