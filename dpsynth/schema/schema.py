"""The public schema: what may be known about a table without looking at it.

Two file formats are accepted (see ``docs/schema.md``):

* a dpsynth schema (YAML or JSON) with a ``columns`` list, each column ``categorical`` (declared
  ``levels``, optionally an ``other`` level for every value not listed), ``integer`` or
  ``continuous`` (declared ``bounds`` and ``bins`` or ``edges``), optionally ``nullable``; and
  optionally its ``provenance`` (how it was made: declared, inferred with DP, or read from the
  data without privacy under a named opt-in);
* a Private-PGM domain file, a JSON object ``{column: number_of_levels}`` whose columns hold
  integer codes ``0 .. k-1``.

Nothing here reads private data: every level, bound and bin edge is declared (by hand, or by
``dpsynth schema infer``, see :mod:`dpsynth.schema.infer`). One column is
:mod:`dpsynth.schema.column`; parsing a file's declarations is :mod:`dpsynth.schema.declaration`.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from dpsynth._limits import MAX_LEVELS
from dpsynth.exceptions import ParameterError, SchemaError
from dpsynth.privacy.unit import ROW, PrivacyUnit
from dpsynth.schema.column import RESOLUTIONS, Column, Kind, from_units, integer_bin, plain_number, to_units
from dpsynth.schema.declaration import (
    KNOWN_OPT_INS,
    MAX_INTEGER_LEVELS,
    PROVENANCE_METHODS,
    SCHEMA_WITHOUT_PRIVACY,
    check_total,
    parse_column,
    parse_provenance,
    too_many,
)

SCHEMA_VERSION = 1
DEFAULT_MISSING = ("",)

__all__ = [
    "DEFAULT_MISSING", "KNOWN_OPT_INS", "MAX_INTEGER_LEVELS", "PROVENANCE_METHODS", "RESOLUTIONS",
    "SCHEMA_VERSION", "SCHEMA_WITHOUT_PRIVACY", "Column", "Kind", "Schema", "from_units", "integer_bin",
    "load_schema", "plain_number", "read_spec", "to_units",
]


@dataclass(frozen=True)
class Schema:
    """An ordered set of public column descriptions.

    Attributes:
        columns: the columns, in order.
        missing_values: strings read as a missing value (in every column).
        source: ``"dpsynth"`` or ``"private-pgm-domain"``: which file format it came from.
        provenance: how the schema was made (``method``: ``declared``, ``dp`` or ``public``, and
            what the method records: budget, ledger entry, opt-in …), or ``None`` if unrecorded.
    """

    columns: tuple[Column, ...]
    missing_values: tuple[str, ...] = DEFAULT_MISSING
    source: str = "dpsynth"
    name: str = ""
    provenance: Mapping[str, Any] | None = field(default=None, compare=False)
    privacy_unit: PrivacyUnit = ROW
    _index: dict[str, int] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self.columns:
            raise SchemaError("schema has no columns")
        seen: dict[str, int] = {}
        for i, c in enumerate(self.columns):
            if c.name in seen:
                raise SchemaError(f"schema declares column {c.name!r} twice")
            seen[c.name] = i
        object.__setattr__(self, "_index", seen)
        if self.privacy_unit.column is not None and self.privacy_unit.column in seen:
            raise SchemaError(f"privacy_unit column {self.privacy_unit.column!r} is also a column of the schema: the "
                              "person key is never synthesised, so it must not be declared among the columns")

    def with_unit(self, unit: PrivacyUnit) -> Schema:
        """This schema with another privacy unit (e.g. the CLI's ``--user-column``)."""
        if unit.is_user and unit.column is None:
            raise SchemaError("a schema's user privacy unit must name its key column")
        return replace(self, privacy_unit=unit, _index={})

    @property
    def names(self) -> list[str]:
        """The column names, in order."""
        return [c.name for c in self.columns]

    @property
    def sizes(self) -> list[int]:
        """The number of codes of every column, in order."""
        return [c.size for c in self.columns]

    def __getitem__(self, name: str) -> Column:
        return self.columns[self._index[name]]

    def __len__(self) -> int:
        return len(self.columns)

    @property
    def opt_ins(self) -> list[str]:
        """The named opt-ins of privacy this schema was made under (e.g. read from the data
        without privacy); every release built on it must carry them. Empty for a declared schema
        or one inferred with DP."""
        if not self.provenance:
            return []
        opt_in = self.provenance.get("opt_in")
        return [opt_in] if opt_in else []

    def to_dict(self) -> dict[str, Any]:
        """The schema as a schema file declares it (loads back equal)."""
        out: dict[str, Any] = {
            "version": SCHEMA_VERSION,
            "name": self.name,
            "missing_values": list(self.missing_values),
            "columns": [c.to_dict() for c in self.columns],
        }
        if self.privacy_unit.is_user:
            out["privacy_unit"] = self.privacy_unit.to_dict()
        if self.provenance is not None:
            out["provenance"] = dict(self.provenance)
        return out

    @classmethod
    def from_domain(cls, domain: Mapping[str, Any], *, name: str = "") -> Schema:
        """A schema from a Private-PGM domain (``{column: number_of_levels}``)."""
        cols = []
        for col, k in domain.items():
            if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
                raise SchemaError(
                    f"domain file: column {col!r} has {k!r} levels; expected an integer >= 1"
                )
            if int(k) > MAX_LEVELS:  # before the levels are made
                raise SchemaError(f"domain file: column {col!r}: {too_many(int(k), 'levels', MAX_LEVELS)}")
        check_total(int(k) for k in domain.values())
        for col, k in domain.items():
            cols.append(Column(name=str(col), kind="categorical", levels=tuple(range(int(k)))))
        return cls(columns=tuple(cols), source="private-pgm-domain", name=name)

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any], *, name: str = "") -> Schema:
        """A schema from the parsed content of a dpsynth schema file (all problems at once)."""
        problems: list[str] = []
        unknown = set(spec) - {"version", "name", "missing_values", "columns", "description", "provenance",
                               "privacy_unit"}
        if unknown:
            from dpsynth.io import key_names

            shown = key_names(unknown, listed=True)
            problems.append(f"unknown top-level key(s) {shown}")
        version = spec.get("version", SCHEMA_VERSION)
        if version != SCHEMA_VERSION:
            problems.append(f"version ({version!r}) must be {SCHEMA_VERSION}")
        provenance, errs = parse_provenance(spec.get("provenance"))
        problems.extend(errs)
        missing = spec.get("missing_values", list(DEFAULT_MISSING))
        if not isinstance(missing, list) or not all(isinstance(m, str) for m in missing):
            problems.append("missing_values must be a list of strings")
            missing = list(DEFAULT_MISSING)
        raw_cols = spec.get("columns")
        if not isinstance(raw_cols, list) or not raw_cols:
            problems.append("columns must be a non-empty list")
            raw_cols = []
        cols: list[Column] = []
        for i, raw in enumerate(raw_cols):
            col, errs = parse_column(raw, i)
            problems.extend(errs)
            if col is not None:
                cols.append(col)
        unit = _parse_unit(spec.get("privacy_unit"), problems)
        if problems:
            raise SchemaError("; ".join(problems))
        check_total(c.size for c in cols)
        return cls(
            columns=tuple(cols),
            missing_values=tuple(missing),
            source="dpsynth",
            name=str(spec.get("name", name) or name),
            provenance=provenance,
            privacy_unit=unit,
        )


