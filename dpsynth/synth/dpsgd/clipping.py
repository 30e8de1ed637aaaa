"""Per-sample gradient clipping of DP-SGD: the clipping modes (:data:`CLIPPING`), the fused
clipping of models of linear layers (:class:`FusedLinearClipping`), and :func:`dp_backward`, the
backward pass of a DP step that leaves Σ_i clip_C(∇ loss_i) (or the per-sample gradients, with
Opacus's hooks) for the DP optimizer, which then adds the noise.

Privacy: this is where the sensitivity C of a step comes from: each sample's whole gradient (all
parameters) is clipped to norm C, so adding or removing a sample moves the sum by at most C. At
the user unit (``people`` given), the clipped unit is a PERSON: :func:`sum_per_person` replaces
the per-sample gradients by each person's sum over their rows, and the optimizer clips those, so
adding or removing a person (up to K rows) moves the sum by at most C, not K·C.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from dpsynth.exceptions import PrivacyAccountingError

if TYPE_CHECKING:
    import torch

#: How per-sample gradients are clipped; all give the same clipped sum (see :func:`dp_backward`).
CLIPPING = ("fused", "ghost", "hooks")


class FusedLinearClipping:
    """Per-sample clipping for models whose every trainable parameter is a ``torch.nn.Linear``'s
    weight or bias, each layer used once per forward pass, with no interaction between the
    samples of a batch (no batch normalisation): our discriminator and VAE.

    For a linear layer with inputs a_i (B × [T] × in) and output gradients b_i (B × [T] × out),
    sample i's gradient is g_i = Σ_t b_it a_itᵀ (bias: Σ_t b_it), so

    * ‖g_i‖² = Σ_{t,s} (a_it·a_is)(b_it·b_is) — ghost clipping's norm (Li et al. 2022), here from
      ONE backward pass that computes only the b's (``torch.autograd.grad`` to the layer outputs,
      no parameter gradients);
    * the clipped sum Σ_i c_i g_i with c_i = min(1, C/(‖g_i‖ + 1e-6)) (Opacus's factor, the
      whole model's norm) is one matrix product per layer, (c ⊙ b)ᵀ a, instead of ghost
      clipping's second backward pass through the whole model.

    Same clipped sum as Opacus's hooks and ghost clipping (tests compare them); the optimizer
    (Opacus ``DPOptimizerFastGradientClipping``) then adds the noise. A model it cannot handle
    is refused when built.
    """

    def __init__(self, module: torch.nn.Module, *, max_grad_norm: float):
        import torch

        self._module = module
        self.max_grad_norm = float(max_grad_norm)
        self.layers = [m for m in module.modules() if isinstance(m, torch.nn.Linear)]
        covered = {id(p) for layer in self.layers for p in layer.parameters(recurse=False)}
        stray = [name for name, p in module.named_parameters() if p.requires_grad and id(p) not in covered]
        batch_norm = [type(m).__name__ for m in module.modules()
                      if isinstance(m, (torch.nn.modules.batchnorm._BatchNorm, torch.nn.GroupNorm))]
        if stray or batch_norm:
            raise PrivacyAccountingError(f"fused clipping needs a model of linear layers only: parameters "
                                         f"{stray} and layers {batch_norm} are not covered; use clipping='ghost'")
        self._captured: list[tuple[Any, torch.Tensor, torch.Tensor]] = []
        self._enabled = True
        for layer in self.layers:
            layer.register_forward_hook(self._capture)

    def _capture(self, layer: Any, inputs: tuple[Any, ...], output: Any) -> None:
        import torch

        if self._enabled and self._module.training and torch.is_grad_enabled():
            self._captured.append((layer, inputs[0].detach(), output))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """The module's forward pass (a fresh capture of the linear layers' inputs and outputs)."""
        self._captured = []
        return self._module(*args, **kwargs)

    def parameters(self) -> Iterator[Any]:
        """The wrapped module's parameters (what the DP optimizer updates)."""
        return self._module.parameters()

    def disable_hooks(self) -> None:
        """Stop capturing (forward passes that are not DP steps: DP-CTGAN's generator steps)."""
        self._enabled = False

    def enable_hooks(self) -> None:
        """Capture again (the next DP step)."""
        self._enabled = True

    def clipped_sum(self, loss_per_sample: torch.Tensor) -> None:
        """Σ_i clip_C(∇ loss_i) into each parameter's ``grad`` (``loss_i`` depends on sample i only)."""
        import torch

        captured, self._captured = self._captured, []
        seen = [layer for layer, _, _ in captured]
        if len(set(map(id, seen))) != len(seen):
            raise PrivacyAccountingError("fused clipping: a linear layer was used twice in one forward pass")
        n = loss_per_sample.shape[0]
        if n == 0 or not captured:
            _zero_grads(self.layers)
            return
        # allow_unused: a layer whose output the loss does not use gets None
        grads: tuple[torch.Tensor | None, ...] = torch.autograd.grad(
            loss_per_sample.sum(), [out for _, _, out in captured], allow_unused=True)
        norms_sq = torch.zeros(n, device=loss_per_sample.device, dtype=loss_per_sample.dtype)
        parts = []
        for (layer, a, _), b in zip(captured, grads, strict=True):
            if b is None:
                b = torch.zeros((n, *a.shape[1:-1], layer.out_features), device=a.device, dtype=a.dtype)
            a3 = a.reshape(n, -1, a.shape[-1])
            b3 = b.reshape(n, -1, b.shape[-1])
            _add_squared_norms(norms_sq, layer, a3, b3)
            parts.append((layer, a3, b3))
        coef = (self.max_grad_norm / (norms_sq.clamp(min=0).sqrt() + 1e-6)).clamp(max=1.0)
        for layer, a3, b3 in parts:
            scaled = b3 * coef.view(n, 1, 1)
            layer.weight.grad = torch.einsum("nto,nti->oi", scaled, a3)
            if layer.bias is not None:
                layer.bias.grad = scaled.sum((0, 1))
        captured_ids = {id(layer) for layer, _, _ in captured}
        _zero_grads([layer for layer in self.layers if id(layer) not in captured_ids])  # unused: no gradient


