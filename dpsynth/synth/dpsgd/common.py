"""What the DP-SGD generators share: the public-schema transformer, randomness, the DP-SGD loop
and the estimator plumbing (plan, reservation, post-training accounting).

Privacy road of a fit (see ``docs/dpsgd.md``):

1. ``plan(schema)`` (public information only): the sample rate q, the planned steps
   T = ⌈epochs / q⌉, the zCDP events (the noisy row count, ``count_split`` of ρ; DP frequencies
   of the conditional vectors), and the noise multiplier σ calibrated for the target (ε, δ)
   given them (PRV, with the RDP curve that the ledger reserves, composed with the zCDP events,
   fitting the target too; :mod:`.accounting`).
2. ``fit``: the data is checked against the schema, the whole plan is reserved in the ledger,
   and only then is the row count measured with discrete Gaussian noise (``total_estimate_``)
   and the table transformed (with public bounds and levels only) and trained on:
   Poisson batches (Opacus ``DPDataLoader``), per-sample gradients clipped to ``max_grad_norm``
   (Opacus ``GradSampleModule``), Gaussian noise σ·C on their sum (Opacus ``DPOptimizer``).
   The DP-SGD event is spent from the reservation before the first step, and the loop cannot
   take more than T steps. A step's model randomness (latent codes, conditional vectors, fakes)
   is drawn in fixed-size blocks from per-step seeds (:func:`blocked`, :func:`step_seeds`), so
   adding a row to a batch adds one per-sample term and changes no other.
3. After training, Opacus's own ε for the steps actually taken (fresh RDP and PRV accountants)
   is checked against the reserved curve and recorded in the ledger's completion entry.

Noise of DP-SGD is drawn by Opacus, not by :mod:`dpsynth.mechanisms` (its exact samplers work on
integer counts, not gradients); ``tests/privacy/test_no_float_noise.py`` holds this package to an
explicit policy: the only float sampler it may call is :func:`latent_noise` (the generators'
and the VAE's latent codes, which are not privacy noise).
"""

from __future__ import annotations

import contextlib
import math
import secrets
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd

from dpsynth import _validation as check
from dpsynth.exceptions import InsecureNoiseWarning, ParameterError, PrivacyAccountingError, SchemaError
from dpsynth.mechanisms import GaussianCounts
from dpsynth.privacy.accounting import composed_epsilon
from dpsynth.privacy.events import PrivacyEvent, total_rdp, total_rho
from dpsynth.privacy.odometer import Odometer
from dpsynth.schema.encode import numeric_values
from dpsynth.schema.schema import Column, Schema, from_units
from dpsynth.synth.base import Synthesizer
from dpsynth.synth.dpsgd import accounting

if TYPE_CHECKING:
    import torch

    from dpsynth.mechanisms import NoiseSource

#: Used when neither ``sample_rate`` nor ``batch_size`` is given.
DEFAULT_SAMPLE_RATE = 0.01
#: Default share of ρ = approx_dp_to_rho(ε, δ) for the noisy row count (σ ≈ 45 rows at ε = 1, δ = 1e-6).
DEFAULT_COUNT_SPLIT = 0.01
SUPPORTED_KINDS = ("categorical", "integer", "continuous", "datetime")


class InsecureRNGWarning(InsecureNoiseWarning):
    """DP-SGD noise comes from a non-cryptographic generator (torchcsprng is not installed)."""


def _require_torch() -> Any:
    try:
        import opacus  # noqa: F401
        import torch
    except ImportError:  # pragma: no cover - depends on the install
        raise ParameterError(
            "the DP-SGD synthesizers need PyTorch and Opacus: pip install 'dpsynth[dpsgd]' "
            "(on a CPU-only machine: pip install torch==2.13.0 first)"
        ) from None
    return torch


def secure_rng_available() -> bool:
    """Whether Opacus's ``secure_mode`` can run here (it needs the ``torchcsprng`` package)."""
    try:
        import torchcsprng  # noqa: F401
    except ImportError:
        return False
    return True


# ---------------------------------------------------------------------------------------------
# the public-schema transformer
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Span:
    """A block of the transformed row, by ``role``:

    * ``code`` (softmax): one-hot of the column's codes — a categorical column's levels (with
      ``other`` and missing), or a binned numeric column's public bins (with missing);
    * ``position`` (tanh): a binned numeric value's place inside its bin, scaled to [-1, 1];
    * ``value`` (tanh): a numeric value scaled to [-1, 1] with the declared bounds;
    * ``missing`` (softmax): present/missing flag of a nullable ``value`` column.
    """

    column: int
    activation: str
    start: int
    width: int
    role: str = "code"

    @property
    def stop(self) -> int:
        return self.start + self.width


#: how numeric columns are modelled (see :class:`TableTransformer`)
NUMERIC_ENCODINGS = ("bins", "scaled")


