"""Fidelity (and, later, utility) of synthetic data against the real table: internal evidence."""

from dpsynth.quality.fidelity import fidelity, workload_errors

__all__ = ["fidelity", "workload_errors"]
