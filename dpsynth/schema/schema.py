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
``dpsynth schema infer``, see :mod:`dpsynth.schema.infer`).
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from dpsynth._limits import MAX_BINS, MAX_DP_QUANTILE_BINS, MAX_LEVELS, MAX_SCHEMA_VALUES
from dpsynth.exceptions import SchemaError

SCHEMA_VERSION = 1
DEFAULT_MISSING = ("",)
# A column of integers with no declared binning gets one level per integer up to this many.
MAX_INTEGER_LEVELS = 256

Kind = Literal["categorical", "integer", "continuous", "datetime"]
RESOLUTIONS = {"day": 86_400, "second": 1}
_EPOCH = "1970-01-01"
#: The named opt-in of a schema read from the data without privacy (``schema infer --public``).
SCHEMA_WITHOUT_PRIVACY = "schema_read_from_data_without_privacy"
KNOWN_OPT_INS = (SCHEMA_WITHOUT_PRIVACY,)
PROVENANCE_METHODS = ("declared", "dp", "public")


def to_units(value: Any, resolution: str) -> float:
    """A date/time (ISO text, ``date`` or ``datetime``) as a count of ``resolution`` since 1970."""
    import pandas as pd

    ts = pd.Timestamp(value)
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return (ts - pd.Timestamp(_EPOCH)).total_seconds() / RESOLUTIONS[resolution]


def from_units(units: Any, resolution: str) -> Any:
    """ISO text for counts of ``resolution`` since 1970 (vectorised over numpy arrays)."""
    import numpy as np
    import pandas as pd

    seconds = np.asarray(units, dtype=np.int64) * RESOLUTIONS[resolution]
    stamps = pd.to_datetime(seconds, unit="s")
    fmt = "%Y-%m-%d" if resolution == "day" else "%Y-%m-%dT%H:%M:%S"
    return np.asarray(stamps.strftime(fmt), dtype=object)


@dataclass(frozen=True)
class Column:
    """One column of the public schema.

    Attributes:
        name: column name in the table.
        kind: ``categorical``, ``integer`` or ``continuous``.
        levels: declared levels of a categorical column, in code order.
        bounds: declared ``(low, high)`` of a numeric column; values are clamped into it.
        edges: bin edges of a numeric column (``edges[0] == low``, ``edges[-1] == high``); bin
            ``b`` is ``[edges[b], edges[b+1])``, the last bin also holds ``high``. For an
            integer column without declared bins, one bin per integer.
        nullable: whether missing values are allowed; they get their own last code.
        resolution: for ``datetime`` columns, ``day`` or ``second``: values are whole counts of it
            since 1970-01-01 inside dpsynth (bounds and edges too) and ISO text outside.
        other: for categorical columns, an extra level (after ``levels``) that every value not in
            ``levels`` encodes to, instead of being an error; ``None`` when there is none.
    """

    name: str
    kind: Kind
    levels: tuple[Any, ...] = ()
    bounds: tuple[float, float] | None = None
    edges: tuple[float, ...] = ()
    nullable: bool = False
    resolution: str | None = None
    #: K when the inner bin edges are to be chosen from the data with DP (charged at fit time);
    #: until then ``edges`` holds K uniform provisional bins, used only to validate the data.
    dp_quantiles: int | None = None
    #: ``declared`` edges, or ``dp_quantiles`` once chosen with DP by a fit.
    edges_from: str = "declared"
    other: str | None = None
    #: PII hints for ``dpsynth scan`` (see ``docs/pii.md``): the entity types to look for in this
    #: column (``None``: all), values or matches never reported, and whether NER reads it
    #: (``None``: decided from the values' shape).
    pii_entities: tuple[str, ...] | None = None
    pii_allow_list: tuple[str, ...] = ()
    pii_ner: bool | None = None
    #: Whether the column is a quasi-identifier (age, ZIP code, …): ``dpsynth replay`` checks
    #: exact copies of real rows on these columns too.
    quasi_identifier: bool = False

    @property
    def integral(self) -> bool:
        """Whether the values are whole numbers (integer columns, and dates/times in their units)."""
        return self.kind in ("integer", "datetime")

    @property
    def n_values(self) -> int:
        """Number of non-missing codes."""
        if self.kind == "categorical":
            return len(self.levels) + (1 if self.other is not None else 0)
        return len(self.edges) - 1

    @property
    def other_code(self) -> int | None:
        """The code of the ``other`` level of a categorical column (after the levels), if any."""
        return len(self.levels) if self.kind == "categorical" and self.other is not None else None

    @property
    def size(self) -> int:
        """Number of codes, including the missing code of a nullable column."""
        return self.n_values + (1 if self.nullable else 0)

    @property
    def missing_code(self) -> int | None:
        return self.n_values if self.nullable else None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "kind": self.kind}
        if self.kind == "categorical":
            out["levels"] = list(self.levels)
            if self.other is not None:
                out["other"] = self.other
        elif self.kind == "datetime":
            assert self.bounds is not None and self.resolution is not None
            out["resolution"] = self.resolution
            out["bounds"] = list(from_units(list(self.bounds), self.resolution))
            if self.edges[-1] != self.bounds[1] + 1:
                out["edges"] = list(from_units(list(self.edges), self.resolution))
        elif self.dp_quantiles and self.edges_from == "declared":
            assert self.bounds is not None
            out["bounds"] = [_plain(self.bounds[0]), _plain(self.bounds[1])]
            out["bins"] = {"dp_quantiles": self.dp_quantiles}
        else:
            assert self.bounds is not None
            out["bounds"] = [_plain(self.bounds[0]), _plain(self.bounds[1])]
            # One level per integer ends at high + 1, which a schema file may not declare: the
            # bounds alone imply it, so the edges are left out and the dict loads back as it was.
            if not (self.kind == "integer" and self.edges[-1] == self.bounds[1] + 1):
                out["edges"] = [_plain(e) for e in self.edges]
        if self.nullable:
            out["nullable"] = True
        pii: dict[str, Any] = {}
        if self.pii_entities is not None:
            pii["entities"] = list(self.pii_entities)
        if self.pii_allow_list:
            pii["allow_list"] = list(self.pii_allow_list)
        if self.pii_ner is not None:
            pii["ner"] = self.pii_ner
        if pii:
            out["pii"] = pii
        if self.quasi_identifier:
            out["quasi_identifier"] = True
        return out