class TableTransformer:
    """Rows ↔ model vectors, from the public schema only (nothing is fitted on the data).

    * categorical: one-hot over the column's codes (declared levels, the ``other`` level, the
      missing code of a nullable column);
    * integer, continuous, datetime, with ``numeric="bins"`` (default) and at most ``max_levels``
      bins: one-hot over the column's PUBLIC bins (the schema's declared edges, the same codes the
      marginal synthesizers use; a nullable column's missing code included), plus the value's
      position inside its bin scaled to [-1, 1]. This is the public-schema stand-in for CTGAN's
      mode-specific normalisation (a Gaussian mixture fitted to the private data, which we do not
      use): multi-modal and spiky columns (capital gains: mostly 0) are modelled by their bins;
    * otherwise (``numeric="scaled"``, or more bins than ``max_levels``): the value clamped to
      the declared bounds and scaled linearly to [-1, 1]; a nullable one has a two-way
      present/missing one-hot as well (value 0 when missing).

    Raises:
        SchemaError: a column kind it cannot model, or a categorical column wider than
            ``max_levels`` (all problems at once).
    """

    def __init__(self, schema: Schema, *, max_levels: int, synthesizer: str, numeric: str = "bins"):
        if numeric not in NUMERIC_ENCODINGS:
            raise ParameterError(f"numeric_encoding ({numeric!r}) must be one of: {', '.join(NUMERIC_ENCODINGS)}")
        problems = []
        for col in schema.columns:
            if col.kind not in SUPPORTED_KINDS:
                problems.append(f"column {col.name!r} is of kind {col.kind!r}, which {synthesizer} cannot model "
                                f"(it models {', '.join(SUPPORTED_KINDS)})")
            elif col.kind == "categorical" and col.size > max_levels:
                problems.append(f"column {col.name!r} has {col.size} levels, more than {synthesizer} models one-hot "
                                f"(max_levels={max_levels}); merge rare levels into an 'other' level")
            elif col.kind != "categorical" and (col.bounds is None or not col.bounds[0] < col.bounds[1]):
                problems.append(f"column {col.name!r} needs bounds low < high for {synthesizer}")
        if problems:
            raise SchemaError("; ".join(problems))
        self.schema = schema
        self.numeric = numeric
        spans: list[Span] = []
        start = 0
        for j, col in enumerate(schema.columns):
            if col.kind == "categorical":
                spans.append(Span(j, "softmax", start, col.size, "code"))
                start += col.size
            elif numeric == "bins" and len(col.edges) >= 2 and col.size <= max_levels:
                spans.append(Span(j, "softmax", start, col.size, "code"))
                spans.append(Span(j, "tanh", start + col.size, 1, "position"))
                start += col.size + 1
            else:
                spans.append(Span(j, "tanh", start, 1, "value"))
                start += 1
                if col.nullable:
                    spans.append(Span(j, "softmax", start, 2, "missing"))
                    start += 2
        self.spans = tuple(spans)
        self.output_dim = start
        #: the spans that conditional vectors choose from (one per categorical column)
        self.categorical_spans = tuple(s for s in spans if schema.columns[s.column].kind == "categorical")
        #: every one-hot code block: categorical levels and binned numeric columns' public bins
        self.code_spans = tuple(s for s in spans if s.role == "code")

    def transform(self, data: pd.DataFrame, codes: np.ndarray) -> np.ndarray:
        """The model matrix (float32, rows × ``output_dim``) of a table already checked by ``encode``."""
        out = np.zeros((len(codes), self.output_dim), dtype=np.float32)
        rows = np.arange(len(codes))
        for span in self.spans:
            col = self.schema.columns[span.column]
            if span.role == "code":
                out[rows, span.start + codes[:, span.column]] = 1.0
            elif span.role == "missing":  # present / missing flag of a nullable numeric column
                out[rows, span.start + (codes[:, span.column] == col.missing_code).astype(np.int64)] = 1.0
            else:
                assert col.bounds is not None
                values = numeric_values(data[col.name], col, self.schema)  # clamped to the public bounds
                missing = np.isnan(values)
                if span.role == "value":
                    low, high = np.full(len(values), col.bounds[0]), np.full(len(values), col.bounds[1])
                else:  # position inside the value's public bin
                    edges = np.asarray(col.edges, dtype=np.float64)
                    b = np.clip(codes[:, span.column], 0, len(edges) - 2)
                    low, high = edges[b], edges[b + 1]
                filled = np.nan_to_num(values, nan=0.0)
                scaled = np.clip(2.0 * (filled - low) / (high - low) - 1.0, -1.0, 1.0)
                out[:, span.start] = np.where(missing, 0.0, scaled)
        return out

    def inverse(self, matrix: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
        """Values for model outputs (post-processing): ``softmax`` spans hold probabilities and are
        sampled (or are one-hot already), ``tanh`` spans hold values in [-1, 1]."""
        n = len(matrix)
        picked: dict[tuple[int, str], np.ndarray] = {}
        for span in self.spans:
            block = matrix[:, span.start:span.stop]
            if span.activation == "tanh":
                picked[(span.column, span.role)] = np.clip(block[:, 0], -1.0, 1.0)
            else:
                picked[(span.column, span.role)] = _sample_rows(block, rng)
        cols: dict[str, pd.Series] = {}
        for j, col in enumerate(self.schema.columns):
            if col.kind == "categorical":
                cols[col.name] = _decode_categorical(col, picked[(j, "code")])
            elif (j, "code") in picked:  # binned: the bin, then the position inside it
                code = picked[(j, "code")]
                missing = (code == col.missing_code) if col.nullable else np.zeros(n, dtype=bool)
                edges = np.asarray(col.edges, dtype=np.float64)
                b = np.clip(code, 0, len(edges) - 2)
                cols[col.name] = _decode_numeric(col, picked[(j, "position")], missing, edges[b], edges[b + 1],
                                                 last=b == len(edges) - 2)
            else:
                missing = picked.get((j, "missing"), np.zeros(n, dtype=np.int64)) == 1
                assert col.bounds is not None
                low, high = col.bounds
                cols[col.name] = _decode_numeric(col, picked[(j, "value")], missing, np.full(n, float(low)),
                                                 np.full(n, float(high)), last=np.ones(n, dtype=bool))
        return pd.DataFrame(cols)


def _sample_rows(probabilities: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One index per row, drawn from the row's (unnormalised, non-negative) probabilities."""
    p = np.clip(np.nan_to_num(probabilities.astype(np.float64), nan=0.0), 0.0, None)
    total = p.sum(axis=1, keepdims=True)
    p = np.where(total > 0, p / np.where(total > 0, total, 1.0), 1.0 / p.shape[1])
    u = rng.random((len(p), 1))
    return np.minimum((np.cumsum(p, axis=1) < u).sum(axis=1), p.shape[1] - 1)


def _decode_categorical(col: Column, codes: np.ndarray) -> pd.Series:
    values = [*col.levels, *([col.other] if col.other is not None else [])]
    missing = (codes == col.missing_code) if col.nullable else np.zeros(len(codes), dtype=bool)
    levels = np.empty(len(values), dtype=object)
    levels[:] = values
    vals = levels[np.where(missing, 0, codes)]
    vals[missing] = None
    if all(isinstance(v, int) for v in values) and not missing.any():
        return pd.Series(vals.astype(np.int64))
    return pd.Series(vals, dtype=object)


def _decode_numeric(col: Column, scaled: np.ndarray, missing: np.ndarray, low: np.ndarray, high: np.ndarray,
                    last: np.ndarray) -> pd.Series:
    """Values from positions in [-1, 1] inside [low, high] per row (a bin ``[low, high)``, or the
    bounds; ``last`` marks rows whose interval holds ``high`` itself)."""
    assert col.bounds is not None
    values = np.clip(low + (scaled.astype(np.float64) + 1.0) / 2.0 * (high - low), low, high)
    if col.kind == "continuous":
        values[missing] = np.nan
        return pd.Series(values)
    # whole numbers inside the interval: [⌈low⌉, ⌈high⌉ − 1], or up to ⌊high⌋ where it holds high
    top = np.where(last, np.floor(high), np.ceil(high) - 1)
    bottom = np.ceil(low)
    top = np.maximum(top, bottom)
    ints = np.clip(np.rint(values), bottom, top)
    ints = np.clip(ints, math.ceil(col.bounds[0]), math.floor(col.bounds[1])).astype(np.int64)
    if col.kind == "datetime":
        assert col.resolution is not None
        text = from_units(ints, col.resolution)
        text[missing] = None
        return pd.Series(text, dtype=object)
    series = pd.Series(ints, dtype="Int64")
    series[missing] = pd.NA
    return series if missing.any() else series.astype(np.int64)


# ---------------------------------------------------------------------------------------------
# randomness
# ---------------------------------------------------------------------------------------------


def latent_noise(shape: tuple[int, ...], generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """Standard normal latent codes (the generator's input, the VAE's reparameterisation).

    Not privacy noise: it never protects data, and the DP guarantee does not depend on it. This
    is the one float sampler ``tests/privacy/test_no_float_noise.py`` allows in this package.
    """
    import torch

    return torch.randn(shape, generator=generator, device=device)


#: Rows per block of a DP step's model randomness (latent codes, conditional vectors, fakes): a
#: public constant, a multiple of 16 (torch's vectorised normal sampler works in chunks of 16).
RANDOM_BLOCK_ROWS = 256


def blocked(n: int, draw: Callable[[int], Any]) -> list[Any]:
    """``draw(RANDOM_BLOCK_ROWS)`` for ⌈n / RANDOM_BLOCK_ROWS⌉ blocks (at least one), in order.

    The randomness a DP step needs for its first k row slots is then the same whatever the
    private batch size n > k: every draw has a public, fixed size (a single draw of size n
    would not do: torch's normal sampler, for one, redraws the tail of a tensor whose size is
    not a multiple of 16, and a multinomial draw changes method with its size). The caller
    keeps the first n rows of the concatenated blocks.

    Privacy: none by itself; it is what makes the coupling of neighbouring batches (row slots
    1..n identical, one slot added) hold exactly, see ``docs/dpsgd.md``.
    """
    blocks = max(1, -(-int(n) // RANDOM_BLOCK_ROWS))
    return [draw(RANDOM_BLOCK_ROWS) for _ in range(blocks)]


def step_seeds(generator: torch.Generator, count: int) -> list[int]:
    """``count`` seeds for one DP step's model randomness, drawn from the fit's model generator.

    A step draws a fixed number of seeds, whatever its batch size, so the model generator's
    stream (and everything drawn from it later: the generator steps of DP-CTGAN, the next
    steps) never depends on a private batch size. Privacy: model randomness, not privacy noise.
    """
    import torch

    return [int(s) for s in torch.randint(0, 2**62, (count,), generator=generator, device=generator.device).tolist()]


def seeded_generator(seed: int, device: Any) -> torch.Generator:
    """A fresh torch generator on ``device`` seeded with ``seed`` (see :func:`step_seeds`).

    Privacy: model randomness, not privacy noise (never a DP-SGD noise generator).
    """
    import torch

    return torch.Generator(device=device).manual_seed(int(seed))


@dataclass
class Randomness:
    """The generators of one fit: Poisson sampling (CPU), DP noise and model randomness (device)."""

    sampling: Any
    noise: Any
    model: Any
    secure: bool
    source: str


def make_randomness(device: Any, *, insecure_seed: int | None, secure_mode: bool | None) -> Randomness:
    """Generators for a fit.

    * ``secure_mode`` True or None with ``torchcsprng`` installed: Opacus's secure generator
      (``/dev/urandom``) for sampling and noise; ``secure`` is True.
    * otherwise torch's own generators, seeded from ``insecure_seed`` (tests) or from the OS's
      CSPRNG (``secrets``), never from torch's fixed default seed; ``secure`` is False and a loud
      :class:`InsecureRNGWarning` says so (unless the seed already warned).
    """
    import torch

    if insecure_seed is not None:
        seed = int(insecure_seed)
        sampling = torch.Generator().manual_seed(seed)
        noise = torch.Generator(device=device).manual_seed(seed + 1)
        model = torch.Generator(device=device).manual_seed(seed + 2)
        return Randomness(sampling, noise, model, False, f"seeded (insecure_seed={seed})")
    model = torch.Generator(device=device).manual_seed(secrets.randbits(63))
    if secure_mode is not False and secure_rng_available():
        import torchcsprng as csprng

        gen = csprng.create_random_device_generator("/dev/urandom")
        return Randomness(gen, gen, model, True, "torchcsprng /dev/urandom")
    if secure_mode is None:
        warnings.warn(
            "DP-SGD noise is drawn from torch's non-cryptographic generator, seeded from the OS: Opacus's "
            "secure_mode needs the torchcsprng package, which is not installed (it has no build for this "
            "Python/PyTorch); the release records secure_noise: false",
            InsecureRNGWarning,
            stacklevel=4,
        )
    sampling = torch.Generator().manual_seed(secrets.randbits(63))
    noise = torch.Generator(device=device).manual_seed(secrets.randbits(63))
    return Randomness(sampling, noise, model, False, "torch generator seeded from os.urandom")


@contextlib.contextmanager
def seeded_torch(generator: torch.Generator) -> Iterator[None]:
    """Seed torch's global generators (model initialisation, dropout, Gumbel) from ``generator``
    for the duration of a fit, and restore them afterwards."""
    import torch

    seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device).item())
    devices = [torch.cuda.current_device()] if generator.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def resolve_device(device: str) -> Any:
    import torch

    if device not in ("auto", "cpu", "cuda") and not (isinstance(device, str) and device.startswith("cuda:")):
        raise ParameterError(f"device ({device!r}) must be 'auto', 'cpu' or 'cuda'")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ParameterError(f"device ({device!r}) must be available: this PyTorch sees no CUDA device")
    return torch.device(device)


# ---------------------------------------------------------------------------------------------
# the DP-SGD loop
# ---------------------------------------------------------------------------------------------


class StepBudget:
    """Counts DP steps and refuses one past the plan (a dpsynth bug, never a user mistake)."""

    def __init__(self, planned: int):
        self.planned = planned
        self.taken = 0

    def take(self) -> None:
        if self.taken >= self.planned:
            raise PrivacyAccountingError(f"DP-SGD would take step {self.taken + 1} of a plan of {self.planned}")
        self.taken += 1

    @property
    def done(self) -> bool:
        return self.taken >= self.planned


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
        self._captured = []
        return self._module(*args, **kwargs)

    def parameters(self) -> Iterator[Any]:
        return self._module.parameters()

    def disable_hooks(self) -> None:
        self._enabled = False

    def enable_hooks(self) -> None:
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
            for layer in self.layers:
                for p in layer.parameters(recurse=False):
                    p.grad = torch.zeros_like(p)
            return
        grads = torch.autograd.grad(loss_per_sample.sum(), [out for _, _, out in captured], allow_unused=True)
        norms_sq = torch.zeros(n, device=loss_per_sample.device, dtype=loss_per_sample.dtype)
        parts = []
        for (layer, a, _), b in zip(captured, grads, strict=True):
            if b is None:
                b = torch.zeros((n, *a.shape[1:-1], layer.out_features), device=a.device, dtype=a.dtype)
            a3 = a.reshape(n, -1, a.shape[-1])
            b3 = b.reshape(n, -1, b.shape[-1])
            if a3.shape[1] == 1:
                norms_sq += (a3[:, 0] * a3[:, 0]).sum(1) * (b3[:, 0] * b3[:, 0]).sum(1)
            else:
                norms_sq += (torch.bmm(a3, a3.transpose(1, 2)) * torch.bmm(b3, b3.transpose(1, 2))).sum((1, 2))
            if layer.bias is not None:
                bias_sum = b3.sum(1)
                norms_sq += (bias_sum * bias_sum).sum(1)
            parts.append((layer, a3, b3))
        coef = (self.max_grad_norm / (norms_sq.clamp(min=0).sqrt() + 1e-6)).clamp(max=1.0)
        for layer, a3, b3 in parts:
            scaled = b3 * coef.view(n, 1, 1)
            layer.weight.grad = torch.einsum("nto,nti->oi", scaled, a3)
            if layer.bias is not None:
                layer.bias.grad = scaled.sum((0, 1))
        captured_ids = {id(layer) for layer, _, _ in captured}
        for layer in self.layers:  # layers the forward pass did not use: no gradient
            if id(layer) not in captured_ids:
                for p in layer.parameters(recurse=False):
                    p.grad = torch.zeros_like(p)


def private_parts(
    module: torch.nn.Module, matrix: torch.Tensor, *, learning_rate: float, betas: tuple[float, float],
    weight_decay: float, noise_multiplier: float, max_grad_norm: float, sample_rate: float, randomness: Randomness,
    clipping: str = "fused",
) -> tuple[Any, Any, Any]:
    """Opacus's three parts, built directly so that nothing depends on the row count:

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


def dp_backward(private: Any, optimizer: Any, loss_per_sample: torch.Tensor) -> None:
    """Backward pass of a DP step: leaves what the DP optimizer needs before its noise.

    ``loss_per_sample`` has one entry per sample of the Poisson batch (the loss of sample i
    depends on sample i only). Fused clipping: see :class:`FusedLinearClipping`. With ghost
    clipping: a first backward of the sum yields each sample's gradient norm ‖g_i‖ (no
    per-sample gradient is stored), and a second backward of Σ_i min(1, C/‖g_i‖)·loss_i leaves
    Σ_i clip_C(g_i) in ``p.grad``; the optimizer then only adds noise. With hooks: the
    per-sample gradients are stored and the optimizer clips them. An empty batch gives zero
    gradients (the step is then pure noise, as the analysis assumes).
    """
    import torch

    if loss_per_sample.dim() != 1:
        raise PrivacyAccountingError(f"per-sample loss must be a vector, got shape {tuple(loss_per_sample.shape)}")
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


def poisson_batches(loader: Any, budget: StepBudget) -> Iterator[torch.Tensor]:
    """Poisson batches (possibly empty) until the planned steps are taken; never one more."""
    while not budget.done:
        for (batch,) in loader:
            if budget.done:
                return
            yield batch


# ---------------------------------------------------------------------------------------------
# the estimator
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DPSGDPlan:
    """A fit's plan (public information only): the transformer, q, T, σ and the zCDP events.

    Privacy: :meth:`events` is what the ledger reserves: the noisy row count, the model's other
    zCDP events (DP frequencies), then the DP-SGD run, in the order the fit spends them.
    """

    transformer: TableTransformer
    sample_rate: float
    steps: int
    calibration: accounting.Calibration
    zcdp_events: tuple[PrivacyEvent, ...]
    count: GaussianCounts  # the noisy row count (``total_estimate_``), L2 sensitivity 1

    def events(self) -> list[PrivacyEvent]:
        return [self.count.event, *self.zcdp_events, self.calibration.event]


class DPSGDSynthesizer(Synthesizer):
    """Base of the DP-SGD generators (parameters shared by ``dpctgan`` and ``dpvae``).

    Args:
        epsilon, delta: the (ε, δ) target of the whole fit (δ never derived from the data).
        epochs: expected passes over the data; the plan takes ⌈epochs / q⌉ Poisson steps.
        sample_rate: Poisson sample rate q (each row joins each batch with probability q). Public
            and data-independent: it is what the accounting uses. When neither it nor
            ``batch_size`` is given: the generator's ``default_sample_rate`` (dpvae 0.1, dpctgan 0.01).
        batch_size: expected batch size, as an alternative to ``sample_rate``: needs ``rows``, the
            PUBLIC row count the data owner declares (q = batch_size / rows). The private row count
            is never used for the accounting.
        rows: the public row count that goes with ``batch_size``.
        max_grad_norm: per-sample clipping norm C.
        max_noise_multiplier: the largest σ the calibration may choose; a target that needs more
            is refused (ε too small for the planned steps).
        device: ``auto`` (CUDA when available), ``cpu`` or ``cuda``.
        secure_mode: Opacus's cryptographically secure noise (needs ``torchcsprng``). None (the
            default): on when it can run here, otherwise a loud warning and ``secure_noise_``
            False. True: refuse to fit without it.
        max_levels: widest categorical column modelled one-hot.
        clipping: ``fused`` (default: ghost norms and the clipped sum from one backward pass, for
            models of linear layers; :class:`FusedLinearClipping`), ``ghost`` (Opacus's ghost
            clipping: norms without per-sample gradients, two backward passes) or ``hooks``
            (Opacus's per-sample gradients, materialised). Same clipped sum, same privacy
            analysis; fused is the fastest, hooks the slowest.
        numeric_encoding: ``bins`` (default: a numeric column is one-hot over its public bins plus
            the position inside the bin) or ``scaled`` (the value scaled with the bounds); see
            :class:`TableTransformer`. Public either way.
        count_split: share of ρ = approx_dp_to_rho(ε, δ) for the noisy row count (exact discrete
            Gaussian, L2 sensitivity 1), the DP estimate ``total_estimate_`` a release samples
            when it is given no public row count. Default 0.01: σ ≈ 45 rows at ε = 1, δ = 1e-6.
            σ of DP-SGD is calibrated for what the count (and any other zCDP event) leaves.
        insecure_seed: seed every generator (INSECURE, tests only; warns and is recorded).

    Privacy: a fit spends its plan: the noisy count, the model's zCDP events, and the DP-SGD run,
    composed (the run's RDP curve plus ρα) to at most the (ε, δ) target.
    """

    uses_bins: ClassVar[bool] = False
    #: q when neither ``sample_rate`` nor ``batch_size`` is given (a subclass may choose its own)
    default_sample_rate: ClassVar[float] = DEFAULT_SAMPLE_RATE

    def __init__(
        self, *, epsilon: float, delta: float, epochs: float, sample_rate: float | None, batch_size: int | None,
        rows: int | None, max_grad_norm: float, max_noise_multiplier: float, device: str, secure_mode: bool | None,
        max_levels: int, insecure_seed: int | None, clipping: str = "fused", numeric_encoding: str = "bins",
        count_split: float = DEFAULT_COUNT_SPLIT,
    ):
        super().__init__(epsilon=epsilon, delta=delta, insecure_seed=insecure_seed)
        self.count_split = count_split
        self.epochs = epochs
        self.sample_rate = sample_rate
        self.batch_size = batch_size
        self.rows = rows
        self.max_grad_norm = max_grad_norm
        self.max_noise_multiplier = max_noise_multiplier
        self.device = device
        self.secure_mode = secure_mode
        self.max_levels = max_levels
        self.clipping = clipping
        self.numeric_encoding = numeric_encoding

    # -- planning ---------------------------------------------------------------------------
    def _sample_rate(self) -> float:
        if self.sample_rate is not None and self.batch_size is not None:
            raise ParameterError("give sample_rate or batch_size (with the public row count rows), not both")
        if self.batch_size is not None:
            batch = check.positive_int("batch_size", self.batch_size)
            if self.rows is None:
                raise ParameterError(
                    f"batch_size ({batch}) needs the public row count rows=N (the sample rate is batch_size / rows; "
                    "the private row count is never used), or give sample_rate instead"
                )
            rows = check.positive_int("rows", self.rows)
            if batch > rows:
                raise ParameterError(f"batch_size ({batch}) must be at most rows ({rows})")
            return batch / rows
        if self.sample_rate is None:
            return float(self.default_sample_rate)
        q = check.positive_finite("sample_rate", self.sample_rate)
        if q > 1.0:
            raise ParameterError(f"sample_rate ({self.sample_rate!r}) must be in (0, 1]")
        return q

    def _validate_common(self) -> None:
        check.positive_finite("epochs", self.epochs)
        check.positive_finite("max_grad_norm", self.max_grad_norm)
        check.positive_finite("max_noise_multiplier", self.max_noise_multiplier)
        check.positive_int("max_levels", self.max_levels)
        if self.secure_mode not in (None, True, False):
            raise ParameterError(f"secure_mode ({self.secure_mode!r}) must be True, False or None (auto)")
        if self.secure_mode is True and not secure_rng_available():
            raise ParameterError(
                "secure_mode (True) needs the torchcsprng package, which is not installed; give secure_mode=None "
                "to fit with torch's generator seeded from the OS (recorded as secure_noise: false)"
            )
        if not isinstance(self.device, str):
            raise ParameterError(f"device ({self.device!r}) must be 'auto', 'cpu' or 'cuda'")
        if self.clipping not in CLIPPING:
            raise ParameterError(f"clipping ({self.clipping!r}) must be one of: {', '.join(CLIPPING)}")
        if check.positive_finite("count_split", self.count_split) >= 1.0:
            raise ParameterError(f"count_split ({self.count_split!r}) must be in (0, 1)")

    def _count_mechanism(self) -> GaussianCounts:
        """The noisy row count: ``count_split`` of ρ, L2 sensitivity 1 (one row moves the count by 1).

        Privacy: (count_split · ρ)-zCDP, exact discrete Gaussian (:class:`~dpsynth.mechanisms.GaussianCounts`).
        """
        return GaussianCounts.for_rho(self.zcdp_budget().rho * float(self.count_split), label="row_count")

    def _zcdp_events(self, transformer: TableTransformer) -> tuple[PrivacyEvent, ...]:
        """zCDP events besides DP-SGD (none by default)."""
        return ()

    def _validate_model(self) -> None:
        """Validate the model's own hyperparameters (subclasses)."""

    def _plan(self, schema: Schema) -> DPSGDPlan:
        budget = self.budget()
        self._validate_common()
        self._validate_model()
        q = self._sample_rate()
        _require_torch()
        transformer = TableTransformer(schema, max_levels=int(self.max_levels), synthesizer=self.name,
                                       numeric=str(self.numeric_encoding))
        steps = accounting.steps_for(float(self.epochs), q)
        count = self._count_mechanism()
        zcdp = self._zcdp_events(transformer)
        rho_other = total_rho([count.event, *zcdp])
        rho = self.zcdp_budget().rho
        if rho_other >= rho:
            raise ParameterError(
                f"count_split ({self.count_split!r}) and the model's other zCDP shares take {rho_other / rho:.4g} of "
                "rho in all, which leaves nothing for DP-SGD; their sum must be below 1"
            )
        # σ is calibrated so that the DP-SGD curve composed with the count's (and the other
        # events') ρα, as the ledger composes them, converts to at most (ε, δ).
        calibration = accounting.calibrate(
            epsilon=budget.epsilon, delta=budget.delta, sample_rate=q, steps=steps, rho_other=rho_other,
            max_noise_multiplier=float(self.max_noise_multiplier),
        )
        return DPSGDPlan(transformer, q, steps, calibration, zcdp, count)

    def plan(self, schema: Schema) -> list[PrivacyEvent]:
        return self._plan(schema).events()

    # -- threads (public sizes only) -----------------------------------------------------------
    def _thread_work(self, schema: Schema) -> float | None:
        """Multiply-adds of the largest matrix product of a training step (see :mod:`dpsynth._threads`)."""
        transformer = TableTransformer(schema, max_levels=int(self.max_levels), synthesizer=self.name,
                                       numeric=str(self.numeric_encoding))
        products = self._products(transformer, self._public_batch_rows())
        return float(max(rows * i * o for rows, i, o in products)) if products else None

    def _public_batch_rows(self) -> int:
        """Rows of a Poisson batch as far as public sizes tell: q times the public ``rows`` when
        given, else one block of model randomness (the private row count is never read)."""
        if self.rows is not None:
            return max(1, round(self._sample_rate() * int(self.rows)))
        return RANDOM_BLOCK_ROWS

    def _products(self, transformer: TableTransformer, batch_rows: int) -> list[tuple[int, int, int]]:
        """(rows, inputs, outputs) of the linear layers' products in a training step (subclasses)."""
        return []

    def _check_data(self, data: pd.DataFrame, codes: np.ndarray, schema: Schema) -> None:
        """Refuse, before anything is charged, data that cannot make one batch."""
        if self.batch_size is not None and len(codes) < int(self.batch_size):
            raise ParameterError(f"batch_size ({self.batch_size}) must be at most the number of rows of the data "
                                 f"({len(codes)})")

    # -- fitting ------------------------------------------------------------------------------
    def _fit_codes(self, codes: np.ndarray, schema: Schema, odometer: Odometer, noise: NoiseSource) -> None:
        raise TypeError(f"{self.name} fits the table itself (_fit_table), not its codes")

    def _fit_table(
        self, data: pd.DataFrame, codes: np.ndarray, schema: Schema, odometer: Odometer, noise: NoiseSource
    ) -> None:
        torch = _require_torch()
        start = time.perf_counter()
        plan = self._plan(schema)
        device = resolve_device(self.device)
        self.total_estimate_ = self._noisy_count(plan, len(codes), odometer, noise)
        randomness = make_randomness(device, insecure_seed=self.insecure_seed, secure_mode=self.secure_mode)
        matrix = torch.from_numpy(plan.transformer.transform(data, codes)).to(device)
        timings: dict[str, float] = {"prepare": round(time.perf_counter() - start, 4)}
        budget = StepBudget(plan.steps)
        cpu = time.process_time()
        with seeded_torch(randomness.model), warnings.catch_warnings():
            # PyTorch's notice about Opacus's per-sample gradient hooks on a first layer whose
            # input needs no gradient: expected, and not about privacy.
            warnings.filterwarnings("ignore", message="Full backward hook is firing", category=UserWarning)
            self._train(plan, matrix, codes, device, randomness, odometer, noise, budget)
        timings["train"] = round(time.perf_counter() - start - timings["prepare"], 4)
        timings["train_cpu"] = round(time.process_time() - cpu, 4)  # this process, all threads
        self._after_training(plan, budget, odometer, randomness, device, timings)

    @staticmethod
    def _noisy_count(plan: DPSGDPlan, rows: int, odometer: Odometer, noise: NoiseSource) -> float:
        """The DP estimate of the number of rows measured (at least 1), for ``total_estimate_``.

        Privacy: spends the plan's ``row_count`` event (discrete Gaussian, L2 sensitivity 1)
        through ``odometer``, drawn from the fit's noise source; the float is post-processing.
        """
        noisy = plan.count(np.asarray([rows], dtype=np.int64), noise=noise, odometer=odometer)
        return max(1.0, float(noisy[0]))

    def _spend_dp_sgd(self, plan: DPSGDPlan, odometer: Odometer) -> None:
        """Spend the DP-SGD event from the reservation: called right before the first step."""
        odometer.spend(plan.calibration.event)

    def _after_training(self, plan: DPSGDPlan, budget: StepBudget, odometer: Odometer, randomness: Randomness,
                        device: Any, timings: dict[str, float]) -> None:
        cal = plan.calibration
        if budget.taken > plan.steps:  # pragma: no cover - StepBudget refuses it first
            raise PrivacyAccountingError(f"DP-SGD took {budget.taken} steps, more than the {plan.steps} planned")
        # Opacus's own accounting for the steps actually taken, from fresh accountants.
        taken = accounting.opacus_epsilons(cal.noise_multiplier, cal.sample_rate, budget.taken, cal.delta) \
            if budget.taken else {"rdp": 0.0, "prv": 0.0}
        reserved_alone = accounting.rdp_epsilon_of_run(cal.noise_multiplier, cal.sample_rate, cal.steps, cal.delta)
        if taken["rdp"] > reserved_alone * (1 + 1e-6) + 1e-12:
            raise PrivacyAccountingError(
                f"Opacus's RDP epsilon for the {budget.taken} steps taken ({taken['rdp']:.6g}) exceeds the reserved "
                f"run's ({reserved_alone:.6g})"
            )
        spent_epsilon = composed_epsilon(odometer.spent.rho, odometer.spent_rdp.orders,
                                         odometer.spent_rdp.epsilons, cal.delta) if odometer.spent_rdp else 0.0
        self.schema_ = plan.transformer.schema
        self.transformer_ = plan.transformer
        self.privacy_events_ = list(odometer.events)
        self.privacy_spent_ = odometer.spent
        self.secure_noise_ = bool(randomness.secure)
        self.device_ = str(device)
        self.timings_ = timings
        self.dpsgd_ = {
            "noise_multiplier": cal.noise_multiplier,
            "noise_multiplier_prv": cal.noise_multiplier_prv,
            "noise_multiplier_rdp": cal.noise_multiplier_rdp,
            "sample_rate": cal.sample_rate,
            "max_grad_norm": float(self.max_grad_norm),
            "clipping": str(self.clipping),
            "steps_planned": cal.steps,
            "steps_taken": budget.taken,
            "delta": cal.delta,
            "epsilon_target": cal.epsilon,
            "epsilon_reserved_rdp": cal.epsilon_reserved,
            "epsilon_spent_rdp": spent_epsilon,
            "opacus_epsilon_rdp": taken["rdp"],
            "opacus_epsilon_prv": taken["prv"],
            "poisson_sampling": True,
            "secure_noise": bool(randomness.secure),
            "noise_source": randomness.source,
            "device": str(device),
        }

    def _train(self, plan: DPSGDPlan, matrix: torch.Tensor, codes: np.ndarray, device: Any, randomness: Randomness,
               odometer: Odometer, noise: NoiseSource, budget: StepBudget) -> None:
        raise NotImplementedError

    def _ledger_detail(self) -> dict[str, Any]:
        return {"events_run": len(self.privacy_events_), "dpsgd": dict(self.dpsgd_)}

    def privacy_statement(self) -> dict[str, Any]:
        out = super().privacy_statement()
        rdp = total_rdp(self.privacy_events_)
        out["epsilon_rdp"] = composed_epsilon(self.privacy_spent_.rho, rdp.orders, rdp.epsilons, float(self.delta)) \
            if rdp else out["epsilon_from_rho"]
        out["dpsgd"] = dict(self.dpsgd_)
        return out

    # -- sampling (post-processing) -------------------------------------------------------------
    def _sample_matrix(self, n_rows: int, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    def _sample_codes(self, n_rows: int, rng: np.random.Generator) -> np.ndarray:
        from dpsynth.schema.encode import encode

        return encode(self.transformer_.inverse(self._sample_matrix(n_rows, rng), rng), self.schema_)

    def sample(self, n_rows: int, *, random_state: int | None = None) -> pd.DataFrame:
        """``n_rows`` synthetic rows decoded to the schema's values. Privacy: post-processing."""
        n_rows = check.positive_int("rows", n_rows)
        if not hasattr(self, "schema_"):
            from dpsynth.exceptions import NotFittedError

            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit() first")
        if random_state is None and self.insecure_seed is not None:
            random_state = int(self.insecure_seed) + 1
        rng = np.random.default_rng(random_state)
        return self.transformer_.inverse(self._sample_matrix(n_rows, rng), rng)

    @staticmethod
    def _torch_generator(rng: np.random.Generator) -> torch.Generator:
        import torch

        return torch.Generator().manual_seed(int(rng.integers(0, 2**62)))
