"""Synthesizers: the estimator contract, the registry, and the built-in generators."""

from dpsynth.synth.aim import AIM
from dpsynth.synth.base import Synthesizer, get_synthesizer, register, registered
from dpsynth.synth.dpsgd import DPCTGAN, DPVAE
from dpsynth.synth.mst import MST

__all__ = ["AIM", "DPCTGAN", "DPVAE", "MST", "Synthesizer", "get_synthesizer", "register", "registered"]
