"""White-box transcript audit on a worst-case pair of neighbouring datasets.

Many fits are run on world 0 (e.g. ten rows with every column at its first value) and on world 1
(the same plus one row with every column at its last value). The auditor sees the fit's privacy
transcript (every noisy measurement and every selected index, :mod:`dpsynth.audit.transcript`)
and knows both datasets. For each fit it replays the transcript on the *other* dataset (the same
released values, :mod:`dpsynth.audit.replay`) to learn what every query would have been there,
and scores the fit with the exact log-likelihood ratio of the whole transcript between the two
worlds:

* a Gaussian measurement y of true counts x₀ (world 0) or x₁ (world 1) at declared scale σ adds
  (‖y − x₀‖² − ‖y − x₁‖²) / 2σ² (exact for the discrete Gaussian too: both worlds have the same
  normaliser);
* a selection of index i from scores s₀ or s₁ at declared Gumbel scale b adds
  log softmax(s₁/b)ᵢ − log softmax(s₀/b)ᵢ.

By Neyman–Pearson no test on the transcript is more powerful, and the transcript's privacy is
what the claim bounds (the synthetic data is post-processing of it). The log-likelihood ratio is
computed with the *declared* scales, so a mechanism that draws less noise than it declares is
audited for what it really does.

Two bounds come out (:func:`dpsynth.audit.bounds.threshold_audit`, Bonferroni so that a correct
synthesizer is flagged by either with probability at most 1 − confidence):

* the Clopper–Pearson ε lower bound of the whole-transcript score, against the claimed (ε, δ);
* the μ-GDP lower bound of the Gaussian measurements' score alone, against μ = √(2ρ) of the
  claim's ρ. A ρ-zCDP mechanism is in general not √(2ρ)-GDP, but the Gaussian part of the
  transcript is: its measurements compose adaptively as Gaussians, and on a worst-case pair where
  the extra row moves every measurement by the same norm (checked on every fit; otherwise the μ
  comparison is reported as not applicable) their score is N(∓V/2, V) in the two worlds with
  V = Σ‖Δⱼ‖²/σⱼ² ≤ 2ρ. (The discrete Gaussian is no less private than the continuous one,
  Canonne, Kamath and Steinke 2020.)

The audit reads the datasets it is given and is NOT differentially private; its result holds no
data row.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import logsumexp

from dpsynth.audit.bounds import AuditResult, mu_for_claim, threshold_audit
from dpsynth.audit.transcript import GAUSSIAN, NoiseCall, Transcript, record_fit
from dpsynth.exceptions import DPSynthError
from dpsynth.mechanisms.noise import NoiseSource, OpenDPNoise, SeededNoise
from dpsynth.schema.schema import Schema

METHOD = "whitebox_transcript_likelihood_ratio"


class AuditError(DPSynthError):
    """An audit could not be carried out (e.g. a transcript that cannot be scored); a synthesizer
    whose transcript cannot be audited does not pass."""

    exit_code = 1


def _one_call_llr(call_0: NoiseCall, call_1: NoiseCall, output: Any) -> float:
    """log P[output | world 1] − log P[output | world 0] for one noise call."""
    scale = call_0.declared_scale if call_0.declared_scale is not None else call_0.scale
    x0, x1 = call_0.input.astype(float), call_1.input.astype(float)
    if call_0.kind == GAUSSIAN:
        y = np.asarray(output, dtype=float)
        return float((np.sum((y - x0) ** 2) - np.sum((y - x1) ** 2)) / (2.0 * scale**2))
    i = int(output)
    return float((x1[i] / scale - logsumexp(x1 / scale)) - (x0[i] / scale - logsumexp(x0 / scale)))


def transcript_scores(recorded: Transcript, replayed: Transcript, world: int) -> tuple[float, float, float]:
    """(whole-transcript LLR, Gaussian-only LLR, V = Σ‖Δⱼ‖²/σⱼ²) of a fit recorded in ``world`` and
    replayed on the other dataset."""
    if recorded.unpaired_events or recorded.unaccounted_calls:
        raise AuditError("the transcript has privacy events without noise draws (or draws without events): "
                         "it cannot be scored; the record/replay check names them")
    if replayed.error or len(replayed.calls) != len(recorded.calls):
        raise AuditError(f"the transcript could not be replayed on the neighbouring dataset ({replayed.error}): "
                         "what is measured depends on the data; the record/replay check says where")
    total = gaussian = variance = 0.0
    for rec, rep in zip(recorded.calls, replayed.calls, strict=True):
        call_0, call_1 = (rec, rep) if world == 0 else (rep, rec)
        llr = _one_call_llr(call_0, call_1, rec.output)
        total += llr
        if rec.kind == GAUSSIAN:
            gaussian += llr
            scale = rec.declared_scale if rec.declared_scale is not None else rec.scale
            variance += float(np.sum((call_1.input.astype(float) - call_0.input.astype(float)) ** 2)) / scale**2
    return total, gaussian, variance


def _stop_after(synthesizer: Any, schema: Schema) -> int | None:
    """The number of noise calls a fit makes when its plan says so (one per planned Gaussian or
    exponential event); None for adaptive plans, which are run to the end."""
    events = synthesizer.plan(schema)
    if all(getattr(e, "kind", None) in ("gaussian", "exponential") for e in events):
        return len(events)
    return None


def whitebox_audit(
    make_synthesizer: Callable[[], Any],
    schema: Schema,
    data_0: pd.DataFrame,
    data_1: pd.DataFrame,
    *,
    claimed_epsilon: float,
    claimed_delta: float,
    trials_per_world: int,
    confidence: float = 0.95,
    threshold: float | None = 0.0,
    noise: str = "secure",
    seed: int = 0,
    make_noise: Callable[[int], NoiseSource] | None = None,
) -> AuditResult:
    """Audit a synthesizer's transcript on the neighbouring pair (``data_0``, ``data_1``).

    Args:
        make_synthesizer: returns a fresh, unfitted synthesizer.
        schema: the public schema of both datasets.
        data_0: world 0's dataset.
        data_1: world 1's dataset, a neighbour of ``data_0``.
        claimed_epsilon: the claimed ε the ε lower bound is compared with.
        claimed_delta: the claimed δ.
        trials_per_world: fits in each world (each fit is followed by a replay on the other world).
        confidence: a correct synthesizer is flagged by either bound with probability at most 1 − confidence.
        threshold: the log-likelihood-ratio threshold, fixed in advance (0 is the Bayes test for
            equal priors and uses every trial); ``None`` chooses it on half of the trials
            (:func:`dpsynth.audit.bounds.split_trials`) and bounds the errors on the other half.
        noise: "secure" (OpenDP, the noise of a release) or "seeded" (reproducible, insecure;
            draws from ``seed``); the result states which.
        seed: seeds the noise when seeded (trial t in world w draws from ``seed + 2t + w``) and
            the threshold split.
        make_noise: overrides the noise source per trial (a broken-mechanism test hook).
    """
    if noise not in ("secure", "seeded"):
        raise AuditError(f"noise ({noise!r}) must be 'secure' or 'seeded'")
    factory = make_noise or ((lambda s: OpenDPNoise()) if noise == "secure" else
                             (lambda s: SeededNoise(s, _warn=False)))
    start = time.perf_counter()
    stop = _stop_after(make_synthesizer(), schema)
    data = (data_0, data_1)
    scores: dict[int, list[float]] = {0: [], 1: []}
    gaussian_scores: dict[int, list[float]] = {0: [], 1: []}
    variances: list[float] = []
    for t in range(int(trials_per_world)):
        for world in (0, 1):
            source = factory(seed + 2 * t + world)
            recorded = record_fit(make_synthesizer(), data[world], schema, noise=source, stop_after=stop)
            if recorded.error:
                raise AuditError(f"a fit in world {world} failed: {recorded.error}")
            replayed = record_fit(make_synthesizer(), data[1 - world], schema, replay=recorded,
                                  stop_after=len(recorded.calls))
            total, gaussian, variance = transcript_scores(recorded, replayed, world)
            scores[world].append(total)
            gaussian_scores[world].append(gaussian)
            variances.append(variance)
    v = np.asarray(variances)
    mu_applicable = bool(v.size and v.max() - v.min() <= 1e-9 * max(1.0, v.max()) and v.max() > 0)
    claimed_mu = mu_for_claim(claimed_epsilon, claimed_delta) if mu_applicable else None
    details: dict[str, Any] = {
        "noise": "secure (OpenDP)" if noise == "secure" and make_noise is None else
                 ("seeded (insecure, audit only)" if make_noise is None else "custom (test hook)"),
        "trials_per_world": int(trials_per_world),
        "fits": 4 * int(trials_per_world),  # each trial is a fit and its replay on the other world
        "transcript_truncated_after_calls": stop,
        "gaussian_information": float(v.max()) if v.size else 0.0,
        "mu_comparison": "applicable: every fit's Gaussian part has the same V" if mu_applicable else
                         "not applicable: the Gaussian part's V varied across fits (or is zero)",
        "seconds": round(time.perf_counter() - start, 2),
    }
    result = threshold_audit(
        scores[0], scores[1], claimed_epsilon=claimed_epsilon, claimed_delta=claimed_delta, confidence=confidence,
        method=METHOD, threshold=threshold, claimed_mu=claimed_mu, seed=seed, details=details,
    )
    if claimed_mu is None:
        return result
    # The μ bound uses the Gaussian-only score (see the module docstring); the ε bound the whole one.
    mu_part = threshold_audit(
        gaussian_scores[0], gaussian_scores[1], claimed_epsilon=claimed_epsilon, claimed_delta=claimed_delta,
        confidence=confidence, method=METHOD, threshold=threshold, claimed_mu=claimed_mu, seed=seed,
    )
    merged = dict(result.details)
    merged.update({"mu_threshold": mu_part.details["mu_threshold"], "mu_errors": mu_part.details["mu_errors"],
                   "mu_score": "Gaussian measurements only"})
    return AuditResult(
        claimed_epsilon=result.claimed_epsilon, claimed_delta=result.claimed_delta,
        epsilon_lower_bound=result.epsilon_lower_bound, confidence=result.confidence, trials=result.trials,
        method=METHOD, max_provable_epsilon=result.max_provable_epsilon, mu_lower_bound=mu_part.mu_lower_bound,
        claimed_mu=claimed_mu, max_provable_mu=mu_part.max_provable_mu, details=merged,
    )


class ZeroNoise:
    """A noise source with the noise removed (returns the true counts; selects the best score).
    A deliberately broken mechanism for tests of the audits: never use it for anything else."""

    secure = False

    def discrete_gaussian(self, counts: np.ndarray, scale: float) -> np.ndarray:
        """The true counts, unchanged (no noise)."""
        return np.asarray(counts, dtype=np.int64).copy()

    def gumbel_argmax(self, scores: Any, scale: float) -> int:
        """The best score's index (no noise)."""
        return int(np.argmax(np.asarray(scores, dtype=float)))


class ScaledNoise:
    """Draws at ``factor`` × the requested scale (factor ½: σ halved). Broken on purpose: tests only."""

    def __init__(self, inner: NoiseSource, factor: float):
        self.inner, self.factor, self.secure = inner, float(factor), False

    def discrete_gaussian(self, counts: np.ndarray, scale: float) -> np.ndarray:
        """The inner draw at ``factor`` × ``scale``."""
        return self.inner.discrete_gaussian(counts, scale * self.factor)

    def gumbel_argmax(self, scores: Any, scale: float) -> int:
        """The inner selection at ``factor`` × ``scale``."""
        return self.inner.gumbel_argmax(scores, scale * self.factor)


