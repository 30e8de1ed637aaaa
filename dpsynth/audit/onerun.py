"""One-run audit (Steinke, Nasr, Jagielski 2023, "Privacy auditing with one (1) training run").

m canary records are drawn from the PUBLIC schema domain, distinct and far (in Hamming distance
over the schema's codes) from every row of the base data. Each canary is included independently
with probability ½ (the audit's own seeded coin, independent of the mechanism) in ONE fit,
together with the base data. After the fit every canary gets a score, higher meaning "looks
included"; the auditor guesses "in" for the k highest scores, "out" for the k lowest and abstains
on the rest (r = 2k guesses), counts the v correct guesses, and applies the one-run bound
(:func:`dpsynth.audit.bounds.one_run_epsilon_lower_bound`): an (ε, δ)-DP fit makes v larger than a
Binomial(r, e^ε/(1+e^ε)) only with small probability. Abstaining on the middle is what makes the
bound strong: the extreme scores are the ones an attack is most sure of.

Scoring (``scoring``):

* ``whitebox`` (``auto`` picks it for dpsynth's DP-SGD generators): the auditor sees the model
  that DP-SGD trained, and its initial parameters (DP-SGD's analysis lets an adversary see every
  iterate, the data-independent initial one included). The score of a canary is how much training
  improved the model on it:

  - ``dpvae`` (DP-SGD on the whole VAE): the per-example loss (the negative ELBO: weighted
    reconstruction loss plus KL, at the posterior mean, i.e. latent noise 0) under the initial
    model minus the same loss under the trained model;
  - ``dpctgan`` (DP-SGD on the discriminator only; the generator is post-processing): the trained
    discriminator's logit "real" on the canary minus the initial discriminator's, averaged over
    the conditional vectors that mark the canary's own value in each categorical column (how the
    discriminator saw real rows in training), dropout off.

  The model is received from the fit through the generator's own injection point,
  :meth:`~dpsynth.synth.dpsgd.estimator.DPSGDSynthesizer.observe_training`, set on the audited
  instance only (the generators keep only what sampling needs; nothing is patched, so a fit of
  another generator, in another thread, is never seen).
* ``blackbox`` (any synthesizer; ``auto`` picks it for the others): the fit's synthetic sample
  only. The score of a canary is minus its Hamming distance (over the schema's codes) to the
  closest synthetic row, plus a tie-breaking share of synthetic rows at that distance.

``guesses=None`` tries a fixed ladder of r (2%, 5%, 10%, 20%, 50% and 100% of m) and reports the
largest bound, each computed at confidence 1 − (1 − confidence)/L (Bonferroni over the L rungs),
so the result holds at the stated confidence without choosing r on the outcome.

The fit is on an untracked ledger (the audit is internal evidence; its fit is never released)
with the synthesizer's own DP-SGD configuration at the claimed (ε, δ). The audit reads the data it
is given and is NOT differentially private; its result holds no data row (canaries are described
by counts only).
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import math
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from dpsynth import _validation as check
from dpsynth.audit.bounds import AuditResult, one_run_epsilon_lower_bound
from dpsynth.audit.defaults import ONERUN
from dpsynth.audit.transcript import AuditLedger
from dpsynth.exceptions import InsecureNoiseWarning, ParameterError
from dpsynth.schema.encode import decode, encode
from dpsynth.schema.schema import Schema

METHOD = "one_run_snj2023"
SCORINGS = ("auto", "whitebox", "blackbox")
#: r as a share of m when ``guesses`` is None (Bonferroni over the rungs).
GUESS_LADDER = (0.02, 0.05, 0.1, 0.2, 0.5, 1.0)


# -- data: a public base and the canaries --------------------------------------------------------------


def public_base(schema: Schema, rows: int, *, seed: int = 0) -> pd.DataFrame:
    """A base table from the public schema only: ``rows`` rows whose every column takes a code
    drawn uniformly from the lower half of its values (so that canaries can be far from all of
    them). No data is read."""
    rows = check.positive_int("base_rows", rows)
    rng = np.random.default_rng([seed, 1])
    codes = np.stack([rng.integers(0, max(1, math.ceil(c.n_values / 2)), size=rows) for c in schema.columns], axis=1)
    return decode(codes, schema, rng)


def _hamming_to_nearest(candidates: np.ndarray, others: np.ndarray, chunk: int = 512) -> np.ndarray:
    """For each candidate row of codes, the Hamming distance to the nearest row of ``others``."""
    best = np.full(len(candidates), candidates.shape[1], dtype=np.int64)
    if len(others) == 0:
        return best
    for i in range(0, len(others), chunk):
        block = others[i:i + chunk]
        d = (candidates[:, None, :] != block[None, :, :]).sum(axis=2)
        best = np.minimum(best, d.min(axis=1))
    return best


def make_canaries(schema: Schema, base_codes: np.ndarray, m: int, *, min_distance: int, seed: int = 0
                  ) -> np.ndarray:
    """Codes of ``m`` distinct canaries drawn uniformly from the public domain (non-missing codes),
    each at Hamming distance ≥ ``min_distance`` from every base row (rejection sampling).

    Raises:
        ParameterError: the domain does not hold m such canaries (within a bounded search).
    """
    rng = np.random.default_rng([seed, 2])
    sizes = np.array([c.n_values for c in schema.columns])
    found: list[np.ndarray] = []
    seen: set[bytes] = set()
    for _ in range(50):
        draw = np.stack([rng.integers(0, k, size=max(4 * m, 256)) for k in sizes], axis=1)
        keep = draw[_hamming_to_nearest(draw, base_codes) >= min_distance]
        for row in keep:
            key = row.tobytes()
            if key not in seen:
                seen.add(key)
                found.append(row)
                if len(found) == m:
                    return np.stack(found)
    raise ParameterError(
        f"canaries ({m}) must fit in the public domain: only {len(found)} distinct rows at Hamming distance >= "
        f"{min_distance} from every base row were found; use fewer canaries or a wider schema"
    )


# -- white-box access to a DP-SGD fit ------------------------------------------------------------------


class _TrainedModel:
    """What a white-box audit sees of a DP-SGD fit: the module DP-SGD trained (in place) and a copy
    of it as it was before the first step (its initial, data-independent parameters)."""

    def __init__(self) -> None:
        self.initial: Any = None
        self.trained: Any = None

    def observe(self, module: Any) -> None:
        """The observer given to ``observe_training``: called once, right before training starts."""
        self.initial = copy.deepcopy(module)
        self.trained = module


def _whitebox_kind(synthesizer: Any) -> str | None:
    try:
        from dpsynth.synth.dpsgd.ctgan import DPCTGAN
        from dpsynth.synth.dpsgd.vae import DPVAE
    except ImportError:  # pragma: no cover - torch is an extra
        return None
    if isinstance(synthesizer, DPVAE):
        return "dpvae"
    if isinstance(synthesizer, DPCTGAN):
        return "dpctgan"
    return None


def _vae_loss(model: Any, x: Any, synthesizer: Any) -> np.ndarray:
    """Per-example negative ELBO at the posterior mean (latent noise 0), as the training loss."""
    import torch

    from dpsynth.synth.dpsgd.vae import negative_elbo

    model = model.to("cpu").eval()
    with torch.no_grad():
        out, mu, logvar = model(x, torch.zeros((x.shape[0], int(synthesizer.embedding_dim))))
        loss = negative_elbo(out, mu, logvar, x, synthesizer.transformer_, sigma=float(synthesizer.numeric_sigma),
                             loss_factor=float(synthesizer.loss_factor))
        return loss.numpy().astype(np.float64)


def _discriminator_logit(model: Any, x: Any, synthesizer: Any) -> np.ndarray:
    """The discriminator's logit "real", averaged over the conditional vectors marking the row's
    own value in each categorical column (one at a time, as in training)."""
    import torch

    model = model.to("cpu").eval()
    spans = synthesizer.transformer_.categorical_spans
    with torch.no_grad():
        if not spans:
            return model(x).numpy().astype(np.float64)
        dim = sum(s.width for s in spans)
        total = torch.zeros(x.shape[0])
        offset = 0
        for span in spans:
            cond = torch.zeros((x.shape[0], dim))
            cond[:, offset:offset + span.width] = x[:, span.start:span.stop]
            total += model(torch.cat([x, cond], dim=1))
            offset += span.width
        return (total / len(spans)).numpy().astype(np.float64)


def _whitebox_scores(kind: str, model: _TrainedModel, synthesizer: Any, canaries: pd.DataFrame,
                     codes: np.ndarray) -> np.ndarray:
    import torch

    x = torch.from_numpy(synthesizer.transformer_.transform(canaries, codes))
    if kind == "dpvae":
        return _vae_loss(model.initial, x, synthesizer) - _vae_loss(model.trained, x, synthesizer)
    return _discriminator_logit(model.trained, x, synthesizer) - _discriminator_logit(model.initial, x, synthesizer)


def _blackbox_scores(synthesizer: Any, schema: Schema, codes: np.ndarray, synthetic_rows: int, seed: int
                     ) -> np.ndarray:
    params = inspect.signature(synthesizer.sample).parameters
    takes_state = "random_state" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())
    sample = synthesizer.sample(synthetic_rows, random_state=seed) if takes_state else \
        synthesizer.sample(synthetic_rows)
    synthetic = encode(sample, schema)
    nearest = _hamming_to_nearest(codes, synthetic)
    share = np.array([(np.count_nonzero(synthetic != row, axis=1) == d).sum() for row, d in zip(codes, nearest,
                                                                                              strict=True)])
    return -nearest.astype(np.float64) + share / (len(synthetic) + 1.0)


# -- guesses and the bound -----------------------------------------------------------------------------


def count_correct(scores: np.ndarray, included: np.ndarray, k: int, *, seed: int = 0) -> int:
    """Correct guesses when the k highest scores are guessed "in" and the k lowest "out" (ties
    broken by a seeded random order that does not depend on the inclusion)."""
    order = np.random.default_rng([seed, 3]).permutation(len(scores))
    ranked = order[np.argsort(-scores[order], kind="stable")]
    top, bottom = ranked[:k], ranked[len(ranked) - k:]
    return int(included[top].sum() + (~included[bottom]).sum())


def _ladder(m: int, guesses: int | None) -> list[int]:
    if guesses is not None:
        return [guesses]
    rungs = sorted({max(2, 2 * int(m * f / 2)) for f in GUESS_LADDER})
    return [r for r in rungs if r <= m]


def _check_arguments(
    schema: Schema, *, claimed_epsilon: float, claimed_delta: float, canaries: int, guesses: int | None,
    confidence: float, scoring: str, seed: int, min_distance: int | None, synthetic_rows: int | None,
) -> tuple[float, float, int, int | None, float, int, int | None]:
    """The audit's arguments checked, in a fixed order (the first problem is the one reported):
    (claimed ε, claimed δ, m, guesses, confidence, min_distance, synthetic_rows)."""
    claimed_epsilon = check.positive_finite("claimed_epsilon", claimed_epsilon)
    claimed_delta = check.half_open_unit("claimed_delta", claimed_delta)
    if isinstance(canaries, bool) or not isinstance(canaries, (int, np.integer)) or canaries < 2:
        raise ParameterError(f"canaries ({canaries!r}) must be an integer >= 2")
    m = int(canaries)
    if guesses is not None and (isinstance(guesses, bool) or not isinstance(guesses, (int, np.integer))
                                or guesses < 2 or guesses > m or guesses % 2):
        raise ParameterError(f"guesses ({guesses!r}) must be an even integer in [2, canaries = {m}], or None")
    confidence = ONERUN.check("confidence", confidence)
    if scoring not in SCORINGS:
        raise ParameterError(f"scoring ({scoring!r}) must be one of: {', '.join(SCORINGS)}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ParameterError(f"seed ({seed!r}) must be an integer")
    if not isinstance(schema, Schema):
        raise ParameterError(f"schema ({type(schema).__name__}) must be a dpsynth Schema")
    if min_distance is None:
        min_distance = math.ceil(len(schema) / 2)
    elif isinstance(min_distance, bool) or not isinstance(min_distance, (int, np.integer)) or \
            not 1 <= min_distance <= len(schema):
        raise ParameterError(f"min_distance ({min_distance!r}) must be an integer in [1, {len(schema)}] "
                             "(the number of columns)")
    if synthetic_rows is not None:
        synthetic_rows = check.positive_int("synthetic_rows", synthetic_rows)
    return (claimed_epsilon, claimed_delta, m, None if guesses is None else int(guesses), confidence,
            int(min_distance), synthetic_rows)


def _base_table(base: pd.DataFrame | None, schema: Schema, base_rows: int, seed: int) -> tuple[pd.DataFrame, str]:
    """The table the canaries join, and where it came from (``public_base`` or ``given``)."""
    if base is None:
        return public_base(schema, base_rows, seed=int(seed)), "public_base"
    if not isinstance(base, pd.DataFrame):
        raise ParameterError(f"base ({type(base).__name__}) must be a pandas DataFrame or None")
    return base, "given"


def _audit_fit(synthesizer: Any, training: pd.DataFrame, schema: Schema, *, whitebox: bool) -> _TrainedModel:
    """The one fit, on an untracked ledger; with white-box scoring, the audited instance's own
    observer receives the module DP-SGD trains."""
    model = _TrainedModel()
    with contextlib.ExitStack() as stack:
        if whitebox:  # the audited instance only: no other fit sees the observer
            stack.enter_context(synthesizer.observe_training(model.observe))
        # The audit fit's noise source is recorded below; its insecure-RNG warning is not repeated.
        stack.enter_context(warnings.catch_warnings())
        warnings.simplefilter("ignore", InsecureNoiseWarning)
        synthesizer.fit(training, schema=schema, ledger=AuditLedger())
    return model


def _canary_scores(kind: str | None, model: _TrainedModel, synthesizer: Any, schema: Schema,
                   canary_rows: pd.DataFrame, synthetic_rows: int, seed: int) -> tuple[np.ndarray, str]:
    """A score per canary (higher: looks included), and what it is; ``kind`` None: black-box."""
    canary_codes = encode(canary_rows, schema)
    if kind is not None:
        if model.trained is None:
            raise ParameterError(f"scoring ('whitebox'): the fit of {type(synthesizer).__name__} trained no model "
                                 "that the audit could see")
        scores = _whitebox_scores(kind, model, synthesizer, canary_rows, canary_codes)
        what = {"dpvae": "negative ELBO of the canary: initial model minus trained model (whole VAE)",
                "dpctgan": "discriminator logit 'real' on the canary: trained minus initial"}[kind]
    else:
        scores = _blackbox_scores(synthesizer, schema, canary_codes, synthetic_rows, int(seed))
        what = f"minus Hamming distance to the closest of {synthetic_rows} synthetic rows"
    if not np.all(np.isfinite(scores)):
        scores = np.nan_to_num(scores, nan=-np.inf)
    return scores, what


def _ladder_bounds(scores: np.ndarray, included: np.ndarray, guesses: int | None, *, claimed_epsilon: float,
                   claimed_delta: float, confidence: float, seed: int) -> tuple[list[tuple[int, int, AuditResult]],
                                                                                float]:
    """(r, v, bound) for every rung of the ladder (or the one r given), each at the Bonferroni
    share of the confidence, and that per-rung confidence."""
    m = len(scores)
    rungs = _ladder(m, guesses)
    per_rung = 1.0 - (1.0 - confidence) / len(rungs)
    results = []
    for r in rungs:
        v = count_correct(scores, included, r // 2, seed=int(seed))
        results.append((r, v, one_run_epsilon_lower_bound(m, r, v, claimed_epsilon=claimed_epsilon,
                                                          delta=claimed_delta, confidence=per_rung)))
    return results, per_rung


def one_run_audit(
    make_synthesizer: Callable[[], Any],
    schema: Schema,
    *,
    claimed_epsilon: float,
    claimed_delta: float,
    canaries: int = 1000,
    guesses: int | None = None,
    base: pd.DataFrame | None = None,
    base_rows: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    scoring: str = "auto",
    min_distance: int | None = None,
    synthetic_rows: int | None = None,
) -> AuditResult:
    """One fit with ``canaries`` canaries, each included with probability ½; the one-run ε bound.

    Args:
        make_synthesizer: returns a fresh, unfitted synthesizer at the claimed (ε, δ).
        schema: the public schema (canaries are drawn from its domain).
        claimed_epsilon: the ε of the claim the bound is tested against.
        claimed_delta: the δ of the claim (it enters the bound).
        canaries: m, the number of canaries (at least 2).
        guesses: r (even, 2 ≤ r ≤ m): k = r/2 guesses "in" and k "out"; None: the ladder of
            :data:`GUESS_LADDER` with Bonferroni (see the module docstring).
        base: the data the canaries join (read, never reported); None: :func:`public_base` with
            ``base_rows`` rows from the public domain.
        base_rows: rows of the public base when ``base`` is None.
        confidence: the bound holds with this probability for a fit that meets the claim (the
            ladder included); 1 − confidence is the audit's false-alarm probability.
        seed: the audit's own coins (base, canaries, inclusion, tie-breaking); never the fit's noise.
        scoring: ``auto``, ``whitebox`` (dpsynth's DP-SGD generators) or ``blackbox``.
        min_distance: Hamming distance (over the codes) of every canary to every base row;
            default half the number of columns (rounded up).
        synthetic_rows: rows sampled for black-box scoring (default: the training rows).

    Raises:
        ParameterError: bad arguments (nothing is fitted).
    """
    start = time.perf_counter()
    claimed_epsilon, claimed_delta, m, guesses, confidence, min_distance, synthetic_rows = _check_arguments(
        schema, claimed_epsilon=claimed_epsilon, claimed_delta=claimed_delta, canaries=canaries, guesses=guesses,
        confidence=confidence, scoring=scoring, seed=seed, min_distance=min_distance, synthetic_rows=synthetic_rows)
    base, base_source = _base_table(base, schema, base_rows, seed)
    base_codes = encode(base, schema)  # checks the base against the schema
    synthesizer = make_synthesizer()
    kind = _whitebox_kind(synthesizer)
    if scoring == "whitebox" and kind is None:
        raise ParameterError(f"scoring ('whitebox') needs one of dpsynth's DP-SGD generators (dpvae, dpctgan), not "
                             f"{type(synthesizer).__name__}; use scoring='blackbox' or 'auto'")
    used = "blackbox" if scoring == "blackbox" or kind is None else "whitebox"
    synthesizer.plan(schema)  # validates the synthesizer's parameters before any canary is drawn

    canary_codes = make_canaries(schema, base_codes, m, min_distance=min_distance, seed=int(seed))
    included = np.random.default_rng([seed, 4]).random(m) < 0.5
    canary_rows = decode(canary_codes, schema, np.random.default_rng([seed, 5]))
    training = pd.concat([base.reset_index(drop=True), canary_rows[included].reset_index(drop=True)],
                         ignore_index=True)
    fit_start = time.perf_counter()
    model = _audit_fit(synthesizer, training, schema, whitebox=used == "whitebox")
    fit_seconds = time.perf_counter() - fit_start
    scores, what = _canary_scores(kind if used == "whitebox" else None, model, synthesizer, schema, canary_rows,
                                  synthetic_rows or len(training), seed)
    results, per_rung = _ladder_bounds(scores, included, guesses, claimed_epsilon=claimed_epsilon,
                                       claimed_delta=claimed_delta, confidence=confidence, seed=seed)
    r, v, best = max(results, key=lambda t: t[2].epsilon_lower_bound)
    max_provable = max(res.max_provable_epsilon for _, _, res in results)
    details: dict[str, Any] = {
        "canaries": m,
        "guesses": r,
        "correct": v,
        "included": int(included.sum()),
        "scoring": used,
        "score": what,
        "ladder": [{"guesses": rr, "correct": vv, "epsilon_lower_bound": res.epsilon_lower_bound}
                   for rr, vv, res in results],
        "confidence_per_guess_count": per_rung,
        "base": {"source": base_source, "rows": len(base)},
        "canary_min_distance": min_distance,
        "training_rows": len(training),
        "fits": 1,
        "fit_seconds": round(fit_seconds, 2),
        "synthesizer": type(synthesizer).__name__,
        "seconds": round(time.perf_counter() - start, 2),
    }
    dpsgd = getattr(synthesizer, "dpsgd_", None)
    if isinstance(dpsgd, dict):
        details["dpsgd"] = {k: dpsgd[k] for k in ("noise_multiplier", "sample_rate", "steps_taken", "max_grad_norm",
                                                   "opacus_epsilon_prv", "noise_source") if k in dpsgd}
    return AuditResult(
        claimed_epsilon=claimed_epsilon, claimed_delta=claimed_delta, epsilon_lower_bound=best.epsilon_lower_bound,
        confidence=confidence, trials=1, method=METHOD, max_provable_epsilon=max_provable, details=details,
    )
