"""(ε, δ) claims of plug-in generators (ApproxDPEvent): charged whole, composed by basic composition.

A claim's ε adds to the conversion of everything else; its δ joins the additive δ. The expected
figures here are computed independently of dpsynth's accounting: the CKS20 conversion by a
numerical minimisation over the Rényi order (scipy), the RDP conversion by its closed form at each
order, sums of claims by hand.
"""

from __future__ import annotations

import math
import warnings

import pytest
from scipy.optimize import brentq, minimize_scalar

from dpsynth.exceptions import BudgetExceededError, ParameterError, PrivacyAccountingError
from dpsynth.privacy import (
    ZCDP,
    ApproxDP,
    ApproxDPEvent,
    GaussianEvent,
    Odometer,
    PartitionSelectionEvent,
    total_epsilon,
)
from dpsynth.privacy.accounting import RDP_ORDERS, epsilon_left, total_epsilon_within
from dpsynth.privacy.events import SubsampledGaussianEvent
from dpsynth.privacy.ledger import (
    UNTRACKED,
    Ledger,
    LedgerError,
    Reservation,
    UntrackedPrivacyWarning,
    charged_costs,
)


def cks_epsilon(rho: float, delta: float) -> float:
    """ε of ρ-zCDP at δ (Canonne, Kamath and Steinke 2020, Corollary 13), minimised numerically:
    ε = inf_α αρ + (log(1/δ) − log α)/(α − 1) + log(1 − 1/α)."""
    def at(t: float) -> float:  # α = 1 + e^t
        alpha = 1.0 + math.exp(t)
        return alpha * rho + (math.log(1.0 / delta) - math.log(alpha)) / (alpha - 1.0) + math.log1p(-1.0 / alpha)

    best = minimize_scalar(at, bounds=(-30.0, 30.0), method="bounded", options={"xatol": 1e-12})
    return float(best.fun)


def cks_rho(epsilon: float, delta: float) -> float:
    """The ρ whose CKS20 conversion at δ is ε (the inverse of cks_epsilon)."""
    return float(brentq(lambda r: cks_epsilon(r, delta) - epsilon, 1e-12, epsilon, xtol=1e-15, rtol=1e-13))


def thr(p: float) -> float:
    """The share of δ that an additive δ p takes: p/(1 − p)."""
    return p / (1.0 - p)


def gaussian(rho: float, label: str = "g") -> GaussianEvent:
    """A Gaussian event of ρ close to ``rho`` (Δ = 1, σ = 1/√(2ρ))."""
    return GaussianEvent(scale=1.0 / math.sqrt(2.0 * rho), l2_sensitivity=1.0, label=label)


@pytest.fixture
def ledger(tmp_path) -> Ledger:
    return Ledger(f"sqlite:///{tmp_path / 'ledger.db'}", create=True)


def test_the_event_costs_its_claim_and_nothing_else():
    e = ApproxDPEvent(0.6, 1e-7, label="plugin")
    assert (e.rho, e.delta, e.additive_epsilon, e.rdp) == (0.0, 1e-7, 0.6, None)
    assert gaussian(0.1).additive_epsilon == 0.0
    assert e.to_dict() == {"kind": "approx_dp", "epsilon": 0.6, "epsilon_delta": 1e-7, "label": "plugin",
                           "rho": 0.0, "delta": 1e-7}
    assert total_epsilon([e, gaussian(0.1)]) >= 0.6
    # the ledger charges a claim at exactly its ε and δ (a claim equal to the cap fits)
    rho, delta, curve, epsilon = charged_costs([e])
    assert (rho, delta, curve, epsilon) == (0.0, 1e-7, None, 0.6)
    rho, delta, curve, epsilon = charged_costs([e, ApproxDPEvent(0.4, 9e-7), gaussian(0.02)])
    assert epsilon == 1.0 and delta == 1e-6 and rho == gaussian(0.02).rho and curve is None


def _unchecked(epsilon: float, delta: float) -> ApproxDPEvent:
    """An event built past its own validation (as a pickled or hand-made one could be)."""
    event = object.__new__(ApproxDPEvent)
    for name, value in (("epsilon", epsilon), ("epsilon_delta", delta), ("label", "")):
        object.__setattr__(event, name, value)
    return event


