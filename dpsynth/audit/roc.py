"""ROC curve, AUC and TPR at a low FPR of a membership test "world 1 iff score ≥ t".

The curve is scikit-learn's (:func:`sklearn.metrics.roc_curve` with every threshold kept). The
AUC is the Mann–Whitney statistic from ranks, not :func:`sklearn.metrics.roc_auc_score`: both are
P[score₁ > score₀] + ½·P[tie], but scikit-learn integrates the curve with the trapezoid rule, whose
float sum differs from the exact rank count in the last bits (and, rounded to the 6 digits a report
shows, in 7 of 20,000 random cases with ties): ``tests/privacy/test_audit_blackbox.py`` checks both.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

#: The ROC curve is reported at no more than this many points.
ROC_POINTS = 101


def roc(scores_0: np.ndarray, scores_1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The empirical ROC curve of the test "world 1 iff score ≥ t", from (0, 0) to (1, 1): one
    point per distinct score, in decreasing order of the threshold."""
    from sklearn.metrics import roc_curve  # imported on use: importing dpsynth.audit stays as fast

    s0, s1 = np.asarray(scores_0, dtype=float), np.asarray(scores_1, dtype=float)
    labels = np.concatenate([np.zeros(len(s0), dtype=np.int8), np.ones(len(s1), dtype=np.int8)])
    fpr, tpr, _ = roc_curve(labels, np.concatenate([s0, s1]), drop_intermediate=False)
    return np.asarray(fpr, dtype=float), np.asarray(tpr, dtype=float)


def auc(scores_0: np.ndarray, scores_1: np.ndarray) -> float:
    """P[score₁ > score₀] + ½·P[tie] (Mann–Whitney), the area under the ROC curve."""
    s0, s1 = np.asarray(scores_0, dtype=float), np.asarray(scores_1, dtype=float)
    ranks = stats.rankdata(np.concatenate([s0, s1]))
    return float((ranks[len(s0):].sum() - len(s1) * (len(s1) + 1) / 2) / (len(s0) * len(s1)))


def tpr_at_fpr(fpr: np.ndarray, tpr: np.ndarray, level: float = 0.01) -> float:
    """The largest TPR of a threshold whose FPR is at most ``level``."""
    return float(tpr[fpr <= level + 1e-12].max())


def downsample(fpr: np.ndarray, tpr: np.ndarray, points: int = ROC_POINTS) -> tuple[list[float], list[float]]:
    """At most ``points`` evenly spaced points of the curve (the ends kept), rounded to 6 digits."""
    if len(fpr) > points:
        keep = np.unique(np.round(np.linspace(0, len(fpr) - 1, points)).astype(int))
        fpr, tpr = fpr[keep], tpr[keep]
    return [round(float(x), 6) for x in fpr], [round(float(x), 6) for x in tpr]
