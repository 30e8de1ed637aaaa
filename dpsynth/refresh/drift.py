"""Drift between two releases from DP artifacts only: see :mod:`dpsynth.quality.drift` (where it lives, so
that the release's gate, below the refresh loop, can use it too)."""

from dpsynth.quality.drift import ALPHA, measurement_drift, noise_level, sampling_floor, summarise, table_drift

__all__ = ["ALPHA", "measurement_drift", "noise_level", "sampling_floor", "summarise", "table_drift"]
