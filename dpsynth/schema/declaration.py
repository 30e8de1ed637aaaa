"""Parsing the declarations of a dpsynth schema file: its columns (kinds, levels, bounds, bins, PII
hints) and its provenance, every problem collected (never a value from the data: there is none)."""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

import numpy as np

from dpsynth._limits import MAX_BINS, MAX_DP_QUANTILE_BINS, MAX_LEVELS, MAX_SCHEMA_VALUES
from dpsynth.exceptions import SchemaError
from dpsynth.schema.column import RESOLUTIONS, Column, Kind, integer_bin, to_units

# A column of integers with no declared binning gets one level per integer up to this many.
MAX_INTEGER_LEVELS = 256
#: The named opt-in of a schema read from the data without privacy (``schema infer --public``).
SCHEMA_WITHOUT_PRIVACY = "schema_read_from_data_without_privacy"
KNOWN_OPT_INS = (SCHEMA_WITHOUT_PRIVACY,)
PROVENANCE_METHODS = ("declared", "dp", "public")


def too_many(n: int, what: str, limit: int) -> str:
    """The words of a limit exceeded (``docs/limits.md``)."""
    return f"{n:,} {what}, more than the limit of {limit:,} (docs/limits.md)"


def check_total(sizes: Iterable[int]) -> None:
    """Refuse a schema whose columns have more codes together than ``MAX_SCHEMA_VALUES``."""
    total = sum(sizes)
    if total > MAX_SCHEMA_VALUES:
        what = "values (levels and bins) together"
        raise SchemaError(f"the columns have {too_many(total, what, MAX_SCHEMA_VALUES)}")


def parse_provenance(raw: object) -> tuple[dict[str, Any] | None, list[str]]:
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


def parse_column(raw: object, i: int) -> tuple[Column | None, list[str]]:
    """A column from its declaration (the ``i``-th of the file), or None and every problem."""
    col, errs = _parse_column_kind(raw, i)
    if not isinstance(raw, Mapping):
        return col, errs
    name = raw.get("name")
    where = f"column {name!r}" if isinstance(name, str) and name else f"columns[{i}]"
    hints, hint_errs = _parse_column_hints(raw, where)
    errs = errs + hint_errs
    if col is None or errs:
        return None, errs
    return replace(col, **hints), []


def _parse_column_hints(raw: Mapping[str, Any], where: str) -> tuple[dict[str, Any], list[str]]:
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


class _Refused(SchemaError):
    """One problem that stops the declaration of a column (the ones found before it are kept)."""


def _parse_column_kind(raw: object, i: int) -> tuple[Column | None, list[str]]:
    """A column from the kind-specific keys of its declaration, or None and every problem."""
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
    try:
        if kind == "categorical":
            col = _categorical(raw, str(name), nullable, errs, where)
        elif kind in ("integer", "continuous", "datetime"):
            col = _numeric(raw, str(name), kind, nullable, errs, where)
        else:
            raise _Refused(f"kind ({kind!r}) must be one of categorical, integer, continuous, datetime")
    except _Refused as exc:
        return None, [*errs, f"{where}: {exc}"]
    return (None, errs) if errs else (col, [])


def _categorical(raw: Mapping[str, Any], name: str, nullable: bool, errs: list[str], where: str) -> Column:
    levels, other = raw.get("levels"), raw.get("other")
    if other is not None and (not isinstance(other, str) or not other):
        raise _Refused(f"other ({other!r}) must be a non-empty string (the level of every value not listed)")
    if not isinstance(levels, list) or (not levels and other is None):
        raise _Refused("a categorical column needs a non-empty list of levels (or an other level)")
    if len(levels) + (other is not None) > MAX_LEVELS:
        raise _Refused(too_many(len(levels) + (other is not None), "levels", MAX_LEVELS))
    if not all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in levels):
        raise _Refused("levels must be strings or integers")
    as_text = [str(v) for v in levels]
    if len(set(as_text)) != len(as_text):
        errs.append(f"{where}: levels must be distinct")
    if other is not None and other in as_text:
        errs.append(f"{where}: other ({other!r}) must differ from every level")
    for key in ("bounds", "bins", "edges"):
        if key in raw:
            errs.append(f"{where}: a categorical column takes levels, not {key}")
    return Column(name=name, kind="categorical", levels=tuple(levels), nullable=nullable, other=other)


def _dp_quantiles(bins: Mapping[str, Any], kind: str, edges_raw: object, bounds_raw: object) -> int:
    """K of ``bins: {dp_quantiles: K}``."""
    k = bins.get("dp_quantiles")
    if set(bins) != {"dp_quantiles"} or isinstance(k, bool) or not isinstance(k, int) or k < 2:
        raise _Refused(f"bins ({dict(bins)!r}) must be a number of bins or {{dp_quantiles: K}} with K >= 2")
    if k > MAX_DP_QUANTILE_BINS:
        raise _Refused(too_many(k, "DP quantile bins", MAX_DP_QUANTILE_BINS))
    if kind == "datetime":
        raise _Refused("DP quantile bins are not available for datetime columns yet")
    if edges_raw is not None:
        raise _Refused("give bins or edges, not both")
    if bounds_raw is None:
        raise _Refused("DP quantile bins need public bounds [low, high]")
    return k


