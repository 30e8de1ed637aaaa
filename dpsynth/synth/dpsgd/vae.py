"""DP-VAE: a variational autoencoder of the TVAE family (Xu et al. 2019) trained with DP-SGD on the
whole model (encoder and decoder); only the decoder is kept for sampling.

Differences from TVAE, for privacy: preprocessing from the public schema only (no mode-specific
normalisation), a fixed output scale for numeric values (TVAE learns one σ per column as a bare
parameter, which per-sample gradient hooks do not cover), and the loss is a sum over the Poisson
batch (no division by a batch size that would depend on the private row count). No batch
statistic: no normalisation layer, and each row's loss depends on that row and its own latent
code only. The latent codes of a step are drawn in fixed-size public blocks from a per-step seed
(:func:`~.randomness.blocked`, :func:`~.randomness.step_seeds`), so row i's code is the same whatever the
batch size n > i: adding a row adds one per-sample term and changes no other (one draw of size
n did not: torch's normal sampler redraws the tail of a tensor whose size is not a multiple
of 16).

Privacy: the noisy row count and the planned Poisson-subsampled Gaussian steps (RDP curve
reserved in the ledger); every parameter is trained with clipped, noised per-sample gradients, so
the decoder kept for sampling (and the encoder thrown away) are post-processing of DP-SGD.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from dpsynth import _validation as check
from dpsynth.marginals import marginal_counts
from dpsynth.mechanisms import GaussianCounts
from dpsynth.privacy.events import PrivacyEvent
from dpsynth.privacy.odometer import Odometer
from dpsynth.synth.base import register
from dpsynth.synth.dpsgd.clipping import dp_backward
from dpsynth.synth.dpsgd.estimator import DPSGDPlan, DPSGDSynthesizer
from dpsynth.synth.dpsgd.loop import StepBudget, person_batches, poisson_batches
from dpsynth.synth.dpsgd.params import check_dims, check_share, check_window
from dpsynth.synth.dpsgd.raking import rake_rows
from dpsynth.synth.dpsgd.randomness import Randomness, blocked, latent_noise, seeded_generator, step_seeds
from dpsynth.synth.dpsgd.transform import TableTransformer

if TYPE_CHECKING:
    import torch

    from dpsynth.mechanisms import NoiseSource

def build_vae(data_dim: int, compress_dims: tuple[int, ...], embedding_dim: int,
              decompress_dims: tuple[int, ...]) -> Any:
    """The VAE: encoder (``compress_dims``) to the latent mean and log-variance (``embedding_dim``),
    decoder (``decompress_dims``) back to ``data_dim``; ``forward(x, eps)`` returns (output, μ, log σ²)
    with the latent code μ + eps·σ. No normalisation layer: each row's output depends on that row
    and its own ``eps`` only."""
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


def reconstruction_loss(out: torch.Tensor, x: torch.Tensor, transformer: TableTransformer, sigma: float
                        ) -> torch.Tensor:
    """Per-row reconstruction loss of the VAE's raw outputs ``out`` for the transformed rows ``x``:
    Gaussian with the fixed scale ``sigma`` on tanh values, cross-entropy on one-hot blocks. Row i's
    loss depends on row i only (a vector, never reduced over the batch)."""
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


def negative_elbo(out: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, x: torch.Tensor,
                  transformer: TableTransformer, *, sigma: float, loss_factor: float) -> torch.Tensor:
    """Per-row training loss of the DP-VAE (the negative ELBO): ``loss_factor`` times the
    :func:`reconstruction_loss` plus the KL divergence of the latent posterior N(μ, σ²) from N(0, 1).
    ``out, mu, logvar`` are the model's outputs for ``x``; one value per row, never a batch mean."""
    kl = -0.5 * (1.0 + logvar - mu * mu - logvar.exp()).sum(dim=1)
    return loss_factor * reconstruction_loss(out, x, transformer, sigma) + kl


