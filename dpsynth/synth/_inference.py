"""Marginals of a discrete graphical model by variable elimination in numpy (post-processing).

AIM scores hundreds of candidate marginals per round. Asking mbi for each would compile a new JAX
program per clique shape, so the model's log-potentials are taken out once per round
(:class:`Model`) and every candidate's marginal is computed here, in probability space (each
factor rescaled to a maximum of 1, which only changes the normalising constant), eliminating the
other variables in one fixed min-degree order per model.
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


class Model:
    """A graphical model given by log-potentials over cliques, ready for marginal queries."""

    def __init__(self, log_potentials: Mapping[tuple[str, ...], np.ndarray], sizes: Mapping[str, int]):
        self.sizes = dict(sizes)
        self.factors: list[Factor] = []
        for cl, table in log_potentials.items():
            t = np.asarray(table, dtype=np.float64)
            self.factors.append((tuple(cl), np.exp(t - t.max())))
        self.order = self._min_degree_order()

    def _min_degree_order(self) -> list[str]:
        neighbours: dict[str, set[str]] = {}
        for cl, _ in self.factors:
            for a in cl:
                neighbours.setdefault(a, set()).update(b for b in cl if b != a)
        order = []
        while neighbours:
            v = min(sorted(neighbours), key=lambda x: (np.prod([self.sizes[b] for b in neighbours[x]]), x))
            for a in neighbours[v]:
                neighbours[a].update(b for b in neighbours[v] if b != a)
                neighbours[a].discard(v)
            del neighbours[v]
            order.append(v)
        return order

    def marginal(self, query: Sequence[str], total: float = 1.0) -> np.ndarray:
        """The model's marginal over ``query`` (axes in query order), scaled to ``total``."""
        factors = list(self.factors)
        keep = set(query)
        for v in self.order:
            if v in keep:
                continue
            involved = [f for f in factors if v in f[0]]
            if not involved:
                continue
            factors = [f for f in factors if v not in f[0]]
            scope = sorted({a for cl, _ in involved for a in cl})
            combined = involved[0][1] if len(involved) == 1 and list(involved[0][0]) == scope else None
            if combined is None:
                combined = _aligned(involved[0], scope, self.sizes)
                for f in involved[1:]:
                    combined = combined * _aligned(f, scope, self.sizes)
                combined = np.broadcast_to(combined, [self.sizes[a] for a in scope])
            reduced = combined.sum(axis=scope.index(v))
            top = reduced.max()
            factors.append((tuple(a for a in scope if a != v), reduced / top if top > 0 else reduced))
        order = list(query)
        joint = np.ones([self.sizes[a] for a in order])
        for f in factors:
            joint = joint * _aligned(f, order, self.sizes)
        return total * joint / joint.sum()

