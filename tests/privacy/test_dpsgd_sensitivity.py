"""The per-sample sensitivity that the DP-SGD accounting assumes, measured on coupled runs.

The subsampled Gaussian analysis of ``dpctgan`` and ``dpvae`` needs: adding one row to a Poisson
batch adds one per-sample term to the clipped sum and changes no other term, so the sum moves by
at most C (``max_grad_norm``). Each test fits twice with the same seed (every generator coupled:
model initialisation, latent codes, conditional vectors, Gumbel and dropout draws) on a batch of
the first n rows and on the first n + 1 rows (one real row appended), stops after that one DP
step, and compares what the step computed:

* the first n inputs of the step (real rows with their conditional vectors, the fakes paired with
  them, the VAE's latent codes) do not depend on n;
* with per-sample gradients materialised (``clipping="hooks"``), the first n per-sample gradients
  do not depend on n;
* the clipped per-sample-gradient sum (before noise) moves by at most C;

and that DP-CTGAN's generator updates its BatchNorm running statistics only in generator steps
(fixed, public batch size), never with the fakes of a discriminator step.

On the code before issue 15, DP-CTGAN's generator normalised the fakes of a step with BatchNorm
over a batch of n fakes (every fake depended on n, and so did the running statistics the released
generator keeps; a coupled measurement moved the sum by 1.14·C, these tests by 3–20·C),
and the latent codes of both generators were drawn in one call of size n (torch's vectorised
normal sampler redraws the tail of a tensor whose size is not a multiple of 16, so the last codes
changed with n). Deterministic (seeded, CPU, one thread per process): no false-failure
probability; a failure is a coupling that broke, i.e. a sensitivity argument that does not hold
as written.
"""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("opacus")

from dpsynth import UNTRACKED  # noqa: E402
from dpsynth.synth.dpsgd import DPCTGAN, DPVAE, ctgan, vae  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:Full backward hook is firing:UserWarning")

CLIP = 0.5
SMALL_CTGAN = {"sample_rate": 0.1, "epochs": 1, "embedding_dim": 8, "generator_dims": (16, 16),
               "discriminator_dims": (16,), "generator_batch_size": 16, "device": "cpu", "max_grad_norm": CLIP}
SMALL_VAE = {"sample_rate": 0.1, "epochs": 1, "embedding_dim": 8, "compress_dims": (16,), "decompress_dims": (16,),
             "device": "cpu", "max_grad_norm": CLIP}
# 7, 20: n and n + 1 straddle a multiple of 16 latent values (8 per row); 256 + 1 crosses a block
# of the fixed-size draws (randomness.RANDOM_BLOCK_ROWS); small_data has 400 rows.
SIZES = [7, 20, 256]


def _first_step(module, cls, params, data, schema, n, monkeypatch, clipping):
    """Fit on ONE Poisson batch made of the first ``n`` rows of ``data``; what its DP step saw."""
    seen: dict = {}
    real_backward = module.dp_backward

    def observe(model):  # the generator's injection point: the module DP-SGD is about to train
        seen["model"] = model

        def record(mod, args):  # the DP step's forward pass is the first with gradients on
            if mod.training and torch.is_grad_enabled() and "inputs" not in seen:
                seen["inputs"] = [a.detach().clone() for a in args]

        model.register_forward_pre_hook(record)

    def dp_backward(private, optimizer, loss_per_sample, people=None):
        real_backward(private, optimizer, loss_per_sample, people=people)
        if "sum" in seen:
            return
        params_ = [p for p in seen["model"].parameters() if p.requires_grad]
        if clipping == "hooks":  # per-sample gradients; clip as Opacus does (whole-model norm)
            per = [p.grad_sample.detach().clone() for p in params_]
            norms = torch.sqrt(sum((g.reshape(g.shape[0], -1) ** 2).sum(1) for g in per))
            coef = (CLIP / (norms + 1e-6)).clamp(max=1.0)
            seen["per_sample"] = per
            seen["sum"] = [torch.einsum("i,i...->...", coef, g) for g in per]
        else:  # fused / ghost: the clipped sum is what dp_backward leaves in p.grad
            seen["sum"] = [p.grad.detach().clone() for p in params_]

    def one_batch(loader, budget):
        (matrix,) = loader.dataset.tensors
        yield matrix[:n]

    monkeypatch.setattr(module, "dp_backward", dp_backward)
    monkeypatch.setattr(module, "poisson_batches", one_batch)
    synth = cls(epsilon=1.0, delta=1e-6, insecure_seed=11, clipping=clipping, **params)
    with synth.observe_training(observe):
        synth.fit(data, schema=schema, ledger=UNTRACKED)
    return seen