@register
@dataclass(kw_only=True, eq=False)
class DPVAE(DPSGDSynthesizer):
    """A TVAE-family variational autoencoder trained with DP-SGD (Opacus) on all its parameters.

    Args:
        epsilon, delta, insecure_seed, count_split, epochs (default 100), sample_rate, batch_size,
        rows, max_grad_norm, max_noise_multiplier, device, secure_mode, max_levels, clipping,
        numeric_encoding: shared by the DP-SGD generators, see :class:`~.params.DPSGDParameters`.
        embedding_dim, compress_dims, decompress_dims: network sizes (16 and (64, 64); TVAE uses
            128 and (128, 128), but DP noise grows with the parameter count: at ε = 1 on Adult
            TVAE's sizes learn no dependence on the target; see ``docs/dpsgd.md``).
        learning_rate, weight_decay: Adam settings (TVAE: 1e-3, 1e-5; 1e-2 here: a DP run takes few,
            large steps).
        loss_factor: weight of the reconstruction against the KL term (TVAE: 2; 4 here).
        numeric_sigma: fixed output scale of numeric values (a binned value's position inside its
            bin) on the [-1, 1] scale. 2.0: at 0.1 the positions' squared errors outweigh every
            categorical column, and the latent codes carry positions instead of the dependencies
            between columns (even without DP).
        split_marginals: share of ρ = approx_dp_to_rho(ε, δ) for the 1-way marginals of every
            column with codes (categorical levels, binned numeric columns' bins), measured with the
            exact discrete Gaussian (L2 sensitivity √d over the d histograms; K√d at a user unit)
            before DP-SGD, which is calibrated for what is left (default 0.1; 0: none). Sampling then
            draws ``calibration_pool`` candidates a row from the decoder and keeps rows drawn
            without replacement with weights raked to those marginals (post-processing).
        calibration_pool: candidates drawn per sampled row when ``split_marginals`` > 0 (default 8).
        decoder_average: the time constant, as a share of the DP-SGD steps, of an exponential moving
            average of the decoder's weights kept for sampling (a decay of 1 − 1/(share · steps));
            default 0.1 (0.99 at the default 1,000 steps); 0 keeps the last step's decoder. A
            function of the DP iterates (post-processing, no budget) that draws nothing.

    After ``fit``: ``decoder_`` (kept for sampling) and ``total_estimate_`` (the noisy row count,
    at least 1). The training loss on real rows is a statistic of the private data without noise
    and is not kept.

    Defaults (epochs 100, ``sample_rate`` 0.1: 1,000 steps; ``split_marginals`` 0.1,
    ``calibration_pool`` 8, ``loss_factor`` 4, ``decoder_average`` 0.1) were chosen on the raw
    Adult at ε = 1 and 3, each change measured beside MST (``benchmarks/RESULTS.md``, "DP-SGD quality beside MST").

    Privacy: the noisy row count and DP-SGD on the whole model for the planned steps; sampling
    from the decoder is post-processing.
    """

    name = "dpvae"
    #: few large Poisson batches: σ grows more slowly than the batch, so each step is less noisy
    default_sample_rate = 0.1

    epochs: float = 100.0
    embedding_dim: int = 16
    compress_dims: tuple[int, ...] = (64, 64)
    decompress_dims: tuple[int, ...] = (64, 64)
    learning_rate: float = 1e-2
    weight_decay: float = 1e-5
    loss_factor: float = 4.0
    numeric_sigma: float = 2.0
    split_marginals: float = 0.1
    calibration_pool: int = 8
    decoder_average: float = 0.1

    def _validate_model(self) -> None:
        check.positive_int("embedding_dim", self.embedding_dim)
        for name in ("compress_dims", "decompress_dims"):
            check_dims(name, getattr(self, name), non_empty=False)
        check.positive_finite("learning_rate", self.learning_rate)
        check.nonnegative_finite("weight_decay", self.weight_decay)
        check.positive_finite("loss_factor", self.loss_factor)
        check.positive_finite("numeric_sigma", self.numeric_sigma)
        if check.nonnegative_finite("split_marginals", self.split_marginals) > 0:
            check_share("split_marginals", self.split_marginals)
        check.positive_int("calibration_pool", self.calibration_pool)
        check_window("decoder_average", self.decoder_average)

    def _marginal_mechanism(self, transformer: TableTransformer) -> GaussianCounts | None:
        """The 1-way marginals' mechanism (one histogram per code block), or None when not asked for."""
        spans = transformer.code_spans
        if not float(self.split_marginals) > 0 or not spans:
            return None
        rho = self.zcdp_budget().rho * float(self.split_marginals)
        # One row adds one count to each of the d histograms: L2 sensitivity √d of their
        # concatenation, i.e. ρ/d apiece at sensitivity 1 (K at a user unit: a person's K rows).
        return GaussianCounts.for_rho(rho / len(spans), l2_sensitivity=transformer.schema.privacy_unit.sensitivity,
                                      label="vae_marginal")

    def _zcdp_events(self, transformer: TableTransformer) -> tuple[PrivacyEvent, ...]:
        mech = self._marginal_mechanism(transformer)
        return () if mech is None else tuple(mech.event for _ in transformer.code_spans)

    def _measure_marginals(self, transformer: TableTransformer, codes: np.ndarray, odometer: Odometer,
                           noise: NoiseSource) -> list[np.ndarray] | None:
        """DP 1-way frequencies of every code block (spends the zCDP events), or None."""
        mech = self._marginal_mechanism(transformer)
        if mech is None:
            return None
        sizes = [c.size for c in transformer.schema.columns]
        out = []
        for span in transformer.code_spans:
            noisy = mech(marginal_counts(codes, [span.column], sizes), noise=noise, odometer=odometer)
            p = np.clip(noisy.astype(np.float64), 0.0, None)
            out.append(p / p.sum() if p.sum() > 0 else np.full(span.width, 1.0 / span.width))
        return out

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

        from dpsynth.synth.dpsgd.averaging import WeightAverage, decay_for

        transformer = plan.transformer
        embedding = int(self.embedding_dim)
        model = build_vae(transformer.output_dim, tuple(self.compress_dims), embedding,
                           tuple(self.decompress_dims)).to(device)
        # made before Opacus hooks the model (a copy would copy the hooks)
        average = WeightAverage(model.decoder, decay_for(float(self.decoder_average), budget.planned))
        private, optimizer, loader = self._private_parts(
            model, matrix, plan, randomness, learning_rate=float(self.learning_rate), betas=(0.9, 0.999),
            weight_decay=float(self.weight_decay))
        sigma, factor = float(self.numeric_sigma), float(self.loss_factor)
        self.marginals_ = self._measure_marginals(transformer, codes, odometer, noise)
        self._spend_dp_sgd(plan, odometer)  # the reservation is spent from here on
        # At the user unit: Poisson over people, each row's person within the batch (summed, then clipped)
        batches = person_batches(loader, budget) if self._person_groups is not None else \
            ((rows, None) for rows in poisson_batches(loader, budget))
        for batch, people in batches:
            x = batch.to(device)
            n = x.shape[0]
            optimizer.zero_grad(set_to_none=True)
            # row i's latent code is the same for every batch size n > i (fixed-size blocks)
            local = seeded_generator(step_seeds(randomness.model, 1)[0], device)

            def latent_block(size: int, g: torch.Generator = local) -> torch.Tensor:
                return latent_noise((size, embedding), g, device)

            eps = torch.cat(blocked(n, latent_block))[:n]
            out, mu, logvar = private(x, eps)
            loss = negative_elbo(out, mu, logvar, x, transformer, sigma=sigma, loss_factor=factor)  # per sample
            dp_backward(private, optimizer, loss, people=people)
            budget.take()
            optimizer.step()
            average.update(model.decoder)
        decoder = average.model.to("cpu")
        decoder.eval()
        self.decoder_ = decoder

    def _sample_matrix(self, n_rows: int, rng: np.random.Generator) -> np.ndarray:
        marginals = getattr(self, "marginals_", None)
        if marginals is None:
            return self._decode(n_rows, rng)
        return rake_rows(lambda m: self._decode(m, rng), int(self.calibration_pool), self.transformer_.code_spans,
                         marginals, n_rows, rng)

    def _decode(self, n_rows: int, rng: np.random.Generator) -> np.ndarray:
        """The decoder's activated outputs for ``n_rows`` latent codes drawn from the prior."""
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
