"""dpsynth: differentially private synthetic data, with the privacy it spent stated exactly.

The public surface (re-exports only). The synthesizers (``MST``, ``AIM``, ``DPCTGAN``, ``DPVAE``)
load on first use: MST and AIM import JAX and mbi, and the DP-SGD generators import PyTorch only
when they fit, so ``import dpsynth`` imports none of them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from dpsynth._version import __version__
from dpsynth.exceptions import (
    BudgetExceededError,
    DataError,
    DPSynthError,
    InsecureNoiseWarning,
    NotFittedError,
    ParameterError,
    SchemaError,
)
from dpsynth.privacy import ZCDP, ApproxDP, PrivacyUnit
from dpsynth.privacy.ledger import UNTRACKED, Ledger, UntrackedPrivacyWarning
from dpsynth.schema import Schema, load_schema

if TYPE_CHECKING:
    from dpsynth.synth import AIM, DPCTGAN, DPVAE, MST


#: the synthesizers the package root exports, loaded on first use from ``dpsynth.synth`` (which
#: registers every built-in one, as ``get_synthesizer`` expects)
_LAZY = frozenset({"AIM", "DPCTGAN", "DPVAE", "MST"})

__all__ = [
    "AIM",
    "DPCTGAN",
    "DPVAE",
    "MST",
    "ApproxDP",
    "PrivacyUnit",
    "BudgetExceededError",
    "DPSynthError",
    "DataError",
    "InsecureNoiseWarning",
    "Ledger",
    "NotFittedError",
    "ParameterError",
    "Schema",
    "SchemaError",
    "UNTRACKED",
    "UntrackedPrivacyWarning",
    "ZCDP",
    "__version__",
    "load_schema",
]


def __getattr__(name: str) -> Any:
    """Load a synthesizer class the first time it is asked for (PEP 562)."""
    if name not in _LAZY:
        raise AttributeError(f"module 'dpsynth' has no attribute {name!r}")
    value = getattr(importlib.import_module("dpsynth.synth"), name)
    globals()[name] = value  # later look-ups do not come back here
    return value


def __dir__() -> list[str]:
    """The module's names, the synthesizers not yet loaded included."""
    return sorted(set(globals()) | set(__all__))
