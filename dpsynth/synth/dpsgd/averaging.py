"""An exponential moving average of a network's weights over its training steps (Polyak–Ruppert
averaging in its exponential form): DP-CTGAN's ``generator_average`` and DP-VAE's
``decoder_average`` keep the averaged network for sampling.

Privacy: the average is a function of the iterates the DP analysis already covers (DP-SGD's
accountant composes every noisy step, so any function of all iterates is post-processing; the
DP-CTGAN generator reads no data at all). It draws no random number, so a seeded fit trains alike
with or without it.

This module imports torch (the generators import it when a fit needs it).
"""

from __future__ import annotations

import copy
from typing import Generic, TypeVar

import torch
from torch import nn

Network = TypeVar("Network", bound=nn.Module)


def decay_for(window: float, steps: int) -> float:
    """The decay whose time constant is ``window`` (a share) of ``steps`` updates: 1 − 1/(window ·
    steps), 0 (no average) when ``window`` is 0. The initial weights then keep a share of about
    exp(−1/window) of the average, whatever the number of steps."""
    if window <= 0:
        return 0.0
    return 1.0 - 1.0 / max(1.0, float(window) * int(steps))


class WeightAverage(Generic[Network]):
    """An exponential moving average of a network's floating-point weights and buffers (its
    BatchNorm statistics), updated after each of its optimizer steps; integer buffers (BatchNorm's
    count of batches) are copied. ``model`` is the averaged copy, or the network itself when
    ``decay`` is 0. Draws nothing and reads no data."""

    def __init__(self, network: Network, decay: float):
        self.decay = float(decay)
        self.model: Network = copy.deepcopy(network) if self.decay > 0 else network

    @torch.no_grad()
    def update(self, network: Network) -> None:
        """Move the average a ``1 - decay`` step towards ``network``'s current weights."""
        if self.model is network:
            return
        mine = (*self.model.parameters(), *self.model.buffers())
        for avg, now in zip(mine, (*network.parameters(), *network.buffers()), strict=True):
            if avg.is_floating_point():
                avg.lerp_(now, 1.0 - self.decay)
            else:
                avg.copy_(now)