def _add_squared_norms(norms_sq: torch.Tensor, layer: Any, a3: torch.Tensor, b3: torch.Tensor) -> None:
    """Add each sample's squared gradient norm of one linear layer (weight, then bias) to ``norms_sq``:
    Σ_{t,s} (a_it·a_is)(b_it·b_is), and ‖Σ_t b_it‖² for the bias."""
    import torch

    if a3.shape[1] == 1:
        norms_sq += (a3[:, 0] * a3[:, 0]).sum(1) * (b3[:, 0] * b3[:, 0]).sum(1)
    else:
        norms_sq += (torch.bmm(a3, a3.transpose(1, 2)) * torch.bmm(b3, b3.transpose(1, 2))).sum((1, 2))
    if layer.bias is not None:
        bias_sum = b3.sum(1)
        norms_sq += (bias_sum * bias_sum).sum(1)


def _zero_grads(layers: list[Any]) -> None:
    """Zero gradients for the parameters of ``layers`` (an empty batch, or a layer the step did not use)."""
    import torch

    for layer in layers:
        for p in layer.parameters(recurse=False):
            p.grad = torch.zeros_like(p)


def sum_per_person(optimizer: Any, people: torch.Tensor, n_people: int) -> None:
    """Replace each parameter's per-sample gradients (Opacus hooks, ``p.grad_sample``: one per row)
    by their sums per person: ``p.grad_sample[b] = Σ_{i: people[i] = b} g_i`` for b < ``n_people``.

    The DP optimizer then clips each PERSON's summed gradient to norm C over all parameters (its
    per-sample norm is taken over the first dimension of ``grad_sample``), sums and adds the noise.
    Exact (no approximation): a person's gradient is the sum of their rows' gradients because the
    loss is a sum of per-row terms.
    """
    import torch

    index = people.to(torch.int64)
    for p in optimizer.params:
        per_row = optimizer._get_flat_grad_sample(p)  # the one hooks' tensor of this step
        if per_row.shape[0] != index.shape[0]:
            raise PrivacyAccountingError(f"{per_row.shape[0]} per-sample gradients for {index.shape[0]} rows")
        per_person = torch.zeros((n_people, *per_row.shape[1:]), device=per_row.device, dtype=per_row.dtype)
        p.grad_sample = per_person.index_add_(0, index.to(per_row.device), per_row)


def dp_backward(private: Any, optimizer: Any, loss_per_sample: torch.Tensor,
                people: torch.Tensor | None = None) -> None:
    """Backward pass of a DP step: leaves what the DP optimizer needs before its noise.

    ``loss_per_sample`` has one entry per sample of the Poisson batch (the loss of sample i
    depends on sample i only). Fused clipping: see :class:`FusedLinearClipping`. With ghost
    clipping: a first backward of the sum yields each sample's gradient norm ‖g_i‖ (no
    per-sample gradient is stored), and a second backward of Σ_i min(1, C/‖g_i‖)·loss_i leaves
    Σ_i clip_C(g_i) in ``p.grad``; the optimizer then only adds noise. With hooks: the
    per-sample gradients are stored and the optimizer clips them. An empty batch gives zero
    gradients (the step is then pure noise, as the analysis assumes).

    ``people`` (the user unit): sample i's person within the batch (0 .. B-1, every number used);
    it needs Opacus's hooks (per-sample gradients), which :func:`sum_per_person` turns into one
    gradient per person for the optimizer to clip.
    """
    import torch

    if loss_per_sample.dim() != 1:
        raise PrivacyAccountingError(f"per-sample loss must be a vector, got shape {tuple(loss_per_sample.shape)}")
    if people is not None:
        from opacus.grad_sample import GradSampleModule, GradSampleModuleFastGradientClipping

        if not isinstance(private, GradSampleModule) or isinstance(private, GradSampleModuleFastGradientClipping):
            raise PrivacyAccountingError("per-person clipping needs per-sample gradients (clipping 'hooks')")
        if people.shape != loss_per_sample.shape:
            raise PrivacyAccountingError(f"{people.shape[0]} person labels for {loss_per_sample.shape[0]} samples")
        n_people = int(people.max()) + 1 if people.numel() else 0
        loss_per_sample.sum().backward()
        sum_per_person(optimizer, people, n_people)
        return
    if isinstance(private, FusedLinearClipping):
        private.clipped_sum(loss_per_sample)
        return
    from opacus.grad_sample import GradSampleModuleFastGradientClipping

    if not isinstance(private, GradSampleModuleFastGradientClipping):
        loss_per_sample.sum().backward()
        return
    if loss_per_sample.shape[0] == 0:  # nothing to clip: forget the forward pass's activations
        for module in private.modules():
            if hasattr(module, "activations"):
                module.activations = []
            if hasattr(module, "max_batch_len"):
                del module.max_batch_len
        for p in optimizer.params:
            p._forward_counter = 0
            p.grad = torch.zeros_like(p)
        return
    from opacus.utils.fast_gradient_clipping_utils import DPTensorFastGradientClipping

    DPTensorFastGradientClipping(private, optimizer, loss_per_sample, loss_reduction="sum").backward()

