"""How many rows each person has, measured with DP: the evidence for choosing K of a user privacy unit.

K trades two losses. Bounding each person at K rows drops their rows beyond K (the *truncation*:
the share of rows a fit never sees), and every noise scale of a fit at ``user:K`` is K times the
row-level one (the *noise*). Both can be read off one DP measurement: the histogram of rows per
person, that is the number of people with exactly c rows for c up to ``exact_up_to``, then in
doubling ranges up to ``max_rows``, then above it (:func:`buckets`). One person adds 1 to exactly one
bucket whatever their number of rows, so the histogram has L2 sensitivity 1 for add/remove one
person with any number of rows, the strongest user unit; its ε is charged to the dataset like any
other release.

From the noisy histogram (post-processing): the people, the rows (each range at its middle) and, for
each K up to ``exact_up_to``, the rows kept, Σ people·min(count, K), unbiased, and their share.
``docs/user-level.md`` and ``notebooks/04-choosing-k.ipynb`` show how to weigh it against the noise
multiplier K.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from dpsynth import _validation as check
from dpsynth.exceptions import InternalError, ParameterError
from dpsynth.marginals.bounding import bound_contributions, check_keys
from dpsynth.mechanisms import GaussianCounts, make_noise
from dpsynth.privacy.accounting import approx_dp_to_rho
from dpsynth.privacy.budgets import ApproxDP
from dpsynth.privacy.unit import PrivacyUnit

__all__ = ["ContributionProfile", "TruncationProfile", "buckets", "contribution_profile", "truncation_profile"]

#: the ledger's name for this measurement
MEASUREMENT = "contribution-profile"


def buckets(exact_up_to: int, max_rows: int) -> list[tuple[int, int | None]]:
    """The histogram's buckets of rows per person, (lowest, highest; None: no highest): one per count up
    to ``exact_up_to``, then doubling up to ``max_rows``, then ``max_rows`` + 1 or more. Public."""
    out: list[tuple[int, int | None]] = [(c, c) for c in range(1, exact_up_to + 1)]
    low = exact_up_to + 1
    while low <= max_rows:
        high = min(max_rows, 2 * (low - 1))
        out.append((low, high))
        low = high + 1
    out.append((max_rows + 1, None))
    return out


@dataclass(frozen=True)
class ContributionProfile:
    """The DP histogram of rows per person and what follows from it (post-processing only).

    ``histogram[b]`` is the noisy number of people whose row count falls in ``buckets[b]`` (unbiased,
    so it may be negative; the estimates below are clipped where they must be). ``scale`` is the noise's
    standard deviation per bucket.
    """

    histogram: np.ndarray
    buckets: tuple[tuple[int, int | None], ...]
    exact_up_to: int
    scale: float
    epsilon: float
    delta: float

    @property
    def people(self) -> float:
        """Estimated number of people."""
        return max(0.0, float(self.histogram.sum()))

    @property
    def rows(self) -> float:
        """Estimated number of rows: each bucket's people times its middle (its lowest count for the last,
        open bucket: there the estimate is a lower bound)."""
        middle = [c if c == d else (c + d) / 2 if d is not None else c for c, d in self.buckets]
        return max(0.0, float(np.dot(self.histogram, middle)))

    def rows_kept(self, k: int) -> float:
        """Estimated rows a fit at ``user:k`` keeps, Σ people·min(count, k): unbiased for k up to
        ``exact_up_to`` (every bucket is then either all at most k or all above it)."""
        k = check.positive_int("k", k)
        if k > self.exact_up_to:
            raise ParameterError(f"k ({k}) must be at most exact_up_to ({self.exact_up_to}) of the profile")
        per_person = [min(c, k) if c == d else k for c, d in self.buckets]  # a coarse bucket starts above k
        return max(0.0, float(np.dot(self.histogram, per_person)))

    def kept_share(self, k: int) -> float:
        """The estimated share of rows a fit at ``user:k`` keeps (1 − the truncation), in [0, 1]."""
        rows = self.rows
        return 0.0 if rows <= 0 else min(1.0, self.rows_kept(k) / rows)

    def table(self, ks: Sequence[int]) -> list[dict[str, float]]:
        """For each K: the estimated rows kept and their share, and the noise multiplier (K)."""
        return [{"k": int(k), "rows_kept": self.rows_kept(int(k)), "kept_share": self.kept_share(int(k)),
                 "noise_multiplier": float(k)} for k in ks]


def contribution_profile(data: pd.DataFrame, column: str, *, epsilon: float, delta: float, ledger: object,
                         dataset: str | None = None, exact_up_to: int = 16, max_rows: int = 64,
                         insecure_seed: int | None = None) -> ContributionProfile:
    """Measure the histogram of rows per person of ``data`` (people keyed by ``column``) with DP.

    Args:
        data: the private table, with the person key column.
        column: the key column.
        epsilon: ε of the measurement, with ``delta``; charged to ``dataset`` in ``ledger`` first.
        delta: its δ.
        ledger: a :class:`~dpsynth.privacy.ledger.Ledger` (or ``dpsynth.UNTRACKED``, which warns).
        dataset: the dataset's name in the ledger.
        exact_up_to: one bucket per row count up to this (the largest K the profile can weigh); public.
        max_rows: buckets double from ``exact_up_to`` to this, then one bucket above it; public.
        insecure_seed: seed the noise (INSECURE, tests only).

    Raises:
        ParameterError, DataError: bad input (a missing key, a bad parameter), before anything is charged.
        BudgetExceededError: the ledger cannot pay for it (nothing is charged).

    Privacy: (ε, δ)-DP for add/remove one person with any number of rows (L2 sensitivity 1).
    """
    from dpsynth.privacy.ledger import Ledger, check_ledger_argument

    budget = ApproxDP(check.positive_finite("epsilon", epsilon), check.open_unit("delta", delta))
    exact_up_to = check.positive_int("exact_up_to", exact_up_to)
    max_rows = check.positive_int("max_rows", max_rows)
    if max_rows < exact_up_to:
        raise ParameterError(f"max_rows ({max_rows}) must be at least exact_up_to ({exact_up_to})")
    edges = buckets(exact_up_to, max_rows)
    check_ledger_argument(ledger, dataset, doing="measure")
    keys = check_keys(data, column)  # a user mistake costs nothing
    mechanism = GaussianCounts.for_rho(approx_dp_to_rho(budget.epsilon, budget.delta), label="rows_per_person")
    if isinstance(ledger, Ledger):
        ledger.check(str(dataset), [mechanism.event], claimed=budget)
    fingerprint = hashlib.sha256("\x1f".join(keys.tolist()).encode("utf-8")).hexdigest()
    reservation = ledger.reserve(  # type: ignore[attr-defined]
        dataset, [mechanism.event], synthesizer=MEASUREMENT, claimed=budget, input_sha256=fingerprint,
        parameters={"exact_up_to": exact_up_to, "max_rows": max_rows}, unit=PrivacyUnit.users(column, max_rows=1))
    start = time.perf_counter()
    try:
        lows = np.asarray([c for c, _ in edges])
        bucket = np.searchsorted(lows, keys.value_counts().to_numpy(), side="right") - 1  # each person: one bucket
        histogram = np.bincount(bucket, minlength=len(edges)).astype(np.int64)
        noisy = mechanism(histogram, noise=make_noise(insecure_seed), odometer=reservation.odometer)
    except BaseException as exc:
        reservation.fail(type(exc).__name__)
        raise
    if len(noisy) != len(edges):
        raise InternalError("the histogram of rows per person has the wrong length")
    reservation.complete(seconds=round(time.perf_counter() - start, 3))
    return ContributionProfile(noisy.astype(float), tuple(edges), exact_up_to, float(mechanism.scale),
                               budget.epsilon, budget.delta)


@dataclass(frozen=True)
class TruncationProfile:
    """DP 1-way marginals of the table bounded at each K, and how far each K's are from the largest K's.

    ``distortion[k]``: mean over the columns of the total-variation distance between the 1-way
    marginals at K = k and at the largest K (post-processing of noisy counts, so it includes their
    noise; ``noise_floor[k]`` is what that noise alone contributes, about). ``rows[k]``: the DP number of
    rows kept at k (mean of the columns' noisy totals).
    """

    ks: tuple[int, ...]
    rows: dict[int, float]
    distortion: dict[int, float]
    noise_floor: dict[int, float]
    scales: dict[int, float]
    epsilon: float
    delta: float


def _tvd(a: np.ndarray, b: np.ndarray) -> float:
    pa, pb = np.maximum(a, 0), np.maximum(b, 0)
    if pa.sum() <= 0 or pb.sum() <= 0:
        return 1.0
    return float(0.5 * np.abs(pa / pa.sum() - pb / pb.sum()).sum())


def truncation_profile(data: pd.DataFrame, schema: Any, ks: Sequence[int], *, epsilon: float, delta: float,
                       ledger: object, dataset: str | None = None,
                       insecure_seed: int | None = None) -> TruncationProfile:
    """Measure, with DP, what bounding each person at K rows does to the 1-way marginals, for each K of ``ks``.

    The table is bounded at each K by the fit's own rule (:mod:`dpsynth.marginals.bounding`) and every
    column's 1-way marginal is measured with Gaussian noise of L2 sensitivity K (a person's K rows in
    one cell); ρ is shared evenly over the Ks and the columns. Charged to ``dataset`` first, at the
    schema's user unit with the largest K.

    Raises:
        ParameterError, DataError: bad input, before anything is charged.
        BudgetExceededError: the ledger cannot pay for it.

    Privacy: (ε, δ)-DP for add/remove one person (any number of rows: each is bounded at every K).
    """
    from dpsynth.privacy.ledger import Ledger, check_ledger_argument
    from dpsynth.schema.encode import encode

    budget = ApproxDP(check.positive_finite("epsilon", epsilon), check.open_unit("delta", delta))
    column = schema.privacy_unit.column
    if column is None:
        raise ParameterError("truncation_profile needs a schema whose privacy unit names the person key column")
    ks = tuple(sorted({check.positive_int("k", k) for k in ks}))
    if len(ks) < 2:
        raise ParameterError(f"ks ({list(ks)!r}) must hold at least two values of K to compare")
    check_ledger_argument(ledger, dataset, doing="measure")
    keys = check_keys(data, column)
    codes = encode(data, schema)  # validates the table against its schema (a user mistake costs nothing)
    d = len(schema.columns)
    rho = approx_dp_to_rho(budget.epsilon, budget.delta)
    mechanisms = {k: GaussianCounts.for_rho(rho / (len(ks) * d), l2_sensitivity=k, label=f"truncation_k{k}")
                  for k in ks}
    events = [mechanisms[k].event for k in ks for _ in range(d)]
    if isinstance(ledger, Ledger):
        ledger.check(str(dataset), events, claimed=budget)
    reservation = ledger.reserve(  # type: ignore[attr-defined]
        dataset, events, synthesizer="truncation-profile", claimed=budget,
        input_sha256=hashlib.sha256(np.ascontiguousarray(codes).tobytes()).hexdigest(),
        parameters={"ks": list(ks)}, unit=PrivacyUnit.users(column, max_rows=ks[-1]))
    noise = make_noise(insecure_seed)
    marginals: dict[int, list[np.ndarray]] = {}
    try:
        for k in ks:
            kept = codes[bound_contributions(keys, codes, k)]
            marginals[k] = [mechanisms[k](np.bincount(kept[:, j], minlength=size).astype(np.int64), noise=noise,
                                          odometer=reservation.odometer).astype(float)
                            for j, size in enumerate(schema.sizes)]
    except BaseException as exc:
        reservation.fail(type(exc).__name__)
        raise
    reservation.complete(ks=list(ks))
    ref = marginals[ks[-1]]
    rows = {k: max(1.0, float(np.mean([m.sum() for m in marginals[k]]))) for k in ks}
    distortion = {k: float(np.mean([_tvd(a, b) for a, b in zip(marginals[k], ref, strict=True)])) for k in ks}
    floor = {k: float(np.mean([0.5 * math.sqrt(2 / math.pi) * size * (mechanisms[k].scale / rows[k] +
                                                                     mechanisms[ks[-1]].scale / rows[ks[-1]])
                               for size in schema.sizes])) for k in ks}
    return TruncationProfile(ks, rows, distortion, floor, {k: float(m.scale) for k, m in mechanisms.items()},
                             budget.epsilon, budget.delta)
