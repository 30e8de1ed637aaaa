"""Fidelity and utility of synthetic data against the real table: internal evidence."""

from dpsynth.quality.fidelity import evaluate, fidelity, workload_errors

__all__ = ["evaluate", "fidelity", "workload_errors"]
