"""The DP-SGD loop's parts: Opacus's module, optimizer and Poisson loader built for a planned run
(:func:`private_parts`), the :class:`StepBudget` that refuses a step past the plan, and the
Poisson batches (:func:`poisson_batches`) that never yield one step more.

Privacy: the noise N(0, (σ·C)²) on each step's clipped sum is drawn by Opacus's optimizer from the
fit's noise generator; the batches are Poisson samples at the PLANNED rate q, never one derived
from the private row count.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from dpsynth.exceptions import ParameterError, PrivacyAccountingError
from dpsynth.synth.dpsgd.clipping import CLIPPING, FusedLinearClipping
from dpsynth.synth.dpsgd.randomness import Randomness

if TYPE_CHECKING:
    import torch

class StepBudget:
    """Counts DP steps and refuses one past the plan (a dpsynth bug, never a user mistake)."""

    def __init__(self, planned: int):
        self.planned = planned
        self.taken = 0

    def take(self) -> None:
        """Count one DP step; refuse (:class:`~dpsynth.exceptions.PrivacyAccountingError`) one past the plan."""
        if self.taken >= self.planned:
            raise PrivacyAccountingError(f"DP-SGD would take step {self.taken + 1} of a plan of {self.planned}")
        self.taken += 1

    def remaining(self) -> int:
        """Planned steps not taken yet (0 when done)."""
        return self.planned - self.taken

    @property
    def done(self) -> bool:
        """Whether every planned step has been taken."""
        return self.remaining() <= 0


def private_parts(
    module: torch.nn.Module, matrix: torch.Tensor, *, learning_rate: float, betas: tuple[float, float],
    weight_decay: float, noise_multiplier: float, max_grad_norm: float, sample_rate: float, randomness: Randomness,
    clipping: str = "fused",
) -> tuple[Any, Any, Any]:
    """Opacus's three parts, built directly so that nothing depends on the row count.

    * a grad-sample module (``loss_reduction="sum"``: the loss is a sum over the batch, so no
      division by a batch size derived from the private row count):
      ``clipping="fused"`` (default): :class:`FusedLinearClipping` (models of linear layers:
      ghost norms and the clipped sum from one backward pass);
      ``clipping="ghost"``: ``GradSampleModuleFastGradientClipping`` with ghost
      clipping (Li et al. 2022; Opacus's ``grad_sample_mode="ghost"``): per-sample gradient
      NORMS from activations and backprops, without materialising per-sample gradients, then a
      second backward pass of the loss reweighted by each sample's clipping factor;
      ``clipping="hooks"``: ``GradSampleModule`` (per-sample gradients materialised, clipped by
      the optimizer);
    * a DP optimizer around Adam (``DPOptimizerFastGradientClipping`` for fused and ghost clipping,
      ``DPOptimizer`` for hooks): adds N(0, (σ·C)²) from ``randomness.noise`` to the sum of the
      clipped per-sample gradients, with Opacus's floating-point-attack hardening
      (``secure_mode=True`` in the optimizer: noise as a sum of 4 draws);
    * ``DPDataLoader`` with the PLANNED ``sample_rate`` (``PrivacyEngine.make_private`` would take
      q = 1/len(loader), a function of the private row count) and ``randomness.sampling``.

    This is what ``make_private(..., poisson_sampling=True, grad_sample_mode=...)`` assembles,
    minus that. Both modes clip each sample's whole gradient (all parameters) to norm C; the
    privacy analysis is the same. Gradients must come from :func:`dp_backward`.
    """
    import torch
    from opacus.data_loader import DPDataLoader
    from opacus.validators import ModuleValidator

    if clipping not in CLIPPING:
        raise ParameterError(f"clipping ({clipping!r}) must be one of: {', '.join(CLIPPING)}")
    errors = ModuleValidator.validate(module, strict=False)
    if errors:  # our own models: a bug, not a user mistake
        raise PrivacyAccountingError(f"model not compatible with per-sample gradients: {errors}")
    adam = torch.optim.Adam(module.parameters(), lr=learning_rate, betas=betas, weight_decay=weight_decay)
    if clipping in ("fused", "ghost"):
        from opacus.grad_sample import GradSampleModuleFastGradientClipping
        from opacus.optimizers import DPOptimizerFastGradientClipping

        private: Any = FusedLinearClipping(module, max_grad_norm=max_grad_norm) if clipping == "fused" else \
            GradSampleModuleFastGradientClipping(module, batch_first=True, loss_reduction="sum",
                                                 max_grad_norm=max_grad_norm, use_ghost_clipping=True)
        optimizer: Any = DPOptimizerFastGradientClipping(
            adam, noise_multiplier=noise_multiplier, max_grad_norm=max_grad_norm, expected_batch_size=None,
            loss_reduction="sum", generator=randomness.noise, secure_mode=True,
        )
    else:
        from opacus.grad_sample import GradSampleModule
        from opacus.optimizers import DPOptimizer

        private = GradSampleModule(module, batch_first=True, loss_reduction="sum")
        optimizer = DPOptimizer(
            adam, noise_multiplier=noise_multiplier, max_grad_norm=max_grad_norm, expected_batch_size=None,
            loss_reduction="sum", generator=randomness.noise, secure_mode=True,
        )
    loader = DPDataLoader(torch.utils.data.TensorDataset(matrix), sample_rate=sample_rate,
                          generator=randomness.sampling)
    return private, optimizer, loader


def poisson_batches(loader: Any, budget: StepBudget) -> Iterator[torch.Tensor]:
    """Poisson batches (possibly empty) until the planned steps are taken; never one more."""
    while budget.remaining() > 0:  # a call, not the ``done`` property: the loop body changes it
        for (batch,) in loader:
            if budget.remaining() <= 0:
                return
            yield batch

