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

  The model is taken from the fit by wrapping the generators' ``private_parts`` for the duration
  of the audit fit (the generators keep only what sampling needs).
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
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pandas as pd

from dpsynth import _validation as check
from dpsynth.audit.bounds import AuditResult, one_run_epsilon_lower_bound
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


_CAPTURE_LOCK = threading.Lock()


@contextlib.contextmanager
def _capture_dpsgd_model() -> Iterator[dict[str, Any]]:
    """Wrap the DP-SGD generators' ``private_parts`` so that the module DP-SGD trains (and a copy
    of its initial parameters) is kept for scoring."""
    from dpsynth.synth.dpsgd import ctgan, vae

    captured: dict[str, Any] = {}
    with _CAPTURE_LOCK:
        originals = {mod: mod.private_parts for mod in (ctgan, vae)}

        def wrap(original: Callable[..., Any]) -> Callable[..., Any]:
            def private_parts(module: Any, *args: Any, **kwargs: Any) -> Any:
                captured["initial"] = copy.deepcopy(module)
                captured["trained"] = module  # trained in place by the DP optimizer
                return original(module, *args, **kwargs)

            return private_parts

        for mod, original in originals.items():
            mod.private_parts = wrap(original)
        try:
            yield captured
        finally:
            for mod, original in originals.items():
                mod.private_parts = original


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

    from dpsynth.synth.dpsgd.vae import _reconstruction

    model = model.to("cpu").eval()
    with torch.no_grad():
        out, mu, logvar = model(x, torch.zeros((x.shape[0], int(synthesizer.embedding_dim))))
        kl = -0.5 * (1.0 + logvar - mu * mu - logvar.exp()).sum(dim=1)
        rec = _reconstruction(out, x, synthesizer.transformer_, float(synthesizer.numeric_sigma))
        return (float(synthesizer.loss_factor) * rec + kl).numpy().astype(np.float64)


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


def _whitebox_scores(kind: str, captured: dict[str, Any], synthesizer: Any, canaries: pd.DataFrame,
                     codes: np.ndarray) -> np.ndarray:
    import torch

    x = torch.from_numpy(synthesizer.transformer_.transform(canaries, codes))
    if kind == "dpvae":
        return _vae_loss(captured["initial"], x, synthesizer) - _vae_loss(captured["trained"], x, synthesizer)
    return _discriminator_logit(captured["trained"], x, synthesizer) - \
        _discriminator_logit(captured["initial"], x, synthesizer)


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
        canaries: m, the number of canaries (at least 2).
        guesses: r (even, 2 ≤ r ≤ m): k = r/2 guesses "in" and k "out"; None: the ladder of
            :data:`GUESS_LADDER` with Bonferroni (see the module docstring).
        base: the data the canaries join (read, never reported); None: :func:`public_base` with
            ``base_rows`` rows from the public domain.
        min_distance: Hamming distance (over the codes) of every canary to every base row;
            default half the number of columns (rounded up).
        scoring: ``auto``, ``whitebox`` (dpsynth's DP-SGD generators) or ``blackbox``.
        synthetic_rows: rows sampled for black-box scoring (default: the training rows).

    Raises:
        ParameterError: bad arguments (nothing is fitted).
    """
    start = time.perf_counter()
    claimed_epsilon = check.positive_finite("claimed_epsilon", claimed_epsilon)
    claimed_delta = check.half_open_unit("claimed_delta", claimed_delta)
    if isinstance(canaries, bool) or not isinstance(canaries, (int, np.integer)) or canaries < 2:
        raise ParameterError(f"canaries ({canaries!r}) must be an integer >= 2")
    m = int(canaries)
    if guesses is not None and (isinstance(guesses, bool) or not isinstance(guesses, (int, np.integer))
                                or guesses < 2 or guesses > m or guesses % 2):
        raise ParameterError(f"guesses ({guesses!r}) must be an even integer in [2, canaries = {m}], or None")
    confidence = check.real("confidence", confidence)
    if not 0.0 < confidence < 1.0:
        raise ParameterError(f"confidence ({confidence!r}) must be in the open interval (0, 1)")
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
    if base is None:
        base = public_base(schema, base_rows, seed=int(seed))
        base_source = "public_base"
    elif not isinstance(base, pd.DataFrame):
        raise ParameterError(f"base ({type(base).__name__}) must be a pandas DataFrame or None")
    else:
        base_source = "given"
    base_codes = encode(base, schema)  # checks the base against the schema
    synthesizer = make_synthesizer()
    kind = _whitebox_kind(synthesizer)
    if scoring == "whitebox" and kind is None:
        raise ParameterError(f"scoring ('whitebox') needs one of dpsynth's DP-SGD generators (dpvae, dpctgan), not "
                             f"{type(synthesizer).__name__}; use scoring='blackbox' or 'auto'")
    used = "blackbox" if scoring == "blackbox" or kind is None else "whitebox"
    synthesizer.plan(schema)  # validates the synthesizer's parameters before any canary is drawn

    canary_codes = make_canaries(schema, base_codes, m, min_distance=int(min_distance), seed=int(seed))
    included = np.random.default_rng([seed, 4]).random(m) < 0.5
    canary_rows = decode(canary_codes, schema, np.random.default_rng([seed, 5]))
    training = pd.concat([base.reset_index(drop=True), canary_rows[included].reset_index(drop=True)],
                         ignore_index=True)
    fit_start = time.perf_counter()
    with contextlib.ExitStack() as stack:
        captured = stack.enter_context(_capture_dpsgd_model()) if used == "whitebox" else {}
        # The audit fit's noise source is recorded below; its insecure-RNG warning is not repeated.
        stack.enter_context(warnings.catch_warnings())
        warnings.simplefilter("ignore", InsecureNoiseWarning)
        synthesizer.fit(training, schema=schema, ledger=AuditLedger())
    fit_seconds = time.perf_counter() - fit_start
    canary_codes_enc = encode(canary_rows, schema)
    if used == "whitebox":
        if "trained" not in captured:
            raise ParameterError(f"scoring ('whitebox'): the fit of {type(synthesizer).__name__} trained no model "
                                 "that the audit could see")
        scores = _whitebox_scores(str(kind), captured, synthesizer, canary_rows, canary_codes_enc)
        what = {"dpvae": "negative ELBO of the canary: initial model minus trained model (whole VAE)",
                "dpctgan": "discriminator logit 'real' on the canary: trained minus initial"}[str(kind)]
    else:
        n_synth = synthetic_rows or len(training)
        scores = _blackbox_scores(synthesizer, schema, canary_codes_enc, n_synth, int(seed))
        what = f"minus Hamming distance to the closest of {n_synth} synthetic rows"
    if not np.all(np.isfinite(scores)):
        scores = np.nan_to_num(scores, nan=-np.inf)

    rungs = _ladder(m, None if guesses is None else int(guesses))
    per_rung = 1.0 - (1.0 - confidence) / len(rungs)
    results = []
    for r in rungs:
        v = count_correct(scores, included, r // 2, seed=int(seed))
        results.append((r, v, one_run_epsilon_lower_bound(m, r, v, claimed_epsilon=claimed_epsilon,
                                                          delta=claimed_delta, confidence=per_rung)))
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
        "canary_min_distance": int(min_distance),
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
