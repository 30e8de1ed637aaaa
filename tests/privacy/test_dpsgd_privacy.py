"""Statistical and accounting tests of the DP-SGD claims (dpsynth.synth.dpsgd).

* The DP optimizer's noise has standard deviation σ·C (as Opacus's own ``test_noise_level``):
  with zero per-sample gradients the update is pure noise. Failure probability: the sample std of
  n i.i.d. Gaussians is off by more than 5% with probability < 1e-12 for n = 20,000.
* Calibration never overshoots the target ε (property test; deterministic).
* A fit refused by the ledger takes no step and charges nothing; steps never exceed the plan.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")
pytest.importorskip("opacus")

from dpsynth import UNTRACKED  # noqa: E402
from dpsynth.exceptions import BudgetExceededError, ParameterError, PrivacyAccountingError  # noqa: E402
from dpsynth.privacy import ApproxDP  # noqa: E402
from dpsynth.privacy.accounting import RDP_ORDERS  # noqa: E402
from dpsynth.privacy.ledger import Ledger  # noqa: E402
from dpsynth.synth.dpsgd import DPCTGAN, DPVAE, accounting, common, loop  # noqa: E402

# PyTorch's notice about Opacus's hooks on a layer whose input needs no gradient (the fits filter
# it themselves; the noise test drives Opacus directly).
pytestmark = pytest.mark.filterwarnings("ignore:Full backward hook is firing:UserWarning")

FAST_VAE = {"sample_rate": 0.1, "epochs": 1, "embedding_dim": 8, "compress_dims": (16,), "decompress_dims": (16,),
            "device": "cpu"}


def _noise_std(sigma: float, clip: float, dim: int, batch: int, seed: int, clipping: str = "fused"
               ) -> tuple[float, float]:
    """Std and mean of one DP step's update of a linear layer fed zeros (zero per-sample gradients)."""
    layer = torch.nn.Linear(dim, 1, bias=False)
    torch.nn.init.zeros_(layer.weight)
    randomness = common.make_randomness(torch.device("cpu"), insecure_seed=seed, secure_mode=False)
    matrix = torch.zeros((batch, dim))
    private, optimizer, _ = common.private_parts(
        layer, matrix, learning_rate=1.0, betas=(0.9, 0.999), weight_decay=0.0, noise_multiplier=sigma,
        max_grad_norm=clip, sample_rate=0.5, randomness=randomness, clipping=clipping)
    optimizer.zero_grad(set_to_none=True)
    common.dp_backward(private, optimizer, private(matrix).squeeze(1))
    optimizer.pre_step()  # clip, accumulate, add noise (what step() does before Adam)
    grad = layer.weight.grad.detach().numpy().ravel()
    return float(grad.std()), float(grad.mean())


@pytest.mark.parametrize("clipping", common.CLIPPING)
@pytest.mark.parametrize("sigma,clip", [(1.0, 1.0), (2.5, 0.3)])
def test_noise_level_is_sigma_times_clip(sigma, clip, clipping):
    std, mean = _noise_std(sigma, clip, dim=20_000, batch=4, seed=0, clipping=clipping)
    assert std == pytest.approx(sigma * clip, rel=0.05)
    assert abs(mean) < 5 * sigma * clip / math.sqrt(20_000)


def _clipped_sums(clipping: str, model_fn, batches, clip: float) -> list[list[torch.Tensor]]:
    """The clipped, summed gradient (noise off) of each batch, through dpsynth's DP step."""
    torch.manual_seed(0)
    model = model_fn()
    randomness = common.make_randomness(torch.device("cpu"), insecure_seed=0, secure_mode=False)
    private, optimizer, _ = common.private_parts(
        model, batches[0], learning_rate=1e-3, betas=(0.9, 0.999), weight_decay=0.0, noise_multiplier=0.0,
        max_grad_norm=clip, sample_rate=0.5, randomness=randomness, clipping=clipping)
    out = []
    for batch in batches:
        optimizer.zero_grad(set_to_none=True)
        y = private(batch).flatten(1)
        common.dp_backward(private, optimizer, (y * y).sum(1) + y.sum(1))
        optimizer.pre_step()
        out.append([p.grad.detach().clone() for p in model.parameters()])
    return out


