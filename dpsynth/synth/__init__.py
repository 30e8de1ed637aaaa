"""Synthesizers: the estimator contract, the registry, and the built-in generators."""

from dpsynth.synth.base import Synthesizer, get_synthesizer, register, registered
from dpsynth.synth.mst import MST

__all__ = ["MST", "Synthesizer", "get_synthesizer", "register", "registered"]
