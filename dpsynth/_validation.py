"""Declarative argument checks with one message shape: ``"<name> (<value>) must be <constraint>"``."""

from __future__ import annotations

import math
import numbers

from dpsynth.exceptions import ParameterError


def _fail(name: str, value: object, constraint: str) -> ParameterError:
    return ParameterError(f"{name} ({value!r}) must be {constraint}")


def real(name: str, value: object) -> float:
    """Return ``value`` as a float if it is a real number (not a bool), else raise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise _fail(name, value, "a real number")
    return float(value)


def positive_finite(name: str, value: object) -> float:
    """A finite number > 0 (a privacy parameter such as epsilon or rho)."""
    x = real(name, value)
    if not math.isfinite(x) or x <= 0:
        raise _fail(name, value, "a finite number > 0")
    return x


def nonnegative_finite(name: str, value: object) -> float:
    x = real(name, value)
    if not math.isfinite(x) or x < 0:
        raise _fail(name, value, "a finite number >= 0")
    return x


def open_unit(name: str, value: object) -> float:
    """A number strictly between 0 and 1 (a delta for a release; a probability or a confidence level
    inside a computation; an audit's own confidence is :data:`dpsynth.audit.defaults.CONFIDENCE`)."""
    x = real(name, value)
    if not (0.0 < x < 1.0):
        raise _fail(name, value, "in the open interval (0, 1)")
    return x


def half_open_unit(name: str, value: object) -> float:
    """A number in [0, 1) (a delta as a budget value, where 0 means pure DP)."""
    x = real(name, value)
    if not (0.0 <= x < 1.0):
        raise _fail(name, value, "in [0, 1)")
    return x


def positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise _fail(name, value, "an integer > 0")
    return int(value)


def int_at_least(name: str, value: object, least: int) -> int:
    """An integer >= ``least`` (a sample size, say)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < least:
        raise _fail(name, value, f"an integer >= {least}")
    return int(value)


def nonnegative_int(name: str, value: object) -> int:
    """An integer >= 0 (a count: errors, trials, canaries, guesses)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise _fail(name, value, "an integer >= 0")
    return int(value)


def nonnegative_or_infinite(name: str, value: object) -> float:
    """A number >= 0, infinity allowed (an RDP value at an order where the bound is vacuous)."""
    x = real(name, value)
    if math.isnan(x) or x < 0:
        raise _fail(name, value, "a number >= 0 (or infinity)")
    return x
