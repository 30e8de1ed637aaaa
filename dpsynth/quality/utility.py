"""Machine-learning utility: train on synthetic, test on real (TSTR) against train on real (TRTR).

A gradient-boosted model (scikit-learn's HistGradientBoosting) is trained once on real rows and
once on the synthetic table, and both are scored on the same held-out real rows: accuracy, macro
F1 and ROC-AUC for a categorical target, R² for a numeric one.

Privacy: not DP. It reads the real table and is internal evidence.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from dpsynth.exceptions import ParameterError
from dpsynth.schema.encode import numeric_values
from dpsynth.schema.schema import Schema

HOLDOUT_SHARE = 0.2
SPLIT_SEED = 0


def _features(table: pd.DataFrame, codes: np.ndarray, schema: Schema, target: str) -> tuple[np.ndarray, np.ndarray]:
    cols = []
    for j, col in enumerate(schema.columns):
        if col.name == target:
            continue
        if col.kind == "categorical":
            cols.append(codes[:, j].astype(float))
        else:
            cols.append(numeric_values(table[col.name], col, schema))
    categorical = np.array([c.kind == "categorical" for c in schema.columns if c.name != target])
    return np.column_stack(cols), categorical


def utility(
    real_train: pd.DataFrame,
    real_train_codes: np.ndarray,
    synthetic: pd.DataFrame,
    synthetic_codes: np.ndarray,
    holdout: pd.DataFrame,
    holdout_codes: np.ndarray,
    schema: Schema,
    target: str,
) -> dict[str, Any]:
    """TSTR and TRTR scores for ``target`` on the held-out real rows."""
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.metrics import accuracy_score, f1_score, r2_score, roc_auc_score

    if target not in schema.names:
        raise ParameterError(f"target ({target!r}) must be one of the schema's columns: {', '.join(schema.names)}")
    j = schema.names.index(target)
    col = schema.columns[j]
    out: dict[str, Any] = {"target": target, "model": "HistGradientBoosting", "holdout_rows": int(len(holdout))}
    x_test, categorical = _features(holdout, holdout_codes, schema, target)
    scores: dict[str, dict[str, float | None]] = {}
    for name, table, codes in (("train_real", real_train, real_train_codes), ("train_synthetic", synthetic,
                                                                               synthetic_codes)):
        x, _ = _features(table, codes, schema, target)
        if col.kind == "categorical":
            y, y_test = codes[:, j], holdout_codes[:, j]
            if len(np.unique(y)) < 2:
                scores[name] = {"accuracy": float(np.mean(y_test == y[0])), "f1_macro": None, "roc_auc": None}
                continue
            model = HistGradientBoostingClassifier(categorical_features=categorical, random_state=0).fit(x, y)
            pred = model.predict(x_test)
            result: dict[str, float | None] = {
                "accuracy": float(accuracy_score(y_test, pred)),
                "f1_macro": float(f1_score(y_test, pred, average="macro")),
                "roc_auc": None,
            }
            proba = model.predict_proba(x_test)
            present = np.unique(y_test)
            if len(present) == 2 and len(model.classes_) == 2:
                result["roc_auc"] = float(roc_auc_score(y_test, proba[:, 1]))
            elif len(present) > 2 and set(present) <= set(model.classes_):
                full = np.zeros((len(y_test), col.size))
                full[:, model.classes_] = proba
                keep = np.isin(np.arange(col.size), present)
                sub = full[:, keep] / np.maximum(full[:, keep].sum(axis=1, keepdims=True), 1e-12)
                result["roc_auc"] = float(roc_auc_score(y_test, sub, multi_class="ovr", labels=np.flatnonzero(keep)))
            scores[name] = result
        else:
            y = numeric_values(table[target], col, schema)
            y_test = numeric_values(holdout[target], col, schema)
            ok, ok_test = ~np.isnan(y), ~np.isnan(y_test)
            model = HistGradientBoostingRegressor(categorical_features=categorical, random_state=0).fit(x[ok], y[ok])
            scores[name] = {"r2": float(r2_score(y_test[ok_test], model.predict(x_test[ok_test])))}
    out.update(scores)
    metric = "accuracy" if col.kind == "categorical" else "r2"
    out["metric"] = metric
    real_score, synth_score = scores["train_real"][metric], scores["train_synthetic"][metric]
    out["gap"] = None if real_score is None or synth_score is None else float(real_score - synth_score)
    return out


def split_holdout(n: int, share: float = HOLDOUT_SHARE, seed: int = SPLIT_SEED) -> tuple[np.ndarray, np.ndarray]:
    """A fixed seeded split of row indices into (train, holdout)."""
    perm = np.random.default_rng(seed).permutation(n)
    k = max(1, int(round(share * n)))
    return np.sort(perm[k:]), np.sort(perm[:k])