@pytest.mark.parametrize("eps, delta", [(-0.5, 1e-7), (0.5, -1e-7), (math.nan, 0.0), (0.5, math.nan)])
def test_a_claim_that_would_give_budget_back_is_refused(ledger, eps, delta):
    with pytest.raises(ParameterError, match="of an .ε, δ. claim must be a finite number >= 0"):
        ApproxDPEvent(eps, delta)
    bad = _unchecked(eps, delta)  # and the ledger and the odometer refuse it anyway
    ledger.create_dataset("d", ApproxDP(1.0, 1e-6))
    with pytest.raises(ParameterError, match="must have epsilon >= 0 and delta >= 0"):
        ledger.reserve("d", [bad], synthesizer="plugin", claimed=ApproxDP(1.0, 1e-7))
    with pytest.raises(PrivacyAccountingError, match="both must be >= 0"):
        Odometer(ZCDP(1.0), 1e-6, None, 1.0).spend(bad)
    assert ledger.verify().entries == 1


def test_claims_alone_add_up(ledger):
    ledger.create_dataset("d", ApproxDP(1.0, 1e-6))
    ledger.reserve("d", [ApproxDPEvent(0.25, 1e-7)], synthesizer="plugin", claimed=ApproxDP(0.25, 1e-7)).complete()
    ledger.reserve("d", [ApproxDPEvent(0.5, 3e-7)], synthesizer="plugin", claimed=ApproxDP(0.5, 3e-7)).complete()
    st = ledger.statement("d")
    assert st.epsilon_additive_spent == 0.75 and st.delta_spent == pytest.approx(4e-7, rel=1e-15)
    assert st.rho_spent == 0.0 and st.epsilon_spent_tight == 0.75  # basic composition, nothing to convert
    assert st.epsilon_spent_plain_sum == 0.75 and st.delta_spent_plain_sum == pytest.approx(4e-7)
    assert [r.additive_epsilon for r in st.reservations] == [0.25, 0.5]
    # what is left: ε 0.25 for a further claim; for zCDP, the ρ that converts to 0.25 at δ less the claims' δ
    assert st.epsilon_additive_remaining == 0.25
    assert st.rho_remaining == pytest.approx(cks_rho(0.25, 1e-6 - thr(4e-7)), rel=1e-6)
    assert st.rho_cap == st.rho_remaining
    report = st.to_dict()
    assert report["spent"]["additive_epsilon"] == 0.75 and report["spent"]["epsilon_tight"] == 0.75
    assert report["remaining"]["additive_epsilon"] == 0.25 and report["cap"]["rho"] == st.rho_cap
    assert report["entries"][0]["additive_epsilon"] == 0.25
    assert report["entries"][0]["events"] == [ApproxDPEvent(0.25, 1e-7).to_dict()]


def test_a_claim_equal_to_the_cap_fits_and_then_nothing_more(ledger):
    ledger.create_dataset("d", ApproxDP(1.0, 1e-6))
    ledger.reserve("d", [ApproxDPEvent(0.5, 5e-7)], synthesizer="plugin", claimed=ApproxDP(0.5, 5e-7))
    ledger.reserve("d", [ApproxDPEvent(0.5, 5e-7)], synthesizer="plugin", claimed=ApproxDP(0.5, 5e-7))
    st = ledger.statement("d")
    assert st.epsilon_spent_tight == 1.0 and st.rho_remaining == 0.0 and st.epsilon_additive_remaining == 0.0
    for events in ([ApproxDPEvent(1e-9, 0.0)], [gaussian(1e-9)], [ApproxDPEvent(0.0, 1e-12)]):
        with pytest.raises(BudgetExceededError):
            ledger.reserve("d", events, synthesizer="plugin", claimed=ApproxDP(0.1, 1e-7))
    # the δ alone: a claim that fits in ε but not in δ
    ledger.create_dataset("e", ApproxDP(1.0, 1e-6))
    ledger.reserve("e", [ApproxDPEvent(0.1, 1e-6)], synthesizer="plugin", claimed=ApproxDP(0.1, 1e-6))
    with pytest.raises(BudgetExceededError, match="additive delta=1e-06"):
        ledger.reserve("e", [ApproxDPEvent(0.1, 1e-9)], synthesizer="plugin", claimed=ApproxDP(0.1, 1e-9))
    assert ledger.verify().entries == 5


