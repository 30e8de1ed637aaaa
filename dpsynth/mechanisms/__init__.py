"""The only code that draws privacy noise.

Every mechanism states its sensitivity and its privacy cost beside its draw, and spends that cost
from an :class:`~dpsynth.privacy.Odometer` before its result leaves. Noise comes from exact
samplers only (OpenDP by default); there is no floating-point noise sampler here, and
``tests/privacy/test_no_float_noise.py`` fails if one appears.
"""

from dpsynth.mechanisms.gaussian import GaussianCounts
from dpsynth.mechanisms.noise import NoiseSource, OpenDPNoise, SeededNoise, describe_noise, make_noise, noise_source
from dpsynth.mechanisms.partition import PartitionSelection
from dpsynth.mechanisms.selection import ExponentialSelection

__all__ = [
    "ExponentialSelection",
    "GaussianCounts",
    "NoiseSource",
    "OpenDPNoise",
    "PartitionSelection",
    "SeededNoise",
    "describe_noise",
    "make_noise",
    "noise_source",
]
