"""The budget forecast of a series (``dpsynth.privacy.forecast``) against the ledger itself.

The number of further releases of one plan that a cap allows must be exactly what the ledger
would accept, reservation after reservation: the ledger's own tight composition (zCDP ρ, Rényi
curves, additive δ of thresholding, claims' ε), never ε × k. Deterministic.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dpsynth.exceptions import BudgetExceededError
from dpsynth.privacy.accounting import RDP_ORDERS
from dpsynth.privacy.budgets import ApproxDP
from dpsynth.privacy.events import (
    ApproxDPEvent,
    GaussianEvent,
    PartitionSelectionEvent,
    PrivacyEvent,
    SubsampledGaussianEvent,
)
from dpsynth.privacy.forecast import Costs, affordable, epsilon_after, spending_curve
from dpsynth.privacy.ledger import Ledger

ZCDP = [GaussianEvent(scale=30.0, l2_sensitivity=1.0), GaussianEvent(scale=12.0, l2_sensitivity=2.0)]
#: a DP-SGD curve: the subsampled Gaussian's ε_α grows like α/σ² for small q (a stand-in, monotone)
RDP_EVENT = SubsampledGaussianEvent(noise_multiplier=2.0, sample_rate=0.01, steps=500, orders=RDP_ORDERS,
                                    rdp_values=tuple(500 * 0.01**2 * a / 2.0**2 * 2 for a in RDP_ORDERS))
THRESHOLD = PartitionSelectionEvent(scale=8.0, threshold=60, max_partitions=3)
CLAIM = ApproxDPEvent(epsilon=0.3, epsilon_delta=1e-9)

PLANS = {
    "zcdp": ZCDP,
    "zcdp_and_thresholding": [*ZCDP, THRESHOLD],
    "rdp": [RDP_EVENT, GaussianEvent(scale=40.0, l2_sensitivity=1.0)],
    "claim": [CLAIM],
    "claim_and_zcdp": [CLAIM, *ZCDP],
}


def _ledger(tmp_path: Path, epsilon: float, delta: float = 1e-6) -> Ledger:
    led = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}", create=True)
    led.create_dataset("d", ApproxDP(epsilon, delta))
    return led


def _accepted(led: Ledger, events: list[PrivacyEvent], most: int) -> int:
    """How many reservations of ``events`` the ledger accepts in a row (at most ``most``)."""
    for k in range(most):
        try:
            led.reserve("d", events, synthesizer="test", claimed=ApproxDP(1.0, 1e-9)).complete()
        except BudgetExceededError:
            return k
    return most


@pytest.mark.parametrize("name", sorted(PLANS))
def test_the_forecast_is_what_the_ledger_accepts(tmp_path: Path, name: str) -> None:
    events = PLANS[name]
    led = _ledger(tmp_path, epsilon=3.0)
    led.reserve("d", ZCDP, synthesizer="earlier", claimed=ApproxDP(0.5, 1e-9)).complete()  # something spent
    account = led.check("d", [], claimed=ApproxDP(0.0, 0.0))
    forecast = affordable(account, events)
    assert 1 <= forecast <= 60, forecast  # a plan this size: a handful to dozens of refreshes
    assert _accepted(led, events, forecast + 2) == forecast


def test_tight_not_linear(tmp_path: Path) -> None:
    """zCDP composes sublinearly in ε: the forecast beats ε_cap / ε_one, the plain sum's answer."""
    led = _ledger(tmp_path, epsilon=4.0)
    account = led.check("d", [], claimed=ApproxDP(0.0, 0.0))
    one = epsilon_after(account, Costs.of(ZCDP), 1)
    assert affordable(account, ZCDP) > int(4.0 / one)


def test_the_curve_starts_at_what_is_spent_and_stays_under_the_cap(tmp_path: Path) -> None:
    led = _ledger(tmp_path, epsilon=3.0)
    led.reserve("d", ZCDP, synthesizer="earlier", claimed=ApproxDP(0.5, 1e-9)).complete()
    account = led.check("d", [], claimed=ApproxDP(0.0, 0.0))
    left = affordable(account, ZCDP)
    curve = spending_curve(account, ZCDP, left, points=10)
    assert curve[0] == {"refreshes": 0, "epsilon": pytest.approx(led.statement("d").epsilon_spent_tight)}
    assert curve[-1]["refreshes"] == left and curve[-1]["epsilon"] <= 3.0
    assert epsilon_after(account, Costs.of(ZCDP), left + 1) > 3.0
    values = [p["epsilon"] for p in curve]
    assert values == sorted(values) and len(curve) <= 10


def test_nothing_fits(tmp_path: Path) -> None:
    led = _ledger(tmp_path, epsilon=0.05)
    account = led.check("d", [], claimed=ApproxDP(0.0, 0.0))
    assert affordable(account, ZCDP) == 0
    assert spending_curve(account, ZCDP, 0) == [{"refreshes": 0, "epsilon": 0.0}]


def test_a_plan_too_cheap_to_count_is_capped(tmp_path: Path) -> None:
    led = _ledger(tmp_path, epsilon=50.0)
    account = led.check("d", [], claimed=ApproxDP(0.0, 0.0))
    assert affordable(account, [GaussianEvent(scale=1e4, l2_sensitivity=1.0)], limit=1000) == 1000
