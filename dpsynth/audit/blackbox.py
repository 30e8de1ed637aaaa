"""Black-box release audit: membership inference from the synthetic output only.

This is the audit a release gate prints. It treats the synthesizer as a black box (``make()``
returns a fresh, unfitted estimator; only ``fit`` and ``sample`` are used) and asks: can an
attacker who sees one synthetic table tell whether a given record was in the training data?

The audit in three files: the targets (canaries from the public domain, the most isolated real
rows: :mod:`dpsynth.audit.blackbox_targets`), the attacks that score a target from one synthetic
table (``counting``, ``dcr``, ``domias``: :mod:`dpsynth.audit.blackbox_attacks`), and the fits,
serial or in worker processes (:mod:`dpsynth.audit.blackbox_workers`). This module is the audit
itself: it chooses the audited rows and the DOMIAS reference, runs the fits, and turns the scores
into statistics.

For each target, world 0 is the base data without the target and world 1 the same plus the target
(one row added: add/remove neighbours). ``fits_per_world`` fits are made in each world, each with
an untracked ledger (audit fits are internal evidence, never released or charged) and secure or
seeded noise; each fit is sampled (as many rows as the base data, in both worlds) and every attack
scores the target from that synthetic table alone. The DOMIAS reference is a sample of real rows
held out of the audited data (disjoint from it) when the real table has more rows than
``reference_rows``, otherwise the public domain's uniform density.

Statistics, per attack, over the pooled trials of all targets (higher score: world 1): AUC, TPR at
1% FPR and the ROC curve (descriptive, from every trial), and the Clopper–Pearson ε lower bound of
:func:`dpsynth.audit.bounds.threshold_audit` with the threshold chosen on a random half of the
trials and the errors counted on the other half. Pooling targets is valid: every neighbouring pair
satisfies FPRⱼ + e^ε·FNRⱼ ≥ 1 − δ, hence so do the averages over targets, and the error counts
are sums of independent Bernoulli trials whose lower tail is no heavier than the binomial's with
the same mean (Hoeffding 1956), so the Clopper–Pearson bounds stay valid. With several attacks,
each bound is computed at confidence 1 − (1 − confidence)/k (Bonferroni over the k attacks), so the
headline, the strongest attack's bound, holds at the stated confidence.

Parallel fits (``workers`` > 1) run in spawned worker processes, one thread each
(:mod:`dpsynth.audit.blackbox_workers`); the result is identical to the serial one with seeded
noise (only ``seconds`` and ``details.workers`` differ). ``make`` must then be picklable (a class,
or ``functools.partial(cls, epsilon=..., delta=..., **params)``, importable in a fresh process); an
unpicklable ``make`` (a lambda, a local function) is refused with a :class:`ParameterError` before
any fit, rather than silently run serially.

The audit reads the real data and is NOT differentially private. Its result describes targets by
kind and index (and an outlier's nearest-neighbour distance), never by their values.
"""

from __future__ import annotations

import math
import pickle
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from dpsynth import _validation as check
from dpsynth.audit.blackbox_attacks import ATTACKS, KERNEL_MISMATCH, log_kernel_density
from dpsynth.audit.blackbox_targets import RARE_COLUMNS, choose_targets, isolation
from dpsynth.audit.blackbox_workers import run_fits
from dpsynth.audit.bounds import NOT_DP_NOTICE, AuditResult, threshold_audit
from dpsynth.audit.defaults import BLACKBOX
from dpsynth.audit.roc import ROC_POINTS, auc, downsample, roc, tpr_at_fpr
from dpsynth.exceptions import DataError, ParameterError
from dpsynth.schema.encode import encode
from dpsynth.schema.schema import Schema

__all__ = [
    "ATTACKS",
    "KERNEL_MISMATCH",
    "METHOD",
    "RARE_COLUMNS",
    "ROC_POINTS",
    "AttackResult",
    "BlackboxResult",
    "auc",
    "blackbox_audit",
    "isolation",
    "roc",
    "tpr_at_fpr",
]

METHOD = "blackbox_membership_inference"


@dataclass(frozen=True)
class AttackResult:
    """One attack's statistics over the pooled trials (higher score: world 1)."""

    name: str
    auc: float
    tpr_at_1pct_fpr: float
    roc_fpr: list[float]
    roc_tpr: list[float]
    bound: AuditResult

    def to_dict(self) -> dict[str, Any]:
        """The attack's figures as JSON-ready values (the ε bound with its threshold and error counts)."""
        d = self.bound.details
        return {
            "auc": self.auc,
            "tpr_at_1pct_fpr": self.tpr_at_1pct_fpr,
            "epsilon_lower_bound": self.bound.epsilon_lower_bound,
            "max_provable_epsilon": self.bound.max_provable_epsilon,
            "roc": {"fpr": list(self.roc_fpr), "tpr": list(self.roc_tpr)},
            "threshold": _finite_or_none(d["epsilon_threshold"]),
            "threshold_chosen_on": d["threshold_chosen_on"],
            "evaluation_trials": d["evaluation_trials"],
            "errors": d["epsilon_errors"],
            "confidence": d["confidence_per_test"],
        }


