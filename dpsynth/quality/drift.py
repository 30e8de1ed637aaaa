"""Drift between two releases of one dataset, measured on DP artifacts only.

Privacy: DP (post-processing). Everything here reads released output only: the two synthetic tables
(:func:`table_drift`) and the noisy measurements their synthesizers published
(:func:`measurement_drift`, :class:`~dpsynth.synth.measurements.Measurement`), never a private row. A
refresh may therefore compare, report and gate on drift without spending budget.

The statistic is the total-variation distance TVD(p, q) = ½ Σ|p − q| of every column's marginal and
every pair's 2-way marginal. Each comes with a *noise floor*: a level that the TVD exceeds with
probability at most ``alpha`` when nothing drifted (the two tables are samples of one distribution;
the two measurements measure counts of one distribution), so that drift is told apart from noise.
Across m statistics the chance that any one exceeds its floor without drift is at most m·``alpha``
(union bound).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from dpsynth.exceptions import ParameterError
from dpsynth.marginals import paired_counts
from dpsynth.schema.encode import encode
from dpsynth.schema.schema import Schema

if TYPE_CHECKING:
    from dpsynth.synth.measurements import Measurement

#: The per-statistic false-alarm probability of the noise floors.
ALPHA = 1e-4
#: The most pairs :func:`table_drift` compares (all pairs of a schema up to 45 columns); beyond, the
#: first ``max_pairs`` in schema order, and the report says how many were left out.
MAX_PAIRS = 1000
STATISTIC = "tvd"
#: How a pair is named in the reports' dicts (its columns are also listed in the entry).
PAIR_JOIN = " × "


def _check_alpha(alpha: float) -> float:
    if not (isinstance(alpha, int | float) and 0 < alpha < 1):
        raise ParameterError(f"alpha ({alpha!r}) must be in (0, 1)")
    return float(alpha)


def marginal_name(columns: Sequence[str]) -> str:
    """The key of a marginal in the reports: the column's name, or the pair's names joined by " × "."""
    return PAIR_JOIN.join(columns)


def tvd(p: np.ndarray, q: np.ndarray) -> float:
    """½ Σ|p − q| of two histograms (counts; each normalised by its sum)."""
    return float(0.5 * np.abs(p / p.sum() - q / q.sum()).sum())


def sampling_floor(pooled: np.ndarray, n1: float, n2: float, alpha: float = ALPHA) -> float:
    """The TVD that two independent samples of sizes ``n1``, ``n2`` of one distribution exceed with
    probability at most ``alpha``, given their ``pooled`` histogram (counts or shares over the cells).

    Derivation (a permutation bound, distribution-free). When both samples come from one
    distribution, the rows are exchangeable: given the pooled multiset of m = n1 + n2 rows, which
    n1 of them form the first sample is uniform. With π_j the pooled share of cell j and
    v = 1/n1 + 1/n2, the difference of the shares D_j = p̂1_j − p̂2_j has mean 0 and, by the
    hypergeometric variance, Var(D_j) = π_j(1 − π_j)·v·m/(m − 1). Hence (E|D| ≤ √(E D²))

        E[TVD | pooled] ≤ ½ √(v·m/(m − 1)) · Σ_j √(π_j(1 − π_j)).

    Swapping one row of the first sample with one of the second moves TVD by at most v, so the
    bounded-differences inequality for sampling without replacement (McDiarmid), over the
    min(n1, n2) draws of the smaller sample, gives P(TVD ≥ E + t | pooled) ≤ exp(−2t²/(min(n1, n2)·v²)):

        floor = ½ √(v·m/(m − 1)) · Σ_j √(π_j(1 − π_j))  +  v · √(min(n1, n2) · ln(1/α) / 2).

    It holds conditionally on the pooled table, hence also unconditionally, for any distribution.
    """
    n1, n2 = float(n1), float(n2)
    if n1 < 1 or n2 < 1:
        raise ParameterError(f"a noise floor needs two non-empty samples (sizes {n1:g}, {n2:g})")
    pooled = np.asarray(pooled, dtype=float)
    shares = pooled / pooled.sum() if pooled.sum() > 0 else pooled
    m, v = n1 + n2, 1.0 / n1 + 1.0 / n2
    expected = 0.5 * math.sqrt(v * m / max(m - 1.0, 1.0)) * float(np.sqrt(shares * (1.0 - shares)).sum())
    margin = v * math.sqrt(min(n1, n2) * math.log(1.0 / _check_alpha(alpha)) / 2.0)
    return float(expected + margin)


def _entry(columns: Sequence[str], a: np.ndarray, b: np.ndarray, n1: int, n2: int, alpha: float) -> dict[str, Any]:
    value, floor = tvd(a, b), sampling_floor(a + b, n1, n2, alpha)
    return {"columns": list(columns), "tvd": value, "noise_floor": floor, "above_noise": bool(value > floor),
            "excess": float(value - floor)}


def table_drift(previous: pd.DataFrame, current: pd.DataFrame, schema: Schema, *, alpha: float = ALPHA,
                max_pairs: int = MAX_PAIRS) -> dict[str, Any]:
    """The drift between two synthetic tables encoded with one public ``schema``: the TVD of every
    column's marginal and of every pair's 2-way marginal, each with its noise floor.

    The noise floor (:func:`sampling_floor`) is the TVD that sampling alone exceeds with probability
    at most ``alpha`` between two tables of these sizes drawn from one distribution (their row
    counts are public: released tables). Pairs: all of them up to ``max_pairs``, else the first
    ``max_pairs`` in schema order (``pairs_left_out`` says how many were not compared).

    Returns:
        ``{"statistic": "tvd", "alpha", "rows": [len(previous), len(current)],
        "columns": {name: entry}, "pairs": {"a × b": entry}, "pairs_left_out"}``, each entry
        ``{"columns": [...], "tvd", "noise_floor", "above_noise", "excess"}`` (``excess`` = tvd − noise_floor);
        plain floats, bools and ints only (JSON-ready).

    Privacy: DP (post-processing): reads two released tables and the public schema only.
    """
    alpha = _check_alpha(alpha)
    if not (isinstance(max_pairs, int) and max_pairs >= 0):
        raise ParameterError(f"max_pairs ({max_pairs!r}) must be a non-negative integer")
    a, b = encode(previous, schema), encode(current, schema)
    names, sizes = schema.names, schema.sizes
    n1, n2 = len(a), len(b)
    columns = {}
    for j, name in enumerate(names):
        x, y = paired_counts(a, b, [j], sizes)
        columns[name] = _entry([name], x, y, n1, n2, alpha)
    all_pairs = list(itertools.combinations(range(len(names)), 2))
    pairs = {}
    for i, j in all_pairs[:max_pairs]:
        x, y = paired_counts(a, b, [i, j], sizes)
        pairs[marginal_name([names[i], names[j]])] = _entry([names[i], names[j]], x, y, n1, n2, alpha)
    return {"statistic": STATISTIC, "alpha": alpha, "rows": [n1, n2], "columns": columns, "pairs": pairs,
            "pairs_left_out": max(0, len(all_pairs) - max_pairs)}


# -- the noisy measurements ----------------------------------------------------------------------

_KEYS = ("columns", "values", "sigma", "shape", "compression")


def _fields(m: Measurement | dict[str, Any]) -> tuple[tuple[str, ...], np.ndarray, float, tuple[int, ...],
                                                      tuple[np.ndarray | None, ...]]:
    """(columns, values, sigma, shape, compression) of a Measurement or of its ``to_dict``."""
    raw: dict[str, Any] = m if isinstance(m, dict) else {k: getattr(m, k, None) for k in _KEYS}
    get = raw.__getitem__
    try:
        columns = tuple(str(c) for c in get("columns"))
        values = np.asarray(get("values"), dtype=float).ravel()
        shape = tuple(int(s) for s in get("shape"))
        groups = tuple(None if g is None else np.asarray(g, dtype=np.int64) for g in get("compression"))
        sigma = float(get("sigma"))
    except (AttributeError, KeyError, TypeError, ValueError) as err:
        raise ParameterError(f"not a measurement: {err}") from err
    if len(shape) != len(columns) or len(groups) != len(columns) or values.size != math.prod(shape):
        raise ParameterError(f"measurement of {list(columns)!r}: shape {list(shape)!r} does not fit its values")
    return columns, values, sigma, shape, groups


class _Grid:
    """The coarsest partition of each column's original codes that every given compression refines:
    two codes share a common cell when some measurement merged them (directly or through a chain)."""

    def __init__(self, columns: tuple[str, ...], measured: list[tuple[tuple[int, ...], tuple[np.ndarray | None, ...]]]):
        self.columns = columns
        self.labels: list[np.ndarray] = []
        for axis, col in enumerate(columns):
            maps = [self._codes(shape[axis], groups[axis]) for shape, groups in measured]
            if len({len(m) for m in maps}) != 1:
                raise ParameterError(f"the measurements of {col!r} are over different domains "
                                     f"({sorted({len(m) for m in maps})} codes): not one schema")
            self.labels.append(self._components(maps))
        self.shape = tuple(int(lab.max()) + 1 for lab in self.labels)

    @staticmethod
    def _codes(cells: int, groups: np.ndarray | None) -> np.ndarray:
        return np.arange(cells) if groups is None else groups

    @staticmethod
    def _components(maps: list[np.ndarray]) -> np.ndarray:
        size = len(maps[0])
        parent = list(range(size))

        def find(i: int) -> int:
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        for cells in maps:
            first: dict[int, int] = {}
            for code, cell in enumerate(cells.tolist()):
                if cell in first:
                    parent[find(code)] = find(first[cell])
                else:
                    first[cell] = code
        roots = [find(i) for i in range(size)]
        relabel = {r: k for k, r in enumerate(dict.fromkeys(roots))}
        return np.array([relabel[r] for r in roots], dtype=np.int64)

    def project(self, values: np.ndarray, sigma: float, shape: tuple[int, ...],
                groups: tuple[np.ndarray | None, ...]) -> tuple[np.ndarray, np.ndarray]:
        """A measurement's values summed onto the common cells (flattened), and each cell's noise variance."""
        index = []
        for axis, labels in enumerate(self.labels):
            cell_of = np.zeros(shape[axis], dtype=np.int64)
            cell_of[self._codes(shape[axis], groups[axis])] = labels  # consistent: the grid refines nothing finer
            index.append(cell_of)
        ix = np.ix_(*index)
        out = np.zeros(self.shape)
        merged = np.zeros(self.shape)
        np.add.at(out, ix, values.reshape(shape))
        np.add.at(merged, ix, 1.0)
        return out.ravel(), merged.ravel() * sigma**2


def _combine(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Several measurements of one marginal combined cell by cell with inverse-variance weights."""
    weights = sum(1.0 / var for _, var in parts)
    values = sum(y / var for y, var in parts) / weights
    return np.asarray(values), np.asarray(1.0 / weights)


