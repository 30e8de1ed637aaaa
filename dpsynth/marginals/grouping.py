"""The marginal counter both SQL engines share: GROUPING SETS over a table of distinct code tuples.

A backend's source builds that table once (``materialize(schema)``: the encoded codes ``c{j}`` and a
weight ``w``, the number of rows holding each tuple) and fetches results through its one guarded
``fetch(sql, max_rows)``, which refuses a result of more rows than the public domain allows. Each
count is exact (sensitivity 1 per cell under add/remove-one-row); noise is drawn outside the engine.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from dpsynth.marginals import sql
from dpsynth.schema.schema import Schema

__all__ = ["GroupingCounter"]


class GroupingCounter:
    """Marginal counts under one schema (:class:`~dpsynth.marginals.backend.MarginalCounter`) of a
    source with ``engine`` (the SQL dialect), ``materialize(schema)`` and ``fetch(sql, max_rows)``."""

    def __init__(self, source: Any, schema: Schema, *, max_sets: int = sql.MAX_SETS):
        self.source = source
        self.schema = schema
        self.max_sets = max_sets
        self.engine: sql.Dialect = source.engine
        self._table: str | None = None

    @property
    def table(self) -> str:
        """The table (or view) of distinct code tuples and their counts (made on first use)."""
        if self._table is None:
            self._table = self.source.materialize(self.schema)
        return self._table

    def counts(self, cliques: Sequence[Sequence[int]]) -> list[np.ndarray]:
        """The dense int64 histogram (C order over the clique's sizes) of every clique: a GROUPING SETS
        query per chunk of ``max_sets`` distinct column sets, each result at most their cells."""
        out: dict[int, np.ndarray] = {}
        for query in sql.marginal_queries(self.table, self.schema, cliques, self.engine, weight="w",
                                          max_sets=self.max_sets):
            fetched = self.source.fetch(query.sql, query.max_rows)
            out.update(sql.densify(query, self.schema, {k: v.astype(np.int64) for k, v in fetched.items()}))
        return [out[i] for i in range(len(cliques))]

    def fingerprint(self) -> str:
        """SHA-256 hex of order-independent sums of two hashes of every encoded row."""
        row = self.source.fetch(sql.fingerprint_query(self.table, self.schema, self.engine, weight="w"), 1)
        return sql.fingerprint_hex(self.schema, self.engine, [row[k][0] for k in ("h1", "h2", "n")])