@dataclass(frozen=True)
class BlackboxResult:
    """Evidence of the black-box release audit. NOT differentially private (see ``notice``);
    holds no data row: targets are described by kind and index."""

    claimed_epsilon: float
    claimed_delta: float
    confidence: float
    attacks: dict[str, AttackResult]
    targets: list[dict[str, Any]]
    fits: int
    seconds: float
    reference_rows: int | None
    details: dict[str, Any] = field(default_factory=dict)
    notice: str = NOT_DP_NOTICE

    @property
    def strongest(self) -> AttackResult:
        """The attack with the largest ε bound (then the largest AUC)."""
        return max(self.attacks.values(), key=lambda a: (a.bound.epsilon_lower_bound, a.auc))

    @property
    def epsilon_lower_bound(self) -> float:
        """The strongest attack's ε lower bound: the headline."""
        return self.strongest.bound.epsilon_lower_bound

    @property
    def max_provable_epsilon(self) -> float:
        """The largest ε any attack could have shown with these trials (a perfect attack's bound)."""
        return max(a.bound.max_provable_epsilon for a in self.attacks.values())

    @property
    def trials(self) -> int:
        """The number of trials: one per fit."""
        return self.fits

    @property
    def auc(self) -> float:
        """The largest AUC of the attacks."""
        return max(a.auc for a in self.attacks.values())

    @property
    def tpr_at_1pct_fpr(self) -> float:
        """The largest TPR at 1% FPR of the attacks."""
        return max(a.tpr_at_1pct_fpr for a in self.attacks.values())

    @property
    def violation(self) -> bool:
        """Whether the headline ε bound exceeds the claimed ε."""
        return self.epsilon_lower_bound > self.claimed_epsilon

    @property
    def conclusive(self) -> bool:
        """Whether the audit could have shown a violation at all (its maximum exceeds the claim)."""
        return self.max_provable_epsilon > self.claimed_epsilon

    def to_dict(self) -> dict[str, Any]:
        """The evidence as JSON-ready values (holds no data row)."""
        return {
            "method": METHOD,
            "claimed_epsilon": self.claimed_epsilon,
            "claimed_delta": self.claimed_delta,
            "epsilon_lower_bound": self.epsilon_lower_bound,
            "max_provable_epsilon": self.max_provable_epsilon,
            "confidence": self.confidence,
            "trials": self.trials,
            "violation": self.violation,
            "conclusive": self.conclusive,
            "auc": self.auc,
            "tpr_at_1pct_fpr": self.tpr_at_1pct_fpr,
            "strongest_attack": self.strongest.name,
            "attacks": {name: a.to_dict() for name, a in self.attacks.items()},
            "targets": [dict(t) for t in self.targets],
            "fits": self.fits,
            "seconds": self.seconds,
            "reference_rows": self.reference_rows,
            "details": dict(self.details),
            "notice": self.notice,
        }


