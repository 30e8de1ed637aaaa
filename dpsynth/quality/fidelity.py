"""Fidelity of a synthetic table: marginal workload errors and per-column distances.

The workload error is the AIM paper's (McKenna et al. 2022): for each k-way marginal, the L1
distance between the real and synthetic histograms normalised by their row counts, averaged over
all k-way marginals of the schema's columns (or over a fixed seeded sample of ``max_marginals``
when there are more). Both tables are encoded with the same public schema first.

Privacy: not DP. It reads the real table and is internal evidence; it reports aggregates only.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from dpsynth.marginals import marginal_counts
from dpsynth.schema.encode import encode
from dpsynth.schema.schema import Schema

MAX_MARGINALS = 1000
SAMPLE_SEED = 0


def _marginal_sets(d: int, k: int, max_marginals: int, seed: int) -> tuple[list[tuple[int, ...]], bool]:
    n = math.comb(d, k)
    if n <= max_marginals:
        return list(itertools.combinations(range(d), k)), False
    rng = np.random.default_rng(seed)
    chosen: set[tuple[int, ...]] = set()
    while len(chosen) < max_marginals:
        chosen.add(tuple(sorted(rng.choice(d, size=k, replace=False).tolist())))
    return sorted(chosen), True


def workload_errors(
    real: np.ndarray,
    synthetic: np.ndarray,
    sizes: Sequence[int],
    k: int,
    *,
    max_marginals: int = MAX_MARGINALS,
    seed: int = SAMPLE_SEED,
) -> tuple[np.ndarray, bool]:
    """Per-marginal L1 errors over the k-way workload, and whether it was sampled."""
    d = real.shape[1]
    if k > d:
        return np.array([]), False
    sets, sampled = _marginal_sets(d, k, max_marginals, seed)
    errors = np.empty(len(sets))
    for i, cols in enumerate(sets):
        r = marginal_counts(real, cols, sizes) / len(real)
        s = marginal_counts(synthetic, cols, sizes) / len(synthetic)
        errors[i] = np.abs(r - s).sum()
    return errors, sampled


def fidelity(real: pd.DataFrame, synthetic: pd.DataFrame, schema: Schema) -> dict[str, Any]:
    """Fidelity of ``synthetic`` against ``real`` (both decoded tables of ``schema``).

    Returns ``l1_1way``, ``l1_2way``, ``l1_3way`` (mean workload errors; ``None`` when the schema
    has fewer columns than k), ``n_1way`` … (how many marginals were averaged), ``sampled_3way``
    …, and ``tvd`` (per-column total variation distance, ½·L1 of the 1-way marginals).
    """
    r = encode(real, schema)
    s = encode(synthetic, schema)
    sizes = schema.sizes
    out: dict[str, Any] = {"real_rows": int(len(r)), "synthetic_rows": int(len(s))}
    for k in (1, 2, 3):
        errs, sampled = workload_errors(r, s, sizes, k)
        out[f"l1_{k}way"] = float(errs.mean()) if len(errs) else None
        out[f"n_{k}way"] = int(len(errs))
        out[f"sampled_{k}way"] = bool(sampled)
    one_way, _ = workload_errors(r, s, sizes, 1)
    out["tvd"] = {name: float(0.5 * e) for name, e in zip(schema.names, one_way, strict=True)}
    return out
