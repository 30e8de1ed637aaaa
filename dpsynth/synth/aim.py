"""AIM: McKenna, Mullins, Sheldon and Miklau (2022), "AIM: An Adaptive and Iterative Mechanism for
Differentially Private Synthetic Data", PVLDB 15(11).

1. Measure every 1-way marginal with Gaussian noise.
2. Round after round, until the budget is spent:
   a. keep the candidate marginals (the workload's downward closure) whose addition keeps the
      model below ``max_model_size`` × (share of the budget used so far), or that the model
      already contains;
   b. select the worst-approximated candidate with the exponential mechanism (``split_select`` of
      the round's budget), score = weight × (‖x − x̂‖₁ − √(2/π)·σ·n_cells), sensitivity = the
      largest weight;
   c. measure it with Gaussian noise (the rest of the round's budget);
   d. re-estimate the graphical model (mbi, warm-started);
   e. if the model's estimate of that marginal barely moved, double the per-round budget
      (annealing); when less than two rounds' worth is left, the last round spends all of it.
3. Sample from the final model.

Privacy: the whole ρ (after any DP preprocessing) is reserved before round one as a zCDP filter;
each Gaussian measurement and exponential selection spends its own cost from it, and the
odometer refuses anything past the total. The rounds actually run are recorded.

What is read from the private table: exact marginal counts only, from a
:class:`~dpsynth.marginals.backend.MarginalCounter`, in one request before round one: every 1-way
marginal and every candidate (the quality scores need them all); each round measures one of them,
so a counting engine scans the table once.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dpsynth import _validation as check
from dpsynth.exceptions import ParameterError
from dpsynth.marginals import marginal_counts
from dpsynth.marginals.backend import MarginalCounter
from dpsynth.mechanisms import ExponentialSelection, GaussianCounts, NoiseSource, describe_noise
from dpsynth.privacy.events import PrivacyEvent, ZCDPFilterEvent
from dpsynth.privacy.odometer import Odometer
from dpsynth.schema import dp_bins
from dpsynth.schema.schema import Schema
from dpsynth.synth import _inference, _jtree, _pgm, _sampling
from dpsynth.synth.base import CountsOf, Synthesizer, register
from dpsynth.synth.conditions import Evidence
from dpsynth.synth.measurements import Measurement

Clique = tuple[str, ...]
ROUND_TOL = 1e-5  # between rounds: warm-started fits stop once the loss stops improving
FINAL_TOL = 1e-7
FINAL_ITERS_FACTOR = 3


@dataclass(frozen=True)
class _Plan:
    preprocess: tuple[ExponentialSelection, ...]
    rounds: ZCDPFilterEvent

    def events(self) -> list[PrivacyEvent]:
        events: list[PrivacyEvent] = [m.event for m in self.preprocess]
        return [*events, self.rounds]


def downward_closure(cliques: Sequence[Clique]) -> list[Clique]:
    """Every non-empty subset of every clique, smallest first (AIM's candidate marginals)."""
    out = {tuple(sub) for cl in cliques for k in range(1, len(cl) + 1) for sub in itertools.combinations(cl, k)}
    return sorted(out, key=lambda c: (len(c), c))


def candidate_weights(workload: Sequence[Clique]) -> dict[Clique, float]:
    """AIM's candidates (the workload's downward closure), each weighted by its overlap with the
    workload: wᵣ = Σ_{s ∈ W} |r ∩ s|. Public: depends on the workload only."""
    return {cl: float(sum(len(set(cl) & set(w)) for w in workload)) for cl in downward_closure(workload)}


def quality_scores(
    allowed: Sequence[Clique],
    weights: dict[Clique, float],
    answers: dict[Clique, np.ndarray],
    estimates: dict[Clique, np.ndarray],
    sigma: float,
) -> list[float]:
    """AIM's selection scores: wᵣ · (‖xᵣ − x̂ᵣ‖₁ − √(2/π)·σ·nᵣ) for each allowed candidate r.

    Sensitivity: on neighbouring tables (one row added or removed) the true marginal xᵣ moves by
    one in one cell, while the model's estimate x̂ᵣ, σ and nᵣ depend only on earlier noisy
    releases and the public schema, so each score moves by at most wᵣ ≤ max(w): the sensitivity
    the selection declares (``tests/privacy/test_aim_privacy.py`` checks it).
    """
    bias = math.sqrt(2 / math.pi) * sigma
    return [weights[cl] * (float(np.abs(answers[cl] - estimates[cl]).sum()) - bias * answers[cl].size)
            for cl in allowed]


@register
class AIM(Synthesizer):
    """The AIM synthesizer.

    Args:
        epsilon: ε of the (ε, δ)-DP guarantee (> 0).
        delta: δ of the guarantee, in (0, 1).
        workload: marginals (tuples of column names) the synthetic data should preserve; default
            all 3-way marginals (all of them if the schema has fewer than 3 columns).
        max_model_size: largest graphical model, in megabytes (the paper's default, 80).
        max_rounds: the number of rounds the initial per-round budget is sized for
            (default 16 × number of columns, as published).
        split_select: share of each round's budget for the selection (default 0.1, as published).
        split_preprocess: share of ρ for DP bin edges, when the schema asks for them (default 0.1).
        estimation_iters: mirror-descent iterations per model fit.
        insecure_seed: seed the privacy noise (INSECURE, tests only; warns and is recorded).

    Privacy: consumes ρ = approx_dp_to_rho(ε, δ) zCDP in total.
    """

    name = "aim"
    adaptive = True
    fits_on_marginals = True
    user_level = True

    def __init__(
        self,
        *,
        epsilon: float,
        delta: float,
        workload: Sequence[Sequence[str]] | None = None,
        max_model_size: float = 80.0,
        max_rounds: int | None = None,
        split_select: float = 0.1,
        split_preprocess: float = 0.1,
        estimation_iters: int = 1000,
        insecure_seed: int | None = None,
    ):
        super().__init__(epsilon=epsilon, delta=delta, insecure_seed=insecure_seed)
        self.workload = workload
        self.max_model_size = max_model_size
        self.max_rounds = max_rounds
        self.split_select = split_select
        self.split_preprocess = split_preprocess
        self.estimation_iters = estimation_iters

    # -- planning -------------------------------------------------------------------------------
    def _workload(self, schema: Schema) -> list[Clique]:
        names = schema.names
        if self.workload is None:
            k = min(3, len(names))
            return [tuple(c) for c in itertools.combinations(names, k)]
        workload: list[Clique] = []
        for i, marginal in enumerate(self.workload):
            cols = tuple(marginal)
            unknown = [c for c in cols if c not in names]
            if not cols or unknown or len(set(cols)) != len(cols):
                raise ParameterError(
                    f"workload[{i}] ({list(cols)!r}) must name distinct columns of the schema"
                    + (f"; unknown: {', '.join(repr(c) for c in unknown)}" if unknown else "")
                )
            workload.append(cols)
        return workload

    def _plan(self, schema: Schema) -> _Plan:
        rho = self.zcdp_budget()
        check.positive_finite("max_model_size", self.max_model_size)
        check.positive_int("estimation_iters", self.estimation_iters)
        share = check.positive_finite("split_select", self.split_select)
        if share >= 1:
            raise ParameterError(f"split_select ({self.split_select!r}) must be below 1")
        rounds = self._rounds(schema)
        workload = self._workload(schema)
        too_big = [cl for cl in workload if math.prod(schema[c].size for c in cl) * 8 / 2**20 > self.max_model_size]
        if too_big:
            raise ParameterError(
                f"workload marginal {list(too_big[0])!r} ({math.prod(schema[c].size for c in too_big[0]):,} cells) "
                f"is larger than max_model_size ({self.max_model_size:g} MB)"
            )
        preprocess, rho = dp_bins.plan_quantiles(schema, rho, self.split_preprocess)
        return _Plan(preprocess, ZCDPFilterEvent(rho_budget=rho.rho, max_rounds=rounds, label="aim_rounds"))

    def _rounds(self, schema: Schema) -> int:
        if self.max_rounds is None:
            return 16 * len(schema)
        return check.positive_int("max_rounds", self.max_rounds)

    def plan(self, schema: Schema) -> list[PrivacyEvent]:
        """AIM's privacy events for ``schema``: preprocessing and the zCDP filter of its rounds."""
        return self._plan(schema).events()

    def _preprocess_mechanisms(self, schema: Schema) -> list[ExponentialSelection]:
        return list(self._plan(schema).preprocess)

    # -- fitting --------------------------------------------------------------------------------
    def _fit_codes(self, codes: np.ndarray, schema: Schema, odometer: Odometer, noise: NoiseSource) -> None:
        """AIM on the encoded table (its marginal counts in memory); see :meth:`_fit_counts`."""
        self._fit_counts(CountsOf(codes, schema, marginal_counts), schema, odometer, noise)

    def _fit_counts(self, counter: MarginalCounter, schema: Schema, odometer: Odometer, noise: NoiseSource) -> None:
        """AIM on the exact marginals ``counter`` answers. Privacy: spends the plan's filter budget
        round by round."""
        start = time.perf_counter()
        plan = self._plan(schema)
        names, sizes = schema.names, schema.sizes
        size_of = dict(zip(names, sizes, strict=True))
        index = {n: i for i, n in enumerate(names)}
        domain = _pgm.make_domain(names, sizes)
        oracle = _jtree.SizeOracle(names, sizes)
        workload = self._workload(schema)
        candidates = candidate_weights(workload)
        rho_total = plan.rounds.rho_budget
        spent_before = odometer.spent.rho  # DP preprocessing, if any
        rounds = plan.rounds.max_rounds
        select_share = float(self.split_select)
        rho_round = rho_total / rounds

        def used() -> float:
            return odometer.spent.rho - spent_before

        # Every marginal the fit reads, in one request: the 1-way marginals and all candidates (exact
        # counts, kept as floats for the scores; below 2^53 the float holds the count exactly).
        wanted = list(dict.fromkeys([*((n,) for n in names), *candidates]))
        answers = {cl: x.astype(float) for cl, x in zip(
            wanted, counter.counts([[index[c] for c in cl] for cl in wanted]), strict=True)}

        def counts(cl: Clique) -> np.ndarray:
            return answers[cl].astype(np.int64)

        measurements = []
        published: list[Measurement] = []  # the same noisy measurements as plain values (``measurements_``)
        k = schema.privacy_unit.sensitivity  # 1 for a row; K for a person with up to K rows
        one_way = GaussianCounts.for_rho((1 - select_share) * rho_round, l2_sensitivity=k, label="aim_one_way")
        if used() + len(names) * one_way.rho > rho_total:  # fewer rounds than columns: share it out
            one_way = GaussianCounts.for_rho(rho_total / (2 * len(names)), l2_sensitivity=k, label="aim_one_way")
        for name in names:
            y = one_way(counts((name,)), noise=noise, odometer=odometer)
            measurements.append(_pgm.linear_measurement(y, (name,), one_way.scale))
            published.append(Measurement.of((name,), y, one_way.scale, shape=(size_of[name],)))
        fit = _pgm.estimate_model(domain, measurements, iters=int(self.estimation_iters), tol=ROUND_TOL)
        model = _inference.Model(fit.potentials, size_of)
        measured: list[Clique] = [(n,) for n in names]
        history = []
        terminate = False
        while not terminate:
            remaining = rho_total - used()
            if remaining < 2 * rho_round:
                rho_round = remaining * (1 - 1e-9)  # the last round spends what is left
                terminate = True
            select = ExponentialSelection.for_rho(select_share * rho_round,
                                                  sensitivity=k * max(candidates.values()), label="aim_select")
            measure = GaussianCounts.for_rho((1 - select_share) * rho_round, l2_sensitivity=k, label="aim_measure")
            size_limit = float(self.max_model_size) * min(1.0, (used() + rho_round) / rho_total)
            allowed = self._allowed(candidates, measured, size_limit, oracle)
            estimates = self._estimates(allowed, model, fit)
            scores = quality_scores(allowed, candidates, answers, estimates, measure.scale)
            chosen = allowed[select(scores, noise=noise, odometer=odometer)]
            before = estimates[chosen]
            y = measure(counts(chosen), noise=noise, odometer=odometer)
            measurements.append(_pgm.linear_measurement(y, chosen, measure.scale))
            published.append(Measurement.of(chosen, y, measure.scale, shape=[size_of[c] for c in chosen]))
            if chosen not in measured:
                measured.append(chosen)
            fit = _pgm.estimate_model(domain, measurements, iters=int(self.estimation_iters), tol=ROUND_TOL,
                                      warm_start=fit.state_potentials)
            _pgm.forget_compiled()  # each round's model structure is new: old programs are never reused
            model = _inference.Model(fit.potentials, size_of)
            after = model.marginal(chosen, fit.total).ravel()
            history.append({"clique": list(chosen), "sigma": measure.scale, "epsilon": select.epsilon,
                            "rho": measure.rho + select.rho})
            if np.abs(after - before).sum() <= measure.scale * math.sqrt(2 / math.pi) * len(y):
                rho_round = min(4 * rho_round, rho_total)  # anneal: σ / 2 and ε × 2
        # The final model: same structure as the last round's (no new compilation), fit longer.
        fit = _pgm.estimate_model(domain, measurements, iters=FINAL_ITERS_FACTOR * int(self.estimation_iters),
                                  tol=FINAL_TOL, warm_start=fit.state_potentials)
        self.schema_ = schema
        self.potentials_ = fit.potentials
        self.total_estimate_ = fit.total
        self.measured_ = measured
        self.rounds_ = history
        self.privacy_events_ = list(odometer.events)
        self.privacy_spent_ = odometer.spent
        self.secure_noise_ = bool(noise.secure)
        self.noise_source_ = describe_noise(noise)
        self.timings_ = {"fit": round(time.perf_counter() - start, 4), "rounds": len(history)}
        self.measurements_ = published  # DP output, on the original codes (see dpsynth.synth.measurements)

    def _ledger_detail(self) -> dict[str, object]:
        return {**super()._ledger_detail(), "rounds": [r["clique"] for r in self.rounds_]}

    @staticmethod
    def _estimates(allowed: list[Clique], model: _inference.Model, fit: _pgm.ModelFit) -> dict[Clique, np.ndarray]:
        """The model's marginal (flattened counts) of every allowed candidate.

        Largest first; a candidate inside a measured clique or an already computed candidate is
        summed out of it, and only the rest need variable elimination. Post-processing.
        """
        known: dict[Clique, np.ndarray] = dict(fit.marginals)
        out: dict[Clique, np.ndarray] = {}
        for cl in sorted(allowed, key=len, reverse=True):
            inside = [sup for sup in known if len(sup) > len(cl) and set(cl) <= set(sup)]
            if cl in known:
                table = known[cl]
            elif inside:
                sup = min(inside, key=lambda c: known[c].size)
                kept = [sup.index(a) for a in cl]
                summed = known[sup].sum(axis=tuple(i for i in range(len(sup)) if i not in kept))
                table = np.transpose(summed, np.argsort(np.argsort(kept)))
            else:
                table = model.marginal(cl, fit.total)
                known[cl] = table
            out[cl] = np.asarray(table, dtype=np.float64).ravel()
        return {cl: out[cl] for cl in allowed}

    @staticmethod
    def _allowed(candidates: dict[Clique, float], measured: list[Clique], size_limit: float,
                 oracle: _jtree.SizeOracle) -> list[Clique]:
        """Candidates the model already contains, or whose addition keeps it within the size limit.

        Largest candidates first: a subset of an allowed candidate is allowed without building its
        junction tree (adding fewer edges cannot need a larger triangulation, up to the greedy
        heuristic). Post-processing: uses only the structure chosen so far.
        """
        free = set(downward_closure(measured))
        base = [oracle.mask(cl) for cl in measured]
        allowed: set[Clique] = set()
        for cl in sorted(candidates, key=len, reverse=True):
            if cl in free or any(set(cl) < set(big) for big in allowed if len(big) > len(cl)):
                allowed.add(cl)
            elif oracle.model_size_masks([*base, oracle.mask(cl)]) <= size_limit:
                allowed.add(cl)
        return [cl for cl in candidates if cl in allowed]

    # -- sampling (post-processing) ---------------------------------------------------------------
    def _sample_codes(self, n_rows: int, rng: np.random.Generator) -> np.ndarray:
        """Column by column in the junction tree's order, each from the model's conditional given
        the already drawn columns of its junction-tree cliques (exact for the model), with
        systematic rounding inside every group of equal parent values."""
        return self._sample_codes_given(n_rows, rng, {})

    def _sample_codes_given(self, n_rows: int, rng: np.random.Generator, evidence: Evidence) -> np.ndarray:
        """:meth:`_sample_codes` from the model conditioned on ``evidence``: each condition is one more
        factor on its column (log 0 on the codes it excludes), which zeroes the inconsistent entries of
        every marginal the sampler computes. A one-column factor adds no edge, so the junction tree and
        its order stay valid, and the draws are exact for the conditioned model."""
        names = self.schema_.names
        size_of = dict(zip(names, self.schema_.sizes, strict=True))
        domain = _pgm.make_domain(names, self.schema_.sizes)
        nodes, elimination = _pgm.junction_tree_order(domain, self.measured_)
        jt_cliques = [set(c) for c in nodes]
        potentials = dict(self.potentials_)
        for j, allowed in evidence.items():
            one = (names[j],)
            log_evidence = np.where(allowed, 0.0, -np.inf)
            potentials[one] = potentials[one] + log_evidence if one in potentials else log_evidence
        model = _inference.Model(potentials, size_of)
        out = np.empty((n_rows, len(names)), dtype=np.int64)
        done: set[str] = set()
        for name in list(elimination)[::-1]:
            j = names.index(name)
            parents = sorted({p for c in jt_cliques if name in c for p in c if p in done})
            joint = model.marginal((*parents, name))
            if parents:
                key = np.ravel_multi_index(tuple(out[:, names.index(p)] for p in parents),
                                           tuple(size_of[p] for p in parents))
            else:
                key = np.zeros(n_rows, dtype=np.int64)
            out[:, j] = _sampling.sample_grouped(key, joint.reshape(-1, size_of[name]), rng)
            done.add(name)
        return out