def _plain(x: float) -> float | int:
    return int(x) if float(x).is_integer() else float(x)


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

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def sizes(self) -> list[int]:
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
        out: dict[str, Any] = {
            "version": SCHEMA_VERSION,
            "name": self.name,
            "missing_values": list(self.missing_values),
            "columns": [c.to_dict() for c in self.columns],
        }
        if self.provenance is not None:
            out["provenance"] = dict(self.provenance)
        return out

    @classmethod
    def from_domain(cls, domain: Mapping[str, int], *, name: str = "") -> Schema:
        """A schema from a Private-PGM domain (``{column: number_of_levels}``)."""
        cols = []
        for col, k in domain.items():
            if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
                raise SchemaError(
                    f"domain file: column {col!r} has {k!r} levels; expected an integer >= 1"
                )
            if k > MAX_LEVELS:  # before the levels are made
                raise SchemaError(f"domain file: column {col!r}: {_too_many(int(k), 'levels', MAX_LEVELS)}")
        _check_total(int(k) for k in domain.values())
        for col, k in domain.items():
            cols.append(Column(name=str(col), kind="categorical", levels=tuple(range(int(k)))))
        return cls(columns=tuple(cols), source="private-pgm-domain", name=name)

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any], *, name: str = "") -> Schema:
        """A schema from the parsed content of a dpsynth schema file (all problems at once)."""
        problems: list[str] = []
        unknown = set(spec) - {"version", "name", "missing_values", "columns", "description", "provenance"}
        if unknown:
            from dpsynth.io import key_names

            shown = key_names(unknown, listed=True)
            problems.append(f"unknown top-level key(s) {shown}")
        version = spec.get("version", SCHEMA_VERSION)
        if version != SCHEMA_VERSION:
            problems.append(f"version ({version!r}) must be {SCHEMA_VERSION}")
        provenance, errs = _parse_provenance(spec.get("provenance"))
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
            col, errs = _parse_column(raw, i)
            problems.extend(errs)
            if col is not None:
                cols.append(col)
        if problems:
            raise SchemaError("; ".join(problems))
        _check_total(c.size for c in cols)
        return cls(
            columns=tuple(cols),
            missing_values=tuple(missing),
            source="dpsynth",
            name=str(spec.get("name", name) or name),
            provenance=provenance,
        )


def _too_many(n: int, what: str, limit: int) -> str:
    return f"{n:,} {what}, more than the limit of {limit:,} (docs/limits.md)"


