"""ρ is charged rounded up: every event's cost is at least OpenDP's own privacy map for the noise
actually drawn (and at least the exact cost), sums of ρ round up, and calibration still lands at
or below the target ρ after the rounding up.

Deterministic: a fixed grid plus draws from seeded generators (thousands of cases, a few seconds).
"""

from __future__ import annotations

import math
import random
from fractions import Fraction

import pytest

from dpsynth.exceptions import PrivacyAccountingError
from dpsynth.mechanisms import ExponentialSelection, GaussianCounts, OpenDPNoise, PartitionSelection
from dpsynth.privacy import ZCDP, ExponentialEvent, GaussianEvent, Odometer, PartitionSelectionEvent, total_rho
from dpsynth.privacy.accounting import (
    bounded_range_to_rho,
    gaussian_rho,
    noisy_max_rho,
    pure_dp_to_rho,
    round_up,
    sum_up,
)

GRID_SCALES = [0.1, 0.3, 0.7, 1.0, 1.1, 2.5, 3.0, 7.3, 10.0, 33.3, 100.0, 123.456, 1e3, 1e4]
GRID_SENSITIVITIES = [1, 2, 3, 5, 7, 10, 12, 100]
GRID_SELECTION_SENSITIVITIES = [0.1, 0.5, 1.0, 1.5, 3.0, 7.0, 10.0, 1e3]
GRID_EPSILONS = [1e-4, 1e-3, 0.01, 0.05, 0.1, 0.3, 0.7, 1.0, 2.0, 5.0, 10.0]
RANDOM_CASES = 2000


def ceiling(value: Fraction) -> float:
    """The smallest float >= value, found independently of round_up (by stepping from below)."""
    f = math.nextafter(float(value), -math.inf)
    while Fraction(f) < value:
        f = math.nextafter(f, math.inf)
    return f


def exact_gaussian(scale: float, l2: float) -> Fraction:
    return Fraction(l2) ** 2 / (2 * Fraction(scale) ** 2)


def gaussian_cases() -> list[tuple[float, int]]:
    rng = random.Random(20240615)
    cases = [(s, d) for s in GRID_SCALES for d in GRID_SENSITIVITIES]
    cases += [(10 ** rng.uniform(-2, 5), rng.choice([1, 2, 3, rng.randint(1, 1000)])) for _ in range(RANDOM_CASES)]
    return cases


def selection_cases() -> list[tuple[float, float]]:
    rng = random.Random(19700101)
    cases = [(e, d) for e in GRID_EPSILONS for d in GRID_SELECTION_SENSITIVITIES]
    cases += [(10 ** rng.uniform(-5, 1.5), rng.choice([1.0, rng.uniform(0.01, 100.0)])) for _ in range(RANDOM_CASES)]
    return cases


# --------------------------------------------------------------------------- each event vs OpenDP


def test_gaussian_event_rho_is_never_below_opendps_map_nor_the_exact_cost():
    below_opendp, not_ceiling = [], []
    for scale, l2 in gaussian_cases():
        rho = GaussianEvent(scale=scale, l2_sensitivity=l2).rho
        if rho < OpenDPNoise.gaussian_rho(scale, l2):
            below_opendp.append((scale, l2))
        if rho != ceiling(exact_gaussian(scale, l2)):  # the exact Δ²/(2σ²), rounded up once: no waste
            not_ceiling.append((scale, l2))
    assert below_opendp == [], f"{len(below_opendp)} cases below OpenDP's map, e.g. {below_opendp[:3]}"
    assert not_ceiling == [], f"{len(not_ceiling)} cases not the exact cost rounded up, e.g. {not_ceiling[:3]}"


def test_exponential_event_rho_is_never_below_opendps_map_for_the_scale_drawn():
    below_opendp, below_exact, wasteful = [], [], []
    for epsilon, sensitivity in selection_cases():
        mech = ExponentialSelection(epsilon=epsilon, sensitivity=sensitivity)
        event, scale = mech.event, mech.gumbel_scale  # the scale the noise is drawn with
        if event.rho < OpenDPNoise.noisy_max_rho(scale, sensitivity):
            below_opendp.append((epsilon, sensitivity))
        # exact: ε' = 2Δ / scale (the range of score changes over the scale), ρ = ε'²/8
        exact = (2 * Fraction(sensitivity) / Fraction(scale)) ** 2 / 8
        if Fraction(event.rho) < exact:
            below_exact.append((epsilon, sensitivity))
        if Fraction(event.rho) > exact * (1 + Fraction(1, 10**14)):
            wasteful.append((epsilon, sensitivity))
    assert below_opendp == [], f"{len(below_opendp)} cases below OpenDP's map, e.g. {below_opendp[:3]}"
    assert below_exact == [] and wasteful == []


