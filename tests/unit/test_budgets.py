"""Budget values (ApproxDP, ZCDP), the CKS20 zCDP ↔ (ε, δ) conversion, and the odometer.

Nothing here is random except the Hypothesis property tests, which are deterministic checks of
an inequality over generated inputs (no statistical failure probability: a failure is a bug).
"""

from __future__ import annotations

import dataclasses
import math
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dpsynth.exceptions import ParameterError, PrivacyAccountingError
from dpsynth.privacy import (
    ZCDP,
    ApproxDP,
    ExponentialEvent,
    GaussianEvent,
    Odometer,
    approx_dp_to_rho,
    zcdp_delta,
    zcdp_epsilon,
)
from dpsynth.privacy.accounting import bounded_range_to_rho, pure_dp_to_rho


def raises_exactly(exc: type[Exception], message: str):
    """pytest.raises that matches the whole message, not a substring."""
    return pytest.raises(exc, match="^" + re.escape(message) + "$")


# --------------------------------------------------------------------------- frozen values


def test_approx_dp_is_frozen():
    budget = ApproxDP(1.0, 1e-6)
    with pytest.raises(dataclasses.FrozenInstanceError):
        budget.epsilon = 2.0  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        budget.delta = 0.0  # type: ignore[misc]
    assert budget == ApproxDP(1.0, 1e-6)


def test_zcdp_is_frozen():
    budget = ZCDP(0.5)
    with pytest.raises(dataclasses.FrozenInstanceError):
        budget.rho = 1.0  # type: ignore[misc]
    assert budget.rho == 0.5


def test_budgets_are_hashable_values():
    assert {ApproxDP(1.0, 1e-6), ApproxDP(1, 1e-6)} == {ApproxDP(1.0, 1e-6)}
    assert hash(ZCDP(0.25)) == hash(ZCDP(0.25))


def test_values_are_stored_as_floats():
    budget = ApproxDP(1, 0)
    assert type(budget.epsilon) is float and type(budget.delta) is float
    assert type(ZCDP(2).rho) is float


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: ApproxDP(float("nan"), 1e-6), "epsilon (nan) must be a finite number >= 0"),
        (lambda: ApproxDP(float("inf"), 1e-6), "epsilon (inf) must be a finite number >= 0"),
        (lambda: ApproxDP(-1.0, 1e-6), "epsilon (-1.0) must be a finite number >= 0"),
        (lambda: ApproxDP(-1, 1e-6), "epsilon (-1) must be a finite number >= 0"),
        (lambda: ApproxDP("1.0", 1e-6), "epsilon ('1.0') must be a real number"),
        (lambda: ApproxDP(True, 1e-6), "epsilon (True) must be a real number"),
        (lambda: ApproxDP(None, 1e-6), "epsilon (None) must be a real number"),
        (lambda: ApproxDP(1.0, 1.0), "delta (1.0) must be in [0, 1)"),
        (lambda: ApproxDP(1.0, 1.5), "delta (1.5) must be in [0, 1)"),
        (lambda: ApproxDP(1.0, -1e-9), "delta (-1e-09) must be in [0, 1)"),
        (lambda: ApproxDP(1.0, float("nan")), "delta (nan) must be in [0, 1)"),
        (lambda: ApproxDP(1.0, "0"), "delta ('0') must be a real number"),
        (lambda: ZCDP(float("nan")), "rho (nan) must be a finite number >= 0"),
        (lambda: ZCDP(-0.5), "rho (-0.5) must be a finite number >= 0"),
        (lambda: ZCDP(float("-inf")), "rho (-inf) must be a finite number >= 0"),
        (lambda: ZCDP(False), "rho (False) must be a real number"),
    ],
)
def test_invalid_budget_values_raise_parameter_error_with_exact_message(make, message):
    with raises_exactly(ParameterError, message):
        make()


def test_parameter_error_is_a_value_error():
    # Callers catching ValueError (the Python convention) still catch it.
    with pytest.raises(ValueError):
        ApproxDP(-1.0)


def test_boundary_values_are_accepted():
    assert ApproxDP(0.0, 0.0) == ApproxDP(0, 0)
    assert ApproxDP(1.0).delta == 0.0  # pure DP by default
    assert ApproxDP(1.0, 0.999999).delta == 0.999999
    assert ZCDP(0).rho == 0.0
    assert ApproxDP(np.float64(1.5), np.float32(0.25)).epsilon == 1.5  # numpy reals are real numbers


