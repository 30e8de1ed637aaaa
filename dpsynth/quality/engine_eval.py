"""``dpsynth eval`` of tables held by a counting engine (DuckDB or Spark): the marginal figures exact,
from the engine's counts; the row-level figures on a stated, seeded sample.

* **Exact, in the engine** (the same numbers as :func:`dpsynth.quality.fidelity.evaluate` on the
  whole tables): the row counts, the 1-, 2- and 3-way workload errors (the same marginals, or the
  same seeded sample of them) and every column's TVD. Both tables are counted by the engine
  (GROUPING SETS over the encoded tables); only histograms over the public domain come back.
* **On a sample** of at most ``sample_rows`` rows of each table (the engine's seeded sampler:
  DuckDB's reservoir, Spark's Bernoulli): KS and Wasserstein distances of numeric columns, the
  association matrices and, with a ``target``, utility (trained and tested on the samples). These
  rows leave the engine; the report's ``sample`` says how many, of which table, and with which seed.

Privacy: not DP. It reads the real table and is internal evidence; it reports aggregates only.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dpsynth import _validation as check
from dpsynth.exceptions import ParameterError
from dpsynth.marginals.backend import EngineSource, MarginalCounter
from dpsynth.quality.fidelity import MAX_MARGINALS, SAMPLE_SEED, _marginal_sets
from dpsynth.schema.encode import encode
from dpsynth.schema.schema import Schema

__all__ = ["DEFAULT_SAMPLE_ROWS", "evaluate_sources"]

#: rows of each table the row-level figures read, by default
DEFAULT_SAMPLE_ROWS = 100_000


def _workload(real: MarginalCounter, synthetic: MarginalCounter, schema: Schema, out: dict[str, Any]) -> None:
    """Row counts, workload errors and TVDs from exact engine counts (every clique asked at once)."""
    d = len(schema)
    plans = {k: _marginal_sets(d, k, MAX_MARGINALS, SAMPLE_SEED) if k <= d else ([], False) for k in (1, 2, 3)}
    cliques = [c for k in (1, 2, 3) for c in plans[k][0]]
    r_counts, s_counts = real.counts(cliques), synthetic.counts(cliques)
    n_real, n_synthetic = int(r_counts[0].sum()), int(s_counts[0].sum())
    out["real_rows"], out["synthetic_rows"] = n_real, n_synthetic
    errors = [float(np.abs(r / n_real - s / n_synthetic).sum()) for r, s in zip(r_counts, s_counts, strict=True)]
    start = 0
    for k in (1, 2, 3):
        sets, sampled = plans[k]
        errs = errors[start:start + len(sets)]
        start += len(sets)
        out[f"l1_{k}way"] = float(np.mean(errs)) if errs else None
        out[f"n_{k}way"] = len(errs)
        out[f"sampled_{k}way"] = bool(sampled)
    out["tvd"] = {name: 0.5 * e for name, e in zip(schema.names, errors[:d], strict=True)}


def evaluate_sources(
    real: EngineSource,
    synthetic: EngineSource,
    schema: Schema,
    *,
    target: str | None = None,
    holdout: EngineSource | None = None,
    sample_rows: int = DEFAULT_SAMPLE_ROWS,
    seed: int = 0,
) -> dict[str, Any]:
    """What :func:`dpsynth.quality.fidelity.evaluate` reports, for tables in an engine (module docstring).

    Raises:
        ParameterError: an unknown ``target``, or ``sample_rows`` below 10.
        DataError: a table does not fit the schema (per-column counts, no value shown).
    """
    from dpsynth.quality.distances import association_difference, column_distances
    from dpsynth.quality.fidelity import utility_arms

    if target is not None and target not in schema.names:
        raise ParameterError(f"target ({target!r}) must be one of the schema's columns: {', '.join(schema.names)}")
    check.int_at_least("sample_rows", sample_rows, 10)
    tables = {"real": real, "synthetic": synthetic} | ({"holdout": holdout} if holdout is not None else {})
    for source in tables.values():
        source.validate(schema)
    out: dict[str, Any] = {}
    _workload(real.counter(schema), synthetic.counter(schema), schema, out)
    samples = {label: source.sample_rows(schema.names, sample_rows, seed) for label, source in tables.items()}
    codes = {label: encode(frame, schema) for label, frame in samples.items()}
    columns = column_distances(samples["real"], samples["synthetic"], codes["real"], codes["synthetic"], schema)
    for name, entry in columns.items():
        entry["tvd"] = out["tvd"][name]  # exact, from the engine's counts
    out["columns"] = columns
    out["association"] = association_difference(samples["real"], samples["synthetic"], codes["real"],
                                                codes["synthetic"], schema)
    if target is not None:
        out["utility"] = utility_arms(samples["real"], codes["real"], samples["synthetic"], codes["synthetic"], schema,
                                      target, samples.get("holdout"), codes.get("holdout"), of="the sample of ")
    out["engine"] = real.engine
    out["sample"] = {
        "rows": {label: int(len(frame)) for label, frame in samples.items()},
        "max_rows": sample_rows,
        "seed": seed,
        "sampler": "reservoir (DuckDB REPEATABLE)" if real.engine == "duckdb" else "Bernoulli (Spark sample)",
        "exact": ["real_rows", "synthetic_rows", "l1_1way", "l1_2way", "l1_3way", "tvd", "columns.*.tvd"],
        "sampled": ["columns.*.ks", "columns.*.wasserstein", "association"] + (["utility"] if target else []),
    }
    return out
