"""MST: McKenna, Miklau and Sheldon (2021), "Winning the NIST Contest: A scalable and general
approach to differentially private synthetic data", Journal of Privacy and Confidentiality.

1. Measure every 1-way marginal with Gaussian noise (``split_one_way`` of ρ).
2. Compress each column's domain: values whose noisy count is below 3σ are merged into one.
3. Select a maximum spanning tree of 2-way marginals privately: d−1 rounds of the exponential
   mechanism (``split_select`` of ρ), each scoring the candidate pairs by the L1 distance between
   their true marginal and the independence estimate from the noisy 1-way marginals.
4. Measure the selected 2-way marginals with Gaussian noise (``split_two_way`` of ρ).
5. Estimate a graphical model from all noisy measurements (Private-PGM, ``mbi``) and sample.

Privacy: ρ-zCDP with ρ the largest value whose tight conversion (Canonne–Kamath–Steinke 2020)
gives the requested (ε, δ); every step is accounted in the plan and spent by its mechanism.

What is read from the private table: exact marginal counts only, from a
:class:`~dpsynth.marginals.backend.MarginalCounter`, in two requests: the d 1-way marginals, then
(for the scores) every 2-way marginal of the schema's domain, merged through the compression
mapping in numpy; the selected pairs' 2-way marginals are among them, so a counting engine scans
the table twice in all (a schema whose pairs have more than :data:`REQUEST_CELLS` cells together
takes more requests). A table in memory counts its pairs on the compressed codes directly (the
same integers, without the dense 2-way tables of the uncompressed domain).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from dpsynth import _validation as check
from dpsynth.exceptions import InternalError, ParameterError
from dpsynth.marginals import marginal_counts
from dpsynth.marginals.backend import CodesCounter, MarginalCounter
from dpsynth.mechanisms import ExponentialSelection, GaussianCounts, NoiseSource, describe_noise
from dpsynth.privacy.events import PrivacyEvent, total_rho
from dpsynth.privacy.odometer import Odometer
from dpsynth.schema import dp_bins
from dpsynth.schema.schema import Schema
from dpsynth.synth import _pgm, _sampling
from dpsynth.synth.base import CountsOf, Synthesizer, register
from dpsynth.synth.conditions import Evidence
from dpsynth.synth.measurements import Measurement

Pair = tuple[int, int]


@dataclass(frozen=True)
class _Plan:
    """The data-independent part of an MST fit: every mechanism with its cost."""

    preprocess: tuple[ExponentialSelection, ...]  # DP quantile bin edges (in schema order)
    one_way: GaussianCounts  # applied to the d 1-way marginals jointly (L2 sensitivity √d·w)
    select: ExponentialSelection  # applied d−1 times
    two_way: GaussianCounts  # applied to the d−1 selected 2-way marginals jointly
    n_columns: int

    def events(self) -> list[PrivacyEvent]:
        d = self.n_columns
        preprocess: list[PrivacyEvent] = [m.event for m in self.preprocess]
        return (
            preprocess
            + [self.one_way.event] * d + [self.select.event] * (d - 1) + [self.two_way.event] * (d - 1)
        )


class _Clock:
    """Wall time of each phase of a fit (reported by the CLI and the benchmark)."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = round(now - self._last, 4)
        self._last = now


def _simplex_projection(y: np.ndarray, total: float) -> np.ndarray:
    """Euclidean projection of ``y`` onto {x >= 0, sum(x) = total}."""
    u = np.sort(y)[::-1]
    css = np.cumsum(u) - total
    ind = np.arange(1, len(y) + 1)
    positive = u - css / ind > 0
    r = ind[positive][-1]
    theta = css[positive][-1] / r
    return np.maximum(y - theta, 0.0)


def edge_scores(
    codes: np.ndarray, probs: list[np.ndarray], total: float, sizes: list[int]
) -> dict[tuple[int, int], float]:
    """Quality score of every candidate edge (a, b): ‖x_ab − x̂_ab‖₁.

    x_ab is the true 2-way marginal, x̂_ab = total · p_a ⊗ p_b the independence estimate from the
    noisy 1-way marginals (fixed, post-processing). Sensitivity: adding or removing a row moves
    one cell of x_ab by one, so each score moves by at most 1.
    """
    pairs = list(itertools.combinations(range(len(sizes)), 2))
    return scores_from_counts({(a, b): marginal_counts(codes, [a, b], sizes) for a, b in pairs}, probs, total)


