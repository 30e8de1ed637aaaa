"""Junction-tree sizes for AIM's candidate filter, computed on bitmasks (post-processing).

AIM asks, every round and for every candidate marginal, how large the graphical model would be
if the candidate were added (``mbi.junction_tree.hypothetical_model_size``). mbi answers by
building networkx graphs (about 2 ms each); over hundreds of candidates and dozens of rounds that
was a sixth of AIM's time on Adult. :class:`SizeOracle` gives the same answer — the same greedy
elimination order with the same tie-breaking, the same triangulation, the same sum of maximal
clique sizes — on integer bitmasks (tens of microseconds). ``tests/unit/test_jtree.py`` checks
it against mbi on random clique sets, so a change in mbi's heuristic shows up there.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

MB = 8 / 2**20  # bytes of one float64 cell, in megabytes


class SizeOracle:
    """Model sizes (in MB of float64 cells) for sets of cliques over fixed attributes."""

    def __init__(self, names: Sequence[str], sizes: Sequence[int]):
        self.names = list(names)
        self.bit = {a: 1 << i for i, a in enumerate(self.names)}
        self.sizes = [int(s) for s in sizes]
        self._cells: dict[int, int] = {0: 1}

    def mask(self, clique: Iterable[str]) -> int:
        m = 0
        for a in clique:
            m |= self.bit[a]
        return m

    def cells(self, mask: int) -> int:
        """The number of cells of the marginal over ``mask`` (exact integer, cached)."""
        got = self._cells.get(mask)
        if got is None:
            low = mask & -mask
            got = self.cells(mask ^ low) * self.sizes[low.bit_length() - 1]
            self._cells[mask] = got
        return got

    def model_size(self, cliques: Iterable[Iterable[str]]) -> float:
        """``mbi.junction_tree.hypothetical_model_size(domain, cliques)``, in megabytes."""
        return self.model_size_masks([self.mask(cl) for cl in cliques])

    def model_size_masks(self, masks: Sequence[int]) -> float:
        n = len(self.names)
        adj = [0] * n
        covered = 0
        for m in masks:
            covered |= m
            rest = m
            while rest:
                low = rest & -rest
                i = low.bit_length() - 1
                adj[i] |= m & ~low
                rest ^= low
        edges = sum(bin(a).count("1") for a in adj) // 2
        if edges == n - 1 and n > 1 and _connected(adj):
            # mbi eliminates a tree leaves-first (no fill-in): the maximal cliques are its edges.
            return _tree_size(self, adj) * MB
        return self._greedy_size(adj, covered) * MB

    def _greedy_size(self, adj: list[int], covered: int) -> int:
        """Eliminate greedily (mbi's ``greedy_order``: smallest closed neighbourhood first, ties by
        attribute order), collect each eliminated attribute's clique, sum the maximal ones."""
        adj = list(adj)
        unmarked = list(range(len(self.names)))
        formed: list[int] = []
        while unmarked:
            best, best_cost = -1, -1
            for i in unmarked:
                # An attribute in no clique costs 1, as mbi's projection onto no attributes does.
                cost = self.cells(adj[i] | (1 << i)) if covered >> i & 1 else 1
                if best < 0 or cost < best_cost:
                    best, best_cost = i, cost
            unmarked.remove(best)
            formed.append(adj[best] | (1 << best))
            eliminate(adj, best)
        maximal = [c for c in set(formed) if not any(c != d and c & d == c for d in formed)]
        return sum(self.cells(c) for c in maximal)


def eliminate(adj: list[int], i: int) -> None:
    """Eliminate variable ``i`` from the interaction graph ``adj`` (bitmask adjacency), in place:
    its neighbours become pairwise adjacent (fill-in) and ``i`` leaves the graph."""
    nbrs = adj[i]
    rest = nbrs
    while rest:
        low = rest & -rest
        j = low.bit_length() - 1
        adj[j] = (adj[j] | nbrs) & ~low & ~(1 << i)
        rest ^= low
    adj[i] = 0


def _connected(adj: list[int]) -> bool:
    n = len(adj)
    seen, frontier = 1, 1
    while frontier:
        nxt = 0
        rest = frontier
        while rest:
            low = rest & -rest
            nxt |= adj[low.bit_length() - 1]
            rest ^= low
        frontier = nxt & ~seen
        seen |= nxt
    return seen == (1 << n) - 1


def _tree_size(oracle: SizeOracle, adj: list[int]) -> int:
    total = 0
    for i, a in enumerate(adj):
        rest = a >> (i + 1) << (i + 1)  # each edge once, from its lower end
        while rest:
            low = rest & -rest
            total += oracle.cells((1 << i) | low)
            rest ^= low
    return total