def _in_units(raw: Mapping[str, Any], bounds_raw: Any, edges_raw: Any) -> tuple[str, Any, Any]:
    """A datetime column's resolution, and its bounds and edges in whole units of it."""
    resolution = raw.get("resolution", "day")
    if resolution not in RESOLUTIONS:
        raise _Refused(f"resolution ({resolution!r}) must be day or second")
    try:
        if bounds_raw is not None:
            bounds_raw = [to_units(v, resolution) for v in bounds_raw]
        if edges_raw is not None:
            edges_raw = [to_units(v, resolution) for v in edges_raw]
    except (TypeError, ValueError):
        raise _Refused("bounds and edges of a datetime column must be ISO dates or date-times") from None
    if any(not float(v).is_integer() for v in (bounds_raw or []) + (edges_raw or [])):
        raise _Refused(f"bounds and edges must fall on whole {resolution}s")
    return resolution, bounds_raw, edges_raw


def _bounds(bounds_raw: Any) -> tuple[float, float] | None:
    if bounds_raw is None:
        return None
    if (
        not isinstance(bounds_raw, list)
        or len(bounds_raw) != 2
        or not all(_number(b) for b in bounds_raw)
        or not float(bounds_raw[0]) < float(bounds_raw[1])
    ):
        raise _Refused(f"bounds ({bounds_raw!r}) must be [low, high] with low < high")
    return float(bounds_raw[0]), float(bounds_raw[1])


def _declared_edges(edges_raw: Any, bounds: tuple[float, float] | None) -> tuple[list[float], tuple[float, float]]:
    if (
        not isinstance(edges_raw, list)
        or len(edges_raw) < 2
        or not all(_number(e) for e in edges_raw)
        or any(float(a) >= float(b) for a, b in zip(edges_raw, edges_raw[1:], strict=False))
    ):
        raise _Refused("edges must be a strictly increasing list of at least 2 numbers")
    edges = [float(e) for e in edges_raw]
    if bounds is None:
        return edges, (edges[0], edges[-1])
    if (edges[0], edges[-1]) != bounds:
        raise _Refused("edges must start at the low bound and end at the high bound")
    return edges, bounds


def _edges_from_bins(kind: str, bounds: tuple[float, float] | None, bins: Any) -> list[float]:
    """The edges of ``bins`` uniform bins inside the bounds (one per integer when no bins are given)."""
    if bounds is None:
        raise _Refused("a numeric column needs bounds [low, high] (or edges)")
    lo, hi = bounds
    if bins is None:
        whole = lo.is_integer() and hi.is_integer()
        if kind in ("integer", "datetime") and whole and hi - lo + 1 <= MAX_INTEGER_LEVELS:
            return [lo + j for j in range(int(hi - lo) + 1)] + [hi + 1]
        raise _Refused(f"bins must be given (an integer column without bins gets one level per integer only up to "
                       f"{MAX_INTEGER_LEVELS} integers)")
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
        raise _Refused(f"bins ({bins!r}) must be an integer >= 1")
    if bins > MAX_BINS:  # before the edges are made
        raise _Refused(too_many(bins, "bins", MAX_BINS))
    edges = [float(e) for e in np.linspace(lo, hi, bins + 1)]
    if kind == "datetime":  # whole units, so that edges print as dates
        edges = sorted({float(round(e)) for e in edges})
    edges[0], edges[-1] = lo, hi
    return edges


def _check_integer_bins(bounds: tuple[float, float], edges: list[float]) -> None:
    lo, hi = bounds
    if not (lo.is_integer() and hi.is_integer()):
        raise _Refused("bounds of an integer column must be integers")
    for b in range(len(edges) - 1):
        low_int, high_int = integer_bin(edges, b, hi)
        if low_int > high_int:
            raise _Refused(f"bin [{edges[b]:g}, {edges[b + 1]:g}) contains no integer; use fewer bins or integer edges")


def _numeric(raw: Mapping[str, Any], name: str, kind: Kind, nullable: bool, errs: list[str], where: str) -> Column:
    for key in ("levels", "other"):
        if key in raw:
            errs.append(f"{where}: a numeric column takes bounds and bins or edges, not {key}")
    edges_raw, bins, bounds_raw = raw.get("edges"), raw.get("bins"), raw.get("bounds")
    if isinstance(edges_raw, list) and len(edges_raw) - 1 > MAX_BINS:
        raise _Refused(too_many(len(edges_raw) - 1, "bins", MAX_BINS))
    dp_quantiles = None
    if isinstance(bins, Mapping):
        dp_quantiles = bins = _dp_quantiles(bins, kind, edges_raw, bounds_raw)
    resolution = None
    if kind == "datetime":
        resolution, bounds_raw, edges_raw = _in_units(raw, bounds_raw, edges_raw)
    elif "resolution" in raw:
        errs.append(f"{where}: only datetime columns take a resolution")
    if edges_raw is not None and bins is not None:
        raise _Refused("give bins or edges, not both")
    bounds = _bounds(bounds_raw)
    if edges_raw is not None:
        edges, bounds = _declared_edges(edges_raw, bounds)
    else:
        edges = _edges_from_bins(kind, bounds, bins)
    assert bounds is not None  # _edges_from_bins refuses a column without bounds
    if kind in ("integer", "datetime"):
        _check_integer_bins(bounds, edges)
    return Column(name=name, kind=kind, bounds=bounds, edges=tuple(edges), nullable=nullable, resolution=resolution,
                  dp_quantiles=dp_quantiles)