def test_a_claim_overdraft_is_refused_with_both_numbers_before_anything_is_written(ledger):
    ledger.create_dataset("d", ApproxDP(1.0, 1e-6))
    ledger.reserve("d", [ApproxDPEvent(0.6, 1e-7)], synthesizer="plugin", claimed=ApproxDP(0.6, 1e-7)).complete()
    before = ledger.verify().entries
    with pytest.raises(BudgetExceededError) as err:
        ledger.reserve("d", [ApproxDPEvent(0.6, 1e-7)], synthesizer="plugin", claimed=ApproxDP(0.6, 1e-7))
    message = str(err.value)
    assert "requested epsilon=0.6 at delta=1e-06" in message and "remaining epsilon=0.4 of dataset 'd'" in message
    assert "the total would be epsilon=1.2" in message
    assert err.value.requested == 0.6 and err.value.remaining == pytest.approx(0.4, abs=1e-15)
    with pytest.raises(BudgetExceededError):
        ledger.check("d", [ApproxDPEvent(0.6, 1e-7)], claimed=ApproxDP(0.6, 1e-7))
    assert ledger.verify().entries == before and len(ledger.statement("d").reservations) == 1


def test_a_claim_mixed_with_gaussian_events_composes_by_basic_composition(ledger):
    ledger.create_dataset("d", ApproxDP(5.0, 1e-6))
    g = GaussianEvent(scale=5.0, l2_sensitivity=1.0)  # ρ = 1/50
    assert g.rho == 0.02
    ledger.reserve("d", [g, g], synthesizer="mst", claimed=ApproxDP(1.0, 1e-6)).complete()
    ledger.reserve("d", [ApproxDPEvent(0.5, 1e-7)], synthesizer="plugin", claimed=ApproxDP(0.5, 1e-7)).complete()
    # one reservation holding both kinds
    ledger.reserve("d", [ApproxDPEvent(0.25, 2e-7), g], synthesizer="plugin", claimed=ApproxDP(0.5, 2e-7)).complete()
    st = ledger.statement("d")
    rho, claims_eps, claims_delta = 0.06, 0.75, 3e-7
    assert st.rho_spent == pytest.approx(rho, rel=1e-15) and st.epsilon_additive_spent == claims_eps
    expected = claims_eps + cks_epsilon(rho, 1e-6 - thr(claims_delta))
    assert st.epsilon_spent_tight == pytest.approx(expected, rel=1e-7)
    assert st.epsilon_spent_tight >= expected - 1e-9  # never below the true figure
    assert st.epsilon_spent_plain_sum == pytest.approx(2.0)
    assert st.rho_remaining == pytest.approx(cks_rho(5.0 - claims_eps, 1e-6 - thr(claims_delta)) - rho, rel=1e-6)
    assert st.epsilon_additive_remaining == pytest.approx(5.0 - expected, rel=1e-7)
    # a Gaussian request that the cap alone would hold but not beside the claims is refused in ε
    request = gaussian(cks_rho(4.0, 1e-6))
    assert request.rho + rho < cks_rho(5.0, 1e-6)
    with pytest.raises(BudgetExceededError) as err:
        ledger.reserve("d", [request], synthesizer="mst", claimed=ApproxDP(4.0, 1e-6))
    assert f"rho={request.rho:.6g}" in str(err.value) and "remaining epsilon=" in str(err.value)
    assert err.value.remaining == pytest.approx(5.0 - expected, rel=1e-7)
    # and one that fits beside them is reserved
    ledger.reserve("d", [gaussian(0.9 * st.rho_remaining)], synthesizer="mst", claimed=ApproxDP(1.0, 1e-6))
    assert ledger.verify().ok