def _finite_or_none(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


# -- the audit ----------------------------------------------------------------------------------------


def _check_inputs(make: Any, real: Any, schema: Any) -> None:
    """What is audited: a factory of fresh synthesizers, a pandas table and a dpsynth schema."""
    if not callable(make):
        raise ParameterError(f"make ({make!r}) must be a callable returning a fresh, unfitted synthesizer")
    if not isinstance(real, pd.DataFrame):
        raise ParameterError(f"real (a {type(real).__name__}) must be a pandas DataFrame")
    if not isinstance(schema, Schema):
        raise ParameterError(f"schema (a {type(schema).__name__}) must be a dpsynth Schema")


def _check_picklable(make: Any, workers: int) -> None:
    """``make`` must travel to the worker processes."""
    try:
        pickle.dumps(make)
    except Exception as exc:  # noqa: BLE001 - pickling may fail in many ways; all mean "cannot send"
        raise ParameterError(
            f"make ({make!r}) cannot be pickled for workers={workers} ({type(exc).__name__}: {exc}); pass "
            "a class or functools.partial(cls, epsilon=..., delta=..., **params) of a class importable "
            "from a module, or workers=1 to fit in this process") from None


def _check_attacks(attacks: Any) -> tuple[str, ...]:
    """The attacks asked for (one name or a list of distinct known names)."""
    names = (attacks,) if isinstance(attacks, str) else attacks
    if not isinstance(names, (list, tuple)) or not names:
        raise ParameterError(f"attacks ({attacks!r}) must be a non-empty list of {', '.join(ATTACKS)}")
    unknown = [a for a in names if a not in ATTACKS]
    if unknown:
        raise ParameterError(f"attacks ({attacks!r}): unknown attack {unknown[0]!r}; expected some of "
                             f"{', '.join(ATTACKS)}")
    if len(set(names)) != len(names):
        raise ParameterError(f"attacks ({attacks!r}) must not name an attack twice")
    return tuple(names)


def _check_arguments(make: Any, real: Any, schema: Any, claimed_epsilon: Any, claimed_delta: Any,
                     fits_per_world: Any, canaries: Any, outliers: Any, reference_rows: Any, attacks: Any,
                     confidence: Any, noise: Any, seed: Any, progress: Any, workers: Any) -> tuple[str, ...]:
    """The attacks asked for, once every argument is checked (the first bad one raises)."""
    _check_inputs(make, real, schema)
    check.positive_finite("claimed_epsilon", claimed_epsilon)
    check.half_open_unit("claimed_delta", claimed_delta)

    def integer(name: str, value: Any, low: int) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ParameterError(f"{name} ({value!r}) must be an integer >= {low}")

    integer("fits_per_world", fits_per_world, 2)
    integer("canaries", canaries, 0)
    integer("outliers", outliers, 0)
    if canaries + outliers < 1:
        raise ParameterError(f"canaries ({canaries!r}) + outliers ({outliers!r}) must be at least 1 target")
    BLACKBOX.check("reference_rows", reference_rows)
    integer("seed", seed, 0)
    if workers is not None:
        integer("workers", workers, 1)
        if workers > 1:
            _check_picklable(make, workers)
    names = _check_attacks(attacks)
    BLACKBOX.check("confidence", confidence)
    if noise not in ("secure", "seeded"):
        raise ParameterError(f"noise ({noise!r}) must be 'secure' or 'seeded'")
    if progress is not None and not callable(progress):
        raise ParameterError(f"progress ({progress!r}) must be None or a callable(done, total)")
    return tuple(names)


def blackbox_audit(
    make: Callable[[], Any],
    real: pd.DataFrame,
    schema: Schema,
    *,
    claimed_epsilon: float,
    claimed_delta: float,
    fits_per_world: int = 8,
    canaries: int = 1,
    outliers: int = 1,
    reference_rows: int | None = 2000,
    attacks: Sequence[str] = ATTACKS,
    confidence: float = 0.95,
    noise: str = "secure",
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
    workers: int | None = None,
    rows_are: str = "real",
) -> BlackboxResult:
    """Membership inference on canaries and outliers from the synthetic output only.

    Args:
        make: returns a fresh, unfitted synthesizer (the estimator contract).
        real: the real (private) table.
        schema: its public schema.
        claimed_epsilon: the claimed ε the ε lower bound is compared with.
        claimed_delta: the claimed δ.
        fits_per_world: fits per world and per target (each sampled once).
        canaries: targets built from the public domain.
        outliers: targets among the most isolated real rows.
        reference_rows: the audit fits on a seeded random subsample of this many real rows (all
            rows when ``None`` or when the table is smaller); the DOMIAS reference is as many
            other real rows when the table has them, else the public domain's uniform.
        attacks: some of ``counting``, ``dcr``, ``domias``.
        confidence: of the headline bound (Bonferroni over the attacks).
        noise: "secure" (OpenDP, the noise of a release) or "seeded" (reproducible, insecure); a
            class that does not draw through ``dpsynth.mechanisms`` draws its own noise.
        seed: seeds the subsample, the canaries, the threshold split (and the noise when seeded).
        progress: called as ``progress(done, total)`` after every fit (in this process, as fits
            complete).
        workers: ``None`` or 1: fit in this process; N > 1: fit in N spawned processes (one thread
            each), with a result identical to the serial one under seeded noise. ``make`` must
            then be picklable (a class, or ``functools.partial(cls, epsilon=..., **params)``).
        rows_are: what ``real`` is, in the result's words: ``"real"`` (the private table: the result
            is NOT DP) or e.g. ``"synthetic"`` (a DP output: the audit is post-processing of it).

    Raises:
        ParameterError: a bad argument, or a ``make`` that cannot be pickled with workers > 1
            (nothing is fitted).
        DataError: the real table does not fit the schema.
        AuditError: a fit failed, a synthetic table does not fit the schema, or a worker process
            stopped.

    Privacy: NOT differentially private; reads ``real``. The result holds no data row.
    """
    start = time.perf_counter()
    names = _check_arguments(make, real, schema, claimed_epsilon, claimed_delta, fits_per_world, canaries,
                             outliers, reference_rows, attacks, confidence, noise, seed, progress, workers)
    claimed_epsilon, claimed_delta = float(claimed_epsilon), float(claimed_delta)
    fits_per_world, canaries, outliers, seed = int(fits_per_world), int(canaries), int(outliers), int(seed)
    workers = 1 if workers is None else int(workers)
    rng = np.random.default_rng(seed)
    real = real.reset_index(drop=True)
    absent = [c for c in schema.names if c not in real.columns]
    if absent:
        raise DataError(f"the real table has no column(s) {', '.join(map(repr, absent))} that the schema declares")
    real = real[schema.names]
    all_codes = encode(real, schema)  # validates the whole table; learns nothing

    # the audited data (a seeded subsample) and the DOMIAS reference (other real rows, or uniform)
    order = rng.permutation(len(real))
    if reference_rows is not None and len(real) > reference_rows:
        pool_idx = np.sort(order[:reference_rows])
        held_idx = order[reference_rows:2 * reference_rows]
        subsample = f"a seeded random {reference_rows:,} of the {len(real):,} {rows_are} rows (seed {seed})"
    else:
        pool_idx, held_idx = np.arange(len(real)), np.arange(0)
        subsample = f"all {len(real):,} {rows_are} rows"
    if len(pool_idx) < 2 + outliers:
        raise ParameterError(f"outliers ({outliers}) must leave at least 2 rows of the {len(pool_idx)} audited rows")
    pool, pool_codes = real.iloc[pool_idx].reset_index(drop=True), all_codes[pool_idx]
    sizes = np.asarray(schema.sizes, dtype=np.int64)
    if len(held_idx):
        held_codes = all_codes[held_idx]
        domias_reference = f"{len(held_idx):,} held-out {rows_are} rows (not in the audited data)"

        def log_reference(codes: np.ndarray) -> float:
            return log_kernel_density(codes, held_codes, sizes)
    else:
        domias_reference = f"the public domain's uniform density (no {rows_are} rows left to hold out)"

        def log_reference(codes: np.ndarray) -> float:
            return -float(np.log(sizes).sum())

    targets = choose_targets(pool, pool_codes, pool_idx, schema, canaries=canaries, outliers=outliers, rng=rng,
                             log_reference=log_reference)

    scores: dict[str, dict[int, list[float]]] = {a: {0: [], 1: []} for a in names}
    jobs = [(ti, world, seed + 1 + ((t * len(targets) + ti) * 2 + world))
            for t in range(fits_per_world) for ti in range(len(targets)) for world in (0, 1)]
    total = len(jobs)
    for (_, world, _), fit_scores in zip(jobs, run_fits(jobs, make, targets, schema, names, noise, workers,
                                                         progress), strict=True):
        for name, value in fit_scores.items():
            scores[name][world].append(value)

    per_attack = 1.0 - (1.0 - confidence) / len(names)
    results: dict[str, AttackResult] = {}
    for name in names:
        s0, s1 = np.asarray(scores[name][0]), np.asarray(scores[name][1])
        bound = threshold_audit(scores[name][0], scores[name][1], claimed_epsilon=claimed_epsilon,
                                claimed_delta=claimed_delta, confidence=per_attack, method=f"{METHOD}:{name}",
                                threshold=None, seed=seed)
        fpr, tpr = roc(s0, s1)
        rf, rt = downsample(fpr, tpr)
        results[name] = AttackResult(name, round(auc(s0, s1), 6), round(tpr_at_fpr(fpr, tpr), 6), rf, rt, bound)
    details = {
        "noise": "secure (OpenDP)" if noise == "secure" else "seeded (insecure, audit only)",
        "fits_per_world": fits_per_world,
        "audited_rows": len(pool),
        "subsample": subsample,
        "domias_reference": domias_reference,
        "synthetic_rows_per_fit": "as many as the base data (world 0) in both worlds",
        "multiple_testing": (f"Bonferroni over {len(names)} attacks: each bound at confidence {per_attack:.6g}"
                             if len(names) > 1 else "one attack: no correction"),
        "pooling": "trials of every target pooled per world; one threshold per attack, chosen on a random half",
        "ledger": "untracked: audit fits are internal evidence, never released or charged",
        "workers": ("1 (fits in this process)" if workers == 1 else
                    f"{min(workers, total)} spawned processes (one thread each; same seeds and order as serial)"),
    }
    return BlackboxResult(
        claimed_epsilon=claimed_epsilon, claimed_delta=claimed_delta, confidence=float(confidence),
        attacks=results, targets=[t.describe() for t in targets], fits=total,
        seconds=round(time.perf_counter() - start, 2), reference_rows=reference_rows, details=details,
        **({} if rows_are == "real" else {
            "notice": f"audit evidence computed from the {rows_are} table only, never from the private rows "
                      "(post-processing of a DP output); contains no private row"}),
    )
