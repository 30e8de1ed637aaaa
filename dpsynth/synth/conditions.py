"""Conditional (targeted) sampling: ``sample(n, conditions=...)`` restricted to public schema values.

``conditions`` maps column names to

* one value (``{"income": ">50K"}``) or a list of values (``{"race": ["Black", "Other"]}``): every row
  takes one of them;
* a stated mix (``{"income": {">50K": 0.5, "<=50K": 0.5}}``, shares summing to 1): the n rows are
  split by the largest-remainder rule, each stratum sampled conditioned on its value, and the rows
  shuffled. At most one column states a mix; the other columns restrict every stratum.

Only the schema's (public) values are allowed, so the conditions cost nothing: sampling stays
post-processing of the fitted model. A categorical column's value is one of its declared levels
(compared as text, as the encoder does; its ``other`` level by name); a numeric or date column's
value selects the schema bin that holds it (inside the declared bounds), and the rows carry values
of that bin: the value itself for an integer column with one bin per integer; ``None`` (or one of the
schema's missing tokens) selects the missing code of a nullable column. Anything else is a
:class:`~dpsynth.exceptions.ParameterError` of one line naming the column and what was expected.

The parsed form (:class:`Conditions`) holds, per stratum, the *evidence*: for each conditioned column
(by index) a boolean mask over its schema codes. MST and AIM condition their graphical model on it
exactly; the other generators draw and keep the rows that meet it (:func:`draw_until`, a bounded loop).

See ``docs/conditional-sampling.md`` (with the caveat that a rare condition amplifies the model's noise).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from dpsynth.exceptions import ParameterError
from dpsynth.schema.schema import Column, Schema, to_units

#: per conditioned column (its index in the schema): which of its codes a row may take
Evidence = dict[int, np.ndarray]

#: rounds of rejection sampling before a condition is declared too rare to reach
MAX_ROUNDS = 20
#: the most rows one round draws: this many times the rows asked for, and at least MIN_ROUND_CAP
ROUND_FACTOR = 4
MIN_ROUND_CAP = 20_000
#: how far from 1 the shares of a mix may sum
SHARE_TOLERANCE = 1e-6
#: levels named in a message before the rest are counted
SHOWN = 8


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _expected_levels(col: Column) -> str:
    values = [*col.levels, *([col.other] if col.other is not None else [])]
    shown = ", ".join(str(v) for v in values[:SHOWN])
    more = f" (and {len(values) - SHOWN} more)" if len(values) > SHOWN else ""
    return shown + more


def _missing(value: Any, schema: Schema) -> bool:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return True
    return isinstance(value, str) and value in schema.missing_values


def _number(col: Column, value: Any) -> float:
    """A numeric or date column's condition value in the column's units."""
    where = f"conditions: column {col.name!r} ({col.kind})"
    if col.kind == "datetime":
        assert col.resolution is not None
        try:
            return float(math.floor(to_units(value, col.resolution)))
        except (TypeError, ValueError):
            raise ParameterError(f"{where}: value ({_shown(value)}) must be a date/time (ISO text)") from None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise ParameterError(f"{where}: value ({_shown(value)}) must be a number") from None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
        raise ParameterError(f"{where}: value ({_shown(value)}) must be a finite number")
    x = float(value)
    if col.kind == "integer" and not x.is_integer():
        raise ParameterError(f"{where}: value ({_shown(value)}) must be a whole number")
    return x


def value_code(col: Column, value: Any, schema: Schema) -> int:
    """The schema code a condition value selects in ``col`` (see the module's docstring).

    Raises:
        ParameterError: the value is not one of the column's public values.
    """
    if _missing(value, schema) and not (col.kind == "categorical" and str(value) in map(str, col.levels)):
        if col.missing_code is None:
            raise ParameterError(f"conditions: column {col.name!r} is not nullable: it has no missing value to ask for")
        return col.missing_code
    if col.kind == "categorical":
        lookup = {str(level): code for code, level in enumerate(col.levels)}
        if col.other is not None:
            lookup.setdefault(str(col.other), len(col.levels))
        code = lookup.get(str(value))
        if code is None:
            raise ParameterError(f"conditions: column {col.name!r}: value ({_shown(value)}) must be one of its "
                                 f"levels: {_expected_levels(col)}")
        return code
    x = _number(col, value)
    assert col.bounds is not None
    low, high = col.bounds
    if not low <= x <= high:
        raise ParameterError(f"conditions: column {col.name!r}: value ({_shown(value)}) must lie within its bounds "
                             f"[{_plain(low, col)}, {_plain(high, col)}]")
    return int(np.searchsorted(np.asarray(col.edges[1:-1], dtype=float), x, side="right"))


def _plain(x: float, col: Column) -> str:
    if col.kind == "datetime":
        from dpsynth.schema.schema import from_units

        assert col.resolution is not None
        return str(from_units([x], col.resolution)[0])
    return f"{x:g}"


def largest_remainder(n: int, shares: Sequence[float]) -> list[int]:
    """``n`` split in proportion to ``shares`` (non-negative, not all zero) by the largest-remainder
    (Hamilton) rule: each part the floor of its quota, the rows left over to the largest remainders
    (ties to the earlier share). The parts sum to ``n``."""
    weights = np.asarray(shares, dtype=np.float64)
    quotas = n * weights / weights.sum()
    parts = np.floor(quotas).astype(np.int64)
    left = int(n - parts.sum())
    order = sorted(range(len(parts)), key=lambda i: (-(quotas[i] - parts[i]), i))
    for i in order[:left]:
        parts[i] += 1
    return [int(p) for p in parts]


@dataclass(frozen=True)
class Conditions:
    """Conditions parsed against a schema: the restrictions every row meets, and at most one mix."""

    #: every conditioned column (index): which codes its rows may take (the mix column excluded)
    restrict: Evidence
    #: the mix column's index, or None
    mix_column: int | None
    #: the mix's strata: (code, share), in the order given
    mix: tuple[tuple[int, float], ...]
    #: the schema's sizes, to build the evidence of a stratum
    sizes: tuple[int, ...]
    #: the names of the conditioned columns (for messages)
    names: tuple[str, ...]

    def strata(self, n_rows: int) -> list[tuple[int, Evidence]]:
        """(rows, evidence) of every stratum with rows: one without a mix, else the mix's split."""
        if self.mix_column is None:
            return [(n_rows, dict(self.restrict))]
        j = self.mix_column
        out = []
        for (code, _), n in zip(self.mix, largest_remainder(n_rows, [s for _, s in self.mix]), strict=True):
            if n:
                mask = np.zeros(self.sizes[j], dtype=bool)
                mask[code] = True
                out.append((n, {**self.restrict, j: mask}))
        return out


def _mix(col: Column, raw: Mapping[Any, Any], schema: Schema) -> tuple[tuple[int, float], ...]:
    where = f"conditions: column {col.name!r}"
    if not raw:
        raise ParameterError(f"{where}: a mix must state at least one value and its share")
    out: list[tuple[int, float]] = []
    seen: dict[int, Any] = {}
    for value, share in raw.items():
        code = value_code(col, value, schema)
        if code in seen:
            raise ParameterError(f"{where}: the mix's values {_shown(seen[code])} and {_shown(value)} select the "
                                 "same level or bin")
        seen[code] = value
        if isinstance(share, bool) or not isinstance(share, numbers.Real) or not math.isfinite(float(share)) \
                or float(share) < 0:
            raise ParameterError(f"{where}: the share of {_shown(value)} ({_shown(share)}) must be a finite number "
                                 ">= 0")
        out.append((code, float(share)))
    total = sum(s for _, s in out)
    if abs(total - 1.0) > SHARE_TOLERANCE:
        raise ParameterError(f"{where}: the mix's shares must sum to 1 (they sum to {total:.6g})")
    return tuple(out)


def _restriction(col: Column, raw: Any, schema: Schema) -> np.ndarray:
    values = list(raw) if isinstance(raw, (list, tuple, set, frozenset, np.ndarray)) else [raw]
    if not values:
        raise ParameterError(f"conditions: column {col.name!r}: a list of values must not be empty")
    mask = np.zeros(col.size, dtype=bool)
    for value in values:
        mask[value_code(col, value, schema)] = True
    return mask


def parse_conditions(conditions: Any, schema: Schema) -> Conditions:
    """``conditions`` (see the module's docstring) checked against ``schema``.

    Raises:
        ParameterError: not a mapping, an unknown column, a value outside the schema, a bad mix
            (one line; the messages name schema values only).
    """
    if not isinstance(conditions, Mapping):
        raise ParameterError(f"conditions ({type(conditions).__name__}) must be a mapping of column names to values")
    if not conditions:
        raise ParameterError("conditions ({}) must name at least one column (or be None)")
    names = schema.names
    restrict: Evidence = {}
    mix_column: int | None = None
    mix: tuple[tuple[int, float], ...] = ()
    for name, raw in conditions.items():
        if name not in names:
            shown = ", ".join(names[:SHOWN]) + (f" (and {len(names) - SHOWN} more)" if len(names) > SHOWN else "")
            raise ParameterError(f"conditions: column ({_shown(name)}) must be a column of the schema: {shown}")
        j = names.index(name)
        col = schema.columns[j]
        if isinstance(raw, Mapping):
            if mix_column is not None:
                raise ParameterError(f"conditions: at most one column may state a mix ({names[mix_column]!r} and "
                                     f"{name!r} both do)")
            mix_column, mix = j, _mix(col, raw, schema)
        else:
            restrict[j] = _restriction(col, raw, schema)
    return Conditions(restrict=restrict, mix_column=mix_column, mix=mix, sizes=tuple(schema.sizes),
                      names=tuple(str(n) for n in conditions))


def satisfied(codes: np.ndarray, evidence: Evidence) -> np.ndarray:
    """Which rows of ``codes`` (rows × columns) meet every condition of ``evidence``."""
    ok = np.ones(len(codes), dtype=bool)
    for j, mask in evidence.items():
        ok &= mask[codes[:, j]]
    return ok


def draw_until(n_rows: int, draw: Callable[[int], tuple[Any, np.ndarray]], evidence: Evidence,
               names: Sequence[str]) -> list[tuple[Any, np.ndarray]]:
    """Rejection sampling: ``draw(m)`` gives m rows and their schema codes; the rows meeting
    ``evidence`` are kept until there are ``n_rows``. Returns (rows, indices kept) per round, in order
    (the first ``n_rows`` kept rows are the sample: iid draws of the model given the condition when
    ``draw``'s rows are iid).

    At most :data:`MAX_ROUNDS` rounds of at most max(:data:`ROUND_FACTOR` × n_rows,
    :data:`MIN_ROUND_CAP`) rows each, sized by the acceptance seen so far.

    Raises:
        ParameterError: the condition is too rare to reach ``n_rows`` rows within those rounds (the
            message says how often the model met it: a property of the DP model, post-processing).
    """
    cap = max(ROUND_FACTOR * n_rows, MIN_ROUND_CAP)
    batch = min(cap, n_rows + n_rows // 10 + 100)
    parts: list[tuple[Any, np.ndarray]] = []
    kept = drawn = 0
    for _ in range(MAX_ROUNDS):
        rows, codes = draw(batch)
        idx = np.flatnonzero(satisfied(codes, evidence))
        parts.append((rows, idx))
        kept += len(idx)
        drawn += batch
        if kept >= n_rows:
            return parts
        rate = kept / drawn
        batch = cap if rate == 0 else min(cap, math.ceil((n_rows - kept) / rate * 1.2) + 100)
    raise ParameterError(
        f"conditions on {', '.join(names)}: the model met them in {kept:,} of {drawn:,} rows drawn in {MAX_ROUNDS} "
        f"rounds, too rare to reach {n_rows:,} rows by rejection sampling; ask for fewer rows or a broader condition"
    )


def codes_by_strata(parsed: Conditions, n_rows: int, rng: np.random.Generator,
                    given: Callable[[int, Evidence], np.ndarray]) -> np.ndarray:
    """The codes of ``n_rows`` rows meeting ``parsed``: ``given(n, evidence)`` per stratum, shuffled
    together when there is a mix."""
    parts = [given(n, evidence) for n, evidence in parsed.strata(n_rows)]
    codes = np.concatenate(parts, axis=0)
    if parsed.mix_column is not None:
        codes = codes[rng.permutation(len(codes))]
    return codes


def codes_by_rejection(n_rows: int, draw: Callable[[int], np.ndarray], evidence: Evidence,
                       names: Sequence[str]) -> np.ndarray:
    """``n_rows`` codes meeting ``evidence``, by :func:`draw_until` from ``draw(m)`` (m rows of codes)."""
    def both(m: int) -> tuple[np.ndarray, np.ndarray]:
        codes = draw(m)
        return codes, codes

    parts = draw_until(n_rows, both, evidence, names)
    return np.concatenate([codes[idx] for codes, idx in parts], axis=0)[:n_rows]


def frames_by_rejection(parsed: Conditions, n_rows: int, rng: np.random.Generator,
                        draw: Callable[[int, Evidence], tuple[Any, np.ndarray]]) -> Any:
    """A table of ``n_rows`` rows meeting ``parsed`` from a generator of tables: ``draw(m, evidence)``
    gives m rows (a DataFrame, free to steer toward ``evidence``) and their schema codes; each stratum
    by :func:`draw_until`; the strata shuffled together when there is a mix."""
    import pandas as pd

    frames = []
    for n, evidence in parsed.strata(n_rows):
        def given(m: int, ev: Evidence = evidence) -> tuple[Any, np.ndarray]:
            return draw(m, ev)

        parts = draw_until(n, given, evidence, parsed.names)
        frames.append(pd.concat([frame.iloc[idx] for frame, idx in parts]).iloc[:n])
    out = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    if parsed.mix_column is not None:
        out = out.iloc[rng.permutation(len(out))]
    return out.reset_index(drop=True)


class ChunkedConditions:
    """The conditions of each chunk of a table sampled in chunks (:mod:`dpsynth.synth.streaming`).

    A mix is split over the whole table by the largest-remainder rule, then over the chunks in turn
    (each chunk the largest-remainder split of what is left), so the whole table holds exactly the
    counts one ``sample`` of all the rows would; restrictions go to every chunk as given.
    """

    def __init__(self, conditions: Mapping[str, Any], schema: Schema, rows: int):
        self.parsed = parse_conditions(conditions, schema)  # refused here, before the first chunk
        self.conditions = dict(conditions)
        self.mix_name = None if self.parsed.mix_column is None else schema.names[self.parsed.mix_column]
        if self.mix_name is not None:
            self.values = list(conditions[self.mix_name])
            self.left = largest_remainder(rows, [s for _, s in self.parsed.mix])

    def next(self, n: int) -> dict[str, Any]:
        """The conditions of the next chunk, of ``n`` rows."""
        if self.mix_name is None:
            return self.conditions
        counts = largest_remainder(n, self.left)  # what is left is at least n rows
        self.left = [a - b for a, b in zip(self.left, counts, strict=True)]
        return {**self.conditions, self.mix_name: {v: c / n for v, c in zip(self.values, counts, strict=True)}}


__all__ = ["ChunkedConditions", "Conditions", "Evidence", "codes_by_rejection", "codes_by_strata", "draw_until",
           "frames_by_rejection", "largest_remainder", "parse_conditions", "satisfied", "value_code"]