def test_conversions_validate_their_arguments():
    with raises_exactly(ParameterError, "delta (0) must be in the open interval (0, 1)"):
        ZCDP(0.1).to_approx_dp(0)
    with raises_exactly(ParameterError, "delta (1.0) must be in the open interval (0, 1)"):
        ZCDP(0.1).to_approx_dp(1.0)
    # ε-DP with δ = 0 has no finite ρ from this conversion; it must refuse, not return rho = 0 or inf.
    with raises_exactly(ParameterError, "delta (0.0) must be in the open interval (0, 1)"):
        ApproxDP(1.0, 0.0).to_zcdp()
    with raises_exactly(ParameterError, "epsilon (0.0) must be a finite number > 0"):
        ApproxDP(0.0, 1e-6).to_zcdp()


# --------------------------------------------------------------------------- algebra


def test_addition_composes():
    total = ApproxDP(1.0, 1e-6) + ApproxDP(0.5, 2e-6)
    assert total == ApproxDP(1.5, 3e-6)
    assert ZCDP(0.1) + ZCDP(0.25) == ZCDP(0.35)


def test_addition_across_kinds_is_a_type_error():
    with pytest.raises(TypeError):
        ApproxDP(1.0, 1e-6) + ZCDP(0.1)  # type: ignore[operator]
    with pytest.raises(TypeError):
        ZCDP(0.1) + 0.1  # type: ignore[operator]


def test_addition_past_delta_one_is_refused():
    with pytest.raises(ParameterError):
        ApproxDP(1.0, 0.6) + ApproxDP(1.0, 0.6)


def test_comparison_is_componentwise_for_approx_dp():
    small = ApproxDP(1.0, 1e-6)
    assert small <= ApproxDP(1.0, 1e-6)
    assert small <= ApproxDP(2.0, 1e-6)
    assert small <= ApproxDP(1.0, 1e-5)
    assert not ApproxDP(2.0, 1e-7) <= small  # more ε
    assert not ApproxDP(0.5, 1e-5) <= small  # more δ
    assert not small <= ApproxDP(0.5, 1e-5)  # incomparable both ways
    assert small < ApproxDP(2.0, 1e-6)
    assert not small < small


def test_comparison_for_zcdp():
    assert ZCDP(0.1) <= ZCDP(0.1)
    assert ZCDP(0.1) < ZCDP(0.2)
    assert not ZCDP(0.2) <= ZCDP(0.1)
    with pytest.raises(TypeError):
        ZCDP(0.1) <= ApproxDP(1.0)  # type: ignore[operator]  # noqa: B015


def test_split_is_proportional():
    parts = ApproxDP(1.0, 4e-6).split([1, 2, 1])
    assert [p.epsilon for p in parts] == pytest.approx([0.25, 0.5, 0.25], rel=1e-12)
    assert [p.delta for p in parts] == pytest.approx([1e-6, 2e-6, 1e-6], rel=1e-12)
    zparts = ZCDP(0.9).split([0.1, 0.3, 0.6])
    assert [p.rho for p in zparts] == pytest.approx([0.09, 0.27, 0.54], rel=1e-12)
    assert ZCDP(1.0).split([5]) == [ZCDP(1.0)]


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ([], "weights (()) must be a non-empty sequence"),
        ([1.0, -1.0], "weight (-1.0) must be a finite number > 0"),
        ([1.0, 0], "weight (0) must be a finite number > 0"),
        ([1.0, float("inf")], "weight (inf) must be a finite number > 0"),
    ],
)
def test_split_rejects_bad_weights(weights, message):
    with raises_exactly(ParameterError, message):
        ZCDP(1.0).split(weights)
    with raises_exactly(ParameterError, message):
        ApproxDP(1.0, 1e-6).split(weights)


@settings(max_examples=300, deadline=None)
@given(
    whole=st.floats(min_value=1e-6, max_value=100.0),
    delta=st.floats(min_value=0.0, max_value=0.5),
    weights=st.lists(st.floats(min_value=1e-3, max_value=1e3), min_size=1, max_size=8),
)
def test_split_parts_never_add_up_to_more_than_the_whole(whole, delta, weights):
    """Rounding must never make the parts of a split worth more than the budget they came from."""
    zparts = ZCDP(whole).split(weights)
    assert math.fsum(p.rho for p in zparts) <= whole
    aparts = ApproxDP(whole, delta).split(weights)
    assert math.fsum(p.epsilon for p in aparts) <= whole
    assert math.fsum(p.delta for p in aparts) <= delta
    # ... and they stay proportional (to within float rounding).
    total_w = math.fsum(weights)
    for z, a, w in zip(zparts, aparts, weights, strict=True):
        assert z.rho == pytest.approx(whole * w / total_w, rel=1e-9, abs=1e-300)
        assert a.epsilon == pytest.approx(whole * w / total_w, rel=1e-9, abs=1e-300)