def test_the_selection_draws_at_the_scale_its_cost_is_computed_for():
    for epsilon, sensitivity in selection_cases()[:200]:
        mech = ExponentialSelection(epsilon=epsilon, sensitivity=sensitivity)
        assert mech.gumbel_scale == mech.event.gumbel_scale == 2.0 * sensitivity / epsilon
        assert mech.event.rho == noisy_max_rho(mech.gumbel_scale, sensitivity)


def test_partition_selection_event_rho_is_the_exact_cost_rounded_up():
    rng = random.Random(7)
    cases = [(s, l0) for s in GRID_SCALES for l0 in (1, 2, 3, 4, 9, 14, 25, 100)]
    cases += [(10 ** rng.uniform(-1, 4), rng.randint(1, 500)) for _ in range(RANDOM_CASES)]
    for scale, l0 in cases:
        event = PartitionSelectionEvent(scale=scale, threshold=1, max_partitions=l0)
        assert event.rho == ceiling(Fraction(l0) / (2 * Fraction(scale) ** 2)), (scale, l0)
        root = math.isqrt(l0)
        if root * root == l0:  # Δ₂ = √L0 is an integer: OpenDP's Gaussian map applies as is
            assert event.rho >= OpenDPNoise.gaussian_rho(scale, root), (scale, l0)


def test_event_costs_at_the_edges():
    assert GaussianEvent(scale=3.0, l2_sensitivity=0).rho == 0.0
    assert GaussianEvent(scale=0.0, l2_sensitivity=1).rho == math.inf
    assert GaussianEvent(scale=math.inf, l2_sensitivity=1).rho == 0.0
    assert ExponentialEvent(epsilon=0.5, sensitivity=0.0).rho == 0.0
    assert ExponentialEvent(epsilon=0.0, sensitivity=1.0).rho == 0.0  # uniform choice
    huge = PartitionSelectionEvent(scale=1.0, threshold=1, max_partitions=2**60 + 1).rho  # an int is taken exactly
    assert huge == ceiling(Fraction(2**60 + 1, 2)) and huge > 2.0**59
    assert ExponentialEvent(epsilon=math.inf, sensitivity=1.0).rho == math.inf  # scale 0: no noise
    assert PartitionSelectionEvent(scale=2.0, threshold=1, max_partitions=0).rho == 0.0
    for bad in (math.nan, -1.0):
        with pytest.raises(ValueError, match=r"must be a number >= 0"):
            gaussian_rho(bad, 1.0)
        with pytest.raises(ValueError, match=r"must be a number >= 0"):
            noisy_max_rho(1.0, bad)
    # tiny and huge values stay on the safe side (no underflow to 0, overflow to infinity)
    assert gaussian_rho(1e200, 1.0) > 0 and Fraction(gaussian_rho(1e200, 1.0)) >= Fraction(1, 2) / Fraction(1e200) ** 2
    assert gaussian_rho(1e-200, 1.0) == math.inf


def test_closed_form_conversions_round_up():
    rng = random.Random(3)
    for epsilon in [rng.uniform(1e-4, 20.0) for _ in range(RANDOM_CASES)] + [0.1, 0.3, 1.0, 3.0]:
        assert bounded_range_to_rho(epsilon) == ceiling(Fraction(epsilon) ** 2 / 8)
        assert pure_dp_to_rho(epsilon) == ceiling(Fraction(epsilon) ** 2 / 2)


# --------------------------------------------------------------------------- rounding primitives


def test_round_up_is_the_smallest_float_at_or_above():
    rng = random.Random(11)
    for _ in range(RANDOM_CASES):
        value = Fraction(rng.randint(1, 10**30), rng.randint(1, 10**30)) * Fraction(10) ** rng.randint(-300, 300)
        up = round_up(value)
        assert Fraction(up) >= value and Fraction(math.nextafter(up, -math.inf)) < value
    assert round_up(Fraction(1, 2)) == 0.5  # exact values stay
    assert round_up(Fraction(1, 3)) == math.nextafter(1 / 3, math.inf)  # 1/3 rounds down to nearest
    assert round_up(Fraction(10) ** 400) == math.inf


