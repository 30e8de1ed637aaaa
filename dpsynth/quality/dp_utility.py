"""Train-synthetic-test-real utility in a DP form: a model trained on the synthetic table only,
scored on every real row, summarised by counts of sensitivity 1 for the discrete Gaussian mechanism.

The model is :mod:`dpsynth.quality.utility`'s (scikit-learn's HistGradientBoostingClassifier on the
same features, ``random_state=0``), fitted on the synthetic table S alone, so it is a function of
public data (S is a DP output). Each real row then contributes through its own label and score only:

* binary categorical target (two codes): a 2×B histogram of (true label, score bin), the score
  being the predicted probability of code 1 and the bins B uniform public intervals of [0, 1]
  (bin b = [b/B, (b+1)/B), the last holds 1). One row is in one cell: L2 sensitivity 1. ROC-AUC
  (ties within a bin count ½) and accuracy (bins at or above ½ predict code 1; B is even) are
  post-processing of the noisy histogram (see :func:`auc_from_histogram` for why its cells are
  not clipped);
* categorical target with more codes: the count of correctly classified real rows, sensitivity 1;
  accuracy = noisy count / n̂;
* numeric target: no DP form yet (the model's R² has unbounded sensitivity without clipping).

Privacy: the functions here compute exact statistics of the real table; only their noisy release
through :mod:`dpsynth.mechanisms` (see :mod:`dpsynth.release.dp_checks`) is DP.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from dpsynth.exceptions import ParameterError
from dpsynth.marginals.backend import EngineSource
from dpsynth.quality.utility import _features
from dpsynth.schema.encode import encode
from dpsynth.schema.schema import Schema

DEFAULT_BINS = 20


def target_kind(schema: Schema, target: str | None) -> str:
    """``binary`` or ``multiclass`` for a categorical target; ParameterError otherwise."""
    if target is None:
        raise ParameterError("the DP utility check needs a target column")
    if target not in schema.names:
        raise ParameterError(f"target ({target!r}) must be one of the schema's columns: {', '.join(schema.names)}")
    col = schema[target]
    if col.kind != "categorical":
        raise ParameterError(f"target ({target!r}) is a {col.kind} column: the DP utility check has no DP form for a "
                             "numeric target yet (a categorical target is needed)")
    return "binary" if col.size == 2 else "multiclass"


@dataclass
class SyntheticModel:
    """A classifier trained on the synthetic table only (or a constant when S holds one class)."""

    schema: Schema
    target: str
    model: Any | None
    constant: int | None

    def proba(self, table: pd.DataFrame, codes: np.ndarray) -> np.ndarray:
        """Predicted probabilities over all codes of the target (rows × size)."""
        size = self.schema[self.target].size
        out = np.zeros((len(table), size))
        if self.model is None:
            out[:, self.constant] = 1.0
            return out
        x, _ = _features(table, codes, self.schema, self.target)
        out[:, self.model.classes_] = self.model.predict_proba(x)
        return out

    def predict(self, table: pd.DataFrame, codes: np.ndarray) -> np.ndarray:
        """The predicted class code of every row (the constant class without a model)."""
        if self.model is None:
            return np.full(len(table), self.constant, dtype=np.int64)
        x, _ = _features(table, codes, self.schema, self.target)
        return np.asarray(self.model.predict(x), dtype=np.int64)


def fit_synthetic_model(synthetic: pd.DataFrame, synthetic_codes: np.ndarray, schema: Schema,
                        target: str) -> SyntheticModel:
    """The model of :func:`dpsynth.quality.utility.utility`'s ``train_synthetic`` arm."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    target_kind(schema, target)
    j = schema.names.index(target)
    y = synthetic_codes[:, j]
    classes = np.unique(y)  # of the synthetic (DP, public) table
    if len(classes) < 2:
        return SyntheticModel(schema, target, None, int(classes[0]))
    x, categorical = _features(synthetic, synthetic_codes, schema, target)
    model = HistGradientBoostingClassifier(categorical_features=categorical, random_state=0).fit(x, y)
    return SyntheticModel(schema, target, model, None)


