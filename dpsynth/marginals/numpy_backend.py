"""Exact marginal counts of an integer-coded table held in memory."""

from __future__ import annotations

import math
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


#: A marginal of more cells than this is counted sparsely (only its occupied cells) by
#: :func:`paired_counts`: the 2- and 3-way marginals of wide columns would not fit in memory as
#: dense arrays (two columns of 100,000 levels: 10^10 cells), while their occupied cells are at most
#: the rows.
DENSE_CELLS = 1 << 22


def paired_counts(
    a: np.ndarray, b: np.ndarray, columns: Sequence[int], sizes: Sequence[int]
) -> tuple[np.ndarray, np.ndarray]:
    """The marginal counts of two coded tables over the same cells (int64, aligned).

    Up to :data:`DENSE_CELLS` cells: the dense histograms of :func:`marginal_counts`. Beyond: the
    counts of the cells occupied in either table only (in increasing cell order), which is all that a
    distance between the two histograms needs (a cell empty in both adds nothing); memory is then of
    the order of the rows, whatever the domain. Every column has at most a million codes (the
    schema's limit, ``docs/limits.md``), so a 3-way cell index fits in int64.
    """
    shape = tuple(int(sizes[c]) for c in columns)
    if math.prod(shape) <= DENSE_CELLS:
        return marginal_counts(a, columns, sizes), marginal_counts(b, columns, sizes)
    flat_a = np.ravel_multi_index(tuple(a[:, c] for c in columns), shape)
    flat_b = np.ravel_multi_index(tuple(b[:, c] for c in columns), shape)
    keys_a, counts_a = np.unique(flat_a, return_counts=True)
    keys_b, counts_b = np.unique(flat_b, return_counts=True)
    keys = np.union1d(keys_a, keys_b)
    out_a = np.zeros(len(keys), dtype=np.int64)
    out_b = np.zeros(len(keys), dtype=np.int64)
    out_a[np.searchsorted(keys, keys_a)] = counts_a
    out_b[np.searchsorted(keys, keys_b)] = counts_b
    return out_a, out_b