def scores_from_counts(
    tables: dict[Pair, np.ndarray], probs: list[np.ndarray], total: float
) -> dict[Pair, float]:
    """:func:`edge_scores` from the 2-way marginals ``tables`` (flattened counts of each pair)."""
    return {pair: pair_score(counts, pair, probs, total) for pair, counts in tables.items()}


def pair_score(counts: np.ndarray, pair: Pair, probs: list[np.ndarray], total: float) -> float:
    """The score ‖x_ab − x̂_ab‖₁ of one pair from its 2-way marginal ``counts`` (see :func:`edge_scores`)."""
    a, b = pair
    xhat = total * np.outer(probs[a], probs[b]).ravel()
    return float(np.abs(counts.astype(float) - xhat).sum())


def compress_counts(counts: np.ndarray, pair: Pair, sizes: list[int], maps: list[np.ndarray | None],
                    csizes: list[int]) -> np.ndarray:
    """A 2-way marginal of the original domain (flattened int64) summed onto the compressed domain:
    exactly the marginal of the compressed codes (integer sums; post-processing of exact counts
    through the public-or-noisy mapping)."""
    a, b = pair
    map_a, map_b = maps[a], maps[b]
    if map_a is None and map_b is None:
        return counts
    rows = map_a if map_a is not None else np.arange(sizes[a])
    cols = map_b if map_b is not None else np.arange(sizes[b])
    out = np.zeros((csizes[a], csizes[b]), dtype=np.int64)
    np.add.at(out, (rows[:, None], cols[None, :]), counts.reshape(sizes[a], sizes[b]))
    return out.ravel()


#: The most cells of the dense 2-way tables that one request for pair counts asks a counting engine
#: for (256 MiB of int64): the pairs of a wide schema are asked for in several requests. Every
#: realistic schema (the bundled Adult: 14,000 cells) needs one.
REQUEST_CELLS = 1 << 25
#: The most cells of compressed 2-way tables kept, after the scores, for the selected pairs' noisy
#: measurements (256 MiB of int64); a selected pair beyond it is counted again (one more request).
KEPT_CELLS = 1 << 25


def compressed_pairs(counter: MarginalCounter, mapping: dict[str, np.ndarray], csizes: list[int],
                     pairs: list[Pair]) -> Iterator[tuple[Pair, np.ndarray]]:
    """The 2-way marginal of every pair of ``pairs`` on the compressed domain (flattened int64), in order.

    A counting engine is asked for the pairs' marginals of the schema's domain in as few requests
    as :data:`REQUEST_CELLS` allows (one for every realistic schema), merged here through
    ``mapping``; codes in memory (a :class:`~dpsynth.marginals.backend.CodesCounter`) are compressed
    and counted pair by pair, which gives the same integers without the uncompressed tables.
    """
    schema = counter.schema
    names, sizes = schema.names, schema.sizes
    if isinstance(counter, CodesCounter):
        count = counter.count if isinstance(counter, CountsOf) else marginal_counts
        ccodes = counter.codes.copy()
        for i, n in enumerate(names):
            if n in mapping:
                ccodes[:, i] = mapping[n][counter.codes[:, i]]
        for a, b in pairs:
            yield (a, b), count(ccodes, [a, b], csizes)
        return
    maps = [mapping.get(n) for n in names]
    batch: list[Pair] = []
    cells = 0
    for k, (a, b) in enumerate(pairs):
        batch.append((a, b))
        cells += sizes[a] * sizes[b]
        following = pairs[k + 1] if k + 1 < len(pairs) else None
        if following is None or cells + sizes[following[0]] * sizes[following[1]] > REQUEST_CELLS:
            for pair, table in zip(batch, counter.counts(batch), strict=True):
                yield pair, compress_counts(table, pair, sizes, maps, csizes)
            batch, cells = [], 0


