"""Rows ↔ model vectors for the DP-SGD generators, from the public schema only (nothing is fitted
on the data): :class:`TableTransformer` and the :class:`Span` blocks of a transformed row.

Privacy: public. The transform reads a row's own values (inside its per-sample gradient) with the
schema's declared bounds, edges and levels; :meth:`TableTransformer.inverse` is post-processing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from dpsynth.exceptions import ParameterError, SchemaError
from dpsynth.schema.encode import numeric_values
from dpsynth.schema.schema import Column, Schema, from_units

#: the column kinds the DP-SGD generators model
SUPPORTED_KINDS = ("categorical", "integer", "continuous", "datetime")


@dataclass(frozen=True)
class Span:
    """A block of the transformed row, by ``role``.

    * ``code`` (softmax): one-hot of the column's codes — a categorical column's levels (with
      ``other`` and missing), or a binned numeric column's public bins (with missing);
    * ``position`` (tanh): a binned numeric value's place inside its bin, scaled to [-1, 1]; or
      (softmax, ``numeric="subbins"``) one-hot of which of :data:`SUB_BINS` equal parts of its bin
      it falls in;
    * ``value`` (tanh): a numeric value scaled to [-1, 1] with the declared bounds;
    * ``missing`` (softmax): present/missing flag of a nullable ``value`` column.
    """

    column: int
    activation: str
    start: int
    width: int
    role: str = "code"

    @property
    def stop(self) -> int:
        """One past the block's last position."""
        return self.start + self.width


#: how numeric columns are modelled (see :class:`TableTransformer`)
NUMERIC_ENCODINGS = ("bins", "subbins", "scaled")
#: equal parts of a public bin that ``numeric="subbins"`` tells apart (one-hot)
SUB_BINS = 5


