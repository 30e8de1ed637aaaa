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

from dpsynth.marginals import paired_counts
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
        r_counts, s_counts = paired_counts(real, synthetic, cols, sizes)  # sparse for a marginal too big for memory
        errors[i] = np.abs(r_counts / len(real) - s_counts / len(synthetic)).sum()
    return errors, sampled


def fidelity(real: pd.DataFrame, synthetic: pd.DataFrame, schema: Schema) -> dict[str, Any]:
    """Fidelity of ``synthetic`` against ``real`` (both decoded tables of ``schema``).

    Returns ``l1_1way``, ``l1_2way``, ``l1_3way`` (mean workload errors; ``None`` when the schema
    has fewer columns than k), ``n_1way`` … (how many marginals were averaged), ``sampled_3way``
    …, and ``tvd`` (per-column total variation distance, ½·L1 of the 1-way marginals).
    """
    return _fidelity(encode(real, schema), encode(synthetic, schema), schema)


def _fidelity(r: np.ndarray, s: np.ndarray, schema: Schema) -> dict[str, Any]:
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


def evaluate(
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    schema: Schema,
    *,
    target: str | None = None,
    holdout: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """Everything ``dpsynth eval`` reports (keys documented in ``docs/eval.md``).

    The marginal and distribution figures compare ``synthetic`` with all of ``real``. With a
    ``target``, machine-learning utility compares a model trained on ``synthetic`` with one trained
    on real rows, both tested on ``holdout`` — or, without one, on a fixed seeded 20% of ``real``
    (the real model then trains on the other 80%).
    """
    from dpsynth.exceptions import ParameterError
    from dpsynth.quality.distances import association_difference, column_distances
    if target is not None and target not in schema.names:
        raise ParameterError(f"target ({target!r}) must be one of the schema's columns: {', '.join(schema.names)}")
    r = encode(real, schema)
    s = encode(synthetic, schema)
    out = _fidelity(r, s, schema)
    out["columns"] = column_distances(real, synthetic, r, s, schema)
    out["association"] = association_difference(real, synthetic, r, s, schema)
    if target is not None:
        out["utility"] = utility_arms(real, r, synthetic, s, schema, target, holdout,
                                      None if holdout is None else encode(holdout, schema))
    return out


def utility_arms(real: pd.DataFrame, real_codes: np.ndarray, synthetic: pd.DataFrame, synthetic_codes: np.ndarray,
                 schema: Schema, target: str, holdout: pd.DataFrame | None, holdout_codes: np.ndarray | None, *,
                 of: str = "") -> dict[str, Any]:
    """The utility of :func:`evaluate`: tested on ``holdout``, or on a fixed seeded 20% of ``real`` (the real
    model then trains on the other 80%); ``of`` names what ``real`` is in the report (a sample, say)."""
    from dpsynth.quality.utility import split_holdout, utility

    if holdout is None or holdout_codes is None:
        train_idx, test_idx = split_holdout(len(real))
        train, test = real.iloc[train_idx].reset_index(drop=True), real.iloc[test_idx].reset_index(drop=True)
        train_codes, test_codes = real_codes[train_idx], real_codes[test_idx]
        source = f"a fixed 20% split of {of}the real table (seed 0)"
    else:
        train, train_codes = real, real_codes
        test, test_codes = holdout.reset_index(drop=True), holdout_codes
        source = f"{of}the holdout table"
    return {**utility(train, train_codes, synthetic, synthetic_codes, test, test_codes, schema, target),
            "holdout_source": source}