def noise_level(scale1: np.ndarray, scale2: np.ndarray, alpha: float = ALPHA) -> tuple[float, float, float]:
    """(the expected TVD, the linear level, the bound) of two noisy measurements of one distribution's counts.

    ``scale_k`` is each cell's noise standard deviation divided by the total N_k (s_kj = σ_kj / N_k).
    With y_k = N_k·p + e_k, e_kj ~ N(0, σ_kj²) independent, u_k = e_k / N_k, and the statistic
    TVD(clip(y1)/Σclip(y1), clip(y2)/Σclip(y2)) (clip: negatives to 0):

    * expected (the linear term alone, no clipping, known totals): ½ √(2/π) Σ_j √(s1j² + s2j²);
    * linear level: the 1 − α quantile bound of that linear term ½ Σ_j |u1j − u2j|, which is
      ½ √(‖s1‖² + ‖s2‖²)-Lipschitz in the standard normal noise: expected + ½ √(‖s1‖² + ‖s2‖²) · √(2 ln(1/α)).
      Tight where no cell's count is near 0, but not a bound of the clipped, renormalised statistic;
    * bound: clipping is 1-Lipschitz and p ≥ 0, and renormalising by S_k = Σclip(y_k) moves the shares by
      |S_k/N_k − 1| ≤ |Σ_j u_kj| + Σ_j (u_kj)⁻ in L1, so
      TVD ≤ B = ½ Σ_j |u1j − u2j| + ½ Σ_k (|Σ_j u_kj| + Σ_j (u_kj)⁻), with
      E B = ½ √(2/π) Σ_j √(s1j² + s2j²) + ½ Σ_k (√(2/π) ‖s_k‖₂ + Σ_j s_kj / √(2π)).
      B is L-Lipschitz in the standard normal noise with L = ½ √(‖s1‖² + ‖s2‖²) + ‖s1‖₂ + ‖s2‖₂, so by
      Gaussian concentration (Tsirelson–Ibragimov–Sudakov) P(B ≥ E B + L √(2 ln(1/α))) ≤ α:

          noise_level = E B + L · √(2 ln(1/α)).

    The mechanisms draw discrete Gaussian noise (variance ≤ σ², σ²-subgaussian); it is treated as
    continuous here, and the noisy totals stand in for N_k (relative error about √cells·σ/N).
    """
    s1, s2 = np.asarray(scale1, dtype=float), np.asarray(scale2, dtype=float)
    root = math.sqrt(2.0 / math.pi)
    expected = 0.5 * root * float(np.sqrt(s1**2 + s2**2).sum())
    norms = [float(np.sqrt((s**2).sum())) for s in (s1, s2)]
    mean_bound = expected + 0.5 * sum(root * nrm + float(s.sum()) / math.sqrt(2.0 * math.pi)
                                      for nrm, s in zip(norms, (s1, s2), strict=True))
    linear = 0.5 * math.sqrt(norms[0] ** 2 + norms[1] ** 2)
    tail = math.sqrt(2.0 * math.log(1.0 / _check_alpha(alpha)))
    return expected, float(expected + linear * tail), float(mean_bound + (linear + norms[0] + norms[1]) * tail)