# --------------------------------------------------------------------------- conversions


def test_known_value_approx_dp_to_rho():
    # Private-PGM's cdp_rho(1, 1e-2) and the CKS20 conversion give ρ ≈ 0.1034.
    assert round(approx_dp_to_rho(1.0, 1e-2), 4) == 0.1034
    assert ApproxDP(1.0, 1e-2).to_zcdp().rho == approx_dp_to_rho(1.0, 1e-2)


def test_closed_form_conversions():
    assert pure_dp_to_rho(1.0) == 0.5
    assert bounded_range_to_rho(2.0) == 0.5
    assert zcdp_delta(0.0, 1.0) == 0.0
    assert zcdp_epsilon(0.0, 1e-6) == 0.0


def _cks_delta_by_grid(rho: float, epsilon: float) -> float:
    """Independent evaluation of the CKS20 δ: the minimum over a dense grid of α in (1, ∞)."""
    alpha = 1.0 + np.logspace(-8, 6, 400_000)
    log_delta = (alpha - 1) * (alpha * rho - epsilon) + alpha * np.log1p(-1 / alpha) - np.log(alpha - 1)
    return float(min(1.0, np.exp(log_delta.min())))


@pytest.mark.parametrize("rho", [1e-4, 0.01, 0.1, 1.0, 5.0])
@pytest.mark.parametrize("epsilon", [0.05, 0.5, 1.0, 3.0, 10.0])
def test_zcdp_delta_matches_an_independent_grid_minimisation(rho, epsilon):
    """zcdp_delta is a valid δ (never below the true infimum) and (nearly) the optimal one."""
    grid = _cks_delta_by_grid(rho, epsilon)
    got = zcdp_delta(rho, epsilon)
    # The grid minimum is itself ≥ the infimum, so `got` must not be far below it, and the
    # bisection optimum must be at least as good as the grid.
    assert got <= grid * (1 + 1e-9) + 1e-300
    assert got >= grid * (1 - 1e-6)


def test_zcdp_delta_is_monotone():
    eps = np.linspace(0.01, 5, 50)
    deltas = [zcdp_delta(0.1, e) for e in eps]
    assert all(a >= b for a, b in zip(deltas, deltas[1:], strict=False))
    rhos = np.linspace(0.001, 2, 50)
    deltas = [zcdp_delta(r, 1.0) for r in rhos]
    assert all(a <= b for a, b in zip(deltas, deltas[1:], strict=False))


EPSILONS = [0.01, 0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0]
DELTAS = [1e-12, 1e-9, 1e-6, 1e-3, 1e-2, 0.1]


@pytest.mark.parametrize("delta", DELTAS)
@pytest.mark.parametrize("epsilon", EPSILONS)
def test_round_trip_epsilon_rho_epsilon(epsilon, delta):
    rho = approx_dp_to_rho(epsilon, delta)
    assert rho > 0
    back = zcdp_epsilon(rho, delta)
    assert back <= epsilon * (1 + 1e-9)  # never more than the target
    assert back == pytest.approx(epsilon, rel=1e-6)  # and the rho is not needlessly small
    # The ε reported for that ρ really holds at δ.
    assert zcdp_delta(rho, back) <= delta


@pytest.mark.parametrize("delta", DELTAS)
@pytest.mark.parametrize("rho", [1e-5, 1e-3, 0.05, 0.5, 2.0, 20.0])
def test_zcdp_epsilon_holds_and_is_tight(rho, delta):
    epsilon = zcdp_epsilon(rho, delta)
    assert zcdp_delta(rho, epsilon) <= delta
    if zcdp_delta(rho, 0.0) <= delta:
        # Tiny ρ at a large δ: ε = 0 already holds, and the answer must be (essentially) 0.
        assert epsilon < 1e-12
    else:
        # A slightly smaller ε would not hold: the answer is (nearly) the smallest.
        assert zcdp_delta(rho, epsilon * (1 - 1e-6)) > delta
    assert ZCDP(rho).to_approx_dp(delta) == ApproxDP(epsilon, delta)


