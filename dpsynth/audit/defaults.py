"""The defaults of every audit kind and the bounds of their parameters, defined once.

One frozen dataclass per audit kind holds each parameter's default (its fields) and its bounds
(``BOUNDS``); the functions (:mod:`dpsynth.audit.canary`, ``blackbox``, ``onerun``, ``whitebox``),
the suite files (:mod:`dpsynth.audit.suite`) and the release policy (:mod:`dpsynth.release.policy`)
all read them from here, so that the same parameter is accepted in the same range everywhere.
Where two places used to disagree, the stricter bound won; each bound says why below.

This module imports nothing heavy: it is read by the file validators before any audit runs.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ClassVar

from dpsynth.exceptions import ParameterError

#: the attacks of the multi-fit membership-inference audit (:mod:`dpsynth.audit.blackbox`)
ATTACKS = ("counting", "dcr", "domias")
#: how the one-run audit scores its canaries (:mod:`dpsynth.audit.onerun`)
SCORINGS = ("auto", "whitebox", "blackbox")
#: where the noise of an audit's fits comes from
NOISES = ("secure", "seeded")
#: how the white-box transcript audit thresholds its score
THRESHOLDS = ("likelihood_ratio", "split")
#: the neighbouring pairs of the record/replay checks (:mod:`dpsynth.audit.replay`)
PAIRS = ("constant_plus_outlier", "outlier_removed", "random_plus_row")
#: the bundled public schemas and tables an audit of a suite can be drawn from
DATASETS = ("adult",)


@dataclass(frozen=True)
class IntBound:
    """An integer from ``low`` to ``high`` (no top when None); ``None`` accepted when ``nullable``."""

    low: int
    high: int | None = None
    nullable: bool = False

    @property
    def constraint(self) -> str:
        """What is expected, in words (``"an integer >= 2"``, ``"an integer from 1 to 3"``)."""
        text = f"an integer >= {self.low}" if self.high is None else f"an integer from {self.low} to {self.high}"
        return text + (" or null" if self.nullable else "")

    def accepts(self, value: object) -> bool:
        """Whether ``value`` is within the bound."""
        if value is None:
            return self.nullable
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            return False
        return self.low <= int(value) and (self.high is None or int(value) <= self.high)

    def check(self, name: str, value: Any) -> Any:
        """``value`` (an int, or None when nullable), or a :class:`ParameterError` in the one shape
        ``"<name> (<value>) must be <constraint>"``."""
        if not self.accepts(value):
            raise ParameterError(f"{name} ({value!r}) must be {self.constraint}")
        return None if value is None else int(value)


@dataclass(frozen=True)
class RealBound:
    """A finite real number in ``[low, high]`` (each end open when asked)."""

    low: float
    high: float
    low_open: bool = False
    high_open: bool = False

    @property
    def constraint(self) -> str:
        """What is expected, in words (``in [0.5, 0.999999]``)."""
        if self.low_open and self.high_open:
            return f"in the open interval ({self.low:g}, {self.high:g})"
        return f"in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}{')' if self.high_open else ']'}"

    def accepts(self, value: object) -> bool:
        """Whether ``value`` is a finite real number within the bound."""
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
            return False
        x = float(value)
        above = x > self.low if self.low_open else x >= self.low
        below = x < self.high if self.high_open else x <= self.high
        return above and below

    def check(self, name: str, value: Any) -> float:
        """``value`` as a float, or a :class:`ParameterError` in the one shape."""
        if not self.accepts(value):
            raise ParameterError(f"{name} ({value!r}) must be {self.constraint}")
        return float(value)


#: The confidence of an audit's headline bound, for every audit kind and in the policy.
#: At least 0.5: below it the "lower bound" is refuted more often than it holds, evidence weaker
#: than a coin (the audits used to accept any value in (0, 1)). At most 0.999999: above it the
#: Bonferroni levels of the one-run and canary audits fall below what their tails can resolve and
#: every audit is inconclusive by construction, a pass that shows nothing (the policy's bounds).
CONFIDENCE = RealBound(0.5, 0.999999)
#: A seed of the audit's own randomness (tables, coins, subsamples): numpy takes seeds >= 0 only.
SEED = IntBound(0)


class _Defaults:
    """What every defaults object offers: its bounds by name and one check per parameter."""

    BOUNDS: ClassVar[Mapping[str, IntBound | RealBound]] = MappingProxyType({})

    def check(self, name: str, value: Any, *, label: str | None = None) -> Any:
        """``value`` checked against the bound of parameter ``name`` (``label`` names it in the message)."""
        return self.BOUNDS[name].check(label or name, value)


@dataclass(frozen=True)
class MembershipAuditDefaults(_Defaults):
    """The multi-fit (black-box) membership-inference audit (:func:`dpsynth.audit.blackbox.blackbox_audit`,
    suite kind ``blackbox``, policy ``audit.method: multi_fit``)."""

    fits_per_world: int = 8
    canaries: int = 1
    outliers: int = 1
    #: rows of the seeded subsample the fits run on (None: all)
    reference_rows: int | None = 2000
    attacks: tuple[str, ...] = ATTACKS
    confidence: float = 0.95
    noise: str = "secure"
    seed: int = 0
    workers: int = 1

    BOUNDS: ClassVar[Mapping[str, IntBound | RealBound]] = MappingProxyType({
        # two fits per world are the fewest that leave a trial to bound after choosing a threshold
        "fits_per_world": IntBound(2),
        "canaries": IntBound(0),
        "outliers": IntBound(0),
        # At least 20 (the policy's; the audits used to accept 10): the subsample is split into the
        # fitted rows and as many held-out reference rows for DOMIAS's density ratio; on fewer than
        # 20 rows the density estimate is noise and the audit passes a leaking generator vacuously.
        "reference_rows": IntBound(20, nullable=True),
        "confidence": CONFIDENCE,
        "seed": SEED,
        "workers": IntBound(1),
    })


@dataclass(frozen=True)
class CanaryAuditDefaults(_Defaults):
    """The release gate's canary audit (:func:`dpsynth.audit.canary.canary_audit`, suite kind
    ``canary``, policy ``audit.method: canary``)."""

    fits: int = 3
    base_rows: int = 1000
    sample_factor: int = 5
    confidence: float = 0.95
    seed: int = 0
    schema: str = "adult"

    BOUNDS: ClassVar[Mapping[str, IntBound | RealBound]] = MappingProxyType({
        # at most 3 fits of the generator beyond the release's own (the audit's cost ceiling)
        "fits": IntBound(1, 3),
        # At least 20 (the policy's; the function and suites used to accept 1): with fewer base rows
        # the table is almost only key canaries, unlike any table a release fits, and a generator
        # that degenerates on tiny tables passes without showing anything.
        "base_rows": IntBound(20),
        "sample_factor": IntBound(1),
        "confidence": CONFIDENCE,
        "seed": SEED,
    })


@dataclass(frozen=True)
class OneRunAuditDefaults(_Defaults):
    """The one-run audit of one fit (:func:`dpsynth.audit.onerun.one_run_audit`, suite kind ``onerun``)."""

    canaries: int = 1000
    #: r (even, at most the canaries), or None: the fixed ladder with Bonferroni
    guesses: int | None = None
    base_rows: int = 1000
    scoring: str = "auto"
    confidence: float = 0.95
    seed: int = 0
    #: Hamming distance of every canary to the base (None: half the columns, rounded up)
    min_distance: int | None = None

    BOUNDS: ClassVar[Mapping[str, IntBound | RealBound]] = MappingProxyType({
        "canaries": IntBound(2),
        "guesses": IntBound(2, nullable=True),  # and even, and at most canaries (checked beside)
        "base_rows": IntBound(1),
        "confidence": CONFIDENCE,
        "seed": SEED,
        "min_distance": IntBound(1, nullable=True),
    })


@dataclass(frozen=True)
class TranscriptAuditDefaults(_Defaults):
    """The white-box transcript audit (:func:`dpsynth.audit.whitebox.whitebox_audit`, suite kind
    ``whitebox``)."""

    confidence: float = 0.95
    noise: str = "secure"
    threshold: str = "likelihood_ratio"
    seed: int = 0

    BOUNDS: ClassVar[Mapping[str, IntBound | RealBound]] = MappingProxyType({
        "trials_per_world": IntBound(1),
        "confidence": CONFIDENCE,
        "seed": SEED,
    })


@dataclass(frozen=True)
class ReplayAuditDefaults(_Defaults):
    """The record/replay checks of dpsynth's own mechanisms (:mod:`dpsynth.audit.replay`, suite kind
    ``replay``) and the worst-case pair a suite draws (``data``)."""

    pairs: tuple[str, ...] = PAIRS
    #: rows of the smaller table of the worst-case pair
    rows: int = 10

    BOUNDS: ClassVar[Mapping[str, IntBound | RealBound]] = MappingProxyType({
        "rows": IntBound(1),
        "columns": IntBound(2),  # values per column of the public domain
    })


@dataclass(frozen=True)
class CopyCheckDefaults(_Defaults):
    """The checks of copies of real rows against a holdout baseline (:mod:`dpsynth.pii.replay`,
    policy section ``replay``)."""

    checks: tuple[str, ...] = ("exact_rows",)
    alpha: float = 0.01
    near_threshold: float = 0.02

    BOUNDS: ClassVar[Mapping[str, IntBound | RealBound]] = MappingProxyType({
        # a false-alarm level above one half flags a faithful generator more often than not
        "alpha": RealBound(0.0, 0.5, low_open=True),
        "near_threshold": RealBound(0.0, 0.99),
    })


BLACKBOX = MembershipAuditDefaults()
CANARY = CanaryAuditDefaults()
ONERUN = OneRunAuditDefaults()
WHITEBOX = TranscriptAuditDefaults()
REPLAY = ReplayAuditDefaults()
COPIES = CopyCheckDefaults()

__all__ = [
    "ATTACKS", "BLACKBOX", "CANARY", "CONFIDENCE", "COPIES", "DATASETS", "NOISES", "ONERUN", "PAIRS", "REPLAY",
    "SCORINGS", "SEED", "THRESHOLDS", "WHITEBOX", "CanaryAuditDefaults", "CopyCheckDefaults", "IntBound",
    "MembershipAuditDefaults", "OneRunAuditDefaults", "RealBound", "ReplayAuditDefaults", "TranscriptAuditDefaults",
]
