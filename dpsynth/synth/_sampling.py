"""Sampling codes from a fitted model's marginals: systematic rounding within groups of equal parent
values, and column-by-column sampling from a tree (MST) model.

Everything here is post-processing of noisy measurements; nothing here uses mbi.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

Clique = tuple[str, ...]


def systematic_round(expected: np.ndarray, totals: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Integer counts per row of ``expected`` (each row summing exactly to ``totals``).

    Systematic (controlled) rounding: unbiased, every count within one of its expectation, so
    the sampled marginals match the model's closely (as mbi's randomized rounding does).
    """
    expected = np.clip(np.asarray(expected, dtype=np.float64), 0.0, None)
    rows = expected.sum(axis=1, keepdims=True)
    k = expected.shape[1]
    # Rows with no mass (a parent value the model gives ~0 probability) spread uniformly.
    probs = np.where(rows > 0, expected / np.where(rows > 0, rows, 1.0), 1.0 / k)
    cum = np.cumsum(probs * totals[:, None], axis=1)
    cum[:, -1] = totals
    u = rng.random((expected.shape[0], 1))
    edges = np.floor(np.concatenate([np.zeros((expected.shape[0], 1)), cum], axis=1) + u)
    return np.diff(edges, axis=1).astype(np.int64)


def sample_grouped(key: np.ndarray, table: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One value per row, drawn from row ``key[i]`` of ``table`` (unnormalised conditionals).

    Within each group of rows sharing a key, the counts of each value are the group's size times
    the conditional, systematically rounded, and the values are dealt to the group's rows in random
    order. Post-processing of a model's marginals.
    """
    groups = np.bincount(key, minlength=table.shape[0])
    per_group = systematic_round(table, groups, rng)
    perm = rng.permutation(len(key))
    order = perm[np.argsort(key[perm], kind="stable")]  # rows in random order, grouped by key
    out = np.empty(len(key), dtype=np.int64)
    out[order] = np.repeat(np.tile(np.arange(table.shape[1]), table.shape[0]), per_group.ravel())
    return out


def _joint(marginals: dict[Clique, np.ndarray], parent: str, child: str) -> np.ndarray:
    """The model's (parent, child) marginal, axes in that order."""
    if (parent, child) in marginals:
        return marginals[(parent, child)]
    return marginals[(child, parent)].T


def _one_way(marginals: dict[Clique, np.ndarray], col: str, size: int) -> np.ndarray:
    """The model's marginal of ``col``: measured, summed out of a clique holding it, or uniform."""
    if (col,) in marginals:
        return marginals[(col,)]
    for cl, m in marginals.items():
        if col in cl:
            axes = tuple(i for i, a in enumerate(cl) if a != col)
            return m.sum(axis=axes)
    return np.ones(size)


def sample_tree(
    names: Sequence[str],
    sizes: Sequence[int],
    edges: Sequence[tuple[str, str]],
    marginals: dict[Clique, np.ndarray],
    n_rows: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Sample ``n_rows`` codes from a tree- (or forest-) structured model, column by column.

    Each column is drawn given its parent in the tree with systematic rounding inside every
    parent group, so the synthetic pairwise marginals follow the model's up to rounding.
    """
    index = {a: i for i, a in enumerate(names)}
    adjacency: dict[str, list[str]] = {a: [] for a in names}
    for a, b in edges:
        adjacency[a].append(b)
        adjacency[b].append(a)
    out = np.empty((n_rows, len(names)), dtype=np.int64)
    done: set[str] = set()
    for root in names:
        if root in done:
            continue
        root_marginal = _one_way(marginals, root, int(sizes[index[root]]))
        out[:, index[root]] = sample_grouped(np.zeros(n_rows, dtype=np.int64), root_marginal[None, :], rng)
        done.add(root)
        queue = [root]
        while queue:
            parent = queue.pop(0)
            for child in adjacency[parent]:
                if child in done:
                    continue
                out[:, index[child]] = sample_grouped(out[:, index[parent]], _joint(marginals, parent, child), rng)
                done.add(child)
                queue.append(child)
    return out
