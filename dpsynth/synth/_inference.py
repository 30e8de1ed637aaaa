"""Marginals of a discrete graphical model by variable elimination in numpy (post-processing).

AIM scores hundreds of candidate marginals per round. Asking mbi for each would compile a new JAX
program per clique shape, so the model's log-potentials are taken out once per round
(:class:`Model`) and every candidate's marginal is computed here, in probability space (each
factor rescaled to a maximum of 1, which only changes the normalising constant).

The elimination order is chosen per query, greedily (smallest new factor first, as mbi orders its
junction trees), on the model's interaction graph with the query's variables kept: one fixed
order for every query can build enormous intermediate factors once the kept variables sit early
in it (on Adult at ε = 3 a fixed order asked for a 36 GiB table where the greedy one needs MBs).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from dpsynth.synth._jtree import SizeOracle, eliminate

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
        self.names = sorted({a for cl, _ in self.factors for a in cl} | set(self.sizes))
        self._oracle = SizeOracle(self.names, [self.sizes[a] for a in self.names])
        self._adj = [0] * len(self.names)
        for cl, _ in self.factors:
            m = self._oracle.mask(cl)
            for a in cl:
                self._adj[self.names.index(a)] |= m & ~self._oracle.bit[a]

    def elimination_order(self, query: Sequence[str]) -> list[str]:
        """Greedy order for eliminating every variable outside ``query``: at each step the variable
        whose elimination builds the smallest factor (ties by name)."""
        adj = list(self._adj)
        keep = self._oracle.mask(query)
        left = [i for i in range(len(self.names)) if not keep >> i & 1]
        order = []
        while left:
            best = min(left, key=lambda i: (self._oracle.cells(adj[i] | (1 << i)), i))
            left.remove(best)
            eliminate(adj, best)
            order.append(self.names[best])
        return order

    def marginal(self, query: Sequence[str], total: float = 1.0) -> np.ndarray:
        """The model's marginal over ``query`` (axes in query order), scaled to ``total``."""
        factors = list(self.factors)
        for v in self.elimination_order(query):
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

