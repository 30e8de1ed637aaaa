"""The DP-SGD loop's parts: Opacus's module, optimizer and Poisson loader built for a planned run
(:func:`private_parts`), the :class:`StepBudget` that refuses a step past the plan, and the
Poisson batches (:func:`poisson_batches`; :func:`person_batches` at the user unit) that never
yield one step more.

Privacy: the noise N(0, (σ·C)²) on each step's clipped sum is drawn by the DP optimizer from the
fit's noise source (by default a cryptographically secure keystream: :mod:`.secure_optim`,
:mod:`.secure_noise`; Opacus's own optimizer only with a torch generator); the batches are Poisson
samples at the PLANNED rate q from the fit's sampling source, never one derived from the private
row count. At the user unit (:class:`PersonPoissonLoader`) the Poisson sample is
over PEOPLE: each person joins a step with probability q, with all their (bounded) rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

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
    clipping: str = "fused", people: np.ndarray | None = None,
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
      ``DPOptimizer`` for hooks; their :mod:`.secure_optim` subclasses when ``randomness.noise`` is a
      :class:`~.secure_noise.SecureRandom`, the default): adds N(0, (σ·C)²) from ``randomness.noise``
      to the sum of the clipped per-sample gradients, with Opacus's floating-point-attack hardening
      (noise as a sum of 4 draws, over 2);
    * a Poisson loader with the PLANNED ``sample_rate`` (``PrivacyEngine.make_private`` would take
      q = 1/len(loader), a function of the private row count) drawing from ``randomness.sampling``:
      :class:`~.secure_noise.SecurePoissonLoader` for a secure source, Opacus's ``DPDataLoader`` for
      a torch generator.

    This is what ``make_private(..., poisson_sampling=True, grad_sample_mode=...)`` assembles,
    minus that. Both modes clip each sample's whole gradient (all parameters) to norm C; the
    privacy analysis is the same. Gradients must come from :func:`dp_backward`.

    At the user unit, ``people`` is each row's person (0 .. P-1): the loader is then a
    :class:`PersonPoissonLoader` (Poisson over people, same generator and sampler), and
    ``clipping`` must be ``hooks``: :func:`~.clipping.dp_backward` sums each person's per-sample
    gradients, and the optimizer clips those per-person sums (ghost or fused norms are norms of
    one row's gradient, not of a sum over rows).
    """
    import torch
    from opacus.validators import ModuleValidator

    if clipping not in CLIPPING:
        raise ParameterError(f"clipping ({clipping!r}) must be one of: {', '.join(CLIPPING)}")
    if people is not None and clipping != "hooks":  # the estimator chooses it: a bug, not a user mistake
        raise PrivacyAccountingError(f"per-person clipping needs per-sample gradients (hooks), not {clipping!r}")
    errors = ModuleValidator.validate(module, strict=False)
    if errors:  # our own models: a bug, not a user mistake
        raise PrivacyAccountingError(f"model not compatible with per-sample gradients: {errors}")
    adam = torch.optim.Adam(module.parameters(), lr=learning_rate, betas=betas, weight_decay=weight_decay)
    fast = clipping in ("fused", "ghost")
    if fast:
        from opacus.grad_sample import GradSampleModuleFastGradientClipping

        private: Any = FusedLinearClipping(module, max_grad_norm=max_grad_norm) if clipping == "fused" else \
            GradSampleModuleFastGradientClipping(module, batch_first=True, loss_reduction="sum",
                                                 max_grad_norm=max_grad_norm, use_ghost_clipping=True)
    else:
        from opacus.grad_sample import GradSampleModule

        private = GradSampleModule(module, batch_first=True, loss_reduction="sum")
    optimizer = _dp_optimizer(adam, fast, randomness.noise, noise_multiplier=noise_multiplier,
                              max_grad_norm=max_grad_norm)
    if people is not None:
        return private, optimizer, PersonPoissonLoader(matrix, people, sample_rate=sample_rate,
                                                       generator=randomness.sampling)
    return private, optimizer, _row_loader(matrix, sample_rate, randomness.sampling)


def _is_secure(source: Any) -> bool:
    from dpsynth.synth.dpsgd.secure_noise import SecureRandom

    return isinstance(source, SecureRandom)


def _dp_optimizer(adam: Any, fast: bool, noise: Any, *, noise_multiplier: float, max_grad_norm: float) -> Any:
    """The DP optimizer around ``adam`` (fast: for fused and ghost clipping) drawing its noise from
    ``noise``: a secure source (:mod:`.secure_optim`) or a torch generator (Opacus's own, ``secure_mode``'s
    sum of 4 draws)."""
    common: dict[str, Any] = {"noise_multiplier": noise_multiplier, "max_grad_norm": max_grad_norm,
                              "expected_batch_size": None, "loss_reduction": "sum"}
    if _is_secure(noise):
        from dpsynth.synth.dpsgd.secure_optim import SecureDPOptimizer, SecureDPOptimizerFastGradientClipping

        secure_cls = SecureDPOptimizerFastGradientClipping if fast else SecureDPOptimizer
        return secure_cls(adam, noise_source=noise, **common)
    from opacus.optimizers import DPOptimizer, DPOptimizerFastGradientClipping

    cls = DPOptimizerFastGradientClipping if fast else DPOptimizer
    return cls(adam, generator=noise, secure_mode=True, **common)


