"""The DP replay counts of :mod:`dpsynth.pii.dp_replay` for a real table held by a counting engine
(DuckDB, Spark): (a, b, d_H, d_S) by joins in the engine, over every real row.

What is counted is :func:`~dpsynth.pii.dp_replay.replay_counts`'s, with the engine's own keys and
split (:mod:`dpsynth.pii.engine_replay`):

* a row's key is its categorical cells as text (a missing cell is a value of its own) and its
  numbers clamped to the public bounds and scaled to [0, 1] in float32 — the comparison of
  :func:`~dpsynth.pii.dp_replay.value_frame`;
* the split puts the j-th copy of a key (j = 0, 1, … among the rows equal to it) in the baseline H
  when a seeded hash of (key, j, seed) falls below ``share`` of its range, else in the reference R.
  This is the rule the sensitivity proof of :mod:`dpsynth.pii.dp_replay` needs: adding a row x with
  c equal rows present adds the copy (x, c) and moves no other row; only x's side is new. The hash
  is the engine's (DuckDB ``hash``, Spark ``xxhash64``), not numpy's, so the sides (and the counts)
  differ from the in-memory split; the distribution and the bound do not.

Then, over the synthetic sample Ŝ (a DP output, registered in the same engine):
``exact_rows``: a = #distinct keys of Ŝ held by some row of R, b = #distinct keys of H held by some
row of R, d_H = #distinct keys of H; ``quasi_identifiers``: the same on the quasi-identifier
columns, a match being a combination held by exactly one row of R. Each answer is one aggregate
row.

Privacy: exact (not DP) statistics of the real table; only their noisy release through
:mod:`dpsynth.mechanisms` (:mod:`dpsynth.release.dp_checks`) is DP.
"""

from __future__ import annotations

from collections.abc import Sequence

from dpsynth.exceptions import ParameterError
from dpsynth.marginals.backend import EngineSource
from dpsynth.pii.dp_replay import CHECKS, HOLDOUT_SHARE, ReplayCounts, quasi_identifier_names
from dpsynth.pii.engine_replay import _one, _same, _split_query, key_table
from dpsynth.schema.schema import Schema

__all__ = ["engine_replay_counts"]


def engine_replay_counts(real: EngineSource, sample: EngineSource, schema: Schema, checks: tuple[str, ...], *,
                         seed: int, share: float = HOLDOUT_SHARE) -> dict[str, ReplayCounts]:
    """(a, b, d_H, d_S) of every check in ``checks``: ``real`` and the synthetic ``sample`` share one engine
    (:func:`dpsynth.marginals.engines.open_sources`, or a source beside the other)."""
    unknown = [c for c in checks if c not in CHECKS]
    if unknown:
        raise ParameterError(f"replay checks ({unknown!r}) must be among {CHECKS}")
    if not 0.0 < share < 1.0:
        raise ParameterError(f"share ({share!r}) must be in (0, 1)")
    d, dialect = len(schema), real.dialect
    # the tables were validated against the schema before the reservation: no check here may raise on the data
    keyed = {label: key_table(source, schema)[0] for label, source in (("real", real), ("synthetic", sample))}
    split = real.persist(_split_query(keyed["real"], d, share, seed, dialect), "dp_split")
    out: dict[str, ReplayCounts] = {}
    if "exact_rows" in checks:
        out["exact_rows"] = _counts(real, "exact_rows", split, keyed["synthetic"], range(d), unique=False)
    if "quasi_identifiers" in checks:
        qis = quasi_identifier_names(schema)
        if not qis:
            raise ParameterError("the quasi_identifiers replay check needs columns marked quasi_identifier: true "
                                 "in the schema")
        out["quasi_identifiers"] = _counts(real, "quasi_identifiers", split, keyed["synthetic"],
                                           [schema.names.index(n) for n in qis], unique=True)
    return out


def _counts(real: EngineSource, check: str, split: str, sample: str, columns: Sequence[int], *,
            unique: bool) -> ReplayCounts:
    """One check's counts: the split and the sample grouped by the check's key columns."""
    listed = ", ".join(f"q{j}" for j in columns)
    by = f" GROUP BY {listed}" if listed else ""
    lead = f"{listed}, " if listed else ""
    keys = f"SELECT {lead}SUM(ref) AS ref, SUM(base) AS base FROM {split}{by}"
    hit = "b.ref = 1" if unique else "b.ref > 0"
    baseline = _one(real, f"SELECT SUM(CASE WHEN b.base > 0 THEN 1 ELSE 0 END) AS d_h, "
                          f"SUM(CASE WHEN b.base > 0 AND {hit} THEN 1 ELSE 0 END) AS b FROM ({keys}) AS b")
    distinct = f"SELECT {lead}COUNT(*) AS w FROM {sample}{by}"
    matched = _one(real, f"SELECT COUNT(*) AS d_s, SUM(CASE WHEN {hit} THEN 1 ELSE 0 END) AS a FROM ({distinct}) AS a "
                         f"LEFT JOIN ({keys}) AS b ON {_same(columns, real.dialect)}")
    return ReplayCounts(check=check, a=matched["a"], b=baseline["b"], d_h=baseline["d_h"], d_s=matched["d_s"])