def test_sum_up_is_the_exact_sum_rounded_up_in_any_order():
    rng = random.Random(12)
    for _ in range(RANDOM_CASES):
        values = [rng.uniform(0, 1) * 10 ** rng.randint(-20, 3) for _ in range(rng.randint(1, 40))]
        total = sum_up(values)
        assert total == ceiling(sum(map(Fraction, values), Fraction(0)))
        rng.shuffle(values)
        assert sum_up(values) == total
    assert sum_up([]) == 0.0
    assert sum_up([0.1, math.nan]) == math.inf  # an unknown cost is never read as a small one
    assert sum_up([0.1, math.inf]) == math.inf


def test_total_rho_and_the_odometer_sum_round_up():
    rng = random.Random(13)
    below = 0
    for _ in range(300):
        events = [GaussianEvent(scale=10 ** rng.uniform(-1, 3), l2_sensitivity=rng.choice([1, 2]))
                  for _ in range(rng.randint(2, 30))]
        exact = sum((Fraction(e.rho) for e in events), Fraction(0))
        assert total_rho(events) == ceiling(exact)
        below += math.fsum(e.rho for e in events) < exact  # what round-to-nearest would have charged
        odometer = Odometer(ZCDP(total_rho(events)))
        shuffled = events[:]
        rng.shuffle(shuffled)
        for e in shuffled:  # spending exactly the reserved events, in any order, fits without slack
            odometer.spend(e)
        assert odometer.spent.rho == total_rho(events)
    assert below > 0  # the grid does exercise sums whose nearest float is below the exact sum


def test_the_odometer_refuses_any_overdraft_however_small():
    events = [GaussianEvent(scale=3.0, l2_sensitivity=1), GaussianEvent(scale=7.0, l2_sensitivity=2)]
    odometer = Odometer(ZCDP(total_rho(events)))
    for e in events:
        odometer.spend(e)
    tiny = GaussianEvent(scale=1e7, l2_sensitivity=1)  # ρ = 5e-15, far below a relative 1e-12 of the total
    assert 0 < tiny.rho < 1e-12 * odometer.reserved.rho
    with pytest.raises(PrivacyAccountingError):
        odometer.spend(tiny)


# --------------------------------------------------------------------------- calibration (reverse direction)


def calibration_rhos() -> list[float]:
    rng = random.Random(424242)
    grid = [1e-12, 1e-9, 1e-6, 1e-5, 1e-4, 1e-3, 0.01, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0, 10.0, 1e3, 1e6]
    return grid + [10 ** rng.uniform(-12, 6) for _ in range(RANDOM_CASES)]


def test_gaussian_for_rho_costs_at_most_rho_after_rounding_up():
    rng = random.Random(5)
    for rho in calibration_rhos():
        l2 = rng.choice([1, 1, 2, 3, 5, 10, 100])
        mech = GaussianCounts.for_rho(rho, l2_sensitivity=l2)
        assert mech.rho <= rho, (rho, l2)
        assert OpenDPNoise.gaussian_rho(mech.scale, l2) <= rho, (rho, l2)
        assert mech.rho >= rho * (1 - 1e-8), (rho, l2)  # and not wastefully far below


def test_selection_for_rho_costs_at_most_rho_after_rounding_up():
    rng = random.Random(6)
    for rho in calibration_rhos():
        sensitivity = rng.choice([1.0, 0.5, 3.0, rng.uniform(0.01, 100.0)])
        mech = ExponentialSelection.for_rho(rho, sensitivity=sensitivity)
        assert mech.rho <= rho, (rho, sensitivity)
        assert OpenDPNoise.noisy_max_rho(mech.gumbel_scale, sensitivity) <= rho, (rho, sensitivity)
        assert mech.rho >= rho * (1 - 1e-8), (rho, sensitivity)


def test_partition_selection_calibration_costs_at_most_rho_after_rounding_up():
    rng = random.Random(8)
    for rho, l0 in [(0.1, 1), (0.5, 3), (1.0, 7), (2.0, 14), (0.3, 2), (1.7, 30)]:  # the threshold search is slow
        mech = PartitionSelection.calibrate(rho, 1e-7, max_partitions=l0)
        assert mech.scale == PartitionSelection.scale_for(rho, max_partitions=l0)
        assert mech.rho <= rho and mech.rho >= rho * (1 - 1e-8), (rho, l0)
    for rho in calibration_rhos():  # the calibration's scale over many more ρ
        l0 = rng.choice([1, 2, 3, 7, 14, 30, 500])
        event = PartitionSelectionEvent(scale=PartitionSelection.scale_for(rho, max_partitions=l0), threshold=1,
                                        max_partitions=l0)
        assert rho * (1 - 1e-8) <= event.rho <= rho, (rho, l0)
