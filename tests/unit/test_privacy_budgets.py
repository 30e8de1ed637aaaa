"""Typed budgets, the CKS20 conversion, and the odometer."""

from __future__ import annotations

import dataclasses
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dpsynth.exceptions import ParameterError, PrivacyAccountingError
from dpsynth.privacy import (
    ZCDP,
    ApproxDP,
    GaussianEvent,
    Odometer,
    approx_dp_to_rho,
    zcdp_delta,
    zcdp_epsilon,
)


def test_budgets_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        ApproxDP(1.0, 1e-6).epsilon = 2.0  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        ZCDP(0.1).rho = 0.2  # type: ignore[misc]


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda: ApproxDP(float("nan"), 1e-6), "epsilon (nan) must be a finite number >= 0"),
        (lambda: ApproxDP(-1.0, 1e-6), "epsilon (-1.0) must be a finite number >= 0"),
        (lambda: ApproxDP(float("inf"), 1e-6), "epsilon (inf) must be a finite number >= 0"),
        (lambda: ApproxDP(1.0, 1.0), "delta (1.0) must be in [0, 1)"),
        (lambda: ApproxDP(1.0, -0.1), "delta (-0.1) must be in [0, 1)"),
        (lambda: ApproxDP("1", 0.0), "epsilon ('1') must be a real number"),
        (lambda: ApproxDP(True, 0.0), "epsilon (True) must be a real number"),
        (lambda: ZCDP(-0.5), "rho (-0.5) must be a finite number >= 0"),
        (lambda: ZCDP(float("nan")), "rho (nan) must be a finite number >= 0"),
        (lambda: ZCDP(0.1).to_approx_dp(0.0), "delta (0.0) must be in the open interval (0, 1)"),
    ],
)
def test_validation_messages(make, message):
    with pytest.raises(ParameterError) as err:
        make()
    assert str(err.value) == message


def test_arithmetic_and_order():
    assert ZCDP(0.1) + ZCDP(0.2) == ZCDP(0.1 + 0.2)
    assert ApproxDP(1, 1e-6) + ApproxDP(0.5, 1e-7) == ApproxDP(1.5, 1e-6 + 1e-7)
    assert ZCDP(0.1) <= ZCDP(0.1) and ZCDP(0.1) < ZCDP(0.2) and not ZCDP(0.3) <= ZCDP(0.2)
    assert ApproxDP(1, 1e-6) <= ApproxDP(1, 1e-5)
    assert not ApproxDP(1, 1e-4) <= ApproxDP(2, 1e-5)  # δ larger: not within


@given(st.lists(st.floats(min_value=1e-3, max_value=1e3), min_size=1, max_size=12),
       st.floats(min_value=1e-6, max_value=10.0))
def test_split_never_exceeds_the_whole(weights, rho):
    parts = ZCDP(rho).split(weights)
    assert math.fsum(p.rho for p in parts) <= rho
    total = math.fsum(weights)
    for p, w in zip(parts, weights, strict=True):
        assert p.rho == pytest.approx(rho * w / total, rel=1e-9, abs=1e-15)


def test_known_conversion_values():
    # Canonne–Kamath–Steinke 2020 (as Private-PGM's cdp_rho): ρ for (ε=1, δ=1e-2) is 0.1034.
    assert round(approx_dp_to_rho(1.0, 1e-2), 4) == 0.1034
    assert ApproxDP(1.0, 1e-2).to_zcdp().rho == pytest.approx(0.10341, abs=1e-5)
    # Private-PGM's MST at (1, 1e-9) spends ρ ≈ 0.014973.
    assert approx_dp_to_rho(1.0, 1e-9) == pytest.approx(0.0149731, abs=1e-7)


@pytest.mark.parametrize("epsilon", [0.1, 0.5, 1.0, 3.0, 10.0])
@pytest.mark.parametrize("delta", [1e-2, 1e-6, 1e-9])
def test_round_trip_is_tight_and_safe(epsilon, delta):
    rho = approx_dp_to_rho(epsilon, delta)
    back = zcdp_epsilon(rho, delta)
    assert back <= epsilon * (1 + 1e-9)
    assert back == pytest.approx(epsilon, rel=1e-6)
    assert zcdp_delta(rho, epsilon) <= delta
    # Tighter than the classic ε = ρ + 2√(ρ log 1/δ) (Bun–Steinke 2016).
    assert back < rho + 2 * math.sqrt(rho * math.log(1 / delta))


@settings(max_examples=200, deadline=None)
@given(st.floats(min_value=1e-3, max_value=20.0), st.floats(min_value=1e-12, max_value=0.5))
def test_rho_calibration_never_overshoots(epsilon, delta):
    rho = approx_dp_to_rho(epsilon, delta)
    assert rho > 0
    assert zcdp_delta(rho, epsilon) <= delta


def test_zcdp_delta_is_monotone():
    assert zcdp_delta(0.1, 1.0) < zcdp_delta(0.2, 1.0)
    assert zcdp_delta(0.1, 1.0) > zcdp_delta(0.1, 2.0)
    assert zcdp_delta(0.0, 1.0) == 0.0


def test_odometer_refuses_overspending_and_records_nothing():
    odometer = Odometer(ZCDP(0.5))
    odometer.spend(GaussianEvent(scale=1.0, l2_sensitivity=1.0))  # ρ = 0.5
    with pytest.raises(PrivacyAccountingError, match="reserved rho=0.5"):
        odometer.spend(GaussianEvent(scale=100.0, l2_sensitivity=1.0, label="extra"))
    assert len(odometer.events) == 1 and odometer.spent == ZCDP(0.5)