@pytest.mark.parametrize("delta", DELTAS)
@pytest.mark.parametrize("rho", [1e-5, 1e-3, 0.05, 0.5, 2.0, 20.0])
def test_cks_is_at_least_as_tight_as_the_classic_bound(rho, delta):
    """Bun–Steinke: ε = ρ + 2√(ρ log 1/δ). CKS20 Corollary 13 is strictly better for δ < 1/e."""
    classic = rho + 2 * math.sqrt(rho * math.log(1 / delta))
    cks = zcdp_epsilon(rho, delta)
    assert cks <= classic
    assert cks < classic * (1 - 1e-4)
    # Equivalently, the ρ allowed for a target (ε, δ) is at least the classic one.
    classic_rho = (math.sqrt(math.log(1 / delta) + classic) - math.sqrt(math.log(1 / delta))) ** 2
    assert classic_rho == pytest.approx(rho, rel=1e-9)
    assert approx_dp_to_rho(classic, delta) >= classic_rho


def test_conversion_argument_checks():
    with pytest.raises(ValueError):
        approx_dp_to_rho(1.0, 0.0)
    with pytest.raises(ValueError):
        approx_dp_to_rho(0.0, 1e-6)
    with pytest.raises(ValueError):
        zcdp_epsilon(0.1, 1.0)
    with pytest.raises(ValueError):
        zcdp_delta(-0.1, 1.0)
    with pytest.raises(ValueError):
        zcdp_delta(0.1, float("nan"))


@settings(max_examples=150, deadline=None)
@given(
    epsilon=st.floats(min_value=1e-3, max_value=50.0),
    log10_delta=st.floats(min_value=-15.0, max_value=-0.31),
)
def test_approx_dp_to_rho_never_overshoots(epsilon, log10_delta):
    """The ρ returned for (ε, δ) always satisfies (ε, δ)-DP under the CKS20 conversion."""
    delta = 10.0**log10_delta
    rho = approx_dp_to_rho(epsilon, delta)
    assert 0 < rho <= epsilon + 1
    assert zcdp_delta(rho, epsilon) <= delta
    assert zcdp_epsilon(rho, delta) <= epsilon * (1 + 1e-9)
    # Not needlessly conservative either: a ρ 1e-6 larger no longer fits.
    assert zcdp_delta(rho * (1 + 1e-6), epsilon) > delta


# --------------------------------------------------------------------------- odometer


def gaussian_event(rho: float, label: str = "q") -> GaussianEvent:
    event = GaussianEvent(scale=1.0 / math.sqrt(2.0 * rho), l2_sensitivity=1.0, label=label)
    assert event.rho == pytest.approx(rho, rel=1e-12)
    return event


def test_odometer_records_what_is_spent():
    odometer = Odometer(ZCDP(0.3))
    assert odometer.spent == ZCDP(0.0)
    first, second = gaussian_event(0.1, "a"), ExponentialEvent(epsilon=math.sqrt(0.8), sensitivity=1.0, label="b")
    odometer.spend(first)
    odometer.spend(second)
    assert odometer.events == [first, second]
    assert odometer.spent.rho == pytest.approx(0.2, rel=1e-12)


def test_odometer_may_spend_exactly_the_reservation():
    odometer = Odometer(ZCDP(0.3))
    for _ in range(3):
        odometer.spend(gaussian_event(0.1))
    assert odometer.spent.rho == pytest.approx(0.3, rel=1e-12)


def test_spending_past_the_reservation_raises_and_records_nothing():
    odometer = Odometer(ZCDP(0.25))
    odometer.spend(gaussian_event(0.1, "first"))
    odometer.spend(gaussian_event(0.1, "second"))
    before_events, before_spent = list(odometer.events), odometer.spent
    with pytest.raises(PrivacyAccountingError, match="'third'") as info:
        odometer.spend(gaussian_event(0.1, "third"))
    assert "0.3" in str(info.value) and "0.25" in str(info.value)  # both numbers in the message
    assert odometer.events == before_events
    assert odometer.spent == before_spent
    # A refused spend does not use up what is still left.
    odometer.spend(gaussian_event(0.05, "fits"))
    assert odometer.spent.rho == pytest.approx(0.25, rel=1e-12)


def test_a_single_event_larger_than_the_reservation_is_refused():
    odometer = Odometer(ZCDP(0.01))
    with pytest.raises(PrivacyAccountingError):
        odometer.spend(gaussian_event(0.011))
    assert odometer.events == []
    assert odometer.spent == ZCDP(0.0)


def test_odometer_refuses_any_overdraft():
    # sums of ρ are exact and rounded up (order-independent): no slack, so 1e-9 over is an overdraft.
    odometer = Odometer(ZCDP(0.1))
    with pytest.raises(PrivacyAccountingError):
        odometer.spend(gaussian_event(0.1 * (1 + 1e-9)))