def _parse_unit(raw: Any, problems: list[str]) -> PrivacyUnit:
    """The schema file's ``privacy_unit`` (``{column: KEY, max_rows: K}``; absent: a row); problems appended."""
    if raw is None:
        return ROW
    if not isinstance(raw, Mapping) or set(raw) != {"column", "max_rows"}:
        problems.append("privacy_unit must be a mapping with exactly 'column' (the person key) and 'max_rows' (K)")
        return ROW
    try:
        return PrivacyUnit.users(raw["column"], max_rows=raw["max_rows"])
    except ParameterError as exc:
        problems.append(f"privacy_unit: {exc}")
        return ROW


def read_spec(path: str | Path, *, what: str = "schema file") -> Mapping[str, Any]:
    """The parsed content (a non-empty mapping) of a YAML or JSON schema file, or a SchemaError."""
    from dpsynth.io import read_config

    p = Path(path)
    spec, _ = read_config(p, what=what, error=SchemaError)
    if not isinstance(spec, Mapping) or not spec:
        raise SchemaError(f"{what} {str(p)!r} must hold a mapping (a dpsynth schema or a domain file)")
    return spec


def load_schema(path: str | Path) -> Schema:
    """Read a dpsynth schema (YAML or JSON; its shape is ``schema-file.schema.json``, beside this
    module) or a Private-PGM domain file (JSON).

    Raises:
        SchemaError: the file cannot be read or is invalid (every problem in one line).
    """
    p = Path(path)
    spec = read_spec(p)
    if "columns" not in spec and all(
        isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in spec.values()
    ):
        try:
            return Schema.from_domain(spec, name=p.stem)
        except SchemaError as exc:
            raise SchemaError(f"schema file {str(p)!r}: {exc}") from None
    try:
        schema = Schema.from_dict(spec, name=p.stem)
    except SchemaError as exc:
        raise SchemaError(f"schema file {str(p)!r}: {exc}") from None
    from dpsynth._file_schema import SCHEMA_FILE, schema_problems

    problems = schema_problems(spec, SCHEMA_FILE)  # schema-file.schema.json: what the declarations left unsaid
    if problems:
        raise SchemaError(f"schema file {str(p)!r}: " + "; ".join(problems))
    return schema