def _row_loader(matrix: torch.Tensor, sample_rate: float, sampling: Any) -> Any:
    """Poisson batches of rows at ``sample_rate``, yielding ``(batch,)``: from a secure source
    (:class:`~.secure_noise.SecurePoissonLoader`) or a torch generator (Opacus's ``DPDataLoader``)."""
    import torch

    if _is_secure(sampling):
        from dpsynth.synth.dpsgd.secure_noise import SecurePoissonLoader

        return SecurePoissonLoader(matrix, sample_rate=sample_rate, source=sampling)
    from opacus.data_loader import DPDataLoader

    return DPDataLoader(torch.utils.data.TensorDataset(matrix), sample_rate=sample_rate, generator=sampling)


def poisson_sampler(num_samples: int, sample_rate: float, generator: Any) -> Any:
    """Opacus's Poisson sampler over ``num_samples`` items (``torch.rand(n, generator) < q``), or its
    secure equivalent (:class:`~.secure_noise.SecurePoissonSampler`) for a secure source."""
    if _is_secure(generator):
        from dpsynth.synth.dpsgd.secure_noise import SecurePoissonSampler

        return SecurePoissonSampler(num_samples=num_samples, sample_rate=sample_rate, source=generator)
    from opacus.utils.uniform_sampler import UniformWithReplacementSampler

    return UniformWithReplacementSampler(num_samples=num_samples, sample_rate=sample_rate, generator=generator)


class PersonPoissonLoader:
    """Poisson batches of PEOPLE: at every step each person joins independently with probability q
    (the planned rate), and a person who joins brings every one of their rows.

    The draw is Opacus's (``UniformWithReplacementSampler``, the sampler inside ``DPDataLoader``:
    ``torch.rand(P, generator) < q``) or, for a secure source (the default), the same membership
    draw u < q from it (:class:`~.secure_noise.SecurePoissonSampler`; :func:`poisson_sampler`), over
    the P people instead of the rows, from the fit's sampling source. Iterating yields ``1/q``
    batches (as Opacus's loader), each ``(rows, people)``: the rows of the sampled people in table
    order, and each row's person renumbered 0 .. B-1 within the batch (a grouping for the
    per-person sum, nothing else).

    Privacy: P (the private number of people) sizes the draw and nothing public: steps, q and σ
    are the plan's. Adding or removing one person adds or removes that person's rows in the steps
    that sample them and changes no other person's membership.
    """

    def __init__(self, matrix: torch.Tensor, people: np.ndarray, *, sample_rate: float, generator: Any):
        import torch

        groups = np.asarray(people, dtype=np.int64)
        if groups.ndim != 1 or len(groups) != matrix.shape[0]:
            raise PrivacyAccountingError(f"{len(groups)} person labels for {matrix.shape[0]} rows")
        n_people = int(groups.max()) + 1 if len(groups) else 0
        if n_people == 0:  # no row at all: the fit refuses empty data before this
            raise PrivacyAccountingError("no person to sample")
        self.matrix = matrix
        self.people = torch.from_numpy(groups)
        self.n_people = n_people
        self.sample_rate = float(sample_rate)
        self.sampler = poisson_sampler(n_people, self.sample_rate, generator)

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        import torch

        for chosen in self.sampler:
            yield self.batch(torch.as_tensor(chosen, dtype=torch.int64))

    def rows_of(self, chosen: torch.Tensor) -> torch.Tensor:
        """The indices (ascending) of every row of the people ``chosen``."""
        import torch

        sampled = torch.zeros(self.n_people, dtype=torch.bool)
        sampled[chosen] = True
        return sampled[self.people].nonzero(as_tuple=False).reshape(-1)

    def batch(self, chosen: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch of the people ``chosen`` (distinct person numbers): all their rows, in table
        order, and each row's person renumbered 0 .. len(chosen)-1 (in person order)."""
        import torch

        rows = self.rows_of(chosen)
        sampled = torch.zeros(self.n_people, dtype=torch.int64)
        sampled[chosen] = 1
        rank = torch.cumsum(sampled, 0) - 1  # a sampled person's number within the batch
        return self.matrix[rows.to(self.matrix.device)], rank[self.people[rows]]


def poisson_batches(loader: Any, budget: StepBudget) -> Iterator[torch.Tensor]:
    """Poisson batches (possibly empty) until the planned steps are taken; never one more."""
    while budget.remaining() > 0:  # a call, not the ``done`` property: the loop body changes it
        for (batch,) in loader:
            if budget.remaining() <= 0:
                return
            yield batch


def person_batches(loader: PersonPoissonLoader, budget: StepBudget) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Poisson batches of people (:class:`PersonPoissonLoader`) until the planned steps are taken; never one more."""
    while budget.remaining() > 0:
        for batch, people in loader:
            if budget.remaining() <= 0:
                return
            yield batch, people