def _distance(a, b) -> float:
    return math.sqrt(sum(float(((x - y) ** 2).sum()) for x, y in zip(a, b, strict=True)))


def _assert_coupled(small, large, n):
    """The step on n + 1 rows is the step on n rows plus one per-sample term of norm <= C."""
    for x, y in zip(small["inputs"], large["inputs"], strict=True):
        assert y.shape[0] == x.shape[0] + 1 == n + 1
        torch.testing.assert_close(y[:n], x, rtol=0, atol=0)
    if "per_sample" in small:
        for g_small, g_large in zip(small["per_sample"], large["per_sample"], strict=True):
            torch.testing.assert_close(g_large[:n], g_small, rtol=1e-6, atol=1e-7)
    moved = _distance(small["sum"], large["sum"])
    assert moved <= CLIP * (1 + 1e-5), f"the clipped sum moved by {moved / CLIP:.3f}·C when one row was added"


@pytest.mark.parametrize("clipping", ["fused", "hooks"])
@pytest.mark.parametrize("n", SIZES)
def test_dpctgan_step_adds_one_pair_and_moves_the_clipped_sum_by_at_most_c(n, clipping, small_schema, small_data,
                                                                           monkeypatch):
    """The first n (real, fake) pairs of a discriminator step, fakes included, do not depend on n,
    and appending a real row moves the clipped sum by at most C."""
    small = _first_step(ctgan, DPCTGAN, SMALL_CTGAN, small_data, small_schema, n, monkeypatch, clipping)
    large = _first_step(ctgan, DPCTGAN, SMALL_CTGAN, small_data, small_schema, n + 1, monkeypatch, clipping)
    (pairs,) = small["inputs"]
    assert pairs.shape[1] == 2  # (real, fake): the per-sample unit is one pair, no packing
    torch.testing.assert_close(large["inputs"][0][:n, 1], pairs[:, 1], rtol=0, atol=0)  # the first n fakes
    _assert_coupled(small, large, n)


@pytest.mark.parametrize("clipping", ["fused", "hooks"])
@pytest.mark.parametrize("n", SIZES)
def test_dpvae_step_adds_one_term_and_moves_the_clipped_sum_by_at_most_c(n, clipping, small_schema, small_data,
                                                                         monkeypatch):
    """The first n rows' latent codes (the reparameterisation noise) do not depend on n, and
    appending a row moves the clipped sum by at most C."""
    small = _first_step(vae, DPVAE, SMALL_VAE, small_data, small_schema, n, monkeypatch, clipping)
    large = _first_step(vae, DPVAE, SMALL_VAE, small_data, small_schema, n + 1, monkeypatch, clipping)
    _assert_coupled(small, large, n)


def test_dpctgan_generator_statistics_come_only_from_fixed_size_public_batches(small_schema, small_data):
    """The released generator's BatchNorm running statistics are updated by generator steps only
    (``generator_batch_size`` fakes each, a public number), never by a discriminator step (whose
    fakes are normalised with the statistics of a fixed-size public reference block): after T
    steps of g generator steps each, every running statistic has counted exactly T·g batches.
    Before issue 15 each discriminator step also counted one, of the private batch size."""
    synth = DPCTGAN(epsilon=1.0, delta=1e-6, insecure_seed=2, **{**SMALL_CTGAN, "generator_steps": 2}).fit(
        small_data, schema=small_schema, ledger=UNTRACKED)
    norms = [m for m in synth.generator_.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    assert len(norms) == len(SMALL_CTGAN["generator_dims"])
    assert [int(m.num_batches_tracked) for m in norms] == [2 * synth.dpsgd_["steps_taken"]] * len(norms)
    assert not [m for m in synth.generator_.modules() if getattr(m, "reference", 0)]  # back to plain BatchNorm
