"""Where the randomness of every privacy mechanism comes from.

* :class:`OpenDPNoise` (the default): OpenDP's exact discrete Gaussian and its exact Gumbel
  report-noisy-max, drawing from OpenDP's cryptographically secure generator.
* :class:`SeededNoise`: the same distributions from dpsynth's own exact samplers
  (:mod:`dpsynth.mechanisms._exact`) fed by a seeded, predictable generator. It exists for tests
  and for record/replay audits only; creating one emits :class:`InsecureNoiseWarning` and every
  result built on it is stamped ``insecure_seed``.

An audit that must see or replace the draws of a fit injects its own source with
:func:`noise_source`: within that context (this thread or task only, a :class:`contextvars.ContextVar`)
:func:`make_noise` returns it, so a fit running at the same time in another thread keeps its own
noise. Nothing rebinds a module global.
"""

from __future__ import annotations

import contextlib
import contextvars
import random
import warnings
from collections.abc import Iterator, Sequence
from fractions import Fraction
from functools import lru_cache
from typing import Protocol

import numpy as np

from dpsynth.exceptions import InsecureNoiseWarning
from dpsynth.mechanisms import _exact


class NoiseSource(Protocol):
    """The two primitives the mechanisms draw from."""

    secure: bool

    def discrete_gaussian(self, counts: np.ndarray, scale: float) -> np.ndarray:
        """counts + independent discrete Gaussian noise of the given scale, as int64."""
        ...

    def gumbel_argmax(self, scores: Sequence[float], scale: float) -> int:
        """argmax_i scores[i] + Gumbel(scale), i.e. P[i] ∝ exp(scores[i] / scale)."""
        ...


@lru_cache(maxsize=256)
def _opendp_gaussian(scale: float):  # type: ignore[no-untyped-def]
    import opendp.prelude as dp

    dp.enable_features("contrib")
    space = dp.vector_domain(dp.atom_domain(T=int)), dp.l2_distance(T=int)
    return space >> dp.m.then_gaussian(scale=scale)


@lru_cache(maxsize=256)
def _opendp_noisy_max(scale: float):  # type: ignore[no-untyped-def]
    import opendp.prelude as dp

    dp.enable_features("contrib")
    space = (
        dp.vector_domain(dp.atom_domain(T=float, nan=False)),
        dp.linf_distance(T=float, monotonic=False),
    )
    return dp.m.make_noisy_max(*space, dp.zero_concentrated_divergence(), scale=scale)


class OpenDPNoise:
    """Exact noise from OpenDP (Rust), secure randomness. The default for every release."""

    secure = True
    description = "OpenDP's exact samplers (discrete Gaussian, Gumbel noisy max) on OpenDP's secure generator"

    def discrete_gaussian(self, counts: np.ndarray, scale: float) -> np.ndarray:
        """counts + OpenDP's exact discrete Gaussian noise of the given scale, as int64."""
        meas = _opendp_gaussian(float(scale))
        flat = np.asarray(counts, dtype=np.int64).ravel()
        noisy = meas([int(c) for c in flat])
        return np.asarray(noisy, dtype=np.int64).reshape(np.shape(counts))

    def gumbel_argmax(self, scores: Sequence[float], scale: float) -> int:
        """OpenDP's exact report-noisy-max with Gumbel noise of the given scale."""
        meas = _opendp_noisy_max(float(scale))
        return int(meas([float(s) for s in scores]))

    @staticmethod
    def gaussian_rho(scale: float, l2_sensitivity: int) -> float:
        """ρ that OpenDP's own privacy map states for this scale and sensitivity."""
        return float(_opendp_gaussian(float(scale)).map(int(l2_sensitivity)))

    @staticmethod
    def noisy_max_rho(scale: float, sensitivity: float) -> float:
        """ρ that OpenDP's own privacy map states for report-noisy-max (Gumbel)."""
        return float(_opendp_noisy_max(float(scale)).map(float(sensitivity)))


class SeededNoise:
    """Exact but predictable noise from a seed. INSECURE: for tests and replay audits only."""

    secure = False

    def __init__(self, seed: int, *, _warn: bool = True):
        if _warn:
            warnings.warn(
                f"noise is seeded (insecure_seed={seed}): it is predictable and the result must "
                "not be released",
                InsecureNoiseWarning,
                stacklevel=3,
            )
        self.seed = seed
        self._rng = random.Random(seed)
        self.description = f"seeded (insecure_seed={seed}): dpsynth's exact samplers on a predictable generator"

    def discrete_gaussian(self, counts: np.ndarray, scale: float) -> np.ndarray:
        """counts + exact discrete Gaussian noise from the seeded generator, as int64."""
        sigma_squared = Fraction(float(scale)) ** 2
        flat = np.asarray(counts, dtype=np.int64).ravel()
        noise = [_exact.discrete_gaussian(sigma_squared, self._rng.randrange) for _ in flat]
        return (flat + np.asarray(noise, dtype=np.int64)).reshape(np.shape(counts))

    def gumbel_argmax(self, scores: Sequence[float], scale: float) -> int:
        """The exponential mechanism, sampled exactly from the seeded generator."""
        # P[i] ∝ exp(s_i / scale) is the exponential mechanism with ε / (2Δ) = 1 / scale.
        return _exact.exponential_mechanism(scores, 2.0, float(scale), self._rng.randrange)


def describe_noise(noise: object) -> str:
    """A one-line name of a noise source for the record (``noise_source_``, the release report): its
    ``description``, else its class and whether it says it is secure (an audit's recorder, say)."""
    description = getattr(noise, "description", None)
    if isinstance(description, str) and description:
        return description
    return f"{type(noise).__name__} (secure: {bool(getattr(noise, 'secure', False))})"


_INJECTED: contextvars.ContextVar[NoiseSource | None] = contextvars.ContextVar("dpsynth_noise_source", default=None)


@contextlib.contextmanager
def noise_source(source: NoiseSource) -> Iterator[NoiseSource]:
    """Make :func:`make_noise` return ``source`` inside this block, in the current context only.

    The injection point of the audits (record/replay, black-box fits with seeded noise): a fit run
    inside the block draws from ``source``; a fit in another thread (which starts with a fresh
    context) or after the block draws from its own source. Blocks nest; leaving one restores
    the source outside it.
    """
    token = _INJECTED.set(source)
    try:
        yield source
    finally:
        _INJECTED.reset(token)


def make_noise(insecure_seed: int | None) -> NoiseSource:
    """The source injected by :func:`noise_source` in this context if any; else the secure
    default, or seeded noise when the caller opted in by name."""
    injected = _INJECTED.get()
    if injected is not None:
        return injected
    if insecure_seed is None:
        return OpenDPNoise()
    return SeededNoise(int(insecure_seed))