class TableTransformer:
    """Rows ↔ model vectors, from the public schema only (nothing is fitted on the data).

    * categorical: one-hot over the column's codes (declared levels, the ``other`` level, the
      missing code of a nullable column);
    * integer, continuous, datetime, with ``numeric="bins"`` (default) and at most ``max_levels``
      bins: one-hot over the column's PUBLIC bins (the schema's declared edges, the same codes the
      marginal synthesizers use; a nullable column's missing code included), plus the value's
      position inside its bin scaled to [-1, 1]. With ``numeric="subbins"`` the position is
      instead one-hot over :data:`SUB_BINS` equal parts of the bin (a model fitted by a squared
      error outputs the mean position, so every sampled value of a bin sat at one place; a
      softmax over parts is sampled), and sampling draws the value uniformly inside its part.
      This is the public-schema stand-in for CTGAN's
      mode-specific normalisation (a Gaussian mixture fitted to the private data, which we do not
      use): multi-modal and spiky columns (capital gains: mostly 0) are modelled by their bins;
    * otherwise (``numeric="scaled"``, or more bins than ``max_levels``): the value clamped to
      the declared bounds and scaled linearly to [-1, 1]; a nullable one has a two-way
      present/missing one-hot as well (value 0 when missing).

    Raises:
        SchemaError: a column kind it cannot model, or a categorical column wider than
            ``max_levels`` (all problems at once).
    """

    def __init__(self, schema: Schema, *, max_levels: int, synthesizer: str, numeric: str = "bins"):
        if numeric not in NUMERIC_ENCODINGS:
            raise ParameterError(f"numeric_encoding ({numeric!r}) must be one of: {', '.join(NUMERIC_ENCODINGS)}")
        problems = []
        for col in schema.columns:
            if col.kind not in SUPPORTED_KINDS:
                problems.append(f"column {col.name!r} is of kind {col.kind!r}, which {synthesizer} cannot model "
                                f"(it models {', '.join(SUPPORTED_KINDS)})")
            elif col.kind == "categorical" and col.size > max_levels:
                problems.append(f"column {col.name!r} has {col.size} levels, more than {synthesizer} models one-hot "
                                f"(max_levels={max_levels}); merge rare levels into an 'other' level")
            elif col.kind != "categorical" and (col.bounds is None or not col.bounds[0] < col.bounds[1]):
                problems.append(f"column {col.name!r} needs bounds low < high for {synthesizer}")
        if problems:
            raise SchemaError("; ".join(problems))
        self.schema = schema
        self.numeric = numeric
        spans: list[Span] = []
        start = 0
        for j, col in enumerate(schema.columns):
            if col.kind == "categorical":
                spans.append(Span(j, "softmax", start, col.size, "code"))
                start += col.size
            elif numeric in ("bins", "subbins") and len(col.edges) >= 2 and col.size <= max_levels:
                spans.append(Span(j, "softmax", start, col.size, "code"))
                if numeric == "subbins":
                    spans.append(Span(j, "softmax", start + col.size, SUB_BINS, "position"))
                    start += col.size + SUB_BINS
                else:
                    spans.append(Span(j, "tanh", start + col.size, 1, "position"))
                    start += col.size + 1
            else:
                spans.append(Span(j, "tanh", start, 1, "value"))
                start += 1
                if col.nullable:
                    spans.append(Span(j, "softmax", start, 2, "missing"))
                    start += 2
        self.spans = tuple(spans)
        self.output_dim = start
        #: the spans that conditional vectors choose from (one per categorical column)
        self.categorical_spans = tuple(s for s in spans if schema.columns[s.column].kind == "categorical")
        #: every one-hot code block: categorical levels and binned numeric columns' public bins
        self.code_spans = tuple(s for s in spans if s.role == "code")

    def transform(self, data: pd.DataFrame, codes: np.ndarray) -> np.ndarray:
        """The model matrix (float32, rows × ``output_dim``) of a table already checked by ``encode``."""
        out = np.zeros((len(codes), self.output_dim), dtype=np.float32)
        rows = np.arange(len(codes))
        for span in self.spans:
            col = self.schema.columns[span.column]
            if span.role == "code":
                out[rows, span.start + codes[:, span.column]] = 1.0
            elif span.role == "missing":  # present / missing flag of a nullable numeric column
                out[rows, span.start + (codes[:, span.column] == col.missing_code).astype(np.int64)] = 1.0
            else:
                assert col.bounds is not None
                values = numeric_values(data[col.name], col, self.schema)  # clamped to the public bounds
                missing = np.isnan(values)
                if span.role == "value":
                    low, high = np.full(len(values), col.bounds[0]), np.full(len(values), col.bounds[1])
                else:  # position inside the value's public bin
                    edges = np.asarray(col.edges, dtype=np.float64)
                    b = np.clip(codes[:, span.column], 0, len(edges) - 2)
                    low, high = edges[b], edges[b + 1]
                filled = np.nan_to_num(values, nan=0.0)
                scaled = np.clip(2.0 * (filled - low) / (high - low) - 1.0, -1.0, 1.0)
                if span.activation == "softmax":  # the part of the bin (part 0 when missing)
                    part = np.minimum(((scaled + 1.0) / 2.0 * span.width).astype(np.int64), span.width - 1)
                    out[rows, span.start + np.where(missing, 0, part)] = 1.0
                else:
                    out[:, span.start] = np.where(missing, 0.0, scaled)
        return out

    def inverse(self, matrix: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
        """Values for model outputs (post-processing): ``softmax`` spans hold probabilities and are
        sampled (or are one-hot already), ``tanh`` spans hold values in [-1, 1]."""
        n = len(matrix)
        picked: dict[tuple[int, str], np.ndarray] = {}
        for span in self.spans:
            block = matrix[:, span.start:span.stop]
            if span.activation == "tanh":
                picked[(span.column, span.role)] = np.clip(block[:, 0], -1.0, 1.0)
            elif span.role == "position":  # a part of the bin, then uniformly inside it, on [-1, 1]
                part = sample_rows(block, rng) + rng.random(n)
                picked[(span.column, span.role)] = np.clip(2.0 * part / span.width - 1.0, -1.0, 1.0)
            else:
                picked[(span.column, span.role)] = sample_rows(block, rng)
        cols: dict[str, pd.Series] = {}
        for j, col in enumerate(self.schema.columns):
            if col.kind == "categorical":
                cols[col.name] = _decode_categorical(col, picked[(j, "code")])
            elif (j, "code") in picked:  # binned: the bin, then the position inside it
                code = picked[(j, "code")]
                missing = (code == col.missing_code) if col.nullable else np.zeros(n, dtype=bool)
                edges = np.asarray(col.edges, dtype=np.float64)
                b = np.clip(code, 0, len(edges) - 2)
                cols[col.name] = _decode_numeric(col, picked[(j, "position")], missing, edges[b], edges[b + 1],
                                                 last=b == len(edges) - 2, floor=self.numeric == "subbins")
            else:
                missing = picked.get((j, "missing"), np.zeros(n, dtype=np.int64)) == 1
                assert col.bounds is not None
                low, high = col.bounds
                cols[col.name] = _decode_numeric(col, picked[(j, "value")], missing, np.full(n, float(low)),
                                                 np.full(n, float(high)), last=np.ones(n, dtype=bool))
        return pd.DataFrame(cols)


def sample_rows(probabilities: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One index per row, drawn from the row's (unnormalised, non-negative) probabilities."""
    p = np.clip(np.nan_to_num(probabilities.astype(np.float64), nan=0.0), 0.0, None)
    total = p.sum(axis=1, keepdims=True)
    p = np.where(total > 0, p / np.where(total > 0, total, 1.0), 1.0 / p.shape[1])
    u = rng.random((len(p), 1))
    return np.minimum((np.cumsum(p, axis=1) < u).sum(axis=1), p.shape[1] - 1)


def _decode_categorical(col: Column, codes: np.ndarray) -> pd.Series:
    values = [*col.levels, *([col.other] if col.other is not None else [])]
    missing = (codes == col.missing_code) if col.nullable else np.zeros(len(codes), dtype=bool)
    levels = np.empty(len(values), dtype=object)
    levels[:] = values
    vals = levels[np.where(missing, 0, codes)]
    vals[missing] = None
    if all(isinstance(v, int) for v in values) and not missing.any():
        return pd.Series(vals.astype(np.int64))
    return pd.Series(vals, dtype=object)


def _decode_numeric(col: Column, scaled: np.ndarray, missing: np.ndarray, low: np.ndarray, high: np.ndarray,
                    last: np.ndarray, floor: bool = False) -> pd.Series:
    """Values from positions in [-1, 1] inside [low, high] per row (a bin ``[low, high)``, or the
    bounds; ``last`` marks rows whose interval holds ``high`` itself). Whole numbers are rounded to
    the nearest (a mean position), or down with ``floor`` (a uniform draw inside [k, k + 1) is k)."""
    assert col.bounds is not None
    values = np.clip(low + (scaled.astype(np.float64) + 1.0) / 2.0 * (high - low), low, high)
    if col.kind == "continuous":
        values[missing] = np.nan
        return pd.Series(values)
    # whole numbers inside the interval: [⌈low⌉, ⌈high⌉ − 1], or up to ⌊high⌋ where it holds high
    top = np.where(last, np.floor(high), np.ceil(high) - 1)
    bottom = np.ceil(low)
    top = np.maximum(top, bottom)
    ints = np.clip(np.floor(values) if floor else np.rint(values), bottom, top)
    ints = np.clip(ints, math.ceil(col.bounds[0]), math.floor(col.bounds[1])).astype(np.int64)
    if col.kind == "datetime":
        assert col.resolution is not None
        text = from_units(ints, col.resolution)
        text[missing] = None
        return pd.Series(text, dtype=object)
    series = pd.Series(ints, dtype="Int64")
    series[missing] = pd.NA
    return series if missing.any() else series.astype(np.int64)

