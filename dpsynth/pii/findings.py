"""What a PII scan reports, and the rules that turn Presidio's answers into findings.

* :class:`ScanFinding`, :class:`ColumnScan`, :class:`ScanReport`: the report and its JSON form;
* :func:`resolve_overlaps`: a match strictly inside a longer, at least as high-scored match of
  another type is not a finding of its own;
* :func:`entity_totals`: per entity type, the cells, highest score and masked examples of a column;
* :func:`withheld_ner_types`: the short-value column rule for NER-only types.

Privacy: the report holds counts, shares, scores and masked examples (:func:`dpsynth.pii.mask.mask`),
never a value of the scanned table.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dpsynth.pii.mask import mask
from dpsynth.pii.profile import WORDY_SAMPLE, ColumnProfile, context_words
from dpsynth.schema.schema import Column

REPORT_VERSION = 1
MAX_EXAMPLES = 3
NOT_DP_NOTICE = (
    "This scan reads the table it is given and is not differentially private; run on a synthetic "
    "table, its report holds counts, scores and masked examples only, never a value."
)
#: In a column of short values (median distinct value at most this many words), a NER-only type is
#: reported only when found in at least NER_COLUMN_SHARE of the distinct values analysed, or when
#: the column's name holds one of its NER_COLUMN_WORDS as a word (see :func:`withheld_ner_types`);
#: ``name`` says PERSON alone or beside first/last/full/given/family/middle/maiden/nick (not
#: ``product_name``).
SHORT_VALUE_WORDS = 4
_NAME_QUALIFIERS = frozenset({"first", "last", "full", "given", "family", "middle", "maiden", "nick", "sur"})
NER_COLUMN_SHARE = 0.5
NER_COLUMN_WORDS: dict[str, tuple[str, ...]] = {
    "PERSON": ("person", "people", "customer", "client", "patient", "employee", "staff", "user",
               "owner", "manager", "contact", "author", "member", "driver", "passenger", "guest", "recipient",
               "sender", "holder", "signer", "buyer", "seller", "agent", "doctor", "physician", "nurse",
               "student", "teacher", "applicant", "beneficiary", "spouse", "parent", "child", "firstname", "lastname",
               "fullname", "surname", "givenname", "familyname", "nickname", "username"),
    "LOCATION": ("address", "street", "city", "town", "village", "location", "country", "state", "county",
                 "region", "place", "residence", "birthplace", "zip", "postal", "postcode", "geo"),
    "NRP": ("nationality", "national", "religion", "religious", "ethnic", "race", "political", "party",
            "citizenship", "origin", "nrp"),
}
#: One of Presidio's answers for a value: (entity type, score, start, end).
Match = tuple[str, float, int, int]


@dataclass(frozen=True)
class ScanFinding:
    """One entity type found in one column.

    Attributes:
        column: the column.
        entity_type: Presidio's entity type (``EMAIL_ADDRESS``, ``PERSON`` …).
        cells: the number of cells in which it was found at or above the threshold.
        share: ``cells`` over the table's rows.
        max_score: the highest score among them.
        examples: up to three masked matches (never a value).
    """

    column: str
    entity_type: str
    cells: int
    share: float
    max_score: float
    examples: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (share and score rounded)."""
        return {"column": self.column, "entity_type": self.entity_type, "cells": self.cells,
                "share": round(self.share, 6), "max_score": round(self.max_score, 4),
                "examples": list(self.examples)}


@dataclass(frozen=True)
class ColumnScan:
    """How one column was scanned.

    Attributes:
        name: the column.
        mode: ``ner+patterns``, ``patterns``, ``declared levels`` (every value public), ``empty``.
        reason: why that mode (schema kind, hint, shape of the values).
        distinct: distinct non-missing values.
        analysed: distinct values run through Presidio in this scan (cache misses).
        cached: distinct values answered from the cache.
        allowed: distinct values skipped as public (declared levels, allow-list).
        prefiltered: distinct values that can hold none of the entity types asked for.
        suppressed: NER types found but not reported by the short-value column rule, with their
            cell counts (see :func:`withheld_ner_types`).
    """

    name: str
    mode: str
    reason: str
    distinct: int
    analysed: int
    cached: int
    allowed: int
    prefiltered: int
    suppressed: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        out = dict(vars(self))
        out["suppressed"] = dict(self.suppressed)
        return out


