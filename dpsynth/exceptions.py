"""Typed errors.

User mistakes (bad parameters, a malformed schema, data that does not fit its schema) are
:class:`DPSynthError` subclasses: the CLI turns them into one line on stderr and exit code 2.
Anything else escaping the library is a bug in dpsynth and keeps its traceback.

This module is the one error tree: every exception and warning class dpsynth defines lives here or
derives from one of these (``DPSynthError`` for errors, ``DPSynthWarning`` for warnings).
"""

from __future__ import annotations


class DPSynthError(Exception):
    """Base class of every error dpsynth raises on purpose."""

    exit_code: int = 2


class ParameterError(DPSynthError, ValueError):
    """An argument is outside what it must be (``"<name> (<value>) must be <constraint>"``)."""


class SchemaError(DPSynthError, ValueError):
    """The public schema file is malformed or inconsistent."""


class DataError(DPSynthError, ValueError):
    """The private table does not conform to its public schema, or cannot be read.

    Messages name the column and how many rows are affected, never a value from the data.
    """


class PluginError(DPSynthError):
    """A generator dpsynth did not write (``docs/plugins.md``) failed after its claim was charged: its
    ``fit()`` raised, or its ``sample()`` returned something that is not a table of its schema.

    Messages are one line naming the problem, never a value from the data or from its output.
    """


class NotFittedError(DPSynthError, AttributeError):
    """A synthesizer was asked to sample before ``fit``."""


class BudgetExceededError(DPSynthError):
    """A privacy budget would be overdrawn; raised before any private computation."""

    exit_code = 3

    def __init__(self, message: str, *, requested: object = None, remaining: object = None):
        super().__init__(message)
        self.requested = requested
        self.remaining = remaining


class PrivacyAccountingError(RuntimeError):
    """A mechanism tried to spend more than was reserved for it.

    This is never a user mistake: it means dpsynth's plan and its execution disagree, and the
    computation is stopped before the noisy value leaves the mechanism.
    """


class InternalError(DPSynthError):
    """A broken invariant inside dpsynth: a bug, never bad input."""


class DPSynthWarning(UserWarning):
    """Base class of every warning dpsynth issues on purpose."""


class InsecureNoiseWarning(DPSynthWarning):
    """Noise was drawn from a seeded, predictable source: for tests only, never for a release."""


class SchemaWithoutPrivacyWarning(DPSynthWarning):
    """A schema was read from the private data without privacy (a named opt-in), or a release is
    built on one: its levels and bounds may reveal individuals."""


class ReleaseBlocked(DPSynthError):
    """A release was refused by its policy."""

    exit_code = 1
