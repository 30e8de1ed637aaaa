"""Counting backends for marginals (numpy in memory for now)."""

from dpsynth.marginals.numpy_backend import marginal_counts, paired_counts

__all__ = ["marginal_counts", "paired_counts"]
