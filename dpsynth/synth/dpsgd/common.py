"""What the DP-SGD generators share: the public-schema transformer, randomness, the DP-SGD loop
and the estimator plumbing (plan, reservation, post-training accounting).

Privacy road of a fit (see ``docs/dpsgd.md``):

1. ``plan(schema)`` (public information only): the sample rate q, the planned steps
   T = ⌈epochs / q⌉, the noise multiplier σ calibrated for the target (ε, δ) (PRV, with the RDP
   curve that the ledger reserves fitting the target too; :mod:`.accounting`), and any zCDP
   events (DP frequencies of the conditional vectors).
2. ``fit``: the data is checked against the schema, the whole plan is reserved in the ledger,
   and only then is the table transformed (with public bounds and levels only) and trained on:
   Poisson batches (Opacus ``DPDataLoader``), per-sample gradients clipped to ``max_grad_norm``
   (Opacus ``GradSampleModule``), Gaussian noise σ·C on their sum (Opacus ``DPOptimizer``).
   The DP-SGD event is spent from the reservation before the first step, and the loop cannot
   take more than T steps.
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
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd

from dpsynth import _validation as check
from dpsynth.exceptions import InsecureNoiseWarning, ParameterError, PrivacyAccountingError, SchemaError
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
    """A block of the transformed row: ``softmax`` (one-hot of a categorical column's codes, or a
    numeric column's present/missing flag) or ``tanh`` (a numeric value scaled to [-1, 1])."""

    column: int
    activation: str
    start: int
    width: int

    @property
    def stop(self) -> int:
        return self.start + self.width


class TableTransformer:
    """Rows ↔ model vectors, from the public schema only (nothing is fitted on the data).

    * categorical: one-hot over the column's codes (declared levels, the ``other`` level, the
      missing code of a nullable column);
    * integer, continuous, datetime: the value clamped to the declared bounds and scaled linearly
      to [-1, 1] (no mode-specific normalisation: that would be a statistic of the private data);
      a nullable one has a two-way present/missing one-hot as well (value 0 when missing).

    Raises:
        SchemaError: a column kind it cannot model, or a categorical column wider than
            ``max_levels`` (all problems at once).
    """

    def __init__(self, schema: Schema, *, max_levels: int, synthesizer: str):
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
        spans: list[Span] = []
        start = 0
        for j, col in enumerate(schema.columns):
            if col.kind == "categorical":
                spans.append(Span(j, "softmax", start, col.size))
                start += col.size
            else:
                spans.append(Span(j, "tanh", start, 1))
                start += 1
                if col.nullable:
                    spans.append(Span(j, "softmax", start, 2))
                    start += 2
        self.spans = tuple(spans)
        self.output_dim = start
        #: the spans that conditional vectors choose from (one per categorical column)
        self.categorical_spans = tuple(s for s in spans if schema.columns[s.column].kind == "categorical")

    def transform(self, data: pd.DataFrame, codes: np.ndarray) -> np.ndarray:
        """The model matrix (float32, rows × ``output_dim``) of a table already checked by ``encode``."""
        out = np.zeros((len(codes), self.output_dim), dtype=np.float32)
        rows = np.arange(len(codes))
        for span in self.spans:
            col = self.schema.columns[span.column]
            if col.kind == "categorical":
                out[rows, span.start + codes[:, span.column]] = 1.0
            elif span.activation == "tanh":
                assert col.bounds is not None
                low, high = col.bounds
                values = numeric_values(data[col.name], col, self.schema)  # clamped to the public bounds
                missing = np.isnan(values)
                scaled = 2.0 * (np.nan_to_num(values, nan=low) - low) / (high - low) - 1.0
                out[:, span.start] = np.where(missing, 0.0, scaled)
            else:  # present / missing flag of a nullable numeric column
                out[rows, span.start + (codes[:, span.column] == col.missing_code).astype(np.int64)] = 1.0
        return out

    def inverse(self, matrix: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
        """Values for model outputs (post-processing): ``softmax`` spans hold probabilities and are
        sampled (or are one-hot already), ``tanh`` spans hold values in [-1, 1]."""
        n = len(matrix)
        chosen: dict[tuple[int, str], np.ndarray] = {}
        numeric: dict[int, np.ndarray] = {}
        missing_flag: dict[int, np.ndarray] = {}
        for span in self.spans:
            block = matrix[:, span.start:span.stop]
            if span.activation == "tanh":
                numeric[span.column] = np.clip(block[:, 0], -1.0, 1.0)
                continue
            picked = _sample_rows(block, rng)
            if self.schema.columns[span.column].kind == "categorical":
                chosen[(span.column, "code")] = picked
            else:
                missing_flag[span.column] = picked == 1
        cols: dict[str, pd.Series] = {}
        for j, col in enumerate(self.schema.columns):
            if col.kind == "categorical":
                cols[col.name] = _decode_categorical(col, chosen[(j, "code")])
            else:
                missing = missing_flag.get(j, np.zeros(n, dtype=bool))
                cols[col.name] = _decode_numeric(col, numeric[j], missing)
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


def _decode_numeric(col: Column, scaled: np.ndarray, missing: np.ndarray) -> pd.Series:
    assert col.bounds is not None
    low, high = col.bounds
    values = np.clip(low + (scaled.astype(np.float64) + 1.0) / 2.0 * (high - low), low, high)
    if col.kind == "continuous":
        values[missing] = np.nan
        return pd.Series(values)
    ints = np.clip(np.rint(values), math.ceil(low), math.floor(high)).astype(np.int64)
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


def private_parts(
    module: torch.nn.Module, matrix: torch.Tensor, *, learning_rate: float, betas: tuple[float, float],
    weight_decay: float, noise_multiplier: float, max_grad_norm: float, sample_rate: float, randomness: Randomness,
) -> tuple[Any, Any, Any]:
    """Opacus's three parts, built directly so that nothing depends on the row count:

    * ``GradSampleModule`` (per-sample gradients, ``loss_reduction="sum"``: the loss is a sum over
      the batch, so no division by a batch size derived from the private row count);
    * ``DPOptimizer`` around Adam: clips each per-sample gradient to ``max_grad_norm``, adds
      N(0, (σ·C)²) from ``randomness.noise``, with Opacus's floating-point-attack hardening
      (``secure_mode=True`` in the optimizer: noise as a sum of 4 draws);
    * ``DPDataLoader`` with the PLANNED ``sample_rate`` (``PrivacyEngine.make_private`` would take
      q = 1/len(loader), a function of the private row count) and ``randomness.sampling``.

    This is exactly what ``make_private(..., poisson_sampling=True)`` assembles, minus that.
    """
    import torch
    from opacus.data_loader import DPDataLoader
    from opacus.grad_sample import GradSampleModule
    from opacus.optimizers import DPOptimizer
    from opacus.validators import ModuleValidator

    errors = ModuleValidator.validate(module, strict=False)
    if errors:  # our own models: a bug, not a user mistake
        raise PrivacyAccountingError(f"model not compatible with per-sample gradients: {errors}")
    private = GradSampleModule(module, batch_first=True, loss_reduction="sum")
    optimizer = DPOptimizer(
        torch.optim.Adam(private.parameters(), lr=learning_rate, betas=betas, weight_decay=weight_decay),
        noise_multiplier=noise_multiplier, max_grad_norm=max_grad_norm, expected_batch_size=None,
        loss_reduction="sum", generator=randomness.noise, secure_mode=True,
    )
    loader = DPDataLoader(torch.utils.data.TensorDataset(matrix), sample_rate=sample_rate,
                          generator=randomness.sampling)
    return private, optimizer, loader


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
    transformer: TableTransformer
    sample_rate: float
    steps: int
    calibration: accounting.Calibration
    zcdp_events: tuple[PrivacyEvent, ...]

    def events(self) -> list[PrivacyEvent]:
        return [*self.zcdp_events, self.calibration.event]


class DPSGDSynthesizer(Synthesizer):
    """Base of the DP-SGD generators (parameters shared by ``dpctgan`` and ``dpvae``).

    Args:
        epsilon, delta: the (ε, δ) target of the whole fit (δ never derived from the data).
        epochs: expected passes over the data; the plan takes ⌈epochs / q⌉ Poisson steps.
        sample_rate: Poisson sample rate q (each row joins each batch with probability q). Public
            and data-independent: it is what the accounting uses. Default 0.01 when neither it nor
            ``batch_size`` is given.
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
        insecure_seed: seed every generator (INSECURE, tests only; warns and is recorded).
    """

    uses_bins: ClassVar[bool] = False

    def __init__(
        self, *, epsilon: float, delta: float, epochs: float, sample_rate: float | None, batch_size: int | None,
        rows: int | None, max_grad_norm: float, max_noise_multiplier: float, device: str, secure_mode: bool | None,
        max_levels: int, insecure_seed: int | None,
    ):
        super().__init__(epsilon=epsilon, delta=delta, insecure_seed=insecure_seed)
        self.epochs = epochs
        self.sample_rate = sample_rate
        self.batch_size = batch_size
        self.rows = rows
        self.max_grad_norm = max_grad_norm
        self.max_noise_multiplier = max_noise_multiplier
        self.device = device
        self.secure_mode = secure_mode
        self.max_levels = max_levels

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
            return DEFAULT_SAMPLE_RATE
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
        transformer = TableTransformer(schema, max_levels=int(self.max_levels), synthesizer=self.name)
        steps = accounting.steps_for(float(self.epochs), q)
        zcdp = self._zcdp_events(transformer)
        calibration = accounting.calibrate(
            epsilon=budget.epsilon, delta=budget.delta, sample_rate=q, steps=steps, rho_other=total_rho(list(zcdp)),
            max_noise_multiplier=float(self.max_noise_multiplier),
        )
        return DPSGDPlan(transformer, q, steps, calibration, zcdp)

    def plan(self, schema: Schema) -> list[PrivacyEvent]:
        return self._plan(schema).events()

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
        randomness = make_randomness(device, insecure_seed=self.insecure_seed, secure_mode=self.secure_mode)
        matrix = torch.from_numpy(plan.transformer.transform(data, codes)).to(device)
        timings: dict[str, float] = {"prepare": round(time.perf_counter() - start, 4)}
        budget = StepBudget(plan.steps)
        with seeded_torch(randomness.model), warnings.catch_warnings():
            # PyTorch's notice about Opacus's per-sample gradient hooks on a first layer whose
            # input needs no gradient: expected, and not about privacy.
            warnings.filterwarnings("ignore", message="Full backward hook is firing", category=UserWarning)
            self._train(plan, matrix, codes, device, randomness, odometer, noise, budget)
        timings["train"] = round(time.perf_counter() - start - timings["prepare"], 4)
        self._after_training(plan, budget, odometer, randomness, device, timings)

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