def _grouped(measurements: Iterable[Measurement | dict[str, Any]]) -> dict[frozenset[str], list[tuple[Any, ...]]]:
    out: dict[frozenset[str], list[tuple[Any, ...]]] = {}
    for m in measurements:
        fields = _fields(m)
        out.setdefault(frozenset(fields[0]), []).append(fields)
    return out


_Part = tuple[np.ndarray, float, tuple[int, ...], tuple[Any, ...]]  # values, sigma, shape, compression


def _reordered(fields: tuple[Any, ...], order: tuple[str, ...]) -> _Part:
    """A measurement's (values, sigma, shape, compression) with its axes in the column ``order``."""
    columns, values, sigma, shape, groups = fields
    perm = [columns.index(c) for c in order]
    values = values.reshape(shape).transpose(perm).ravel()
    return values, sigma, tuple(shape[i] for i in perm), tuple(groups[i] for i in perm)


def _side(grid: _Grid, parts: list[_Part]) -> tuple[np.ndarray, np.ndarray]:
    return _combine([grid.project(values, sigma, shape, groups) for values, sigma, shape, groups in parts])


def _compare(order: tuple[str, ...], before: list[tuple[Any, ...]], after: list[tuple[Any, ...]], alpha: float,
             sampling: bool) -> dict[str, Any]:
    parts1 = [_reordered(f, order) for f in before]
    parts2 = [_reordered(f, order) for f in after]
    grid = _Grid(order, [(shape, groups) for _, _, shape, groups in parts1 + parts2])
    (y1, var1), (y2, var2) = _side(grid, parts1), _side(grid, parts2)
    totals = [max(float(y1.sum()), 1.0), max(float(y2.sum()), 1.0)]
    c1, c2 = (np.clip(y, 0.0, None) for y in (y1, y2))
    c1, c2 = (c if c.sum() > 0 else np.ones_like(c) for c in (c1, c2))  # nothing positive: uniform (noise ≫ 1)
    entry: dict[str, Any] = {"columns": list(order), "cells": int(y1.size), "totals": totals}
    expected, linear, level = noise_level(np.sqrt(var1) / totals[0], np.sqrt(var2) / totals[1], alpha)
    floor = sampling_floor(c1 / c1.sum() + c2 / c2.sum(), totals[0], totals[1], alpha) if sampling else 0.0
    value = tvd(c1, c2)
    entry.update({"tvd": value, "expected_noise": expected, "noise_linear": linear, "noise_level": level,
                  "sampling_floor": floor,
                  "noise_floor": level + floor, "above_noise": bool(value > level + floor),
                  "excess": float(value - level - floor)})
    return entry


