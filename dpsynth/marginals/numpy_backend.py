"""Exact marginal counts of an integer-coded table held in memory."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def marginal_counts(codes: np.ndarray, columns: Sequence[int], sizes: Sequence[int]) -> np.ndarray:
    """Histogram (int64, flattened in C order) of ``codes[:, columns]`` over their domain.

    Sensitivity: under add/remove-one-row one cell changes by one, so the L1 and L2 norms of
    the change are both 1.
    """
    shape = tuple(int(sizes[c]) for c in columns)
    if len(columns) == 1:
        return np.bincount(codes[:, columns[0]], minlength=shape[0]).astype(np.int64)
    flat = np.ravel_multi_index(tuple(codes[:, c] for c in columns), shape)
    return np.bincount(flat, minlength=int(np.prod(shape))).astype(np.int64)