def test_privacy_accounting_error_is_not_a_user_error():
    from dpsynth.exceptions import DPSynthError

    assert not issubclass(PrivacyAccountingError, DPSynthError)


# --------------------------------------------------------------------------- additive δ (thresholding)


def test_odometer_tracks_the_additive_delta_of_thresholding_events():
    from dpsynth.privacy import PartitionSelectionEvent

    event = PartitionSelectionEvent(scale=3.0, threshold=12, max_partitions=2, label="levels")
    assert event.delta > 0 and gaussian_event(0.1).delta == 0.0
    odometer = Odometer(ZCDP(1.0), 2.5 * event.delta)
    odometer.spend(event)
    odometer.spend(gaussian_event(0.1))
    odometer.spend(event)
    assert odometer.spent_delta == pytest.approx(2 * event.delta, rel=1e-12)
    with pytest.raises(PrivacyAccountingError, match="'levels' would spend delta="):
        odometer.spend(event)
    assert len(odometer.events) == 3
    # a reservation without δ refuses any thresholding event
    with pytest.raises(PrivacyAccountingError, match="reserved delta=0"):
        Odometer(ZCDP(1.0)).spend(event)


def test_rho_and_epsilon_within_a_budget_with_additive_delta():
    from dpsynth.privacy.accounting import epsilon_within, rho_within, thresholding_delta

    assert rho_within(1.0, 1e-6, 0.0) == approx_dp_to_rho(1.0, 1e-6)
    assert rho_within(1.0, 1e-6, 4e-7) == approx_dp_to_rho(1.0, 1e-6 - thresholding_delta(4e-7))
    assert rho_within(1.0, 1e-6, 4e-7) < rho_within(1.0, 1e-6, 0.0)
    assert rho_within(1.0, 1e-6, 1e-6) == 0.0
    rho = rho_within(1.0, 1e-6, 4e-7)
    assert epsilon_within(rho, 1e-6, 4e-7) <= 1.0 + 1e-9
    assert epsilon_within(0.1, 1e-6, 2e-6) == math.inf


# -- Rényi DP ---------------------------------------------------------------------------------------


def test_rdp_conversion_matches_opacus_and_is_never_below_it():
    pytest.importorskip("opacus")
    from opacus.accountants.analysis.rdp import compute_rdp, get_privacy_spent

    from dpsynth.privacy.accounting import RDP_ORDERS, rdp_epsilon

    for q, sigma, steps, delta in [(0.01, 1.1, 1000, 1e-5), (0.1, 2.0, 10, 1e-9), (1.0, 5.0, 3, 1e-6)]:
        curve = compute_rdp(q=q, noise_multiplier=sigma, steps=steps, orders=list(RDP_ORDERS))
        theirs, _ = get_privacy_spent(orders=list(RDP_ORDERS), rdp=curve, delta=delta)
        ours = rdp_epsilon(RDP_ORDERS, list(curve), delta)
        assert theirs <= ours <= theirs * (1 + 1e-9) + 1e-15


def test_zcdp_as_a_curve_converts_no_tighter_than_cks20():
    from dpsynth.privacy.accounting import RDP_ORDERS, composed_epsilon, zcdp_epsilon
    from dpsynth.privacy.budgets import RDP

    for rho, delta in [(0.01, 1e-9), (0.5, 1e-6), (3.0, 1e-5)]:
        continuous = zcdp_epsilon(rho, delta)
        on_grid = RDP.from_zcdp(rho).epsilon(delta)
        assert continuous <= on_grid <= continuous * 1.01
        zero = tuple(0.0 for _ in RDP_ORDERS)
        assert composed_epsilon(rho, RDP_ORDERS, zero, delta) == pytest.approx(on_grid, rel=1e-9)
        assert composed_epsilon(rho, RDP_ORDERS, None, delta) == continuous  # pure zCDP keeps CKS20


def test_rdp_values_validate_and_add_on_common_orders():
    from dpsynth.exceptions import ParameterError
    from dpsynth.privacy.budgets import RDP

    a = RDP((2.0, 4.0, 8.0), (0.1, 0.2, 0.4))
    b = RDP((4.0, 8.0, 16.0), (1.0, 1.0, 1.0))
    assert (a + b).orders == (4.0, 8.0) and (a + b).epsilons[0] >= 1.2
    assert RDP((2.0,), (float("inf"),)).epsilons == (1e300,)
    for orders, values in [((1.0,), (0.1,)), ((2.0, 2.0), (0.1, 0.1)), ((2.0,), (-1.0,)), ((), ())]:
        with pytest.raises(ParameterError):
            RDP(orders, values)