def measurement_drift(previous: Iterable[Measurement | dict[str, Any]], current: Iterable[Measurement | dict[str, Any]],
                      *, alpha: float = ALPHA, sampling: bool = True) -> dict[str, Any]:
    """The drift between the noisy measurements of two fits, for every marginal measured in both.

    Each side's measurements of one set of columns (AIM may measure one twice) are combined cell by
    cell with inverse-variance weights, after both sides are summed onto the coarsest common cells
    (MST's 2-way measurements are on a compressed domain that differs between fits; see
    :mod:`dpsynth.synth.measurements`; each common cell is a sum of measured cells, its noise variance
    σ² times their number). The statistic is TVD(clip(y1)/Σclip(y1), clip(y2)/Σclip(y2)) (negatives
    clipped to 0, normalised by the sum).

    Its noise level is :func:`noise_level`: what two noisy measurements of the same distribution's
    counts exceed with probability at most ``alpha`` (from the two σ and the noisy totals N̂_k = Σ y_k):
    ``expected_noise`` = ½ √(2/π) Σ_j √(σ1j²/N̂1² + σ2j²/N̂2²); ``noise_linear`` = that plus
    ½ √(Σ_j σ1j²/N̂1² + σ2j²/N̂2²) · √(2 ln(1/α)) (the quantile of ½ Σ|e1/N̂1 − e2/N̂2| alone: tight, but
    not a bound once clipping and renormalising matter); ``noise_level`` = a bound of the clipped,
    renormalised statistic plus a Gaussian-concentration margin (valid, about 3-7 times the expected
    noise), which ``above_noise`` uses. Two fits on two snapshots also differ by sampling (different rows):
    with ``sampling`` (the default) ``sampling_floor`` adds :func:`sampling_floor` at the noisy totals
    and the pooled noisy shares (post-processing; the exact pooled table is private, so this part is an
    estimate), and ``noise_floor`` = noise_level + sampling_floor, exceeded without drift with
    probability at most 2·``alpha``; ``sampling=False`` tests the same counts measured twice.

    Returns:
        ``{"statistic": "tvd", "alpha", "sampling", "measurements": {name: entry},
        "unmatched": {"previous": [names], "current": [names]}}``, each entry ``{"columns", "cells",
        "totals", "tvd", "expected_noise", "noise_linear", "noise_level", "sampling_floor", "noise_floor",
        "above_noise", "excess"}`` (plain numbers; JSON-ready).

    Privacy: DP (post-processing of released noisy measurements).
    """
    alpha = _check_alpha(alpha)
    before, after = _grouped(previous), _grouped(current)
    entries = {}
    for key, group in before.items():
        if key in after:
            order = group[0][0]
            entries[marginal_name(order)] = _compare(order, group, after[key], alpha, sampling)
    return {"statistic": STATISTIC, "alpha": alpha, "sampling": bool(sampling), "measurements": entries,
            "unmatched": {"previous": [marginal_name(g[0][0]) for k, g in before.items() if k not in after],
                          "current": [marginal_name(g[0][0]) for k, g in after.items() if k not in before]}}


