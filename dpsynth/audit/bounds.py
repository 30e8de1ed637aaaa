"""Empirical lower bounds on the privacy loss of a mechanism, from the outcomes of attacks.

An audit runs a distinguishing attack many times on a pair of neighbouring datasets (world 0 and
world 1) and counts its errors. A mechanism that is (ε, δ)-DP forces every test to have
false-positive rate α and false-negative rate β with

    α + e^ε·β ≥ 1 − δ   and   β + e^ε·α ≥ 1 − δ       (Kairouz, Oh, Viswanath 2015)

so observed error rates that are too small prove ε is larger than claimed. The rates are replaced
by one-sided Clopper–Pearson upper confidence bounds (each at level α/2, so the bound holds with
probability at least the stated confidence), and the threshold of the attack score must be chosen
on trials that are not used for the bound (:func:`split_trials`, :func:`threshold_audit`).

* :func:`epsilon_lower_bound` — the ε bound above.
* :func:`mu_lower_bound` — the Gaussian-DP bound μ ≥ Φ⁻¹(1 − α) − Φ⁻¹(β) (Dong, Roth, Su 2022),
  reported as μ and never converted into an (ε, δ) claim; :func:`mu_from_rho` is the μ of a
  Gaussian mechanism with a ρ-zCDP cost, for comparison.
* :func:`one_run_epsilon_lower_bound` — Steinke, Nasr and Jagielski (NeurIPS 2023): one run with
  m canaries each included with probability ½; r guesses of which v are correct.

Every bound also states the largest value its number of trials could ever show (the bound for a
perfect attack): a bound below the claim from an audit whose maximum is also below the claim
proves nothing.

Audits read private data and are NOT differentially private: their results are internal evidence.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy import stats

from dpsynth import _validation as check
from dpsynth.exceptions import ParameterError

NOT_DP_NOTICE = (
    "audit evidence: computed from private data, NOT differentially private; internal use only "
    "(contains no data rows)"
)

#: Results are reported after rounding down to this many decimals (a lower bound rounds down).
_DECIMALS = 6


def _floor(x: float) -> float:
    if not math.isfinite(x):
        return x
    return math.floor(x * 10**_DECIMALS) / 10**_DECIMALS


def _confidence(confidence: float) -> float:
    """The confidence of one bound: any level in (0, 1), since the audits call these at Bonferroni
    levels far above their own (an audit's confidence is bounded by
    :data:`dpsynth.audit.defaults.CONFIDENCE`)."""
    return check.open_unit("confidence", confidence)


_count = check.nonnegative_int


def clopper_pearson_upper(errors: int, trials: int, alpha: float) -> float:
    """One-sided Clopper–Pearson upper bound on a rate, holding with probability ≥ 1 − ``alpha``.

    The exact binomial bound: the p with P[Binomial(trials, p) ≤ errors] = alpha (1 when every
    trial was an error).
    """
    errors, trials = _count("errors", errors), check.positive_int("trials", trials)
    if errors > trials:
        raise ParameterError(f"errors ({errors}) must be at most trials ({trials})")
    if errors == trials:
        return 1.0
    return float(stats.beta.ppf(1.0 - alpha, errors + 1, trials - errors))


@dataclass(frozen=True)
class AuditResult:
    """Evidence from one audit: an empirical lower bound next to the claim it tests.

    ``violation`` is true when the lower bound exceeds the claim (for a μ audit: μ lower bound
    above the μ implied by the claimed ρ). ``max_provable_epsilon`` is the bound a perfect attack
    would reach with the same number of trials; ``trials`` counts every trial the audit ran
    (including those spent choosing a threshold). NOT differentially private (see ``notice``).
    """

    claimed_epsilon: float
    epsilon_lower_bound: float
    confidence: float
    trials: int
    method: str
    max_provable_epsilon: float
    claimed_delta: float = 0.0
    mu_lower_bound: float | None = None
    claimed_mu: float | None = None
    max_provable_mu: float | None = None
    details: dict[str, Any] = field(default_factory=dict)
    notice: str = NOT_DP_NOTICE

    @property
    def violation(self) -> bool:
        """Whether the audit refutes the claim (an ε, or a μ, lower bound above it)."""
        if self.epsilon_lower_bound > self.claimed_epsilon:
            return True
        return self.mu_lower_bound is not None and self.claimed_mu is not None and self.mu_lower_bound > self.claimed_mu

    @property
    def conclusive(self) -> bool:
        """Whether this audit could have shown a violation at all (its maximum exceeds the claim)."""
        if self.max_provable_epsilon > self.claimed_epsilon:
            return True
        mu, claim = self.max_provable_mu, self.claimed_mu
        return mu is not None and claim is not None and mu > claim

    def to_dict(self) -> dict[str, Any]:
        """The result as JSON-ready values, with ``violation`` and ``conclusive``."""
        out = asdict(self)
        out["violation"] = self.violation
        out["conclusive"] = self.conclusive
        return out


@dataclass(frozen=True)
class ErrorCounts:
    """Outcomes of a thresholded attack: false positives among world-0 trials, false negatives
    among world-1 trials."""

    false_positives: int
    negatives: int  # world-0 trials
    false_negatives: int
    positives: int  # world-1 trials

    def __post_init__(self) -> None:
        for name in ("false_positives", "negatives", "false_negatives", "positives"):
            _count(name, getattr(self, name))
        if self.negatives == 0 or self.positives == 0:
            raise ParameterError("trials per world must be at least 1 in each world")
        if self.false_positives > self.negatives or self.false_negatives > self.positives:
            raise ParameterError("error counts must not exceed the trials of their world")


def _rate_bounds(counts: ErrorCounts, confidence: float) -> tuple[float, float]:
    alpha = 1.0 - _confidence(confidence)
    fpr = clopper_pearson_upper(counts.false_positives, counts.negatives, alpha / 2)
    fnr = clopper_pearson_upper(counts.false_negatives, counts.positives, alpha / 2)
    return fpr, fnr


def _epsilon_from_rates(fpr: float, fnr: float, delta: float) -> float:
    best = 0.0
    for a, b in ((fpr, fnr), (fnr, fpr)):
        numerator = 1.0 - delta - b
        if numerator > 0 and a > 0:
            best = max(best, math.log(numerator / a))
    return best


def epsilon_lower_bound(counts: ErrorCounts, *, delta: float, confidence: float) -> float:
    """ε such that the mechanism is not (ε', δ)-DP for any ε' < ε, with the given confidence.

    ε ≥ max{ln((1 − δ − β̄)/ᾱ), ln((1 − δ − ᾱ)/β̄)} with ᾱ, β̄ the one-sided Clopper–Pearson
    upper bounds (each at level (1 − confidence)/2) on the false-positive and false-negative
    rates; 0 when the attack is no better than guessing.
    """
    delta = check.half_open_unit("delta", delta)
    fpr, fnr = _rate_bounds(counts, confidence)
    return _floor(_epsilon_from_rates(fpr, fnr, delta))


def max_provable_epsilon(negatives: int, positives: int, *, delta: float, confidence: float) -> float:
    """The ε bound of a perfect attack (no errors) with these numbers of trials per world."""
    return epsilon_lower_bound(ErrorCounts(0, negatives, 0, positives), delta=delta, confidence=confidence)


def _mu_from_rates(fpr: float, fnr: float) -> float:
    if fpr >= 1.0 or fnr >= 1.0:
        return 0.0
    return max(0.0, float(stats.norm.isf(fpr) - stats.norm.ppf(fnr)))


def mu_lower_bound(counts: ErrorCounts, *, confidence: float) -> float:
    """μ such that the mechanism is not μ'-GDP for any μ' < μ, with the given confidence.

    μ ≥ Φ⁻¹(1 − ᾱ) − Φ⁻¹(β̄) with the same Clopper–Pearson upper bounds as
    :func:`epsilon_lower_bound` (the Gaussian trade-off curve is symmetric, so one expression
    covers both orientations). Reported as μ; never convert it into an (ε, δ) claim.
    """
    fpr, fnr = _rate_bounds(counts, confidence)
    return _floor(_mu_from_rates(fpr, fnr))


def max_provable_mu(negatives: int, positives: int, *, confidence: float) -> float:
    """The μ bound of a perfect attack (no errors) with these numbers of trials per world."""
    return mu_lower_bound(ErrorCounts(0, negatives, 0, positives), confidence=confidence)


def mu_from_rho(rho: float) -> float:
    """μ = √(2ρ): a Gaussian mechanism that costs ρ in zCDP is exactly μ-GDP.

    A general ρ-zCDP mechanism need not be √(2ρ)-GDP; compare against this μ only for attack
    scores that are functions of Gaussian measurements (see ``docs/audit.md``).
    """
    return math.sqrt(2.0 * check.nonnegative_finite("rho", rho))


def mu_for_claim(epsilon: float, delta: float) -> float:
    """μ of a Gaussian mechanism spending the ρ that dpsynth derives from the claim (ε, δ)
    (the same tight conversion the synthesizers use)."""
    from dpsynth.privacy.budgets import ApproxDP

    return mu_from_rho(ApproxDP(epsilon, delta).to_zcdp().rho)


# -- thresholds chosen on separate trials -----------------------------------------------------------


def split_trials(
    scores_0: Sequence[float] | np.ndarray, scores_1: Sequence[float] | np.ndarray, *, selection_fraction: float = 0.5,
    seed: int = 0
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Split each world's scores at random into a selection part (to choose the threshold) and
    an evaluation part (to bound the errors). Returns ``((sel_0, sel_1), (eval_0, eval_1))``."""
    fraction = check.open_unit("selection_fraction", selection_fraction)
    rng = np.random.default_rng(seed)
    parts = []
    for name, scores in (("scores_0", scores_0), ("scores_1", scores_1)):
        values = np.asarray(scores, dtype=float)
        if values.ndim != 1 or len(values) < 2:
            raise ParameterError(f"{name} must hold at least 2 scores to split them")
        if np.isnan(values).any():
            raise ParameterError(f"{name} must not contain NaN")
        order = rng.permutation(len(values))
        k = min(max(1, round(fraction * len(values))), len(values) - 1)
        parts.append((values[order[:k]], values[order[k:]]))
    return (parts[0][0], parts[1][0]), (parts[0][1], parts[1][1])


def count_errors(scores_0: np.ndarray, scores_1: np.ndarray, threshold: float) -> ErrorCounts:
    """Errors of the test "world 1 iff score ≥ threshold"."""
    s0, s1 = np.asarray(scores_0, dtype=float), np.asarray(scores_1, dtype=float)
    return ErrorCounts(int((s0 >= threshold).sum()), len(s0), int((s1 < threshold).sum()), len(s1))


def choose_threshold(
    scores_0: np.ndarray, scores_1: np.ndarray, *, objective: str, delta: float, confidence: float
) -> float:
    """The threshold maximising the Clopper–Pearson ``objective`` ("epsilon" or "mu") on these
    (selection) scores. Higher scores must point to world 1."""
    s0, s1 = np.asarray(scores_0, dtype=float), np.asarray(scores_1, dtype=float)
    values = np.unique(np.concatenate([s0, s1]))
    candidates = np.concatenate([values, [np.inf]])
    best, best_t = -1.0, float(values[len(values) // 2])
    for t in candidates:
        counts = count_errors(s0, s1, float(t))
        if objective == "epsilon":
            value = _epsilon_from_rates(*_rate_bounds(counts, confidence), delta)
        else:
            value = _mu_from_rates(*_rate_bounds(counts, confidence))
        if value > best:
            best, best_t = value, float(t)
    return best_t


def threshold_audit(
    scores_0: Sequence[float],
    scores_1: Sequence[float],
    *,
    claimed_epsilon: float,
    claimed_delta: float,
    confidence: float = 0.95,
    method: str,
    threshold: float | None = None,
    claimed_mu: float | None = None,
    selection_fraction: float = 0.5,
    seed: int = 0,
    details: dict[str, Any] | None = None,
) -> AuditResult:
    """ε (and μ) lower bounds for an attack score; higher scores point to world 1.

    With ``threshold=None`` the trials are split (:func:`split_trials`): the threshold is chosen
    on the selection part and the bounds use only the evaluation part. A threshold fixed before
    the trials (e.g. 0 for a log-likelihood ratio) uses every trial.

    When ``claimed_mu`` is given, both the ε and the μ bound are computed, each at confidence
    1 − (1 − confidence)/2 (Bonferroni), so that a correct mechanism is flagged by either with
    probability at most 1 − ``confidence``.
    """
    confidence = _confidence(confidence)
    claimed_epsilon = check.positive_finite("claimed_epsilon", claimed_epsilon)
    claimed_delta = check.half_open_unit("claimed_delta", claimed_delta)
    s0, s1 = np.asarray(scores_0, dtype=float), np.asarray(scores_1, dtype=float)
    total = len(s0) + len(s1)
    per_test = confidence if claimed_mu is None else 1.0 - (1.0 - confidence) / 2
    info: dict[str, Any] = dict(details or {})
    if threshold is None:
        (sel0, sel1), (ev0, ev1) = split_trials(s0, s1, selection_fraction=selection_fraction, seed=seed)
        t_eps = choose_threshold(sel0, sel1, objective="epsilon", delta=claimed_delta, confidence=per_test)
        t_mu = choose_threshold(sel0, sel1, objective="mu", delta=claimed_delta, confidence=per_test)
        info["threshold_chosen_on"] = {"world_0": len(sel0), "world_1": len(sel1)}
    else:
        if len(s0) == 0 or len(s1) == 0:
            raise ParameterError("scores of both worlds must be non-empty")
        ev0, ev1, t_eps, t_mu = s0, s1, float(threshold), float(threshold)
        info["threshold_fixed_in_advance"] = True
    eps_counts = count_errors(ev0, ev1, t_eps)
    info.update({
        "evaluation_trials": {"world_0": len(ev0), "world_1": len(ev1)},
        "epsilon_threshold": t_eps,
        "epsilon_errors": {"false_positives": eps_counts.false_positives,
                           "false_negatives": eps_counts.false_negatives},
        "confidence_per_test": per_test,
    })
    mu_lb = max_mu = None
    if claimed_mu is not None:
        mu_counts = count_errors(ev0, ev1, t_mu)
        mu_lb = mu_lower_bound(mu_counts, confidence=per_test)
        max_mu = max_provable_mu(len(ev0), len(ev1), confidence=per_test)
        info.update({"mu_threshold": t_mu, "mu_errors": {"false_positives": mu_counts.false_positives,
                                                         "false_negatives": mu_counts.false_negatives}})
    return AuditResult(
        claimed_epsilon=claimed_epsilon,
        claimed_delta=claimed_delta,
        epsilon_lower_bound=epsilon_lower_bound(eps_counts, delta=claimed_delta, confidence=per_test),
        confidence=confidence,
        trials=total,
        method=method,
        max_provable_epsilon=max_provable_epsilon(len(ev0), len(ev1), delta=claimed_delta, confidence=per_test),
        mu_lower_bound=mu_lb,
        claimed_mu=claimed_mu,
        max_provable_mu=max_mu,
        details=info,
    )


# -- one run (Steinke, Nasr, Jagielski 2023) ---------------------------------------------------------


def one_run_p_value(m: int, r: int, v: int, epsilon: float, delta: float) -> float:
    """P-value of v or more correct guesses out of r under the null "(ε, δ)-DP", with m canaries
    each included independently with probability ½ (SNJ 2023, Theorem 3.1 and its δ > 0 form):
    P[Binomial(r, e^ε/(1+e^ε)) ≥ v] + 2mδ · max_{1≤i≤v} P[v − i ≤ Binomial(r, q) < v] / i."""
    q = 1.0 / (1.0 + math.exp(-epsilon))
    p = float(stats.binom.sf(v - 1, r, q))
    if delta > 0 and v > 0:
        pmf = stats.binom.pmf(np.arange(v - 1, -1, -1), r, q)  # P[B = v−1], P[B = v−2], … P[B = 0]
        worst = float(np.max(np.cumsum(pmf) / np.arange(1, v + 1)))
        p += worst * delta * 2 * m
    return min(p, 1.0)


def one_run_epsilon_lower_bound(
    m: int, r: int, v: int, *, claimed_epsilon: float, delta: float, confidence: float = 0.95,
    method: str = "one_run_snj2023", details: dict[str, Any] | None = None,
) -> AuditResult:
    """The largest ε that one run with ``m`` canaries, ``r`` guesses and ``v`` correct ones refutes:
    the smallest ε whose p-value (:func:`one_run_p_value`) is at least 1 − confidence, found by
    bisection (rounded down). ``max_provable_epsilon`` is the bound for v = r."""
    m, r, v = _count("m", m), _count("r", r), _count("v", v)
    if not (v <= r <= m):
        raise ParameterError(f"canaries and guesses must satisfy correct ({v}) <= guesses ({r}) <= canaries ({m})")
    delta = check.half_open_unit("delta", delta)
    confidence = _confidence(confidence)
    alpha = 1.0 - confidence

    def bound(correct: int) -> float:
        if r == 0 or one_run_p_value(m, r, correct, 0.0, delta) >= alpha:
            return 0.0
        lo, hi = 0.0, 1.0
        while one_run_p_value(m, r, correct, hi, delta) < alpha:
            lo, hi = hi, 2 * hi
            if hi > 1e3:
                return math.inf
        for _ in range(100):
            mid = (lo + hi) / 2
            if one_run_p_value(m, r, correct, mid, delta) < alpha:
                lo = mid
            else:
                hi = mid
        return _floor(lo)

    claimed = check.positive_finite("claimed_epsilon", claimed_epsilon)
    return AuditResult(
        claimed_epsilon=claimed, claimed_delta=delta, epsilon_lower_bound=bound(v), confidence=confidence,
        trials=1, method=method, max_provable_epsilon=bound(r),
        details={"canaries": m, "guesses": r, "correct": v, **(details or {})},
    )