@pytest.mark.parametrize("shape", [(2, 7), (2, 3, 7)])  # rows; (real, fake) pairs as dpctgan's discriminator
@pytest.mark.parametrize("clip", [0.05, 1.0, 100.0])
def test_every_clipping_mode_gives_the_same_clipped_sum(shape, clip):
    """Fused and ghost clipping give Opacus's per-sample-gradient clipped sum (hooks), empty batches included,
    and each sample's clipped gradient has norm at most C (checked on single-row batches)."""
    def model_fn():
        return torch.nn.Sequential(torch.nn.Linear(7, 16), torch.nn.LeakyReLU(0.2), torch.nn.Linear(16, 16),
                                   torch.nn.ReLU(), torch.nn.Linear(16, 3))
    gen = torch.Generator().manual_seed(1)
    full = torch.randn((20, *shape[1:]), generator=gen) * 3
    batches = [full, full[:0], full[:5], full[:1], full[7:8]]
    ref = _clipped_sums("hooks", model_fn, batches, clip)
    for mode in ("fused", "ghost"):
        got = _clipped_sums(mode, model_fn, batches, clip)
        for g_batch, r_batch in zip(got, ref, strict=True):
            for g, r in zip(g_batch, r_batch, strict=True):
                torch.testing.assert_close(g, r, rtol=1e-4, atol=1e-6)
    for single in ref[3:]:
        assert math.sqrt(sum(float((g * g).sum()) for g in single)) <= clip * (1 + 1e-5)
    assert all(float(g.abs().sum()) == 0.0 for g in ref[1])


def test_fused_clipping_refuses_models_it_cannot_clip():
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.LayerNorm(4))
    with pytest.raises(PrivacyAccountingError, match="fused clipping needs a model of linear layers only"):
        common.FusedLinearClipping(model, max_grad_norm=1.0)


@pytest.mark.slow
@pytest.mark.parametrize("sigma,clip", [(0.5, 1.0), (1.0, 3.0), (4.0, 0.1), (10.0, 1.0)])
def test_noise_level_many_settings(sigma, clip):
    stds = [_noise_std(sigma, clip, dim=50_000, batch=8, seed=s)[0] for s in range(5)]
    assert np.mean(stds) == pytest.approx(sigma * clip, rel=0.01)


def _check_calibration(epsilon, delta, sample_rate, epochs):
    steps = accounting.steps_for(epochs, sample_rate)
    try:
        cal = accounting.calibrate(epsilon=epsilon, delta=delta, sample_rate=sample_rate, steps=steps)
    except ParameterError:
        return  # a target too small for σ <= 50 is refused, never met by overshooting
    from opacus.accountants import RDPAccountant

    # the reserved curve (dpsynth's conversion) and Opacus's own RDP accountant, fresh
    assert cal.epsilon_reserved <= epsilon
    fresh = RDPAccountant()
    fresh.history = [(cal.noise_multiplier, sample_rate, steps)]
    assert fresh.get_epsilon(delta=delta, alphas=list(RDP_ORDERS)) <= epsilon * (1 + 1e-9)
    if cal.epsilon_prv is not None:  # PRV (tighter) at the chosen σ
        assert cal.epsilon_prv <= epsilon * (1 + 1e-9)
    assert cal.noise_multiplier >= cal.noise_multiplier_rdp


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(epsilon=st.floats(0.3, 8.0), delta=st.sampled_from([1e-9, 1e-7, 1e-5]),
       sample_rate=st.floats(0.005, 0.5), epochs=st.floats(0.05, 3.0))
def test_calibration_never_overshoots(epsilon, delta, sample_rate, epochs):
    _check_calibration(epsilon, delta, sample_rate, epochs)


@pytest.mark.slow
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(epsilon=st.floats(0.05, 20.0), delta=st.floats(1e-10, 1e-3), sample_rate=st.floats(0.001, 1.0),
       epochs=st.floats(0.01, 10.0))
def test_calibration_never_overshoots_wide(epsilon, delta, sample_rate, epochs):
    _check_calibration(epsilon, delta, sample_rate, epochs)


def test_calibration_with_other_zcdp_events_fits_the_composition():
    alone = accounting.calibrate(epsilon=1.0, delta=1e-6, sample_rate=0.05, steps=100)
    shared = accounting.calibrate(epsilon=1.0, delta=1e-6, sample_rate=0.05, steps=100, rho_other=0.005)
    assert shared.noise_multiplier > alone.noise_multiplier  # less left for DP-SGD
    assert accounting.rdp_epsilon_of_run(shared.noise_multiplier, 0.05, 100, 1e-6, 0.005) <= 1.0


