"""What the DP-SGD generators share, by the import path it always had: this module only re-exports
the names of the modules that hold them, one idea each.

* :mod:`.transform`: the public-schema transformer (rows ↔ model vectors);
* :mod:`.randomness`: where noise and sampling come from, the model randomness of a step;
* :mod:`.clipping`: per-sample clipping and the backward pass of a DP step;
* :mod:`.loop`: Opacus's parts for a planned run, the step budget, the Poisson batches;
* :mod:`.params`: the shared keyword-only parameters, their defaults and checks;
* :mod:`.estimator`: the base estimator (plan, reservation, training road, accounting);
* :mod:`.runtime`: the PyTorch import check and the device.

New code imports from those modules; ``from dpsynth.synth.dpsgd.common import X`` keeps working.
"""

from __future__ import annotations

from dpsynth.synth.dpsgd.clipping import CLIPPING, FusedLinearClipping, dp_backward
from dpsynth.synth.dpsgd.estimator import DPSGDPlan, DPSGDSynthesizer, TrainingObserver
from dpsynth.synth.dpsgd.loop import StepBudget, poisson_batches, private_parts
from dpsynth.synth.dpsgd.params import DEFAULT_COUNT_SPLIT, DEFAULT_SAMPLE_RATE, DPSGDParameters
from dpsynth.synth.dpsgd.randomness import (
    RANDOM_BLOCK_ROWS,
    InsecureRNGWarning,
    Randomness,
    blocked,
    latent_noise,
    make_randomness,
    seeded_generator,
    seeded_torch,
    step_seeds,
)
from dpsynth.synth.dpsgd.runtime import require_torch, resolve_device
from dpsynth.synth.dpsgd.transform import NUMERIC_ENCODINGS, SUPPORTED_KINDS, Span, TableTransformer

__all__ = [
    "CLIPPING", "DEFAULT_COUNT_SPLIT", "DEFAULT_SAMPLE_RATE", "NUMERIC_ENCODINGS", "RANDOM_BLOCK_ROWS",
    "SUPPORTED_KINDS", "DPSGDParameters", "DPSGDPlan", "DPSGDSynthesizer", "FusedLinearClipping",
    "InsecureRNGWarning", "Randomness", "Span", "StepBudget", "TableTransformer", "TrainingObserver", "blocked",
    "dp_backward", "latent_noise", "make_randomness", "poisson_batches", "private_parts", "require_torch",
    "resolve_device", "seeded_generator", "seeded_torch", "step_seeds",
]
