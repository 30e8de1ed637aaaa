"""Bin edges chosen from the private data with differential privacy (charged).

A numeric column may declare ``bins: {dp_quantiles: K}`` instead of public edges: its public bounds
and the number of bins K stay declared, and the K − 1 inner edges are DP estimates of the
quantiles j/K (j = 1 … K−1), each chosen by the exponential mechanism over a fixed public grid of
candidate points inside the bounds (Smith 2011):

    score(c) = −| #{x < c} − (j/K)·n |

Sensitivity: adding or removing one row moves #{x < c} by at most 1 and (j/K)·n by at most
j/K < 1, so every score moves by at most 1. The scores need only the counts #{x < c} over the grid
and n (:func:`below_counts` in numpy; a counting engine's ``TableSource.below_counts`` computes the
same aggregates where the table lives): both are the same numbers, so the selections, the edges
and the spending are identical whichever computed them. Privacy: each quantile is one
:class:`~dpsynth.mechanisms.ExponentialSelection` (ε²/8-zCDP); the synthesizer plans and reserves
them with the rest of its events (its ``split_preprocess`` share of ρ).
"""

from __future__ import annotations

import dataclasses
from typing import Protocol

import numpy as np
import pandas as pd

from dpsynth import _validation as check
from dpsynth.exceptions import ParameterError
from dpsynth.mechanisms import ExponentialSelection, NoiseSource
from dpsynth.privacy.budgets import ZCDP
from dpsynth.privacy.odometer import Odometer
from dpsynth.schema.encode import numeric_values
from dpsynth.schema.schema import Column, Schema

GRID_POINTS = 1024


class BelowCounts(Protocol):
    """A table that answers the quantile scores' aggregates (``dpsynth.marginals.TableSource``)."""

    def below_counts(self, column: str, schema: Schema, grid: np.ndarray) -> tuple[np.ndarray, int]:
        """(#{x < c} for every c of ``grid``, the number of non-missing values) of a numeric column."""
        ...


def dp_binned(schema: Schema) -> list[Column]:
    """The columns whose edges are still to be chosen with DP."""
    return [c for c in schema.columns if c.dp_quantiles and c.edges_from == "declared"]


def n_quantiles(schema: Schema) -> int:
    """How many quantile selections the schema asks for (the same before and after resolving)."""
    return sum(c.dp_quantiles - 1 for c in schema.columns if c.dp_quantiles)


def plan_quantiles(
    schema: Schema, rho: ZCDP, split_preprocess: float
) -> tuple[tuple[ExponentialSelection, ...], ZCDP]:
    """The quantile mechanisms a schema asks for, and the ρ left for the synthesizer itself.

    ``split_preprocess`` (a named share in (0, 1)) of ``rho`` goes to the quantiles, evenly; with no
    DP-binned column nothing is taken.
    """
    share = check.positive_finite("split_preprocess", split_preprocess)  # a bad share is an error either way
    if share >= 1:
        raise ParameterError(f"split_preprocess ({split_preprocess!r}) must be below 1: the preprocessing "
                             "share cannot take the whole budget")
    quantiles = n_quantiles(schema)
    if not quantiles:
        return (), rho
    rho_pre, rest = rho.split([share, 1.0 - share])
    # a score moves by at most 1 when one row comes or goes, by at most K for a person with up to K rows
    k = float(schema.privacy_unit.sensitivity)
    mechanism = ExponentialSelection.for_rho(rho_pre.rho / quantiles, sensitivity=k, label="dp_quantile")
    return (mechanism,) * quantiles, rest


def candidate_grid(column: Column) -> np.ndarray:
    """Public candidate edges strictly inside the column's bounds (whole numbers for integers)."""
    assert column.bounds is not None
    lo, hi = column.bounds
    if column.integral:
        if hi - lo - 1 <= GRID_POINTS:
            return np.arange(lo + 1, hi + 1, dtype=float)  # an edge c means bins [.., c) and [c, ..)
        return np.unique(np.round(np.linspace(lo, hi, GRID_POINTS + 2)[1:-1]))
    return np.linspace(lo, hi, GRID_POINTS + 2)[1:-1]


def quantile_scores(values: np.ndarray, grid: np.ndarray, q: float) -> np.ndarray:
    """score(c) = −|#{x < c} − q·n| for every candidate c (sensitivity 1)."""
    ordered = np.sort(values)
    below = np.searchsorted(ordered, grid, side="left")
    return scores_from_below(below, len(values), q)


def scores_from_below(below: np.ndarray, n: int, q: float) -> np.ndarray:
    """score(c) = −|#{x < c} − q·n| from the counts ``below`` = #{x < c} and n (sensitivity 1)."""
    return -np.abs(np.asarray(below, dtype=np.int64) - q * int(n))


def below_counts(values: pd.Series, column: Column, schema: Schema, grid: np.ndarray) -> tuple[np.ndarray, int]:
    """(#{x < c} for every c of ``grid``, the number of non-missing values) of one numeric column
    held in pandas, its values clamped to the column's bounds and missing cells left out.

    Reads the private column; returns aggregates only (the DP selection draws from them).
    """
    numbers = numeric_values(values, column, schema)
    numbers = np.sort(numbers[~np.isnan(numbers)])
    return np.searchsorted(numbers, grid, side="left").astype(np.int64), len(numbers)


def resolve(
    data: pd.DataFrame | BelowCounts,
    schema: Schema,
    mechanisms: list[ExponentialSelection],
    *,
    noise: NoiseSource,
    odometer: Odometer,
) -> Schema:
    """A copy of ``schema`` whose DP-binned columns have DP-chosen edges.

    ``data`` is the private table in pandas, or a counting engine's table (anything with
    ``below_counts``, e.g. a ``dpsynth.marginals.TableSource``): the scores read only its counts
    #{x < c} over the public grid and its number of non-missing values.

    Privacy: spends one ``mechanisms`` entry (in order) per quantile; missing values are not
    counted. Everything after the selections is post-processing.
    """
    columns = list(schema.columns)
    used = iter(mechanisms)
    for i, col in enumerate(columns):
        if not col.dp_quantiles or col.edges_from != "declared":
            continue
        assert col.bounds is not None
        grid = candidate_grid(col)
        if isinstance(data, pd.DataFrame):
            below, n = below_counts(data[col.name], col, schema, grid)
        else:
            below, n = data.below_counts(col.name, schema, grid)
        chosen = []
        for j in range(1, col.dp_quantiles):
            mechanism = next(used)
            index = mechanism(scores_from_below(below, n, j / col.dp_quantiles).tolist(), noise=noise,
                              odometer=odometer)
            chosen.append(float(grid[index]))
        inner = sorted(set(chosen))
        candidates = (col.bounds[0], *inner, col.bounds[1])
        edges = tuple(e for k, e in enumerate(candidates) if k == 0 or e > candidates[k - 1])
        columns[i] = dataclasses.replace(col, edges=edges, edges_from="dp_quantiles")
    return dataclasses.replace(schema, columns=tuple(columns))
