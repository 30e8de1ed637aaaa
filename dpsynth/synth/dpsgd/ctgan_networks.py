"""DP-CTGAN's networks: the generator (CTGAN's residual MLP, with reference-batch normalisation
in discriminator steps) and the discriminator (an MLP without batch statistics), and the
activation of the generator's outputs. Nothing here reads data.

This module imports torch: :mod:`.ctgan` imports it when a fit or a sample needs it, so that
importing dpsynth does not import torch.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from dpsynth.synth.dpsgd.transform import TableTransformer


class ReferenceBatchNorm(nn.BatchNorm1d):
    """BatchNorm whose statistics, while ``reference`` > 0, come from the first ``reference``
    rows of its input only (a fixed-size public block of fakes, as in virtual batch
    normalisation) and are applied to every row, without touching the running statistics.

    In a discriminator step the generator runs in that mode (:data:`~.ctgan.REFERENCE_ROWS`), so
    a fake depends on its own latent code and conditional vector and on the step's reference
    block, never on how many fakes the step needs (n, the private batch size). Otherwise it is
    CTGAN's BatchNorm: train mode in generator steps (a batch of the public
    ``generator_batch_size``; the only updates of the running statistics), eval mode for sampling
    (the running statistics).
    """

    reference: int = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise ``x`` (with the reference rows' statistics while ``reference`` > 0)."""
        if not (self.training and self.reference):
            return super().forward(x)
        ref = x[:self.reference]
        return F.batch_norm(x, ref.mean(0), ref.var(0, unbiased=False), self.weight, self.bias, training=False,
                            momentum=0.0, eps=self.eps)


class Residual(nn.Module):
    """CTGAN's residual block: ReLU(BN(Linear(x))) concatenated with x."""

    def __init__(self, i: int, o: int):
        super().__init__()
        self.fc = nn.Linear(i, o)
        self.bn = ReferenceBatchNorm(o)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The block's output: ``o`` new features, then the input's."""
        return torch.cat([self.relu(self.bn(self.fc(x))), x], dim=1)


class Generator(nn.Module):
    """Latent code and cond vector → raw outputs (activated by :func:`activate`)."""

    def __init__(self, data_dim: int, cond_dim: int, embedding_dim: int, generator_dims: tuple[int, ...]):
        super().__init__()
        layers: list[nn.Module] = []
        dim = embedding_dim + cond_dim
        for width in generator_dims:
            layers.append(Residual(dim, width))
            dim += width
        layers.append(nn.Linear(dim, data_dim))
        self.seq = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Raw outputs for latent codes ``z`` and their cond vectors."""
        return self.seq(torch.cat([z, cond], dim=1))

    def set_reference(self, rows: int) -> None:
        """Normalise with the statistics of the first ``rows`` input rows (0: plain BatchNorm)."""
        for module in self.modules():
            if isinstance(module, ReferenceBatchNorm):
                module.reference = int(rows)


class Discriminator(nn.Module):
    """An MLP on the last dimension: (B, k, d) → (B, k) logits (k = 2 for a real/fake pair)."""

    def __init__(self, data_dim: int, cond_dim: int, discriminator_dims: tuple[int, ...]):
        super().__init__()
        layers: list[nn.Module] = []
        dim = data_dim + cond_dim
        for width in discriminator_dims:
            layers += [nn.Linear(dim, width), nn.LeakyReLU(0.2), nn.Dropout(0.5)]
            dim = width
        layers.append(nn.Linear(dim, 1))
        self.seq = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits "real" of rows (with their cond vectors) on the last dimension."""
        return self.seq(x).squeeze(-1)


def build_networks(data_dim: int, cond_dim: int, embedding_dim: int, generator_dims: tuple[int, ...],
                   discriminator_dims: tuple[int, ...]) -> tuple[Generator, Discriminator]:
    """(generator, discriminator) for rows of ``data_dim`` and cond vectors of ``cond_dim``, built in
    that order (their initial parameters come from torch's global generator)."""
    return (Generator(data_dim, cond_dim, embedding_dim, generator_dims),
            Discriminator(data_dim, cond_dim, discriminator_dims))


def activate(raw: torch.Tensor, transformer: TableTransformer, *, gumbel: bool) -> torch.Tensor:
    """tanh on numeric values; Gumbel-softmax (τ = 0.2, as CTGAN) or softmax on one-hot blocks."""
    parts = []
    for span in transformer.spans:
        block = raw[:, span.start:span.stop]
        if span.activation == "tanh":
            parts.append(torch.tanh(block))
        else:
            parts.append(F.gumbel_softmax(block, tau=0.2) if gumbel else torch.softmax(block, dim=1))
    return torch.cat(parts, dim=1)
