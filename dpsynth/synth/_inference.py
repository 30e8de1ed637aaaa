"""Marginals of a discrete graphical model by variable elimination in numpy (post-processing).

AIM scores hundreds of candidate marginals per round. Asking mbi for each would compile a new JAX
program per clique shape, so the model's log-potentials are taken out once per round and every
candidate's marginal is computed here: sum out every other variable, greedily picking the one
whose elimination touches the smallest table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

Factor = tuple[tuple[str, ...], np.ndarray]


def _aligned(factor: Factor, order: Sequence[str], sizes: Mapping[str, int]) -> np.ndarray:
    attrs, table = factor
    present = [a for a in order if a in attrs]
    moved = np.transpose(table, [attrs.index(a) for a in present])
    return moved.reshape([sizes[a] if a in attrs else 1 for a in order])


def _logsumexp(x: np.ndarray, axis: int) -> np.ndarray:
    top = np.max(x, axis=axis, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    return np.squeeze(top, axis=axis) + np.log(np.sum(np.exp(x - top), axis=axis))


def _scope_size(factors: list[Factor], var: str, sizes: Mapping[str, int]) -> int:
    scope = {a for cl, _ in factors if var in cl for a in cl}
    return int(np.prod([sizes[a] for a in scope]))


def marginal(
    log_potentials: Mapping[tuple[str, ...], np.ndarray],
    sizes: Mapping[str, int],
    query: Sequence[str],
    total: float,
) -> np.ndarray:
    """The model's marginal over ``query`` (axes in query order), scaled to ``total`` counts."""
    factors: list[Factor] = [(tuple(cl), np.asarray(t, dtype=np.float64)) for cl, t in log_potentials.items()]
    variables = {a for cl, _ in factors for a in cl}
    eliminate = variables - set(query)
    while eliminate:
        v = min(sorted(eliminate), key=lambda var, fs=factors: _scope_size(fs, var, sizes))
        involved = [f for f in factors if v in f[0]]
        factors = [f for f in factors if v not in f[0]]
        scope = sorted({a for cl, _ in involved for a in cl})
        combined = sum(_aligned(f, scope, sizes) for f in involved)
        reduced = _logsumexp(np.asarray(combined), axis=scope.index(v))
        factors.append((tuple(a for a in scope if a != v), reduced))
        eliminate.discard(v)
    order = list(query)
    joint = np.zeros([sizes[a] for a in order])
    for f in factors:
        joint = joint + _aligned(f, order, sizes)
    joint = np.exp(joint - joint.max())
    return total * joint / joint.sum()
