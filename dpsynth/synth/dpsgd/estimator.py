"""The DP-SGD estimator: :class:`DPSGDSynthesizer`, the base of ``dpctgan`` and ``dpvae`` (plan,
reservation, training road, post-training accounting, sampling), and its :class:`DPSGDPlan`.

Privacy road of a fit (see ``docs/dpsgd.md``):

1. ``plan(schema)`` (public information only): the sample rate q, the planned steps
   T = ⌈epochs / q⌉, the zCDP events (the noisy row count, ``count_split`` of ρ; DP frequencies
   of the conditional vectors), and the noise multiplier σ calibrated for the target (ε, δ)
   given them (PRV, with the RDP curve that the ledger reserves, composed with the zCDP events,
   fitting the target too; :mod:`.accounting`).
2. ``fit``: the data is checked against the schema, the whole plan is reserved in the ledger,
   and only then is the row count measured with discrete Gaussian noise (``total_estimate_``)
   and the table transformed (with public bounds and levels only; :mod:`.transform`) and trained
   on: Poisson batches (Opacus ``DPDataLoader``), per-sample gradients clipped to
   ``max_grad_norm`` (:mod:`.clipping`), Gaussian noise σ·C on their sum (Opacus ``DPOptimizer``;
   :mod:`.loop`). The DP-SGD event is spent from the reservation before the first step, and the
   loop cannot take more than T steps. A step's model randomness (latent codes, conditional
   vectors, fakes) is drawn in fixed-size blocks from per-step seeds (:mod:`.randomness`), so
   adding a row to a batch adds one per-sample term and changes no other.
   At the user unit (the schema's ``privacy_unit``: one person with up to K rows), the Poisson
   sample is over PEOPLE at the same planned q, each person's gradient is the sum of their rows'
   per-sample gradients, clipped to C (:func:`~.clipping.sum_per_person`; Opacus's hooks), and
   the noisy row count has L2 sensitivity K. The accountant is unchanged: one person moves a
   step's sum by at most C, so a step is the same subsampled Gaussian at rate q over people.
3. After training, Opacus's own ε for the steps actually taken (fresh RDP and PRV accountants)
   is checked against the reserved curve and recorded in the ledger's completion entry.

Noise of DP-SGD is drawn by the DP optimizer, not by :mod:`dpsynth.mechanisms` (its exact samplers
work on integer counts, not gradients): by default from a cryptographically secure keystream
(:mod:`.secure_noise`, :mod:`.secure_optim`), which also draws the Poisson sampling;
``tests/privacy/test_no_float_noise.py`` holds this package to an explicit policy: the only float
samplers it may call are :func:`~.randomness.latent_noise` (the generators' and the VAE's latent
codes, which are not privacy noise) and the secure source's Gaussian.

The one way in for an auditor is :meth:`DPSGDSynthesizer.observe_training`: an observer set on
one instance sees the module that DP-SGD trains (nothing is patched; other fits never see it).
"""

from __future__ import annotations

import contextlib
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd

from dpsynth.exceptions import ParameterError, PrivacyAccountingError
from dpsynth.mechanisms import GaussianCounts, describe_noise
from dpsynth.privacy.accounting import composed_epsilon
from dpsynth.privacy.events import PrivacyEvent, total_rdp, total_rho
from dpsynth.privacy.odometer import Odometer
from dpsynth.privacy.unit import ROW, PrivacyUnit
from dpsynth.schema.schema import Schema
from dpsynth.synth.base import Synthesizer
from dpsynth.synth.dpsgd import accounting, loop
from dpsynth.synth.dpsgd.loop import StepBudget
from dpsynth.synth.dpsgd.params import DPSGDParameters
from dpsynth.synth.dpsgd.randomness import RANDOM_BLOCK_ROWS, Randomness, make_randomness, seeded_torch
from dpsynth.synth.dpsgd.runtime import require_torch, resolve_device
from dpsynth.synth.dpsgd.transform import TableTransformer

if TYPE_CHECKING:
    import torch

    from dpsynth.mechanisms import NoiseSource
    from dpsynth.synth.conditions import Evidence

#: Called with the torch module DP-SGD is about to train (see :meth:`DPSGDSynthesizer.observe_training`).
TrainingObserver = Callable[[Any], None]


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
    count: GaussianCounts  # the noisy row count (``total_estimate_``), L2 sensitivity 1 (K at the user unit)
    unit: PrivacyUnit = ROW  # what q samples and C bounds: a row, or a person with up to K rows

    def events(self) -> list[PrivacyEvent]:
        """The events to reserve, in the order the fit spends them."""
        return [self.count.event, *self.zcdp_events, self.calibration.event]


