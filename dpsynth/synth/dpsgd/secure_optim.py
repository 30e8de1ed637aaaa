"""Opacus's DP optimizers with their noise drawn from a cryptographically secure source
(:class:`~.secure_noise.SecureRandom`) instead of a torch generator.

:class:`SecureDPOptimizer` (per-sample gradients, Opacus's hooks) and
:class:`SecureDPOptimizerFastGradientClipping` (fused and ghost clipping) replace only
``add_noise``; everything else (clipping, accumulation, the step, the processed-flag checks) is
Opacus's. Their ``add_noise`` is Opacus's own line by line except the draw:
``_check_processed_flag(p.summed_grad)``, the noise N(0, (σ·C)²) shaped like ``p.summed_grad``
(``secure_noise.SecureRandom.gaussian_like``: Opacus's ``secure_mode`` mitigation, a sum of four
float64 normals over 2), ``p.grad = (p.summed_grad + noise).view_as(p)``,
``_mark_as_processed(p.summed_grad)``. Opacus's ``_generate_noise`` (torch's generators) is never
called. Imported when a fit builds its parts (it imports Opacus and torch).

Privacy: this is where DP-SGD's privacy noise is added (σ = ``noise_multiplier``, C =
``max_grad_norm``: the sensitivity of a step's clipped sum).
"""

from __future__ import annotations

from typing import Any

from opacus.optimizers import DPOptimizer, DPOptimizerFastGradientClipping
from opacus.optimizers.optimizer import _check_processed_flag, _mark_as_processed

from dpsynth.synth.dpsgd.secure_noise import SecureRandom


def _add_secure_noise(optimizer: Any, source: SecureRandom, std: float) -> None:
    """Opacus's ``add_noise`` loop with the draw from ``source``."""
    for p in optimizer.params:
        _check_processed_flag(p.summed_grad)
        noise = source.gaussian_like(p.summed_grad, std)
        p.grad = (p.summed_grad + noise).view_as(p)
        _mark_as_processed(p.summed_grad)


class SecureDPOptimizer(DPOptimizer):
    """Opacus's ``DPOptimizer`` whose noise comes from ``noise_source`` (a :class:`SecureRandom`)."""

    def __init__(self, optimizer: Any, *, noise_source: SecureRandom, **kwargs: Any):
        # generator=None: nothing of Opacus's draws here (add_noise is replaced); secure_mode=True
        # records that the same floating-point mitigation is applied by the source.
        super().__init__(optimizer, generator=None, secure_mode=True, **kwargs)
        self.noise_source = noise_source

    def add_noise(self) -> None:
        """Add N(0, (σ·C)²) from the secure source to each parameter's clipped sum (into ``p.grad``)."""
        _add_secure_noise(self, self.noise_source, self.noise_multiplier * self.max_grad_norm)


class SecureDPOptimizerFastGradientClipping(DPOptimizerFastGradientClipping):
    """Opacus's ``DPOptimizerFastGradientClipping`` whose noise comes from ``noise_source``."""

    def __init__(self, optimizer: Any, *, noise_source: SecureRandom, **kwargs: Any):
        super().__init__(optimizer, generator=None, secure_mode=True, **kwargs)
        self.noise_source = noise_source

    def add_noise(self) -> None:
        """As Opacus's: σ is ``_adjusted_noise_multiplier`` when set (adaptive clipping), else ``noise_multiplier``."""
        multiplier = getattr(self, "_adjusted_noise_multiplier", self.noise_multiplier)
        _add_secure_noise(self, self.noise_source, multiplier * self.max_grad_norm)