def test_a_claim_with_thresholding_and_a_renyi_curve(ledger):
    ledger.create_dataset("d", ApproxDP(5.0, 1e-6))
    levels = PartitionSelectionEvent(scale=3.0, threshold=17, max_partitions=2, label="levels")
    assert 1e-8 < levels.delta < 1e-7
    sigma = 3.0
    curve = SubsampledGaussianEvent(noise_multiplier=sigma, sample_rate=1.0, steps=1, orders=RDP_ORDERS,
                                    rdp_values=tuple(a / (2 * sigma**2) for a in RDP_ORDERS), label="dp_sgd")
    ledger.reserve("d", [levels], synthesizer="schema_infer", claimed=ApproxDP(0.5, 1e-7))
    ledger.reserve("d", [ApproxDPEvent(0.3, 2e-7)], synthesizer="plugin", claimed=ApproxDP(0.3, 2e-7))
    ledger.reserve("d", [curve], synthesizer="dpvae", claimed=ApproxDP(1.0, 1e-6))
    st = ledger.statement("d")
    assert st.composition == "rdp"
    rest = 1e-6 - thr(levels.delta + 2e-7)
    # Balle et al. 2020, Theorem 21 at each order of the curve ρα + α/(2σ²)
    best = min(levels.rho * a + a / (2 * sigma**2) + math.log1p(-1 / a) - (math.log(rest) + math.log(a)) / (a - 1)
               for a in RDP_ORDERS)
    assert st.epsilon_spent_tight == pytest.approx(0.3 + best, rel=1e-9)
    assert st.epsilon_spent_tight >= 0.3 + best


def test_set_cap_counts_the_claims(ledger):
    ledger.create_dataset("d", ApproxDP(1.0, 1e-6))
    ledger.reserve("d", [ApproxDPEvent(0.6, 5e-7), gaussian(0.001)], synthesizer="plugin",
                   claimed=ApproxDP(1.0, 1e-6))
    spent = ledger.statement("d").epsilon_spent_tight
    with pytest.raises(LedgerError, match="additive epsilon=0.6"):
        ledger.set_cap("d", ApproxDP(0.6, 1e-6), reason="tighten below the claim")
    with pytest.raises(LedgerError, match="below what dataset 'd' has already spent"):
        ledger.set_cap("d", ApproxDP(1.0, 4e-7), reason="δ below the claim's")
    ledger.set_cap("d", ApproxDP(spent + 1e-6, 1e-6), reason="just above")
    assert ledger.statement("d").cap.epsilon == spent + 1e-6


def test_the_odometer_spends_a_claim_once(ledger):
    ledger.create_dataset("d", ApproxDP(1.0, 1e-6))
    claim = ApproxDPEvent(0.6, 1e-7, label="plugin")
    reservation = ledger.reserve("d", [claim], synthesizer="plugin", claimed=ApproxDP(0.6, 1e-7))
    assert reservation.reserved_epsilon == 0.6 and reservation.reserved_delta == 1e-7
    reservation.odometer.spend(claim)
    assert reservation.odometer.spent_epsilon == 0.6 and reservation.odometer.spent_delta == 1e-7
    with pytest.raises(PrivacyAccountingError, match="'plugin' would spend"):
        reservation.odometer.spend(claim)
    reservation.complete(rows=10)
    (view,) = ledger.statement("d").reservations
    assert view.status == "completed"
    assert view.detail == {"spent_rho": 0.0, "spent_epsilon": 0.6, "spent_delta": 1e-7, "rows": 10}
    # a reservation without additive ε cannot spend a claim
    with pytest.raises(PrivacyAccountingError, match="reserved epsilon=0"):
        Odometer(ZCDP(1.0), 1e-6).spend(claim)
    other = ledger.reserve("d", [ApproxDPEvent(0.1, 1e-7)], synthesizer="plugin", claimed=ApproxDP(0.1, 1e-7))
    other.fail("RuntimeError")
    assert ledger.statement("d").reservations[1].detail["spent_epsilon"] == 0.0  # failed before it spent
    assert ledger.statement("d").epsilon_spent_tight == pytest.approx(0.7)  # and it stays spent


