"""Copy checks (``dpsynth replay``) of tables held by a counting engine: exact and quasi-identifier copies
by joins inside DuckDB or Spark, over every row; near copies on a stated, seeded sample.

The checks and their semantics are :func:`dpsynth.pii.replay.copy_check`'s: a row's key is its
categorical cells as text (missing a value of its own; values beyond the schema's levels are values
too) and its numbers clamped to the public bounds and scaled to [0, 1] in float32. In the engine:

1. each table is aggregated once into its distinct keys with their multiplicity (a temporary table, made
   once per source: a release's DP and exact checks share it), which also counts the numeric cells that
   are not numbers (the table's check reads the key table, not the rows);
2. without a holdout, the real table's rows are split into reference and baseline by a seeded
   hash of (key, copy number, seed): each row is a baseline row with probability ``holdout_share``,
   independently of the others (a Bernoulli split; ``copy_check`` in memory cuts an exact share);
3. ``exact``, ``quasi_identifiers`` and ``quasi_identifiers_unique`` are sums over joins of these
   key tables (one aggregate row each); the Fisher tests run in Python on the counts;
4. ``near`` and the DCR quantiles (quadratic in the rows) run in memory on seeded samples of at
   most ``sample_rows`` rows of each table (:func:`~dpsynth.pii.replay.copy_check` on the samples).

The report's ``engine`` entry says which figures are over every row and which on a sample.

Privacy: NOT differentially private: reads the real data. Internal evidence; the report holds counts,
rates and distance quantiles, never a row. The samples of step 4 leave the engine (in memory only).
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Sequence
from typing import Any

from dpsynth import _validation as check
from dpsynth.exceptions import DataError, ParameterError
from dpsynth.marginals import sql
from dpsynth.marginals.backend import EngineSource
from dpsynth.marginals.sql_cells import cell_missing, cell_text
from dpsynth.pii.replay import (
    DEFAULT_ALPHA,
    DEFAULT_HOLDOUT_SHARE,
    DEFAULT_NEAR_THRESHOLD,
    CopyRate,
    CopyReport,
    copy_check,
    fisher_flag,
)
from dpsynth.schema.schema import Schema

__all__ = ["DEFAULT_SAMPLE_ROWS", "engine_copy_check"]

#: rows of each table the near-copy distances read, by default
DEFAULT_SAMPLE_ROWS = 20_000
_SPLIT = 1_000_000  # resolution of the hash split


def _key_query(schema: Schema, source: EngineSource) -> str:
    """The rows' distinct keys ``q{j}`` with their multiplicity ``w`` and, per numeric column, the count
    ``bad{j}`` of its cells that are neither missing nor a number (checked from the key table, one scan)."""
    dialect = source.dialect
    cats = [c.name for c in schema.columns if c.kind == "categorical"]
    nums = Schema(columns=tuple(c for c in schema.columns if c.kind != "categorical"),
                  missing_values=schema.missing_values)
    layers = sql.layers_query(nums, source.table, source.kinds, dialect, keep=cats)
    keys, bad = [], []
    numeric = {c.name: j for j, c in enumerate(nums.columns)}
    for j, col in enumerate(schema.columns):
        if col.kind == "categorical":
            i = cats.index(col.name)
            kind = source.kinds.get(col.name, "text")
            ref = f"k{i}"
            keys.append(f"CASE WHEN {cell_missing(ref, kind, schema.missing_values, dialect)} THEN NULL ELSE "
                        f"{cell_text(ref, kind, dialect)} END AS q{j}")
            continue
        n = numeric[col.name]
        assert col.bounds is not None
        lo, hi = (sql.double_literal(b, dialect) for b in col.bounds)
        readable = f"(NOT m{n} AND x{n} IS NOT NULL AND NOT isnan(x{n}))"
        keys.append(f"CASE WHEN {readable} THEN CAST((LEAST(GREATEST(x{n}, {lo}), {hi}) - {lo}) / ({hi} - {lo}) "
                    f"AS FLOAT) END AS q{j}")
        keys.append(f"CASE WHEN NOT m{n} AND NOT {readable} THEN 1 ELSE 0 END AS bad{j}")
        bad.append(f"SUM(bad{j}) AS bad{j}")
    cols = ", ".join(f"q{j}" for j in range(len(schema)))
    return (f"SELECT {cols}, COUNT(*) AS w{''.join(', ' + b for b in bad)} FROM (SELECT {', '.join(keys)} "
            f"FROM ({layers}) AS l) AS k GROUP BY {cols}")


#: the key table of a source under a schema, made once per source (the release's DP and exact checks share it)
_KEYS: weakref.WeakKeyDictionary[Any, dict[Schema, tuple[str, dict[str, int]]]] = weakref.WeakKeyDictionary()


def key_table(source: EngineSource, schema: Schema) -> tuple[str, dict[str, int]]:
    """(the persisted key table of ``source`` under ``schema``, its totals: ``n`` rows and ``bad{j}``)."""
    memo = _KEYS.setdefault(source, {})
    if schema not in memo:
        name = source.persist(_key_query(schema, source), "keys")
        bad = [f"SUM(bad{j}) AS bad{j}" for j, c in enumerate(schema.columns) if c.kind != "categorical"]
        memo[schema] = (name, _one(source, f"SELECT SUM(w) AS n{''.join(', ' + b for b in bad)} FROM {name}"))
    return memo[schema]


def _same(columns: Sequence[int], dialect: sql.Dialect, a: str = "a", b: str = "b") -> str:
    """NULL-safe equality of the key columns (a missing cell equals a missing cell)."""
    op = "<=>" if dialect == "spark" else "IS NOT DISTINCT FROM"
    return " AND ".join(f"{a}.q{j} {op} {b}.q{j}" for j in columns) or "TRUE"


def _split_query(keys: str, d: int, share: float, seed: int, dialect: sql.Dialect) -> str:
    """Per distinct key: ``ref`` and ``base`` copies (a seeded hash of key, copy number and seed)."""
    cols = ", ".join(f"q{j}" for j in range(d))
    cut = int(round(share * _SPLIT))
    if dialect == "spark":
        expand = f"SELECT {cols}, explode(sequence(CAST(1 AS BIGINT), CAST(w AS BIGINT))) AS i FROM {keys}"
        pick = f"pmod(xxhash64({cols}, i, CAST({int(seed)} AS BIGINT)), {_SPLIT}) < {cut}"
    else:
        expand = f"SELECT {cols}, unnest(range(CAST(w AS BIGINT))) AS i FROM {keys}"
        pick = f"hash({cols}, i, CAST({int(seed)} AS BIGINT)) % {_SPLIT} < {cut}"
    return (f"SELECT {cols}, SUM(CASE WHEN {pick} THEN 0 ELSE 1 END) AS ref, SUM(CASE WHEN {pick} THEN 1 ELSE 0 END) "
            f"AS base FROM ({expand}) AS e GROUP BY {cols}")


def _one(source: EngineSource, text: str) -> dict[str, int]:
    row = source.fetch(text, 1)
    return {k: int(v[0] or 0) for k, v in row.items()}


def _check(counts: dict[str, int], label: str, schema: Schema) -> int:
    if counts["n"] == 0:
        raise DataError(f"the {label} table has no rows")
    for j, col in enumerate(schema.columns):
        bad = counts.get(f"bad{j}", 0)
        if bad:
            what = "a date/time" if col.kind == "datetime" else "a number"
            raise DataError(f"column {col.name!r}: text that is not {what} in {bad:,} row{'s' if bad != 1 else ''}")
    return counts["n"]


def _check_parameters(near_threshold: float, alpha: float, holdout_share: float, sample_rows: int) -> None:
    for name, value, ok in (("near_threshold", near_threshold, 0.0 <= near_threshold < 1.0),
                            ("alpha", alpha, 0.0 < alpha < 1.0),
                            ("holdout_share", holdout_share, 0.0 < holdout_share < 1.0)):
        if not ok:
            raise ParameterError(f"{name} ({value!r}) must be in {'[0, 1)' if name == 'near_threshold' else '(0, 1)'}")
    check.int_at_least("sample_rows", sample_rows, 10)


def _key_tables(tables: dict[str, EngineSource], schema: Schema) -> dict[str, str]:
    """Every table checked (columns, rows, numbers: before anything is persisted) and aggregated to its keys."""
    for label, source in tables.items():
        absent = [c for c in schema.names if c not in source.columns]
        if absent:
            raise DataError(f"the {label} table has no column(s) {', '.join(map(repr, absent))} "
                            "that the schema declares")
    names = {}
    for label, source in tables.items():
        names[label], counts = key_table(source, schema)
        n = _check(counts, label, schema)
        if label == "real" and "holdout" not in tables and n < 10:
            raise DataError("the real table has fewer than 10 rows: too few to hold some out as the baseline")
    return names


def engine_copy_check(
    real: EngineSource, synthetic: EngineSource, schema: Schema, *, holdout: EngineSource | None = None,
    near_threshold: float = DEFAULT_NEAR_THRESHOLD, alpha: float = DEFAULT_ALPHA,
    holdout_share: float = DEFAULT_HOLDOUT_SHARE, seed: int = 0, near: bool = True,
    sample_rows: int = DEFAULT_SAMPLE_ROWS,
) -> CopyReport:
    """:func:`~dpsynth.pii.replay.copy_check` of tables in one engine (the sources share a connection or
    session: see :func:`dpsynth.marginals.engines.open_sources`); module docstring for what differs.

    Raises:
        ParameterError: a threshold, alpha, share or sample size out of range.
        DataError: a schema column missing from a table, an empty table, or text in a numeric column.
    """
    start = time.perf_counter()
    _check_parameters(near_threshold, alpha, holdout_share, sample_rows)
    tables = {"real": real, "synthetic": synthetic} | ({"holdout": holdout} if holdout is not None else {})
    keyed = _key_tables(tables, schema)
    dialect, d = real.dialect, len(schema)
    cols = ", ".join(f"q{j}" for j in range(d))
    if holdout is None:
        split = real.persist(_split_query(keyed["real"], d, holdout_share, seed, dialect), "split")
        baseline = (f"random {holdout_share:.0%} of the real table (each row by a seeded hash, seed {seed}), matched "
                    "against the other rows")
    else:
        split = real.persist(f"SELECT {cols}, w AS ref, 0 AS base FROM {keyed['real']}", "split")
        baseline = "holdout table (real rows the synthesizer did not see)"
    rates: list[CopyRate] = []

    def add(check: str, columns: Sequence[int], unique: bool = False) -> None:
        listed = ", ".join(f"q{j}" for j in columns)
        ref = (f"SELECT {listed}{', ' if listed else ''}SUM(ref) AS ref, SUM(base) AS base FROM {split}"
               + (f" GROUP BY {listed}" if listed else ""))
        hit = "b.ref = 1" if unique else "b.ref > 0"

        def matches(table: str) -> dict[str, int]:
            grouped = (f"SELECT {listed}{', ' if listed else ''}SUM(w) AS w FROM {table}"
                       + (f" GROUP BY {listed}" if listed else ""))
            return _one(real, f"SELECT SUM(a.w) AS rows, SUM(CASE WHEN {hit} THEN a.w ELSE 0 END) AS hits FROM "
                              f"({grouped}) AS a LEFT JOIN ({ref}) AS b ON {_same(columns, dialect)}")

        s = matches(keyed["synthetic"])
        if holdout is None:
            base = _one(real, f"SELECT SUM(b.base) AS rows, SUM(CASE WHEN {hit} THEN b.base ELSE 0 END) AS hits "
                              f"FROM ({ref}) AS b")
        else:
            base = matches(keyed["holdout"])
        p, flag = fisher_flag(s["hits"], s["rows"], base["hits"], base["rows"], alpha)
        rates.append(CopyRate(check, s["hits"], s["rows"], base["hits"], base["rows"], p, flag))

    add("exact", range(d))
    qis = [c.name for c in schema.columns if c.quasi_identifier]
    if qis:
        positions = [schema.names.index(n) for n in qis]
        add("quasi_identifiers", positions)
        add("quasi_identifiers_unique", positions, unique=True)
    reference_rows = _one(real, f"SELECT SUM(ref) AS n FROM {split}")["n"]
    quantiles: dict[str, dict[str, float]] = {}
    sampled: dict[str, int] = {}
    if near:
        samples = {label: source.sample_rows(schema.names, sample_rows, seed) for label, source in tables.items()}
        sampled = {label: int(len(frame)) for label, frame in samples.items()}
        inner = copy_check(samples["real"], samples["synthetic"], schema, holdout=samples.get("holdout"),
                           near_threshold=near_threshold, alpha=alpha, holdout_share=holdout_share, seed=seed)
        rates.append(inner.rate("near"))
        quantiles = inner.dcr_quantiles
    report = CopyReport(rates=rates, columns=schema.names, quasi_identifiers=qis, near_threshold=near_threshold,
                        alpha=alpha, baseline=baseline, reference_rows=reference_rows, dcr_quantiles=quantiles,
                        seconds=round(time.perf_counter() - start, 3))
    report.engine = {
        "engine": real.engine,
        "every_row": [r.check for r in rates if r.check != "near"],
        "sampled": ["near", "dcr_quantiles"] if near else [],
        "sample_rows": sampled,
        "sample_seed": seed,
        "split": "seeded hash per row (Bernoulli)" if holdout is None else "holdout table",
    }
    return report