def _check_total(sizes: Iterable[int]) -> None:
    """Refuse a schema whose columns have more codes together than ``MAX_SCHEMA_VALUES``."""
    total = sum(sizes)
    if total > MAX_SCHEMA_VALUES:
        what = "values (levels and bins) together"
        raise SchemaError(f"the columns have {_too_many(total, what, MAX_SCHEMA_VALUES)}")


def _parse_provenance(raw: object) -> tuple[dict[str, Any] | None, list[str]]:
    """The ``provenance`` mapping: ``method`` (declared, dp or public) and what it recorded.

    A schema read without privacy must carry its opt-in by name, so that it cannot pass silently.
    """
    if raw is None:
        return None, []
    if not isinstance(raw, Mapping):
        return None, ["provenance must be a mapping with a method"]
    method = raw.get("method")
    if method not in PROVENANCE_METHODS:
        return None, [f"provenance method ({method!r}) must be one of {', '.join(PROVENANCE_METHODS)}"]
    opt_in = raw.get("opt_in")
    if opt_in is not None and opt_in not in KNOWN_OPT_INS:
        return None, [f"provenance opt_in ({opt_in!r}) must be one of {', '.join(KNOWN_OPT_INS)}"]
    if method == "public" and opt_in != SCHEMA_WITHOUT_PRIVACY:
        return None, [f"provenance method 'public' needs opt_in: {SCHEMA_WITHOUT_PRIVACY} (the schema was read "
                      "from the data without privacy)"]
    return dict(raw), []


_COLUMN_KEYS = {
    "name", "kind", "levels", "other", "bounds", "bins", "edges", "nullable", "description", "resolution",
    "pii", "quasi_identifier",
}
_PII_KEYS = {"entities", "allow_list", "ner"}
_ENTITY_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")


def _number(x: object) -> bool:
    return not isinstance(x, bool) and isinstance(x, numbers.Real) and math.isfinite(float(x))


def _parse_column(raw: object, i: int) -> tuple[Column | None, list[str]]:
    col, errs = _parse_column_kind(raw, i)
    if not isinstance(raw, Mapping):
        return col, errs
    name = raw.get("name")
    where = f"column {name!r}" if isinstance(name, str) and name else f"columns[{i}]"
    hints, hint_errs = _parse_hints(raw, where)
    errs = errs + hint_errs
    if col is None or errs:
        return None, errs
    return replace(col, **hints), []


def _parse_hints(raw: Mapping[str, Any], where: str) -> tuple[dict[str, Any], list[str]]:
    """The optional ``pii`` mapping and ``quasi_identifier`` flag of a column."""
    errs: list[str] = []
    out: dict[str, Any] = {}
    qi = raw.get("quasi_identifier", False)
    if not isinstance(qi, bool):
        errs.append(f"{where}: quasi_identifier ({qi!r}) must be true or false")
    else:
        out["quasi_identifier"] = qi
    pii = raw.get("pii")
    if pii is None:
        return out, errs
    if not isinstance(pii, Mapping):
        return out, errs + [f"{where}: pii must be a mapping with entities, allow_list or ner"]
    unknown = set(pii) - _PII_KEYS
    if unknown:
        errs.append(f"{where}: unknown pii key(s) {sorted(unknown)}")
    entities = pii.get("entities")
    if entities is not None:
        if not isinstance(entities, list) or not all(isinstance(e, str) and _ENTITY_NAME.match(e) for e in entities):
            errs.append(f"{where}: pii entities must be a list of entity names such as PERSON or EMAIL_ADDRESS")
        else:
            out["pii_entities"] = tuple(dict.fromkeys(entities))
    allow = pii.get("allow_list", [])
    if not isinstance(allow, list) or not all(isinstance(a, (str, int)) and not isinstance(a, bool) for a in allow):
        errs.append(f"{where}: pii allow_list must be a list of strings")
    else:
        out["pii_allow_list"] = tuple(str(a) for a in allow)
    ner = pii.get("ner")
    if ner is not None and not isinstance(ner, bool):
        errs.append(f"{where}: pii ner ({ner!r}) must be true or false")
    elif ner is not None:
        out["pii_ner"] = ner
    return out, errs


