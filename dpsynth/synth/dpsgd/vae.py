"""DP-VAE: a variational autoencoder of the TVAE family (Xu et al. 2019) trained with DP-SGD on the
whole model (encoder and decoder); only the decoder is kept for sampling.

Differences from TVAE, for privacy: preprocessing from the public schema only (no mode-specific
normalisation), a fixed output scale for numeric values (TVAE learns one σ per column as a bare
parameter, which per-sample gradient hooks do not cover), and the loss is a sum over the Poisson
batch (no division by a batch size that would depend on the private row count). No batch
statistic: no normalisation layer, and each row's loss depends on that row and its own latent
code only. The latent codes of a step are drawn in fixed-size public blocks from a per-step seed
(:func:`~.common.blocked`, :func:`~.common.step_seeds`), so row i's code is the same whatever the
batch size n > i: adding a row adds one per-sample term and changes no other (one draw of size
n did not: torch's normal sampler redraws the tail of a tensor whose size is not a multiple
of 16).

Privacy: the noisy row count and the planned Poisson-subsampled Gaussian steps (RDP curve
reserved in the ledger); every parameter is trained with clipped, noised per-sample gradients, so
the decoder kept for sampling (and the encoder thrown away) are post-processing of DP-SGD.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from dpsynth import _validation as check
from dpsynth.exceptions import ParameterError
from dpsynth.privacy.odometer import Odometer
from dpsynth.synth.base import register
from dpsynth.synth.dpsgd.common import (
    DEFAULT_COUNT_SPLIT,
    DPSGDPlan,
    DPSGDSynthesizer,
    Randomness,
    StepBudget,
    TableTransformer,
    blocked,
    dp_backward,
    latent_noise,
    poisson_batches,
    private_parts,
    seeded_generator,
    step_seeds,
)

if TYPE_CHECKING:
    import torch

    from dpsynth.mechanisms import NoiseSource


def _build_vae(data_dim: int, compress_dims: tuple[int, ...], embedding_dim: int,
               decompress_dims: tuple[int, ...]) -> Any:
    from torch import nn

    def mlp(dim: int, widths: tuple[int, ...]) -> tuple[nn.Sequential, int]:
        layers: list[nn.Module] = []
        for width in widths:
            layers += [nn.Linear(dim, width), nn.ReLU()]
            dim = width
        return nn.Sequential(*layers), dim

    class VAE(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder, hidden = mlp(data_dim, compress_dims)
            self.mu = nn.Linear(hidden, embedding_dim)
            self.logvar = nn.Linear(hidden, embedding_dim)
            body, hidden = mlp(embedding_dim, decompress_dims)
            self.decoder = nn.Sequential(*body, nn.Linear(hidden, data_dim))

        def forward(self, x: torch.Tensor, eps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            import torch

            h = self.encoder(x)
            mu, logvar = self.mu(h), self.logvar(h).clamp(-10.0, 10.0)
            return self.decoder(mu + eps * torch.exp(0.5 * logvar)), mu, logvar

    return VAE()


def _reconstruction(out: torch.Tensor, x: torch.Tensor, transformer: TableTransformer, sigma: float) -> torch.Tensor:
    """Per-row reconstruction loss: Gaussian (fixed σ) on tanh values, cross-entropy on one-hots."""
    import torch
    from torch.nn import functional as F

    loss = torch.zeros(x.shape[0], device=x.device)
    for span in transformer.spans:
        if span.activation == "tanh":
            diff = torch.tanh(out[:, span.start]) - x[:, span.start]
            loss = loss + diff * diff / (2.0 * sigma * sigma)
        else:
            target = x[:, span.start:span.stop].argmax(dim=1)
            loss = loss + F.cross_entropy(out[:, span.start:span.stop], target, reduction="none")
    return loss


@register
class DPVAE(DPSGDSynthesizer):
    """A TVAE-family variational autoencoder trained with DP-SGD (Opacus) on all its parameters.

    Args:
        epsilon, delta, epochs, sample_rate, batch_size, rows, max_grad_norm, max_noise_multiplier,
        device, secure_mode, max_levels, clipping, numeric_encoding, insecure_seed: see
        :class:`~.common.DPSGDSynthesizer`.
        embedding_dim, compress_dims, decompress_dims: network sizes (16 and (64, 64); TVAE uses
            128 and (128, 128), but DP noise grows with the parameter count: at ε = 1 on Adult
            TVAE's sizes learn no dependence on the target; see ``docs/dpsgd.md``).
        learning_rate, weight_decay: Adam settings (TVAE: 1e-3, 1e-5; 1e-2 here: a DP run takes few,
            large steps).
        loss_factor: weight of the reconstruction against the KL term (TVAE: 2).
        numeric_sigma: fixed output scale of numeric values (a binned value's position inside its
            bin) on the [-1, 1] scale. 2.0: at 0.1 the positions' squared errors outweigh every
            categorical column, and the latent codes carry positions instead of the dependencies
            between columns (even without DP).
        count_split: share of ρ for the noisy row count (``total_estimate_``); see
            :class:`~.common.DPSGDSynthesizer`.

    After ``fit``: ``decoder_`` (kept for sampling) and ``total_estimate_`` (the noisy row count,
    at least 1). The training loss on real rows is a statistic of the private data without noise
    and is not kept.

    Defaults (epochs 30, ``sample_rate`` 0.1: 300 steps) were chosen on the raw Adult at ε = 1
    and 3 (``benchmarks/RESULTS.md``).

    Privacy: the noisy row count and DP-SGD on the whole model for the planned steps; sampling
    from the decoder is post-processing.
    """

    name = "dpvae"
    #: few large Poisson batches: σ grows more slowly than the batch, so each step is less noisy
    default_sample_rate = 0.1

    def __init__(
        self, *, epsilon: float, delta: float, epochs: float = 30.0, sample_rate: float | None = None,
        batch_size: int | None = None, rows: int | None = None, max_grad_norm: float = 1.0,
        max_noise_multiplier: float = 50.0, device: str = "auto", secure_mode: bool | None = None,
        max_levels: int = 1000, embedding_dim: int = 16, compress_dims: tuple[int, ...] = (64, 64),
        decompress_dims: tuple[int, ...] = (64, 64), learning_rate: float = 1e-2, weight_decay: float = 1e-5,
        loss_factor: float = 2.0, numeric_sigma: float = 2.0, clipping: str = "fused",
        numeric_encoding: str = "bins", insecure_seed: int | None = None, count_split: float = DEFAULT_COUNT_SPLIT,
    ):
        super().__init__(epsilon=epsilon, delta=delta, epochs=epochs, sample_rate=sample_rate, batch_size=batch_size,
                         rows=rows, max_grad_norm=max_grad_norm, max_noise_multiplier=max_noise_multiplier,
                         device=device, secure_mode=secure_mode, max_levels=max_levels, insecure_seed=insecure_seed,
                         clipping=clipping, numeric_encoding=numeric_encoding, count_split=count_split)
        self.embedding_dim = embedding_dim
        self.compress_dims = compress_dims
        self.decompress_dims = decompress_dims
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.loss_factor = loss_factor
        self.numeric_sigma = numeric_sigma

    def _validate_model(self) -> None:
        check.positive_int("embedding_dim", self.embedding_dim)
        for name in ("compress_dims", "decompress_dims"):
            dims = getattr(self, name)
            if not isinstance(dims, (tuple, list)):
                raise ParameterError(f"{name} ({dims!r}) must be a sequence of integers > 0")
            for d in dims:
                check.positive_int(name, d)
        check.positive_finite("learning_rate", self.learning_rate)
        check.nonnegative_finite("weight_decay", self.weight_decay)
        check.positive_finite("loss_factor", self.loss_factor)
        check.positive_finite("numeric_sigma", self.numeric_sigma)

    def _products(self, transformer: TableTransformer, batch_rows: int) -> list[tuple[int, int, int]]:
        """Encoder, latent heads and decoder on a Poisson batch."""
        out = []
        dim = transformer.output_dim
        for width in self.compress_dims:
            out.append((batch_rows, dim, int(width)))
            dim = int(width)
        out += [(batch_rows, dim, int(self.embedding_dim))] * 2
        dim = int(self.embedding_dim)
        for width in (*self.decompress_dims, transformer.output_dim):
            out.append((batch_rows, dim, int(width)))
            dim = int(width)
        return out

    def _train(self, plan: DPSGDPlan, matrix: torch.Tensor, codes: np.ndarray, device: Any, randomness: Randomness,
               odometer: Odometer, noise: NoiseSource, budget: StepBudget) -> None:
        import torch

        transformer = plan.transformer
        embedding = int(self.embedding_dim)
        model = _build_vae(transformer.output_dim, tuple(self.compress_dims), embedding,
                           tuple(self.decompress_dims)).to(device)
        cal = plan.calibration
        private, optimizer, loader = private_parts(
            model, matrix, learning_rate=float(self.learning_rate), betas=(0.9, 0.999),
            weight_decay=float(self.weight_decay), noise_multiplier=cal.noise_multiplier,
            max_grad_norm=float(self.max_grad_norm), sample_rate=plan.sample_rate, randomness=randomness,
            clipping=str(self.clipping))
        sigma, factor = float(self.numeric_sigma), float(self.loss_factor)
        self._spend_dp_sgd(plan, odometer)  # the reservation is spent from here on
        for batch in poisson_batches(loader, budget):
            x = batch.to(device)
            n = x.shape[0]
            optimizer.zero_grad(set_to_none=True)
            # row i's latent code is the same for every batch size n > i (fixed-size blocks)
            local = seeded_generator(step_seeds(randomness.model, 1)[0], device)
            eps = torch.cat(blocked(n, lambda size, g=local: latent_noise((size, embedding), g, device)))[:n]
            out, mu, logvar = private(x, eps)
            kl = -0.5 * (1.0 + logvar - mu * mu - logvar.exp()).sum(dim=1)
            loss = factor * _reconstruction(out, x, transformer, sigma) + kl  # per sample, summed (never a mean)
            dp_backward(private, optimizer, loss)
            budget.take()
            optimizer.step()
        decoder = model.decoder.to("cpu")
        decoder.eval()
        self.decoder_ = decoder

    def _sample_matrix(self, n_rows: int, rng: np.random.Generator) -> np.ndarray:
        import torch

        gen = self._torch_generator(rng)
        out = []
        with torch.no_grad():
            for start in range(0, n_rows, 10_000):
                n = min(10_000, n_rows - start)
                raw = self.decoder_(latent_noise((n, int(self.embedding_dim)), gen, torch.device("cpu")))
                parts = []
                for span in self.transformer_.spans:
                    block = raw[:, span.start:span.stop]
                    parts.append(torch.tanh(block) if span.activation == "tanh" else torch.softmax(block, dim=1))
                out.append(torch.cat(parts, dim=1).numpy())
        return np.concatenate(out, axis=0)
