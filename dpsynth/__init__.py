"""dpsynth: differentially private synthetic data, with the privacy it spent stated exactly.

The public surface (re-exports only).
"""

__version__ = "0.1.0"

from dpsynth.exceptions import (  # noqa: E402
    BudgetExceededError,
    DataError,
    DPSynthError,
    InsecureNoiseWarning,
    NotFittedError,
    ParameterError,
    SchemaError,
)
from dpsynth.privacy import ZCDP, ApproxDP  # noqa: E402
from dpsynth.privacy.ledger import UNTRACKED, Ledger, UntrackedPrivacyWarning  # noqa: E402
from dpsynth.schema import Schema, load_schema  # noqa: E402

__all__ = [
    "MST",
    "ApproxDP",
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


def __getattr__(name: str):  # type: ignore[no-untyped-def]
    # Synthesizers import JAX and mbi; load them only when asked for.
    if name == "MST":
        from dpsynth.synth import MST

        return MST
    raise AttributeError(f"module 'dpsynth' has no attribute {name!r}")
