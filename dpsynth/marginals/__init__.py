"""Counting backends for marginals: numpy in memory, DuckDB over files or a relation (aggregates only
leave the engine; :mod:`dpsynth.marginals.backend` is the interface, :mod:`dpsynth.marginals.sql`
the SQL the engines share)."""

from dpsynth.marginals.backend import Clique, CodesCounter, MarginalCounter, TableSource
from dpsynth.marginals.duckdb_backend import DuckDBCounter, DuckDBSource
from dpsynth.marginals.numpy_backend import marginal_counts, paired_counts

__all__ = ["Clique", "CodesCounter", "DuckDBCounter", "DuckDBSource", "MarginalCounter", "TableSource",
           "marginal_counts", "paired_counts"]