def _parse_column_kind(raw: object, i: int) -> tuple[Column | None, list[str]]:
    if not isinstance(raw, Mapping):
        return None, [f"columns[{i}] must be a mapping with name and kind"]
    name = raw.get("name")
    where = f"column {name!r}" if isinstance(name, str) and name else f"columns[{i}]"
    errs: list[str] = []
    if not isinstance(name, str) or not name:
        errs.append(f"{where}: name must be a non-empty string")
    unknown = set(raw) - _COLUMN_KEYS
    if unknown:
        errs.append(f"{where}: unknown key(s) {sorted(unknown)}")
    kind = raw.get("kind")
    nullable = raw.get("nullable", False)
    if not isinstance(nullable, bool):
        errs.append(f"{where}: nullable ({nullable!r}) must be true or false")
        nullable = False
    if kind == "categorical":
        levels = raw.get("levels")
        other = raw.get("other")
        if other is not None and (not isinstance(other, str) or not other):
            errs.append(f"{where}: other ({other!r}) must be a non-empty string (the level of every value not listed)")
            return None, errs
        if not isinstance(levels, list) or (not levels and other is None):
            errs.append(f"{where}: a categorical column needs a non-empty list of levels (or an other level)")
            return None, errs
        if len(levels) + (other is not None) > MAX_LEVELS:
            errs.append(f"{where}: {_too_many(len(levels) + (other is not None), 'levels', MAX_LEVELS)}")
            return None, errs
        if not all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in levels):
            errs.append(f"{where}: levels must be strings or integers")
            return None, errs
        as_text = [str(v) for v in levels]
        if len(set(as_text)) != len(as_text):
            errs.append(f"{where}: levels must be distinct")
        if other is not None and other in as_text:
            errs.append(f"{where}: other ({other!r}) must differ from every level")
        for key in ("bounds", "bins", "edges"):
            if key in raw:
                errs.append(f"{where}: a categorical column takes levels, not {key}")
        if errs:
            return None, errs
        return Column(name=name, kind="categorical", levels=tuple(levels), nullable=nullable, other=other), []
    if kind not in ("integer", "continuous", "datetime"):
        errs.append(f"{where}: kind ({kind!r}) must be one of categorical, integer, continuous, datetime")
        return None, errs
    for key in ("levels", "other"):
        if key in raw:
            errs.append(f"{where}: a numeric column takes bounds and bins or edges, not {key}")
    edges_raw, bins, bounds_raw = raw.get("edges"), raw.get("bins"), raw.get("bounds")
    if isinstance(edges_raw, list) and len(edges_raw) - 1 > MAX_BINS:
        errs.append(f"{where}: {_too_many(len(edges_raw) - 1, 'bins', MAX_BINS)}")
        return None, errs
    dp_quantiles = None
    if isinstance(bins, Mapping):
        k = bins.get("dp_quantiles")
        if set(bins) != {"dp_quantiles"} or isinstance(k, bool) or not isinstance(k, int) or k < 2:
            errs.append(f"{where}: bins ({dict(bins)!r}) must be a number of bins or {{dp_quantiles: K}} with K >= 2")
            return None, errs
        if k > MAX_DP_QUANTILE_BINS:
            errs.append(f"{where}: {_too_many(k, 'DP quantile bins', MAX_DP_QUANTILE_BINS)}")
            return None, errs
        if kind == "datetime":
            errs.append(f"{where}: DP quantile bins are not available for datetime columns yet")
            return None, errs
        if edges_raw is not None:
            errs.append(f"{where}: give bins or edges, not both")
            return None, errs
        if bounds_raw is None:
            errs.append(f"{where}: DP quantile bins need public bounds [low, high]")
            return None, errs
        dp_quantiles = bins = k
    resolution = None
    if kind == "datetime":
        resolution = raw.get("resolution", "day")
        if resolution not in RESOLUTIONS:
            errs.append(f"{where}: resolution ({resolution!r}) must be day or second")
            return None, errs
        try:
            if bounds_raw is not None:
                bounds_raw = [to_units(v, resolution) for v in bounds_raw]
            if edges_raw is not None:
                edges_raw = [to_units(v, resolution) for v in edges_raw]
        except (TypeError, ValueError):
            errs.append(f"{where}: bounds and edges of a datetime column must be ISO dates or date-times")
            return None, errs
        if any(not float(v).is_integer() for v in (bounds_raw or []) + (edges_raw or [])):
            errs.append(f"{where}: bounds and edges must fall on whole {resolution}s")
            return None, errs
    elif "resolution" in raw:
        errs.append(f"{where}: only datetime columns take a resolution")
    if edges_raw is not None and bins is not None:
        errs.append(f"{where}: give bins or edges, not both")
        return None, errs
    bounds: tuple[float, float] | None = None
    if bounds_raw is not None:
        if (
            not isinstance(bounds_raw, list)
            or len(bounds_raw) != 2
            or not all(_number(b) for b in bounds_raw)
            or not float(bounds_raw[0]) < float(bounds_raw[1])
        ):
            errs.append(f"{where}: bounds ({bounds_raw!r}) must be [low, high] with low < high")
            return None, errs
        bounds = (float(bounds_raw[0]), float(bounds_raw[1]))
    edges: list[float]
    if edges_raw is not None:
        if (
            not isinstance(edges_raw, list)
            or len(edges_raw) < 2
            or not all(_number(e) for e in edges_raw)
            or any(float(a) >= float(b) for a, b in zip(edges_raw, edges_raw[1:], strict=False))
        ):
            errs.append(f"{where}: edges must be a strictly increasing list of at least 2 numbers")
            return None, errs
        edges = [float(e) for e in edges_raw]
        if bounds is None:
            bounds = (edges[0], edges[-1])
        elif (edges[0], edges[-1]) != bounds:
            errs.append(f"{where}: edges must start at the low bound and end at the high bound")
            return None, errs
    else:
        if bounds is None:
            errs.append(f"{where}: a numeric column needs bounds [low, high] (or edges)")
            return None, errs
        lo, hi = bounds
        if bins is None:
            whole = lo.is_integer() and hi.is_integer()
            if kind in ("integer", "datetime") and whole and hi - lo + 1 <= MAX_INTEGER_LEVELS:
                edges = [lo + j for j in range(int(hi - lo) + 1)] + [hi + 1]
            else:
                errs.append(
                    f"{where}: bins must be given (an integer column without bins gets one level "
                    f"per integer only up to {MAX_INTEGER_LEVELS} integers)"
                )
                return None, errs
        elif isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
            errs.append(f"{where}: bins ({bins!r}) must be an integer >= 1")
            return None, errs
        elif bins > MAX_BINS:  # before the edges are made
            errs.append(f"{where}: {_too_many(bins, 'bins', MAX_BINS)}")
            return None, errs
        else:
            edges = [float(e) for e in np.linspace(lo, hi, bins + 1)]
            if kind == "datetime":  # whole units, so that edges print as dates
                edges = sorted({float(round(e)) for e in edges})
            edges[0], edges[-1] = lo, hi
    if kind in ("integer", "datetime"):
        assert bounds is not None
        lo, hi = bounds
        if not (lo.is_integer() and hi.is_integer()):
            errs.append(f"{where}: bounds of an integer column must be integers")
            return None, errs
        for b in range(len(edges) - 1):
            low_int, high_int = _integer_bin(edges, b, hi)
            if low_int > high_int:
                errs.append(
                    f"{where}: bin [{edges[b]:g}, {edges[b + 1]:g}) contains no integer; "
                    "use fewer bins or integer edges"
                )
                return None, errs
    if errs:
        return None, errs
    return (
        Column(name=name, kind=kind, bounds=bounds, edges=tuple(edges), nullable=nullable, resolution=resolution,
               dp_quantiles=dp_quantiles),
        [],
    )


def _integer_bin(edges: Sequence[float], b: int, high: float) -> tuple[int, int]:
    """The integers ``[low, high]`` that bin ``b`` of an integer column holds."""
    low = math.ceil(edges[b])
    top = high if b == len(edges) - 2 else math.ceil(edges[b + 1]) - 1
    return int(low), int(min(top, high))


def read_spec(path: str | Path, *, what: str = "schema file") -> Mapping[str, Any]:
    """The parsed content (a non-empty mapping) of a YAML or JSON schema file, or a SchemaError."""
    from dpsynth.io import read_config

    p = Path(path)
    spec, _ = read_config(p, what=what, error=SchemaError)
    if not isinstance(spec, Mapping) or not spec:
        raise SchemaError(f"{what} {str(p)!r} must hold a mapping (a dpsynth schema or a domain file)")
    return spec


def load_schema(path: str | Path) -> Schema:
    """Read a dpsynth schema (YAML or JSON) or a Private-PGM domain file (JSON)."""
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
        return Schema.from_dict(spec, name=p.stem)
    except SchemaError as exc:
        raise SchemaError(f"schema file {str(p)!r}: {exc}") from None