# -- the summary a gate reads ----------------------------------------------------------------------

def _largest(entries: list[tuple[str, str, dict[str, Any]]], key: str) -> tuple[str, str, dict[str, Any]] | None:
    return max(entries, key=lambda e: float(e[2][key])) if entries else None


def summarise(table: dict[str, Any], *, over: Sequence[str] = ("columns", "pairs"),
              measurements: dict[str, Any] | None = None) -> dict[str, Any]:
    """The summary a gate needs from :func:`table_drift` (and, optionally, :func:`measurement_drift`).

    Args:
        table: a :func:`table_drift` result.
        over: which of its marginals count: ``"columns"``, ``"pairs"`` or both.
        measurements: a :func:`measurement_drift` result, summarised under ``"measurements"``.

    Returns:
        ``{"statistic": "tvd", "over": [...], "max_tvd", "where" (the column or "a × b"), "kind"
        ("column" or "pair"), "noise_floor" (at the max), "above_noise" (at the max), "max_excess"
        (largest tvd − noise_floor), "max_excess_where", "n_above_noise", "compared"}`` (max_tvd 0.0 and
        where None when nothing was compared), plus ``"measurements"`` (the same keys over the
        measurements) when given.
    """
    kinds = {"columns": "column", "pairs": "pair"}
    unknown = [k for k in over if k not in kinds]
    if not over or unknown:
        raise ParameterError(f"over ({list(over)!r}) must name one or both of: columns, pairs")
    entries = [(name, kinds[k], item) for k in dict.fromkeys(over) for name, item in table.get(k, {}).items()]
    out = _summary(entries)
    out.update({"statistic": STATISTIC, "over": list(dict.fromkeys(over))})
    if measurements is not None:
        out["measurements"] = _summary([(name, "measurement", item) for name, item in
                                        measurements.get("measurements", {}).items()])
    return out


def _summary(entries: list[tuple[str, str, dict[str, Any]]]) -> dict[str, Any]:
    top, excess = _largest(entries, "tvd"), _largest(entries, "excess")
    return {
        "max_tvd": float(top[2]["tvd"]) if top else 0.0,
        "where": top[0] if top else None,
        "kind": top[1] if top else None,
        "noise_floor": float(top[2]["noise_floor"]) if top else None,
        "above_noise": bool(top[2]["above_noise"]) if top else False,
        "max_excess": float(excess[2]["excess"]) if excess else None,
        "max_excess_where": excess[0] if excess else None,
        "n_above_noise": sum(bool(item["above_noise"]) for _, _, item in entries),
        "compared": len(entries),
    }


__all__ = ["ALPHA", "MAX_PAIRS", "marginal_name", "measurement_drift", "noise_level", "sampling_floor", "summarise",
           "table_drift", "tvd"]
