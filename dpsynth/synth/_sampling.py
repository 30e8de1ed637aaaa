"""Sampling codes from a fitted model's marginals: systematic rounding within groups of equal parent
values, and column-by-column sampling from a tree (MST) model.

Everything here is post-processing of noisy measurements; nothing here uses mbi.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dpsynth.exceptions import ParameterError

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


def _bfs(root: str, adjacency: dict[str, list[str]]) -> tuple[list[str], dict[str, str]]:
    """The nodes of ``root``'s tree in breadth-first order (children in adjacency order), and each
    one's parent."""
    order, parent = [root], {}
    seen = {root}
    k = 0
    while k < len(order):
        node = order[k]
        k += 1
        for child in adjacency[node]:
            if child not in seen:
                seen.add(child)
                parent[child] = node
                order.append(child)
    return order, parent


def _conditional(marginals: dict[Clique, np.ndarray], parent: str, child: str) -> np.ndarray:
    """The model's P(child | parent), rows by parent value (a row of zeros where the parent has no mass)."""
    joint = np.asarray(_joint(marginals, parent, child), dtype=np.float64)
    rows = joint.sum(axis=1, keepdims=True)
    return np.where(rows > 0, joint / np.where(rows > 0, rows, 1.0), 0.0)


def upward_beliefs(order: Sequence[str], parent: dict[str, str], marginals: dict[Clique, np.ndarray],
                   sizes: dict[str, int], evidence: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Belief propagation toward the root of one tree: for every node v, β_v(x) ∝ P(evidence in v's
    subtree | x_v = x) (each rescaled to a maximum of 1). ``evidence`` gives a column's likelihood per
    code (0/1 for a condition; a fraction for a merged code of which only some values are allowed).

    Sampling the root from P(x_r)·β_r and every child from P(x_c | x_parent)·β_c gives the model's
    exact distribution given the evidence (post-processing).

    Raises:
        ParameterError: the model gives the evidence probability zero.
    """
    beliefs = {v: np.asarray(evidence.get(v, np.ones(sizes[v])), dtype=np.float64).copy() for v in order}
    for child in reversed(order[1:]):  # a node's children come after it: its belief is complete here
        beliefs[child] = _rescaled(beliefs[child])
        up = parent[child]
        beliefs[up] = beliefs[up] * (_conditional(marginals, up, child) @ beliefs[child])
    root = order[0]
    beliefs[root] = _rescaled(beliefs[root])
    if not float(np.asarray(_one_way(marginals, root, sizes[root]), dtype=np.float64) @ beliefs[root]) > 0:
        raise ParameterError("conditions: the model gives them probability zero; nothing can be sampled")
    return beliefs


def _rescaled(belief: np.ndarray) -> np.ndarray:
    top = belief.max()
    return belief / top if top > 0 else belief


def sample_tree(
    names: Sequence[str],
    sizes: Sequence[int],
    edges: Sequence[tuple[str, str]],
    marginals: dict[Clique, np.ndarray],
    n_rows: int,
    rng: np.random.Generator,
    evidence: dict[str, np.ndarray] | None = None,
) -> np.ndarray:
    """Sample ``n_rows`` codes from a tree- (or forest-) structured model, column by column.

    Each column is drawn given its parent in the tree with systematic rounding inside every
    parent group, so the synthetic pairwise marginals follow the model's up to rounding.

    ``evidence`` (by column: a likelihood per code, e.g. 0/1 for the codes a condition allows)
    conditions the model exactly: belief propagation toward each tree's root
    (:func:`upward_beliefs`), then the same draws from the conditioned root marginal and the
    conditioned parent-to-child tables.
    """
    index = {a: i for i, a in enumerate(names)}
    size_of = {a: int(sizes[index[a]]) for a in names}
    adjacency: dict[str, list[str]] = {a: [] for a in names}
    for a, b in edges:
        adjacency[a].append(b)
        adjacency[b].append(a)
    out = np.empty((n_rows, len(names)), dtype=np.int64)
    done: set[str] = set()
    for root in names:
        if root in done:
            continue
        order, parent = _bfs(root, adjacency)
        beliefs = None
        if evidence and any(v in evidence for v in order):
            beliefs = upward_beliefs(order, parent, marginals, size_of, evidence)
        root_marginal = _one_way(marginals, root, size_of[root])
        if beliefs is not None:
            root_marginal = np.asarray(root_marginal, dtype=np.float64) * beliefs[root]
        out[:, index[root]] = sample_grouped(np.zeros(n_rows, dtype=np.int64), root_marginal[None, :], rng)
        for child in order[1:]:
            table = _joint(marginals, parent[child], child)
            if beliefs is not None:
                table = _conditional(marginals, parent[child], child) * beliefs[child][None, :]
            out[:, index[child]] = sample_grouped(out[:, index[parent[child]]], table, rng)
        done.update(order)
    return out