@dataclass(kw_only=True, eq=False)
class DPSGDSynthesizer(DPSGDParameters, Synthesizer):
    """Base of the DP-SGD generators; the parameters they share are :class:`~.params.DPSGDParameters`.

    Privacy: a fit spends its plan: the noisy count, the model's zCDP events, and the DP-SGD run,
    composed (the run's RDP curve plus ρα) to at most the (ε, δ) target.
    """

    uses_bins: ClassVar[bool] = False
    #: person-level DP-SGD at a user unit: Poisson over people, per-person clipped summed gradients
    user_level: ClassVar[bool] = True
    #: set by :meth:`observe_training` for the fits inside its block (never a parameter)
    _training_observer: TrainingObserver | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        Synthesizer.__init__(self, epsilon=self.epsilon, delta=self.delta, insecure_seed=self.insecure_seed)

    # -- the injection point of audits ------------------------------------------------------------
    @contextlib.contextmanager
    def observe_training(self, observer: TrainingObserver) -> Iterator[None]:
        """Inside the block, every fit of THIS instance calls ``observer(module)`` once, with the
        torch module that DP-SGD trains (in place), right before Opacus wraps it: its parameters
        are then still the initial, data-independent ones, so an observer may copy them and keep
        the module to read the trained ones after the fit. The white-box one-run audit
        (:mod:`dpsynth.audit.onerun`) receives the trained model this way.

        Scoped to the instance, not to a module global: a fit of another generator, in this
        thread or another, never calls it. An inner block replaces the outer observer until it
        ends.

        Privacy: the trained parameters are DP-SGD's output (the analysis covers every iterate);
        an observer that reads anything else during training (gradients) reads non-DP values. It
        is for audits, whose results are internal evidence.
        """
        previous = self._training_observer
        self._training_observer = observer
        try:
            yield
        finally:
            self._training_observer = previous

    def _private_parts(self, module: torch.nn.Module, matrix: torch.Tensor, plan: DPSGDPlan, randomness: Randomness,
                       *, learning_rate: float, betas: tuple[float, float], weight_decay: float
                       ) -> tuple[Any, Any, Any]:
        """Opacus's module, optimizer and Poisson loader (:func:`~.loop.private_parts`) for ``module``
        with this fit's σ, C, q and clipping mode; the training observer, if any, sees ``module`` first."""
        people = self._person_groups
        if (people is not None) != plan.unit.is_user:  # the base fit sets both from the schema: a bug
            raise PrivacyAccountingError(f"the plan's unit is {plan.unit.label}, but the fit "
                                         f"{'has' if people is not None else 'has no'} person groups")
        if self._training_observer is not None:
            self._training_observer(module)
        return loop.private_parts(
            module, matrix, learning_rate=learning_rate, betas=betas, weight_decay=weight_decay,
            noise_multiplier=plan.calibration.noise_multiplier, max_grad_norm=float(self.max_grad_norm),
            sample_rate=plan.sample_rate, randomness=randomness, clipping=self._clipping_mode(plan), people=people)

    def _clipping_mode(self, plan: DPSGDPlan) -> str:
        """The clipping that runs: ``clipping``, or per-sample gradients (``hooks``) at the user unit,
        where a person's summed gradient is clipped (fused and ghost norms are one row's)."""
        return "hooks" if plan.unit.is_user else str(self.clipping)

    def noise_provenance(self) -> tuple[bool, str]:
        """Whether DP-SGD's noise and Poisson sampling (and the row count's noise) would come from a
        cryptographically secure source, and from which, from the parameters alone: secure unless the
        noise is seeded or ``secure_mode`` is off (:func:`~.randomness.make_randomness`). After a fit,
        ``secure_noise_`` says what the fit actually drew from, and ``noise_source_`` names it."""
        secure, why = super().noise_provenance()
        if not secure:
            return secure, why
        if self.secure_mode is False:
            return False, "secure_mode is off: DP-SGD noise would come from torch's non-cryptographic generator"
        from dpsynth.synth.dpsgd.secure_noise import default_source_name

        return True, (f"DP-SGD noise and Poisson sampling from a {default_source_name()} (Gaussian: sum of 4 "
                      f"float64 Box-Muller draws over 2); the row count from OpenDP's exact samplers")

    # -- planning ---------------------------------------------------------------------------
    def _transformer(self, schema: Schema) -> TableTransformer:
        return TableTransformer(schema, max_levels=int(self.max_levels), synthesizer=self.name,
                                numeric=str(self.numeric_encoding))

    def _count_mechanism(self, unit: PrivacyUnit = ROW) -> GaussianCounts:
        """The noisy row count: ``count_split`` of ρ, L2 sensitivity 1 (one row moves the count by 1),
        K at a user unit (one person moves the count of bounded rows by up to K).

        Privacy: (count_split · ρ)-zCDP, exact discrete Gaussian (:class:`~dpsynth.mechanisms.GaussianCounts`).
        """
        return GaussianCounts.for_rho(self.zcdp_budget().rho * float(self.count_split),
                                      l2_sensitivity=unit.sensitivity, label="row_count")

    def _zcdp_events(self, transformer: TableTransformer) -> tuple[PrivacyEvent, ...]:
        """zCDP events besides DP-SGD (none by default)."""
        return ()

    def _validate_model(self) -> None:
        """Validate the model's own hyperparameters (subclasses)."""

    def _plan(self, schema: Schema) -> DPSGDPlan:
        budget = self.budget()
        self._validate_common()
        self._validate_model()
        unit = schema.privacy_unit
        if unit.is_user and self.batch_size is not None:
            raise ParameterError(
                f"batch_size ({self.batch_size!r}) cannot be used at the privacy unit {unit.label}: Poisson sampling "
                "is over people there; give sample_rate, the probability that a person joins a step"
            )
        q = self._sample_rate()
        require_torch()
        transformer = self._transformer(schema)
        steps = accounting.steps_for(float(self.epochs), q)
        count = self._count_mechanism(unit)
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
        return DPSGDPlan(transformer, q, steps, calibration, zcdp, count, unit)

    def plan(self, schema: Schema) -> list[PrivacyEvent]:
        """The privacy events a fit on data of ``schema`` spends (public information only; validates
        the parameters and calibrates σ)."""
        return self._plan(schema).events()

    # -- threads (public sizes only) -----------------------------------------------------------
    def _thread_work(self, schema: Schema) -> float | None:
        """Multiply-adds of the largest matrix product of a training step (see :mod:`dpsynth._threads`)."""
        products = self._products(self._transformer(schema), self._public_batch_rows())
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
        torch = require_torch()
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
        self._after_training(plan, budget, odometer, randomness, device, timings, noise)

    @staticmethod
    def _noisy_count(plan: DPSGDPlan, rows: int, odometer: Odometer, noise: NoiseSource) -> float:
        """The DP estimate of the number of rows measured (at least 1), for ``total_estimate_``.

        Privacy: spends the plan's ``row_count`` event (discrete Gaussian, L2 sensitivity 1, or K
        at a user unit: ``rows`` is then the count of the bounded rows)
        through ``odometer``, drawn from the fit's noise source; the float is post-processing.
        """
        noisy = plan.count(np.asarray([rows], dtype=np.int64), noise=noise, odometer=odometer)
        return max(1.0, float(noisy[0]))

    def _spend_dp_sgd(self, plan: DPSGDPlan, odometer: Odometer) -> None:
        """Spend the DP-SGD event from the reservation: called right before the first step."""
        odometer.spend(plan.calibration.event)

    def _after_training(self, plan: DPSGDPlan, budget: StepBudget, odometer: Odometer, randomness: Randomness,
                        device: Any, timings: dict[str, float], noise: NoiseSource) -> None:
        cal = plan.calibration
        if budget.taken > plan.steps:  # pragma: no cover - StepBudget refuses it first
            raise PrivacyAccountingError(f"DP-SGD took {budget.taken} steps, more than the {plan.steps} planned")
        # Opacus's own accounting for the steps actually taken, from fresh accountants.
        taken = accounting.opacus_epsilons(cal.noise_multiplier, cal.sample_rate, budget.taken, cal.delta) \
            if budget.taken else {"rdp": 0.0, "prv": 0.0}
        reserved_alone = accounting.rdp_epsilon_of_run(cal.noise_multiplier, cal.sample_rate, cal.steps, cal.delta)
        rdp_taken = float(taken["rdp"] or 0.0)  # Opacus's RDP ε is always a number (only PRV may fail)
        if rdp_taken > reserved_alone * (1 + 1e-6) + 1e-12:
            raise PrivacyAccountingError(
                f"Opacus's RDP epsilon for the {budget.taken} steps taken ({rdp_taken:.6g}) exceeds the reserved "
                f"run's ({reserved_alone:.6g})"
            )
        spent_epsilon = composed_epsilon(odometer.spent.rho, odometer.spent_rdp.orders,
                                         odometer.spent_rdp.epsilons, cal.delta) if odometer.spent_rdp else 0.0
        self.schema_ = plan.transformer.schema
        self.transformer_ = plan.transformer
        self.privacy_events_ = list(odometer.events)
        self.privacy_spent_ = odometer.spent
        # secure only when every privacy draw was: DP-SGD's noise and sampling, and the row count's noise
        self.secure_noise_ = bool(randomness.secure) and bool(getattr(noise, "secure", False))
        self.noise_source_ = f"DP-SGD noise and Poisson sampling: {randomness.source}; row count: " + \
            describe_noise(noise)
        self.device_ = str(device)
        self.timings_ = timings
        self.dpsgd_ = {
            "noise_multiplier": cal.noise_multiplier,
            "noise_multiplier_prv": cal.noise_multiplier_prv,
            "noise_multiplier_rdp": cal.noise_multiplier_rdp,
            "sample_rate": cal.sample_rate,
            "max_grad_norm": float(self.max_grad_norm),
            "clipping": self._clipping_mode(plan),
            "unit": plan.unit.label,
            "sampled": "people" if plan.unit.is_user else "rows",
            "clipped": "person's summed gradient" if plan.unit.is_user else "row's gradient",
            "steps_planned": cal.steps,
            "steps_taken": budget.taken,
            "delta": cal.delta,
            "epsilon_target": cal.epsilon,
            "epsilon_reserved_rdp": cal.epsilon_reserved,
            "epsilon_spent_rdp": spent_epsilon,
            "opacus_epsilon_rdp": taken["rdp"],
            "opacus_epsilon_prv": taken["prv"],
            "poisson_sampling": True,
            "secure_noise": self.secure_noise_,
            "noise_source": randomness.source,
            "device": str(device),
        }

    def _train(self, plan: DPSGDPlan, matrix: torch.Tensor, codes: np.ndarray, device: Any, randomness: Randomness,
               odometer: Odometer, noise: NoiseSource, budget: StepBudget) -> None:
        raise NotImplementedError

    def _ledger_detail(self) -> dict[str, Any]:
        return {"events_run": len(self.privacy_events_), "dpsgd": dict(self.dpsgd_)}

    def privacy_statement(self) -> dict[str, Any]:
        """The base statement plus the composed RDP ε of the fit and its DP-SGD record (``dpsgd``)."""
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

    def _sample_matrix_given(self, n_rows: int, rng: np.random.Generator, evidence: Evidence) -> np.ndarray:
        """Model outputs of ``n_rows`` rows drawn toward ``evidence`` (a generator with a conditional
        input steers them; by default, the plain draws of :meth:`_sample_matrix`)."""
        return self._sample_matrix(n_rows, rng)

    def sample(self, n_rows: int, *, random_state: int | None = None,
               conditions: Mapping[str, Any] | None = None) -> pd.DataFrame:
        """``n_rows`` synthetic rows decoded to the schema's values. Privacy: post-processing.

        ``conditions`` as for :meth:`Synthesizer.sample <dpsynth.synth.base.Synthesizer.sample>`: the
        rows are drawn (DP-CTGAN: steered by its conditional vectors toward the condition's discrete
        columns) and those that do not meet the condition discarded, more drawn in a bounded number of
        rounds (:func:`~dpsynth.synth.conditions.draw_until`); a numeric column's condition is met by a
        value in the schema bin that holds the asked value.

        Raises:
            ParameterError: a condition outside the schema, or one too rare for the model to reach
                ``n_rows`` rows within the rounds.
        """
        n_rows, rng = self._sampling(n_rows, random_state)
        if conditions is None:
            return self.transformer_.inverse(self._sample_matrix(n_rows, rng), rng)
        from dpsynth.schema.encode import encode
        from dpsynth.synth import conditions as cond

        parsed = cond.parse_conditions(conditions, self.schema_)

        def draw(m: int, evidence: Evidence) -> tuple[pd.DataFrame, np.ndarray]:
            frame = self.transformer_.inverse(self._sample_matrix_given(m, rng, evidence), rng)
            return frame, encode(frame, self.schema_)

        return cond.frames_by_rejection(parsed, n_rows, rng, draw)

    @staticmethod
    def _torch_generator(rng: np.random.Generator) -> torch.Generator:
        import torch

        return torch.Generator().manual_seed(int(rng.integers(0, 2**62)))
