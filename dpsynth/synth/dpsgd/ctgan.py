"""DP-CTGAN: a conditional GAN of the CTGAN family (Xu et al. 2019) whose discriminator is trained
with DP-SGD; the generator never sees a real row.

How it differs from CTGAN, for privacy:

* Preprocessing comes from the public schema (:class:`~.transform.TableTransformer`): no
  mode-specific normalisation and no category frequencies learned from the data.
* No training-by-sampling (it picks real rows by their category, i.e. reads exact counts): real
  rows come in Poisson batches, and a real row's conditional vector marks its own value in one
  categorical column chosen uniformly at random (a function of that row alone).
* The conditional vectors given to the generator are drawn uniformly over the levels (default),
  or from 1-way frequencies measured with discrete Gaussian noise and charged to the plan
  (``conditional="dp_frequencies"``) — never from exact counts.
* The discriminator's per-sample unit is a (real row, fake row) pair: its loss on a pair is
  BCE(D(real), 1) + BCE(D(fake), 0), clipped as one per-sample gradient. Adding or removing a row
  adds or removes one pair and changes no other, so the clipped sum moves by at most C. For that
  the fake (and the real row's conditional vector) of pair i must not depend on the batch size
  n: a step's fakes are drawn in fixed-size public blocks (:func:`~.randomness.blocked`) from
  per-step seeds (:func:`~.randomness.step_seeds`, a fixed number per step), each fake a function of
  its own latent code and conditional vector and of a public reference block of
  :data:`REFERENCE_ROWS` fakes drawn first, whose BatchNorm statistics normalise every fake of the
  step (virtual batch normalisation; before, BatchNorm normalised the fakes with statistics of a
  batch of n fakes and folded them into the running statistics the released generator keeps, which
  are now updated by generator steps only, at the public ``generator_batch_size``); the Gumbel and
  dropout draws of the step come from the global generator reseeded per step. One DP step per
  iteration (Opacus's GAN example takes two).
* The discriminator has no batch normalisation (per-sample gradients need it). The loss is the
  non-saturating GAN loss (WGAN-GP's gradient penalty mixes real and fake rows and needs double
  backward through per-sample hooks); ``pac`` is 1 (packing several real rows into one sample
  would let one row move several packs when the rows shift). Losses are sums, never means over
  the private batch.

Privacy: the noisy row count and the planned Poisson-subsampled Gaussian steps (RDP curve reserved
in the ledger), plus ρ for the DP frequencies when asked for; the generator and sampling are
post-processing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from dpsynth import _validation as check
from dpsynth.exceptions import ParameterError
from dpsynth.marginals import marginal_counts
from dpsynth.mechanisms import GaussianCounts
from dpsynth.privacy.events import PrivacyEvent
from dpsynth.privacy.odometer import Odometer
from dpsynth.synth.base import register
from dpsynth.synth.dpsgd.clipping import dp_backward
from dpsynth.synth.dpsgd.ctgan_conditions import Conditions
from dpsynth.synth.dpsgd.estimator import DPSGDPlan, DPSGDSynthesizer
from dpsynth.synth.dpsgd.loop import StepBudget, person_batches, poisson_batches
from dpsynth.synth.dpsgd.params import check_dims, check_share, check_window
from dpsynth.synth.dpsgd.raking import rake_rows
from dpsynth.synth.dpsgd.randomness import (
    RANDOM_BLOCK_ROWS,
    Randomness,
    blocked,
    latent_noise,
    seeded_generator,
    step_seeds,
)
from dpsynth.synth.dpsgd.transform import TableTransformer

if TYPE_CHECKING:
    import torch

    from dpsynth.mechanisms import NoiseSource
    from dpsynth.synth.conditions import Evidence

CONDITIONAL = ("uniform", "dp_frequencies")
#: Fakes in the public reference block whose BatchNorm statistics normalise a discriminator
#: step's fakes (fixed: never the private batch size).
REFERENCE_ROWS = 256
CONDITION_ON = ("categorical", "codes")
#: seed of the post-processing draws that estimate the generator's own marginals for sampling
ESTIMATE_SEED = 0


@register
@dataclass(kw_only=True, eq=False)
class DPCTGAN(DPSGDSynthesizer):
    """A CTGAN-family conditional GAN trained with DP-SGD on the discriminator (Opacus).

    Args:
        epsilon, delta, insecure_seed, count_split, epochs (default 20), sample_rate, batch_size,
        rows, max_grad_norm, max_noise_multiplier, device, secure_mode, max_levels, clipping,
        numeric_encoding: shared by the DP-SGD generators, see :class:`~.params.DPSGDParameters`.
        conditional: ``dp_frequencies`` (default: cond vectors drawn from 1-way frequencies measured
            with discrete Gaussian noise, charged as ``split_frequencies`` of the budget's ρ) or
            ``uniform`` (drawn uniformly over each column's levels, no budget).
        split_frequencies: share of ρ = approx_dp_to_rho(ε, δ) for the DP frequencies.
        embedding_dim, generator_dims, discriminator_dims: network sizes (CTGAN's, but a
            discriminator of (64, 64): DP noise grows with the parameters it trains).
        generator_lr, discriminator_lr, weight_decay: Adam settings (betas 0.5, 0.9 as CTGAN;
            learning rates 1e-3 against CTGAN's 2e-4: a DP run takes few, noisy steps).
        generator_batch_size: rows per generator step (no data involved).
        generator_steps: generator steps after each discriminator (DP) step; they read no data,
            so they cost no budget.
        generator_average: the time constant, as a share of the generator's steps, of an exponential
            moving average of its weights (and BatchNorm statistics) kept for sampling (Yazıcı et al.
            2019): default 0.25, a decay of 1 − 1/(0.25 · steps), 0.998 at the default 2,000 steps;
            0 keeps the last step's generator. Post-processing of the DP discriminator's judgements:
            no budget, and no random draw (a seeded fit trains alike).
        condition_on: ``codes`` (default: cond vectors over the categorical columns and the binned
            numeric columns' public bins) or ``categorical`` (the categorical columns only).
        calibration_pool: k > 1 (default 8) with ``conditional="dp_frequencies"``: sampling draws k
            candidates a row and keeps rows drawn without replacement with weights raked to the DP
            frequencies already measured (every ``condition_on`` block); post-processing, no budget.
            1, or ``conditional="uniform"`` (nothing to rake to): every generator output is kept.

    Defaults (20 epochs at q = 0.01: 2,000 steps) were chosen on the raw Adult at ε = 1 and 3, each
    change measured beside MST (``benchmarks/RESULTS.md``, "DP-SGD quality beside MST").

    After ``fit``: ``generator_`` (kept for sampling), ``total_estimate_`` (the noisy row count,
    at least 1), ``losses_`` (every 50 steps: the discriminator's loss on the generator's fakes
    and the generator's loss, both post-processing; the discriminator's loss on real rows is a
    statistic of the private data without noise and is not kept).

    Privacy: the noisy row count, DP-SGD on the discriminator for the planned steps (and ρ for
    the DP frequencies); the generator, its conditional vectors and sampling are post-processing.
    """

    name = "dpctgan"

    epochs: float = 20.0
    conditional: str = "dp_frequencies"
    split_frequencies: float = 0.1
    embedding_dim: int = 128
    generator_dims: tuple[int, ...] = (256, 256)
    discriminator_dims: tuple[int, ...] = (64, 64)
    generator_lr: float = 1e-3
    discriminator_lr: float = 1e-3
    weight_decay: float = 1e-6
    generator_batch_size: int = 500
    generator_steps: int = 1
    generator_average: float = 0.25
    condition_on: str = "codes"
    calibration_pool: int = 8

    def _validate_model(self) -> None:
        if self.conditional not in CONDITIONAL:
            raise ParameterError(f"conditional ({self.conditional!r}) must be one of: {', '.join(CONDITIONAL)}")
        check.positive_int("embedding_dim", self.embedding_dim)
        for name in ("generator_dims", "discriminator_dims"):
            check_dims(name, getattr(self, name), non_empty=True)
        check.positive_finite("generator_lr", self.generator_lr)
        check.positive_finite("discriminator_lr", self.discriminator_lr)
        check.nonnegative_finite("weight_decay", self.weight_decay)
        if check.positive_int("generator_batch_size", self.generator_batch_size) < 2:
            raise ParameterError(f"generator_batch_size ({self.generator_batch_size!r}) must be at least 2")
        check.positive_int("generator_steps", self.generator_steps)
        check_window("generator_average", self.generator_average)
        if self.condition_on not in CONDITION_ON:
            raise ParameterError(f"condition_on ({self.condition_on!r}) must be one of: {', '.join(CONDITION_ON)}")
        if self.conditional == "dp_frequencies":
            check_share("split_frequencies", self.split_frequencies)
        check.positive_int("calibration_pool", self.calibration_pool)

    def _products(self, transformer: TableTransformer, batch_rows: int) -> list[tuple[int, int, int]]:
        """The generator on a generator step's batch or a discriminator step's block (with its
        reference block), the discriminator on the (real, fake) pairs or a generator step's fakes."""
        cond = sum(s.width for s in self._condition_spans(transformer))
        data = transformer.output_dim
        out = []
        rows = max(int(self.generator_batch_size), REFERENCE_ROWS + RANDOM_BLOCK_ROWS)
        dim = int(self.embedding_dim) + cond
        for width in self.generator_dims:
            out.append((rows, dim, int(width)))
            dim += int(width)
        out.append((rows, dim, data))
        rows, dim = max(2 * batch_rows, int(self.generator_batch_size)), data + cond
        for width in (*self.discriminator_dims, 1):
            out.append((rows, dim, int(width)))
            dim = int(width)
        return out

    def _condition_spans(self, transformer: TableTransformer) -> tuple[Any, ...]:
        """The one-hot blocks conditional vectors choose from (public: the schema decides them)."""
        return transformer.code_spans if self.condition_on == "codes" else transformer.categorical_spans

    def _frequency_mechanism(self, transformer: TableTransformer) -> GaussianCounts | None:
        spans = self._condition_spans(transformer)
        if self.conditional != "dp_frequencies" or not spans:
            return None
        rho = self.zcdp_budget().rho * float(self.split_frequencies)
        # One row adds one count to each of the d histograms: L2 sensitivity √d of their
        # concatenation, i.e. ρ/d apiece at sensitivity 1 (as MST's 1-way marginals); K√d at a user
        # unit (a person's K bounded rows add K to each histogram at most).
        return GaussianCounts.for_rho(rho / len(spans), l2_sensitivity=transformer.schema.privacy_unit.sensitivity,
                                      label="cond_frequency")

    def _zcdp_events(self, transformer: TableTransformer) -> tuple[PrivacyEvent, ...]:
        mech = self._frequency_mechanism(transformer)
        return () if mech is None else tuple(mech.event for _ in self._condition_spans(transformer))

    def _frequencies(self, plan: DPSGDPlan, codes: np.ndarray, odometer: Odometer, noise: NoiseSource
                     ) -> tuple[list[np.ndarray], bool]:
        """Per categorical column: uniform, or DP-measured frequencies (spends the zCDP events)."""
        transformer = plan.transformer
        mech = self._frequency_mechanism(transformer)
        sizes = [c.size for c in transformer.schema.columns]
        out = []
        for span in self._condition_spans(transformer):
            if mech is None:
                out.append(np.full(span.width, 1.0 / span.width))
                continue
            noisy = mech(marginal_counts(codes, [span.column], sizes), noise=noise, odometer=odometer)
            p = np.clip(noisy.astype(np.float64), 0.0, None)
            out.append(p / p.sum() if p.sum() > 0 else np.full(span.width, 1.0 / span.width))
        return out, mech is not None

    def _train(self, plan: DPSGDPlan, matrix: torch.Tensor, codes: np.ndarray, device: Any, randomness: Randomness,
               odometer: Odometer, noise: NoiseSource, budget: StepBudget) -> None:
        import torch
        from torch.nn import functional as F

        from dpsynth.synth.dpsgd.averaging import WeightAverage, decay_for
        from dpsynth.synth.dpsgd.ctgan_networks import activate, build_networks

        transformer = plan.transformer
        probabilities, measured = self._frequencies(plan, codes, odometer, noise)
        conditions = Conditions(transformer, probabilities, device, self._condition_spans(transformer))
        generator, discriminator = build_networks(
            transformer.output_dim, conditions.dim, int(self.embedding_dim), tuple(self.generator_dims),
            tuple(self.discriminator_dims))
        generator.to(device)
        discriminator.to(device)
        private, optimizer_d, loader = self._private_parts(
            discriminator, matrix, plan, randomness, learning_rate=float(self.discriminator_lr), betas=(0.5, 0.9),
            weight_decay=float(self.weight_decay))
        optimizer_g = torch.optim.Adam(generator.parameters(), lr=float(self.generator_lr), betas=(0.5, 0.9),
                                       weight_decay=float(self.weight_decay))
        gen = randomness.model
        embedding = int(self.embedding_dim)
        g_batch = int(self.generator_batch_size)
        g_steps = int(self.generator_steps)
        average = WeightAverage(generator, decay_for(float(self.generator_average), budget.planned * g_steps))
        losses: list[tuple[float, float]] = []

        def fakes(n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[torch.Tensor]]:
            cond, chosen, values = conditions.sample(n, gen)
            raw = generator(latent_noise((n, embedding), gen, device), cond)
            return raw, cond, chosen, values

        def step_fakes(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
            """The n fakes (activated, with their cond vectors) paired with a step's real rows:
            a public reference block of REFERENCE_ROWS fakes (whose BatchNorm statistics normalise
            all of them), then fixed-size public blocks, the first n kept, all from a per-step
            generator. Fake i is the same for every n > i (the Gumbel draws come from the global
            generator, reseeded by the caller)."""
            local = seeded_generator(seed, device)

            def draw(size: int) -> tuple[torch.Tensor, torch.Tensor]:
                cond, _, _ = conditions.sample(size, local)
                return latent_noise((size, embedding), local, device), cond

            z_ref, cond_ref = draw(REFERENCE_ROWS)
            parts = []
            generator.set_reference(REFERENCE_ROWS)
            try:
                for z, cond in blocked(n, draw):  # each block with the reference: same shapes, same values
                    raw = generator(torch.cat([z_ref, z]), torch.cat([cond_ref, cond]))[REFERENCE_ROWS:]
                    parts.append((activate(raw, transformer, gumbel=True), cond))
            finally:
                generator.set_reference(0)
            return torch.cat([f for f, _ in parts])[:n], torch.cat([c for _, c in parts])[:n]

        loss_fake = torch.zeros((), device=device)
        self._spend_dp_sgd(plan, odometer)  # the reservation is spent from here on
        # At the user unit: Poisson over people, each row's person within the batch (summed, then clipped)
        batches = person_batches(loader, budget) if self._person_groups is not None else \
            ((rows, None) for rows in poisson_batches(loader, budget))
        for batch, people in batches:
            real = batch.to(device)
            n = real.shape[0]
            # -- discriminator: one DP-SGD step on (real, fake) pairs ------------------------------
            # A fixed number of seeds per step, whatever n: nothing drawn later depends on n.
            fake_seed, real_seed, gumbel_seed, dropout_seed = step_seeds(gen, 4)
            optimizer_d.zero_grad(set_to_none=True)
            with torch.no_grad():  # the fakes read no data; they are the same for every n > i
                torch.manual_seed(gumbel_seed)
                fake, cond_fake = step_fakes(n, fake_seed)
            cond_real = conditions.of_rows(real, seeded_generator(real_seed, device))
            pairs = torch.stack([torch.cat([real, cond_real], dim=1), torch.cat([fake, cond_fake], dim=1)], dim=1)
            torch.manual_seed(dropout_seed)  # the discriminator's dropout masks, pair by pair in order
            logits = private(pairs)
            # per pair: BCE(D(real), 1) + BCE(D(fake), 0), i.e. softplus(-real) + softplus(fake)
            loss_d = F.softplus(-logits[:, 0]) + F.softplus(logits[:, 1])
            dp_backward(private, optimizer_d, loss_d, people=people)
            budget.take()
            optimizer_d.step()
            # -- generator: no real data, the DP discriminator's judgement only -----------------
            private.disable_hooks()
            try:
                for _ in range(g_steps):
                    optimizer_g.zero_grad(set_to_none=True)
                    raw, cond, chosen, values = fakes(g_batch)
                    fake = activate(raw, transformer, gumbel=True)
                    judged = private(torch.cat([fake, cond], dim=1).unsqueeze(1)).squeeze(1)
                    loss_g = F.binary_cross_entropy_with_logits(judged, torch.ones(g_batch, device=device)) \
                        + conditions.loss(raw, chosen, values)
                    loss_g.backward()
                    optimizer_g.step()
                    average.update(generator)
                    loss_fake = F.softplus(judged.detach()).mean()  # BCE(D(fake), 0): no real row
            finally:
                private.enable_hooks()
            if budget.taken % 50 == 0 or budget.done:
                losses.append((float(loss_fake), float(loss_g.detach())))
        generator = average.model
        generator.eval()
        self.generator_ = generator.to("cpu")
        self.conditions_measured_ = measured
        #: the one-hot blocks the conditional vectors cover, in order (``condition_on``)
        self.condition_spans_ = conditions.spans
        self.losses_ = losses
        self.condition_frequencies_ = probabilities if measured else None
        self._estimated_probabilities: list[np.ndarray] | None = None

    # -- sampling (post-processing) -------------------------------------------------------------
    def _condition_probabilities(self, rng: np.random.Generator) -> list[np.ndarray]:
        """Where sampling draws its cond vectors: the DP frequencies when measured; otherwise the
        generator's own marginals, by a fixed-point iteration (a column's distribution among rows
        conditioned on OTHER columns, from cond vectors drawn from the previous estimate; the true
        marginals are a fixed point when the generator matches the data). Post-processing."""
        if self.condition_frequencies_ is not None:
            return self.condition_frequencies_
        if self._estimated_probabilities is not None:
            return self._estimated_probabilities
        import torch

        transformer = self.transformer_
        spans = self._condition_spans(transformer)
        probs = [np.full(s.width, 1.0 / s.width) for s in spans]
        if len(spans) >= 2:
            gen = self._torch_generator(rng)
            for _ in range(3):
                conditions = Conditions(transformer, probs, "cpu", spans)
                with torch.no_grad():
                    cond, chosen, _ = conditions.sample(4000, gen)
                    raw = self.generator_(latent_noise((4000, int(self.embedding_dim)), gen, torch.device("cpu")),
                                          cond)
                new = []
                for k, span in enumerate(spans):
                    others = chosen != k
                    p = torch.softmax(raw[others][:, span.start:span.stop], dim=1).mean(dim=0).numpy()
                    new.append(p / p.sum())
                probs = new
        self._estimated_probabilities = probs
        return probs

    def _sample_matrix(self, n_rows: int, rng: np.random.Generator) -> np.ndarray:
        pool = int(getattr(self, "calibration_pool", 1))
        if pool <= 1 or self.condition_frequencies_ is None:
            return self._sample_matrix_given(n_rows, rng, {})
        return rake_rows(lambda m: self._sample_matrix_given(m, rng, {}), pool, self.condition_spans_,
                         self.condition_frequencies_, n_rows, rng)

    def _sample_matrix_given(self, n_rows: int, rng: np.random.Generator, evidence: Evidence) -> np.ndarray:
        """Generator outputs whose cond vectors mark the condition's values where ``evidence`` conditions
        a column the cond vectors cover (one such column per row, as in training; CTGAN's conditional
        generation); the plain cond vectors otherwise. Rows may still miss the condition: the caller
        keeps those that meet it."""
        import torch

        from dpsynth.synth.dpsgd.ctgan_networks import activate

        # The estimate is cached: drawn from its own fixed seed (a function of the generator alone), so
        # that one random_state gives one sample whether or not an earlier sample made the estimate.
        probs = self._condition_probabilities(np.random.default_rng(ESTIMATE_SEED))
        spans = self._condition_spans(self.transformer_)
        conditions = Conditions(self.transformer_, probs, "cpu", spans)
        targets = {k: evidence[s.column] for k, s in enumerate(spans) if s.column in evidence}
        gen = self._torch_generator(rng)
        out = []
        with torch.no_grad():
            for start in range(0, n_rows, 10_000):
                n = min(10_000, n_rows - start)
                cond = conditions.steered(n, gen, targets) if targets else conditions.sample(n, gen)[0]
                raw = self.generator_(latent_noise((n, int(self.embedding_dim)), gen, torch.device("cpu")), cond)
                out.append(activate(raw, self.transformer_, gumbel=False).numpy())
        return np.concatenate(out, axis=0)