@dataclass
class ScanReport:
    """What a scan found. ``to_dict()`` is its JSON form (no value of the table in it)."""

    rows: int
    threshold: float
    entities: list[str] | None
    ner: dict[str, Any]
    columns: list[ColumnScan]
    findings: list[ScanFinding]
    stats: dict[str, Any]
    source: str | None = None
    #: Per column, the entity types found in each row (no values); only with ``keep_cells=True``.
    cell_entities: dict[str, list[frozenset[str]]] | None = field(default=None, repr=False)

    @property
    def found(self) -> bool:
        """Whether any entity was found."""
        return bool(self.findings)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form, with the report's name, version and not-DP notice."""
        return {
            "report": "dpsynth.pii.scan",
            "version": REPORT_VERSION,
            "source": self.source,
            "rows": self.rows,
            "threshold": self.threshold,
            "entities": self.entities if self.entities is not None else "all",
            "ner": dict(self.ner),
            "found": self.found,
            "findings": [f.to_dict() for f in self.findings],
            "columns": [c.to_dict() for c in self.columns],
            "stats": dict(self.stats),
            "notice": NOT_DP_NOTICE,
        }


def resolve_overlaps(results: Iterable[Any]) -> list[Match]:
    """Presidio's results as tuples, without those that lie strictly inside a longer match of another
    type scored at least as high (Presidio reports the URL inside every e-mail address, a medical
    licence inside an IBAN …). Matches of the same span are all kept."""
    found = [(r.entity_type, float(r.score), int(r.start), int(r.end)) for r in results]
    return [r for r in found if not any(
        q[0] != r[0] and q[1] >= r[1] and q[2] <= r[2] and r[3] <= q[3] and (q[3] - q[2]) > (r[3] - r[2])
        for q in found)]


def entity_totals(distinct: np.ndarray, is_public: np.ndarray, counts: np.ndarray,
                  answers: Mapping[str, list[Match]]) -> dict[str, dict[str, Any]]:
    """Per entity type found in a column: the distinct values (indices) and cells it was found in,
    its highest score and up to :data:`MAX_EXAMPLES` masked examples. Public values are skipped."""
    per_entity: dict[str, dict[str, Any]] = {}
    for i, text in enumerate(distinct):
        if is_public[i]:
            continue
        for entity, score, start, end in answers[text]:
            agg = per_entity.setdefault(entity, {"values": set(), "cells": 0, "max": 0.0, "examples": []})
            if i not in agg["values"]:
                agg["values"].add(i)
                agg["cells"] += int(counts[i])
            agg["max"] = max(agg["max"], score)
            example = mask(text[start:end])
            if len(agg["examples"]) < MAX_EXAMPLES and example not in agg["examples"]:
                agg["examples"].append(example)
    return per_entity


def withheld_ner_types(name: str, profile: ColumnProfile, col: Column | None, values: np.ndarray,
                       per_entity: dict[str, dict[str, Any]]) -> dict[str, int]:
    """NER types to withhold from a column of short values: ``{entity type: cells}``.

    spaCy reads a short value (a name, a product, a city: at most ``SHORT_VALUE_WORDS`` words for
    the median distinct value) without any sentence around it, and then tags capitalised
    phrases ("Electric Kettle") as PERSON or LOCATION. One such tag says little; what a column
    holds says more. In a column of short values, a NER-only type (PERSON, LOCATION, NRP) is
    reported only when it is found in at least ``NER_COLUMN_SHARE`` of the distinct values
    analysed, or when the column's name says the type (``customer_name``, ``city`` …; see
    ``NER_COLUMN_WORDS``), or when the schema's ``pii.entities`` hint names it. Otherwise its
    cells are listed as ``suppressed`` in the column's scan info (not a finding).
    Free text (longer values) is never subject to this: one name in one note is reported.
    """
    if not profile.ner or len(values) == 0:
        return {}
    candidates = [e for e in per_entity if e in NER_COLUMN_WORDS]
    if col is not None and col.pii_entities is not None:
        candidates = [e for e in candidates if e not in col.pii_entities]
    if not candidates:
        return {}
    words = np.median([len(str(v).split()) for v in values[:WORDY_SAMPLE]])
    if words > SHORT_VALUE_WORDS:
        return {}
    column_words = [w.lower() for w in context_words(name)]
    out: dict[str, int] = {}
    for entity in candidates:
        if any(w in NER_COLUMN_WORDS[entity] for w in column_words):
            continue
        if entity == "PERSON" and "name" in column_words and (
                len(column_words) == 1 or any(w in _NAME_QUALIFIERS for w in column_words)):
            continue
        if len(per_entity[entity]["values"]) < NER_COLUMN_SHARE * len(values):
            out[entity] = int(per_entity[entity]["cells"])
    return out