def tree_pairs(counter: MarginalCounter, mapping: dict[str, np.ndarray], csizes: list[int],
               probs: list[np.ndarray], total: float) -> tuple[dict[Pair, float], dict[Pair, np.ndarray]]:
    """(the score of every pair a < b, the compressed 2-way marginals kept for the selected pairs:
    all of them up to :data:`KEPT_CELLS` cells). Sensitivity of each score: 1 (:func:`edge_scores`)."""
    pairs = list(itertools.combinations(range(len(counter.schema)), 2))
    scores: dict[Pair, float] = {}
    kept: dict[Pair, np.ndarray] = {}
    kept_cells = 0
    for pair, table in compressed_pairs(counter, mapping, csizes, pairs):
        scores[pair] = pair_score(table, pair, probs, total)
        if kept_cells + table.size <= KEPT_CELLS:
            kept[pair] = table
            kept_cells += table.size
    return scores, kept


@register
class MST(Synthesizer):
    """The MST synthesizer (winner of the 2018 NIST differential privacy synthetic data contest).

    Args:
        epsilon: ε of the (ε, δ)-DP guarantee (> 0).
        delta: δ of the guarantee, in (0, 1). Never derived from the data.
        split_one_way: share of ρ for the noisy 1-way marginals (default 1/3, as published).
        split_select: share of ρ for the private spanning-tree selection (default 1/3).
        split_two_way: share of ρ for the noisy 2-way marginals (default 1/3).
        compress: merge rare values (noisy count < 3σ) before selection, as published.
        estimation_iters: maximum mirror-descent iterations of the model fit.
        insecure_seed: seed the privacy noise (INSECURE, tests only; warns and is recorded).

    Privacy: consumes ρ = approx_dp_to_rho(ε, δ) zCDP in total, split as named above.
    """

    name = "mst"
    fits_on_marginals = True
    user_level = True

    def __init__(
        self,
        *,
        epsilon: float,
        delta: float,
        split_one_way: float = 1 / 3,
        split_select: float = 1 / 3,
        split_two_way: float = 1 / 3,
        split_preprocess: float = 0.1,
        compress: bool = True,
        estimation_iters: int = 3000,
        insecure_seed: int | None = None,
    ):
        super().__init__(epsilon=epsilon, delta=delta, insecure_seed=insecure_seed)
        self.split_one_way = split_one_way
        self.split_select = split_select
        self.split_two_way = split_two_way
        self.split_preprocess = split_preprocess
        self.compress = compress
        self.estimation_iters = estimation_iters

    # -- planning (public information only) ---------------------------------------------------
    def _plan(self, schema: Schema) -> _Plan:
        rho = self.zcdp_budget()
        splits = [
            check.positive_finite("split_one_way", self.split_one_way),
            check.positive_finite("split_select", self.split_select),
            check.positive_finite("split_two_way", self.split_two_way),
        ]
        check.positive_int("estimation_iters", self.estimation_iters)
        d = len(schema)
        if d < 2:
            raise ParameterError(f"schema columns ({d}) must be at least 2 for MST")
        preprocess, rho = dp_bins.plan_quantiles(schema, rho, self.split_preprocess)
        rho_one, rho_select, rho_two = rho.split(splits)
        # d 1-way marginals, each with weight 1/√d of the noise budget: the concatenated vector
        # has L2 sensitivity K (1 for a row; a person's K rows in one cell of each) when each
        # marginal's noise scale is σ·√d, i.e. ρ_one/d apiece. A pair's score moves by K too.
        k = schema.privacy_unit.sensitivity
        one_way = GaussianCounts.for_rho(rho_one.rho / d, l2_sensitivity=k, label="one_way_marginal")
        two_way = GaussianCounts.for_rho(rho_two.rho / (d - 1), l2_sensitivity=k, label="two_way_marginal")
        select = ExponentialSelection.for_rho(rho_select.rho / (d - 1), sensitivity=float(k), label="tree_edge")
        plan = _Plan(preprocess=preprocess, one_way=one_way, select=select, two_way=two_way, n_columns=d)
        if not total_rho(plan.events()) <= self.zcdp_budget().rho * (1 + 1e-12):
            raise InternalError("MST's plan spends more than its budget")
        return plan

    def plan(self, schema: Schema) -> list[PrivacyEvent]:
        """MST's privacy events for ``schema``: preprocessing, 1-way marginals, tree edges, 2-way marginals."""
        return self._plan(schema).events()

    def _preprocess_mechanisms(self, schema: Schema) -> list[ExponentialSelection]:
        return list(self._plan(schema).preprocess)

    # -- fitting --------------------------------------------------------------------------------
    def _fit_codes(self, codes: np.ndarray, schema: Schema, odometer: Odometer, noise: NoiseSource) -> None:
        """MST on the encoded table (its marginal counts in memory); see :meth:`_fit_counts`."""
        self._fit_counts(CountsOf(codes, schema, marginal_counts), schema, odometer, noise)

    def _fit_counts(self, counter: MarginalCounter, schema: Schema, odometer: Odometer, noise: NoiseSource) -> None:
        """MST on the exact marginals ``counter`` answers. Privacy: spends the planned ρ through
        ``odometer``; everything after the noisy measurements is post-processing."""
        clock = _Clock()
        plan = self._plan(schema)
        names, sizes = schema.names, schema.sizes
        d = len(names)
        domain = _pgm.make_domain(names, sizes)

        # 1. noisy 1-way marginals (all d counted in one request)
        sigma1 = plan.one_way.scale
        noisy1 = [plan.one_way(x, noise=noise, odometer=odometer) for x in counter.counts([(i,) for i in range(d)])]
        one_way = [_pgm.linear_measurement(y, (names[i],), sigma1) for i, y in enumerate(noisy1)]
        clock.lap("measure_one_way")

        # 2. compress rare values (post-processing of the noisy 1-way marginals)
        mapping = self._compression(noisy1, names, sizes, sigma1) if self.compress else {}
        # Compressed domain sizes come from the mapping, i.e. from the noisy counts (post-processing).
        csizes = [int(mapping[n].max()) + 1 if n in mapping else sizes[i] for i, n in enumerate(names)]
        cdomain = _pgm.make_domain(names, csizes)
        one_way_c = [_pgm.compress_measurement(m, mapping, domain) for m in one_way]

        # 3. private maximum spanning tree, scored on every pair's 2-way marginal (one request)
        clock.lap("compress")
        probs, total = self._independent_estimate(noisy1, mapping, names, csizes)
        weights, tables = tree_pairs(counter, mapping, csizes, probs, total)
        edges = self._select(weights, names, plan.select, noise, odometer)
        clock.lap("select")

        # 4. noisy 2-way marginals on the selected edges (counted already, for the scores)
        sigma2 = plan.two_way.scale
        selected = [(names.index(a), names.index(b)) for a, b in edges]
        tables.update(compressed_pairs(counter, mapping, csizes, [p for p in selected if p not in tables]))
        two_way = []
        measurements = [Measurement.of((names[i],), y, sigma1, shape=(sizes[i],)) for i, y in enumerate(noisy1)]
        for (a, b), pair in zip(edges, selected, strict=True):
            y = plan.two_way(tables[pair], noise=noise, odometer=odometer)
            two_way.append(_pgm.linear_measurement(y, (a, b), sigma2))
            measurements.append(Measurement.of((a, b), y, sigma2, shape=(csizes[pair[0]], csizes[pair[1]]),
                                               compression=[mapping.get(a), mapping.get(b)]))
        del tables

        clock.lap("measure_two_way")
        # 5. graphical model (post-processing)
        marginals, total = _pgm.estimate_marginals(cdomain, one_way_c + two_way, iters=int(self.estimation_iters))
        clock.lap("estimate")

        self.schema_ = schema
        self.edges_ = edges
        self.compressed_sizes_ = dict(zip(names, csizes, strict=True))
        self.compression_ = mapping
        self.marginals_ = marginals
        self.total_estimate_ = total
        self.privacy_events_ = list(odometer.events)
        self.privacy_spent_ = odometer.spent
        self.secure_noise_ = bool(noise.secure)
        self.noise_source_ = describe_noise(noise)
        self.timings_ = clock.laps
        # The noisy measurements (DP output): 1-way on the original codes, 2-way on the compressed domain
        # with the compression of each column (see dpsynth.synth.measurements).
        self.measurements_ = measurements

    @staticmethod
    def _compression(noisy1: list[np.ndarray], names: list[str], sizes: list[int], sigma1: float
                     ) -> dict[str, np.ndarray]:
        """Each column's merge of its values whose noisy count is below 3σ into one code (none where
        at most one value is rare). Post-processing of the noisy 1-way marginals."""
        mapping: dict[str, np.ndarray] = {}
        for i, y in enumerate(noisy1):
            keep = y >= 3 * sigma1
            if keep.all() or (~keep).sum() == 1:
                continue
            m = np.full(sizes[i], int(keep.sum()), dtype=np.int64)
            m[keep] = np.arange(int(keep.sum()))
            mapping[names[i]] = m
        return mapping

    @staticmethod
    def _independent_estimate(
        noisy1: list[np.ndarray], mapping: dict[str, np.ndarray], names: list[str], csizes: list[int]
    ) -> tuple[list[np.ndarray], float]:
        """The 1-way-only model in closed form: its 2-way marginals are outer products.

        With 1-way measurements only, the maximum-likelihood graphical model is a product
        distribution, and its best L2 fit of each noisy marginal (given the estimated total) is
        the Euclidean projection onto the scaled simplex. Post-processing only.
        """
        sums = np.array([float(y.sum()) for y in noisy1])
        inv_var = np.array([1.0 / len(y) for y in noisy1])
        total = max(1.0, float(np.sum(sums * inv_var) / np.sum(inv_var)))
        probs = []
        for i, y in enumerate(noisy1):
            p: np.ndarray = _simplex_projection(y.astype(float), total) / total
            if names[i] in mapping:
                p = np.bincount(mapping[names[i]], weights=p, minlength=csizes[i])
            probs.append(p)
        return probs, total

    @staticmethod
    def _select(
        weights: dict[Pair, float],
        names: list[str],
        select: ExponentialSelection,
        noise: NoiseSource,
        odometer: Odometer,
    ) -> list[tuple[str, str]]:
        """d − 1 exponential-mechanism rounds choosing a maximum spanning tree (Kruskal order) by the
        pairs' scores ``weights`` (sensitivity 1 each)."""
        d = len(names)
        parent = list(range(d))

        def find(i: int) -> int:
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        candidates = list(weights)
        edges: list[tuple[str, str]] = []
        for _ in range(d - 1):
            candidates = [e for e in candidates if find(e[0]) != find(e[1])]
            idx = select([weights[e] for e in candidates], noise=noise, odometer=odometer)
            a, b = candidates[idx]
            parent[find(a)] = find(b)
            edges.append((names[a], names[b]))
        return edges

    # -- sampling (post-processing) ---------------------------------------------------------------
    def _sample_codes(self, n_rows: int, rng: np.random.Generator) -> np.ndarray:
        return self._sample_codes_given(n_rows, rng, {})

    def _sample_codes_given(self, n_rows: int, rng: np.random.Generator, evidence: Evidence) -> np.ndarray:
        """The tree model conditioned on ``evidence`` exactly (belief propagation in
        :func:`~dpsynth.synth._sampling.sample_tree`), then decompressed.

        On the compressed domain a merged ("rare") code's likelihood is the share of its original
        values the condition allows (the model decodes it to one of them uniformly), and a drawn
        merged code decodes uniformly to one of the ALLOWED values only: the rows take exactly the
        values asked for, with the model's conditional probabilities."""
        names = self.schema_.names
        csizes = [self.compressed_sizes_[n] for n in names]
        likelihood: dict[str, np.ndarray] = {}
        for j, allowed in evidence.items():
            n = names[j]
            if n in self.compression_:
                m = self.compression_[n]
                likelihood[n] = np.bincount(m, weights=allowed.astype(np.float64), minlength=csizes[j]) \
                    / np.bincount(m, minlength=csizes[j])
            else:
                likelihood[n] = allowed.astype(np.float64)
        codes = _sampling.sample_tree(names, csizes, self.edges_, self.marginals_, n_rows, rng,
                                      evidence=likelihood or None)
        for i, n in enumerate(names):
            if n not in self.compression_:
                continue
            # A merged ("rare") code decodes to one of its original values (allowed by the evidence), uniformly.
            m = self.compression_[n]
            rare = int(m.max())
            supported = np.flatnonzero(m != rare)
            inverse = np.zeros(rare + 1, dtype=np.int64)
            inverse[m[supported]] = supported
            col = codes[:, i]
            out = inverse[col]
            is_rare = col == rare
            members = m == rare
            if i in evidence:
                members &= evidence[i]
            out[is_rare] = rng.choice(np.flatnonzero(members), size=int(is_rare.sum()))
            codes[:, i] = out
        return codes

    @property
    def rho_(self) -> float:
        """The zCDP ρ the fit spent."""
        return self.privacy_spent_.rho