def test_an_untracked_fit_can_spend_its_claim():
    claim = ApproxDPEvent(2.0, 1e-6)
    with pytest.warns(UntrackedPrivacyWarning):
        reservation = UNTRACKED.reserve(None, [claim, gaussian(0.1)])
    assert reservation.reserved_epsilon == 2.0 and reservation.reserved_delta == 1e-6
    reservation.odometer.spend(claim)
    reservation.odometer.spend(gaussian(0.1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        reservation.complete()  # records nothing
        # what audit fits hand out: the same reservation, without a warning
        unrecorded = Reservation.unrecorded([claim])
    assert (unrecorded.ledger, unrecorded.reserved_epsilon, unrecorded.reserved_delta) == (None, 2.0, 1e-6)
    unrecorded.odometer.spend(claim)


def test_composition_helpers():
    assert total_epsilon_within(0.5, 0.0, (), None, 1e-6, 1e-6) == 0.5  # the claims alone, δ exactly used
    assert total_epsilon_within(0.5, 0.0, (), None, 1e-6, 2e-6) == math.inf
    assert total_epsilon_within(0.0, 0.0, (), None, 1e-6, 0.0) == 0.0
    assert total_epsilon_within(0.5, 0.02, (), None, 1e-6, 1e-7) == pytest.approx(
        0.5 + cks_epsilon(0.02, 1e-6 - thr(1e-7)), rel=1e-7)
    assert total_epsilon_within(0.5, 0.02, (), None, 1e-6, 1e-6) == math.inf  # no δ left to convert ρ
    assert epsilon_left(1.0, 0.6) == 0.4 and epsilon_left(1.0, 0.0) == 1.0 and epsilon_left(1.0, 2.0) == 0.0
    for cap, spent in [(1.0, 0.1), (0.3, 0.1), (5.0, 1.0 / 3.0), (1e-3, 7e-4)]:
        left = epsilon_left(cap, spent)
        assert spent + left <= cap and spent + math.nextafter(left, math.inf) > cap - 1e-15


def test_the_release_report_composes_the_claim():
    from dpsynth.release.report import privacy_block

    claim = ApproxDPEvent(0.8, 1e-7)
    checks = [GaussianEvent(scale=10.0, l2_sensitivity=1.0)]  # ρ = 1/200
    block = privacy_block([claim], checks, 0.8, 1e-6)
    assert block["table"]["epsilon_composed"] == 0.8
    assert block["decision"]["epsilon"] == pytest.approx(cks_epsilon(0.005, 1e-6), rel=1e-7)
    # the checks keep the release's δ; the claim's δ comes on top (basic composition)
    assert block["total"]["delta"] == pytest.approx(1e-6 + 1e-7, rel=1e-12)
    assert block["total"]["epsilon"] == pytest.approx(0.8 + cks_epsilon(0.005, 1e-6 + 1e-7 - thr(1e-7)), rel=1e-7)
    same = privacy_block([ApproxDPEvent(0.8, 1e-6)], checks, 0.8, 1e-6)  # a claim at the release's δ
    assert same["total"]["delta"] == pytest.approx(2e-6, rel=1e-12)
    assert same["total"]["epsilon"] == pytest.approx(0.8 + cks_epsilon(0.005, 2e-6 - thr(1e-6)), rel=1e-7)
    assert privacy_block([claim], [], 0.8, 1e-6)["total"]["epsilon"] == 0.8
    # zCDP plans keep their figures
    g = [GaussianEvent(scale=5.0, l2_sensitivity=1.0)]
    assert privacy_block(g, checks, 1.0, 1e-6)["total"]["epsilon"] == pytest.approx(
        max(1.0, cks_epsilon(0.025, 1e-6)), rel=1e-7)


def test_the_statement_prints_the_claims(ledger, capsys):
    from dpsynth.cli.ledger import print_statements as _print_statements

    ledger.create_dataset("d", ApproxDP(1.0, 1e-6))
    ledger.reserve("d", [ApproxDPEvent(0.6, 1e-7)], synthesizer="plugin", claimed=ApproxDP(0.6, 1e-7)).complete()
    ledger.create_dataset("z", ApproxDP(1.0, 1e-6))
    ledger.reserve("z", [gaussian(0.01)], synthesizer="mst", claimed=ApproxDP(1.0, 1e-6))
    _print_statements([ledger.statement("d").to_dict(), ledger.statement("z").to_dict()])
    out = capsys.readouterr().out
    d, z = out.split("dataset 'z'")
    assert "claims epsilon=0.6 + rho=0" in d and "claim epsilon=0.4" in d
    assert "epsilon=0.6 delta=1e-07 rho=0 additive delta=1e-07 claim (epsilon, delta)=(0.6, 1e-07)" in d
    assert "claim" not in z  # a ledger without claims prints as before