def test_too_small_epsilon_is_refused_with_one_step_named():
    with pytest.raises(ParameterError, match="too small to train even one DP-SGD step"):
        accounting.calibrate(epsilon=0.001, delta=1e-9, sample_rate=0.5, steps=10)


def test_step_budget_refuses_a_step_past_the_plan():
    budget = common.StepBudget(2)
    budget.take()
    budget.take()
    with pytest.raises(PrivacyAccountingError, match="step 3 of a plan of 2"):
        budget.take()
    taken = common.StepBudget(7)
    n = 0
    for _ in common.poisson_batches([(torch.zeros(1),)] * 3, taken):
        taken.take()
        n += 1
    assert n == 7 == taken.taken


def test_fit_takes_exactly_the_planned_steps_and_checks_opacus(small_schema, small_data):
    synth = DPVAE(epsilon=1.0, delta=1e-6, insecure_seed=1, **FAST_VAE).fit(
        small_data, schema=small_schema, ledger=UNTRACKED)
    d = synth.dpsgd_
    assert d["steps_taken"] == d["steps_planned"] == 10
    assert d["opacus_epsilon_rdp"] <= d["epsilon_reserved_rdp"] * (1 + 1e-9)
    assert d["epsilon_reserved_rdp"] <= 1.0
    assert d["opacus_epsilon_prv"] <= 1.0
    assert d["poisson_sampling"] is True


@pytest.mark.parametrize("cls,extra", [(DPVAE, FAST_VAE), (DPCTGAN, {"sample_rate": 0.1, "epochs": 1,
                                                                    "embedding_dim": 8, "device": "cpu"})])
def test_over_the_cap_is_refused_before_training(cls, extra, small_schema, small_data, tmp_path, monkeypatch):
    ledger = Ledger(f"sqlite:///{tmp_path / 'l.db'}", create=True)
    ledger.create_dataset("d", ApproxDP(0.5, 1e-6))
    steps = []
    monkeypatch.setattr(common.StepBudget, "take", lambda self: steps.append(1))
    monkeypatch.setattr(loop, "private_parts", lambda *a, **k: pytest.fail("models built"))
    with pytest.raises(BudgetExceededError, match="exceeds the remaining"):
        cls(epsilon=1.0, delta=1e-6, **extra).fit(small_data, schema=small_schema, ledger=ledger, dataset="d")
    assert steps == [] and ledger.statement("d").reservations == []


def test_ledger_composes_dp_sgd_with_zcdp_releases(small_schema, small_data, tmp_path):
    from dpsynth.synth import MST

    ledger = Ledger(f"sqlite:///{tmp_path / 'l.db'}", create=True)
    ledger.create_dataset("d", ApproxDP(3.0, 1e-6))
    DPVAE(epsilon=1.0, delta=1e-6, insecure_seed=2, **FAST_VAE).fit(
        small_data, schema=small_schema, ledger=ledger, dataset="d")
    MST(epsilon=1.0, delta=1e-6, insecure_seed=2).fit(small_data, schema=small_schema, ledger=ledger, dataset="d")
    statement = ledger.statement("d")
    assert statement.composition == "rdp"
    # tighter than the plain sum, and at least the larger release
    assert 1.0 <= statement.epsilon_spent_tight < statement.epsilon_spent_plain_sum == pytest.approx(2.0)
    entry = statement.to_dict()["entries"][0]
    assert entry["rdp"]["orders"] == list(RDP_ORDERS) and entry["detail"]["dpsgd"]["steps_taken"] == 10
    assert ledger.verify().ok
    with pytest.raises(BudgetExceededError, match="exceeds the remaining"):
        DPVAE(epsilon=3.0, delta=1e-6, **FAST_VAE).fit(small_data, schema=small_schema, ledger=ledger, dataset="d")
    assert len(ledger.statement("d").reservations) == 2


# -- the noisy row count (issue 15: no private count in a released artifact) -----------------------

FAST_CTGAN = {"sample_rate": 0.1, "epochs": 1, "embedding_dim": 8, "generator_dims": (16,),
              "discriminator_dims": (16,), "generator_batch_size": 32, "device": "cpu"}


