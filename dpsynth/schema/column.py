"""One column of the public schema (:class:`Column`) and the units of its values: dates and times
are whole counts of a resolution since 1970 inside dpsynth, ISO text outside."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

Kind = Literal["categorical", "integer", "continuous", "datetime"]
RESOLUTIONS = {"day": 86_400, "second": 1}
#: the origin of the units of datetime columns
EPOCH = "1970-01-01"


def to_units(value: Any, resolution: str) -> float:
    """A date/time (ISO text, ``date`` or ``datetime``) as a count of ``resolution`` since 1970."""
    import pandas as pd

    ts = pd.Timestamp(value)
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return (ts - pd.Timestamp(EPOCH)).total_seconds() / RESOLUTIONS[resolution]


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
        """The code of a missing value (the last), or None when the column is not nullable."""
        return self.n_values if self.nullable else None

    def to_dict(self) -> dict[str, Any]:
        """The column as a schema file declares it (loads back equal)."""
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
            out["bounds"] = [plain_number(self.bounds[0]), plain_number(self.bounds[1])]
            out["bins"] = {"dp_quantiles": self.dp_quantiles}
        else:
            assert self.bounds is not None
            out["bounds"] = [plain_number(self.bounds[0]), plain_number(self.bounds[1])]
            # One level per integer ends at high + 1, which a schema file may not declare: the
            # bounds alone imply it, so the edges are left out and the dict loads back as it was.
            if not (self.kind == "integer" and self.edges[-1] == self.bounds[1] + 1):
                out["edges"] = [plain_number(e) for e in self.edges]
        if self.nullable:
            out["nullable"] = True
        return {**out, **self._hints()}

    def _hints(self) -> dict[str, Any]:
        """The declaration's ``pii`` mapping and ``quasi_identifier`` flag, when set."""
        out: dict[str, Any] = {}
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



def plain_number(x: float) -> float | int:
    """``x`` as an int when it is whole (how bounds and edges are written back to a file)."""
    return int(x) if float(x).is_integer() else float(x)


def integer_bin(edges: Sequence[float], b: int, high: float) -> tuple[int, int]:
    """The integers ``[low, high]`` that bin ``b`` of an integer column holds."""
    low = math.ceil(edges[b])
    top = high if b == len(edges) - 2 else math.ceil(edges[b + 1]) - 1
    return int(low), int(min(top, high))