def score_bins(scores: np.ndarray, bins: int) -> np.ndarray:
    """Bin b of each score in [0, 1]: uniform public bins, the last one closed."""
    return np.clip(np.floor(np.asarray(scores) * bins).astype(np.int64), 0, bins - 1)


def score_histogram(model: SyntheticModel, real: pd.DataFrame, real_codes: np.ndarray, bins: int) -> np.ndarray:
    """Counts (int64, 2·B) of (true label, score bin): cell label·B + bin. Sensitivity 1."""
    j = model.schema.names.index(model.target)
    labels = real_codes[:, j]
    scores = model.proba(real, real_codes)[:, 1]
    cells = labels * bins + score_bins(scores, bins)
    return np.bincount(cells, minlength=2 * bins).astype(np.int64)


def correct_count(model: SyntheticModel, real: pd.DataFrame, real_codes: np.ndarray) -> np.ndarray:
    """(#real rows whose label the model predicts,) as an int64 1-vector. Sensitivity 1."""
    j = model.schema.names.index(model.target)
    return np.array([int(np.sum(model.predict(real, real_codes) == real_codes[:, j]))], dtype=np.int64)


def source_score_histogram(model: SyntheticModel, source: EngineSource, bins: int) -> np.ndarray:
    """:func:`score_histogram` of a real table held by an engine, every row scored in batches there
    (:meth:`~dpsynth.marginals.backend.EngineSource.reduce_batches`): the histogram is the sum of the
    batches' histograms, so it equals the in-memory one exactly."""
    return source.reduce_batches(model.schema.names, partial(_batch_histogram, model, bins), 2 * bins)


def source_correct_count(model: SyntheticModel, source: EngineSource) -> np.ndarray:
    """:func:`correct_count` of a real table held by an engine (the sum over batches)."""
    return source.reduce_batches(model.schema.names, partial(_batch_correct, model), 1)


def _batch_histogram(model: SyntheticModel, bins: int, batch: pd.DataFrame) -> np.ndarray:
    return score_histogram(model, batch, encode(batch, model.schema), bins)


def _batch_correct(model: SyntheticModel, batch: pd.DataFrame) -> np.ndarray:
    return correct_count(model, batch, encode(batch, model.schema))


def auc_from_histogram(hist: np.ndarray, bins: int) -> float | None:
    """ROC-AUC of binned scores (ties within a bin count ½) from a (possibly noisy) 2·B histogram.

    The formula Σ_b P_b·(N_<b + ½·N_b) / (ΣP·ΣN) is bilinear in the positive row P and the
    negative row N, whose noises are independent: on the raw noisy cells numerator and denominator
    are unbiased, so the cells are NOT clipped (clipping negative cells to 0 adds mass spread over
    all bins and pulls the AUC toward ½; on Adult at σ ≈ 30–60 by 0.005–0.03). The result is
    clipped to [0, 1]; None when a class has no positive noisy mass.
    """
    h = np.asarray(hist, dtype=float).reshape(2, bins)
    neg, pos = h[0], h[1]
    if neg.sum() <= 0 or pos.sum() <= 0:
        return None
    below = np.concatenate([[0.0], np.cumsum(neg)[:-1]])
    return float(min(max(np.sum(pos * (below + 0.5 * neg)) / (pos.sum() * neg.sum()), 0.0), 1.0))


def accuracy_from_histogram(hist: np.ndarray, bins: int) -> float | None:
    """Accuracy of "predict code 1 when the score is at least ½" from a (possibly noisy) 2·B
    histogram (B even): correct cells over all cells (raw, unclipped sums), clipped to [0, 1]."""
    h = np.asarray(hist, dtype=float).reshape(2, bins)
    total = h.sum()
    if total <= 0:
        return None
    half = bins // 2
    return float(min(max((h[0, :half].sum() + h[1, half:].sum()) / total, 0.0), 1.0))


__all__ = ["DEFAULT_BINS", "SyntheticModel", "accuracy_from_histogram", "auc_from_histogram", "correct_count",
           "fit_synthetic_model", "score_bins", "score_histogram", "source_correct_count", "source_score_histogram",
           "target_kind"]