@pytest.mark.parametrize("cls,extra", [(DPVAE, FAST_VAE), (DPCTGAN, FAST_CTGAN),
                                       (DPCTGAN, {**FAST_CTGAN, "conditional": "dp_frequencies"})])
def test_plan_holds_a_noisy_row_count_and_still_fits_the_target(cls, extra, small_schema):
    """The plan's first event is the row count (discrete Gaussian, L2 sensitivity 1, count_split
    of ρ, σ of tens of rows at ε = 1), and σ of DP-SGD is calibrated for what it leaves: the whole
    plan, composed as the ledger composes it (RDP curve + ρα), converts to at most ε at δ.
    Deterministic."""
    from dpsynth.privacy.accounting import composed_epsilon
    from dpsynth.privacy.events import total_rdp, total_rho

    synth = cls(epsilon=1.0, delta=1e-6, **extra)
    events = synth.plan(small_schema)
    count = events[0]
    assert (count.kind, count.label, count.l2_sensitivity) == ("gaussian", "row_count", 1)
    rho = ApproxDP(1.0, 1e-6).to_zcdp().rho
    assert count.rho == pytest.approx(synth.count_split * rho, rel=1e-8) and count.rho <= synth.count_split * rho
    assert 10.0 <= count.scale <= 100.0  # tens of rows at ε = 1 (default count_split 0.01: σ ≈ 45)
    assert [e.kind for e in events].count("subsampled_gaussian") == 1 and events[-1].kind == "subsampled_gaussian"
    rdp = total_rdp(events)
    assert composed_epsilon(total_rho(events), rdp.orders, rdp.epsilons, 1e-6) <= 1.0
    cal = synth._plan(small_schema).calibration
    alone = accounting.calibrate(epsilon=1.0, delta=1e-6, sample_rate=cal.sample_rate, steps=cal.steps)
    assert cal.rho_other == pytest.approx(total_rho(events), rel=1e-12)
    assert cal.noise_multiplier_rdp > alone.noise_multiplier_rdp  # the count's ρ is paid for by DP-SGD
    assert cal.noise_multiplier >= alone.noise_multiplier and cal.epsilon_reserved <= 1.0


@pytest.mark.parametrize("cls,extra", [(DPVAE, FAST_VAE), (DPCTGAN, {**FAST_CTGAN, "conditional": "dp_frequencies"})])
def test_total_estimate_is_the_noisy_count_of_the_rows(cls, extra, small_schema, small_data):
    """``total_estimate_`` is n plus the fit's discrete Gaussian draw (seeded noise: the first
    draw of SeededNoise(seed)), spent through the fit's odometer as the plan's first event; it is
    not n. Deterministic (seeded)."""
    from dpsynth.mechanisms import SeededNoise

    synth = cls(epsilon=1.0, delta=1e-6, insecure_seed=5, **extra)
    scale = synth.plan(small_schema)[0].scale
    draw = int(SeededNoise(5, _warn=False).discrete_gaussian(np.zeros(1, dtype=np.int64), scale)[0])
    assert draw != 0
    synth.fit(small_data, schema=small_schema, ledger=UNTRACKED)
    assert isinstance(synth.total_estimate_, float)
    assert synth.total_estimate_ == float(len(small_data) + draw) != float(len(small_data))
    assert synth.privacy_events_[0].label == "row_count"
    assert synth.privacy_statement()["epsilon_rdp"] <= 1.0


def test_total_estimate_is_at_least_one(small_schema, small_data):
    """A noisy count below 1 is reported as 1 (post-processing). Deterministic (seeded; seed 0
    draws -788 at this σ of about 1,400 rows)."""
    from dpsynth.mechanisms import SeededNoise

    synth = DPVAE(epsilon=1.0, delta=1e-6, insecure_seed=0, count_split=1e-5, **{**FAST_VAE, "sample_rate": 0.5})
    scale = synth.plan(small_schema)[0].scale
    draw = int(SeededNoise(0, _warn=False).discrete_gaussian(np.zeros(1, dtype=np.int64), scale)[0])
    synth.fit(small_data.iloc[:10], schema=small_schema, ledger=UNTRACKED)
    assert 10 + draw < 1 and synth.total_estimate_ == 1.0
