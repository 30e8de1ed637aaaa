"""The public inputs of a schema inference: the hints (a partial schema the user declares), read
into one task per column of the header, every problem at once as a SchemaError."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from dpsynth.exceptions import ParameterError, SchemaError
from dpsynth.schema.declaration import parse_column, parse_provenance
from dpsynth.schema.schema import DEFAULT_MISSING, SCHEMA_VERSION, Schema, read_spec

_CATEGORICAL_PARTIAL_KEYS = {"name", "kind", "other", "nullable", "description"}
_NUMERIC_PARTIAL_KEYS = {"name", "kind", "bins", "nullable", "description"}
_OPEN_KEYS = {"name", "nullable", "description"}

@dataclasses.dataclass(frozen=True)
class ColumnTask:
    """What to do for one column, decided from public information only."""

    name: str
    #: a complete column declaration (used as is), or None
    declared: Mapping[str, Any] | None = None
    #: the hinted kind of a partial column; None when the kind is to be decided with DP
    kind: str | None = None
    #: hinted keys kept for the inferred column (nullable, other, bins, description)
    keep: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def open(self) -> bool:
        """Whether the column's kind is left to the inference."""
        return self.declared is None and self.kind is None

    @property
    def may_be_categorical(self) -> bool:
        """Whether the column may turn out categorical (its levels are then learned)."""
        return self.declared is None and self.kind in (None, "categorical")

    @property
    def may_be_numeric(self) -> bool:
        """Whether the column may turn out numeric (its bounds are then learned)."""
        return self.declared is None and self.kind in (None, "integer", "continuous")


@dataclasses.dataclass(frozen=True)
class Hints:
    """The tasks of every column of the header, and what the hints declare for the whole file."""

    tasks: tuple[ColumnTask, ...]
    missing_values: tuple[str, ...]
    name: str
    opt_in: str | None


def _load_hints(hints: str | Path | Mapping[str, Any] | Schema | None) -> tuple[Mapping[str, Any], str]:
    if hints is None:
        return {}, ""
    if isinstance(hints, Schema):
        return hints.to_dict(), "hints"
    if isinstance(hints, Mapping):
        return hints, "hints"
    if isinstance(hints, (str, Path)):
        return read_spec(hints, what="hints file"), f"hints file {str(hints)!r}"
    raise ParameterError(f"hints ({hints!r}) must be a path to a partial schema, a mapping or a Schema")


def parse_hints(header: Sequence[str], hints: str | Path | Mapping[str, Any] | Schema | None, *, bins: Any) -> Hints:
    """Tasks for every column of ``header`` from the hints; all problems at once, as a SchemaError."""
    spec, where = _load_hints(hints)
    problems: list[str] = []
    unknown = set(spec) - {"version", "name", "missing_values", "columns", "description", "provenance"}
    if unknown:
        problems.append(f"unknown top-level key(s) {sorted(unknown)}")
    if spec.get("version", SCHEMA_VERSION) != SCHEMA_VERSION:
        problems.append(f"version ({spec.get('version')!r}) must be {SCHEMA_VERSION}")
    missing = spec.get("missing_values", list(DEFAULT_MISSING))
    if not isinstance(missing, list) or not all(isinstance(m, str) for m in missing):
        problems.append("missing_values must be a list of strings")
        missing = list(DEFAULT_MISSING)
    opt_in = None
    provenance = spec.get("provenance")
    if provenance is not None:
        parsed, errs = parse_provenance(provenance)
        problems.extend(errs)
        opt_in = (parsed or {}).get("opt_in")
    raw_columns = spec.get("columns", [])
    if not isinstance(raw_columns, list):
        problems.append("columns must be a list")
        raw_columns = []
    by_name: dict[str, ColumnTask] = {}
    known = set(header)
    for i, raw in enumerate(raw_columns):
        name = raw.get("name") if isinstance(raw, Mapping) else None
        if not isinstance(name, str) or not name:
            problems.append(f"columns[{i}] must be a mapping with a name")
            continue
        if name not in known:
            problems.append(f"column {name!r} is not in the data (its columns: {', '.join(header)})")
            continue
        if name in by_name:
            problems.append(f"column {name!r} is hinted twice")
            continue
        task, errs = _hint_task(raw, i, bins)
        problems.extend(errs)
        if task is not None:
            by_name[name] = task
    if problems:
        prefix = f"{where}: " if where else ""
        raise SchemaError(prefix + "; ".join(problems))
    tasks = tuple(by_name.get(name, ColumnTask(name=name)) for name in header)
    return Hints(tasks, tuple(missing), str(spec.get("name", "") or ""), opt_in)


def _partial_categorical(raw: Mapping[str, Any], where: str,
                         keep: dict[str, Any]) -> tuple[ColumnTask | None, list[str]]:
    """A categorical column hinted without levels (they are learned)."""
    extra = set(raw) - _CATEGORICAL_PARTIAL_KEYS
    if extra:
        return None, [f"{where}: unknown key(s) {sorted(extra)}"]
    other = raw.get("other")
    if other is not None and (not isinstance(other, str) or not other):
        return None, [f"{where}: other ({other!r}) must be a non-empty string"]
    if other is not None:
        keep["other"] = other
    return ColumnTask(name=raw["name"], kind="categorical", keep=keep), []


def _partial_numeric(raw: Mapping[str, Any], i: int, where: str,
                     keep: dict[str, Any]) -> tuple[ColumnTask | None, list[str]]:
    """A numeric column hinted without bounds or edges (the bounds are learned)."""
    extra = set(raw) - _NUMERIC_PARTIAL_KEYS
    if extra:
        return None, [f"{where}: unknown key(s) {sorted(extra)}"]
    if "bins" in raw:
        # Check the binning's syntax on stand-in bounds; the real ones are learned with DP.
        _, errs = parse_column({"name": raw["name"], "kind": raw["kind"], "bounds": [0, 10**12], "bins": raw["bins"]},
                               i)
        if errs:
            return None, errs
        keep["bins"] = raw["bins"]
    return ColumnTask(name=raw["name"], kind=raw["kind"], keep=keep), []


def _hint_task(raw: Mapping[str, Any], i: int, bins: Any) -> tuple[ColumnTask | None, list[str]]:
    name = raw["name"]
    where = f"column {name!r}"
    kind = raw.get("kind")
    keep = {k: raw[k] for k in ("nullable", "description") if k in raw}
    if "nullable" in raw and not isinstance(raw["nullable"], bool):
        return None, [f"{where}: nullable ({raw['nullable']!r}) must be true or false"]
    if kind is None:
        extra = set(raw) - _OPEN_KEYS
        if extra:
            return None, [f"{where}: give the kind to hint {sorted(extra)}"]
        return ColumnTask(name=name, keep=keep), []
    if kind == "categorical" and "levels" not in raw:
        return _partial_categorical(raw, where, keep)
    if kind in ("integer", "continuous") and "bounds" not in raw and "edges" not in raw:
        return _partial_numeric(raw, i, where, keep)
    if kind == "datetime" and "bounds" not in raw and "edges" not in raw:
        return None, [f"{where}: a datetime column needs declared bounds (schema infer does not estimate them)"]
    declared = dict(raw)
    if kind in ("integer", "continuous") and "bins" not in declared and "edges" not in declared:
        col, errs = parse_column(declared, i)
        if col is None:  # bounds without bins: the default binning
            declared["bins"] = bins
    _, errs = parse_column(declared, i)
    if errs:
        return None, errs
    return ColumnTask(name=name, declared=declared), []

