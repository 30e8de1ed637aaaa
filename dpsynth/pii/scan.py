"""PII scan of a table with Microsoft Presidio, made for tables.

* every distinct value of a column is analysed once (a cache keyed by the column's analysis
  profile and the value; identical profiles share it across columns and tables);
* the column name feeds Presidio as context words (``phone_number`` lifts a phone-shaped value);
* the schema's hints: a categorical column's declared levels (and its ``other`` level) are public
  and never analysed; ``pii: {entities, allow_list, ner}`` narrows what is looked for, lists values
  that are never reported, and forces NER on or off;
* numeric, date and code-shaped columns never go to NER, only to the pattern recognizers; text
  columns go through spaCy in batches (``nlp.pipe``) before the recognizers;
* a value is only asked for the entity types it can hold (no ``@``: no e-mail address; no digit:
  no card, SSN, phone …); NER types are always asked for in NER columns;
* the report gives, per column and entity type, the number of cells, their share of the rows, the
  highest score and up to three MASKED examples (:func:`dpsynth.pii.mask.mask`), never a value.

Privacy: the scan reads the table it is given (usually the synthetic one); its report holds no
value from it, only counts, scores and masked shapes.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dpsynth.exceptions import DataError, ParameterError, SchemaError
from dpsynth.pii._engine import LANGUAGE, Engine, build_engine
from dpsynth.pii.mask import mask
from dpsynth.schema.schema import Column, Schema

REPORT_VERSION = 1
DEFAULT_THRESHOLD = 0.5
MAX_EXAMPLES = 3
#: A text column goes to NER when at least this share of its distinct values holds a word.
WORDY_SHARE = 0.5
_WORDY_SAMPLE = 2000
_WORD = re.compile(r"(?:^|(?<=\s))[^\W\d_]{2,}[.,;:!?)]?(?=\s|$)")
_NAME_PART = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")
#: Characters a value must hold for an entity type to be possible (pattern recognizers).
#: Types not listed are always asked for. A test checks that the prefilter changes no result.
_DIGIT = "digit"
_NEEDS: dict[str, tuple[str, ...]] = {
    "EMAIL_ADDRESS": ("@",),
    "URL": (".",),
    "IP_ADDRESS": (_DIGIT, ":"),
    "MAC_ADDRESS": (":", "-", "."),
    **{name: (_DIGIT,) for name in (
        "CREDIT_CARD", "US_SSN", "US_ITIN", "US_BANK_NUMBER", "US_PASSPORT", "US_DRIVER_LICENSE", "UK_NHS",
        "IBAN_CODE", "PHONE_NUMBER", "MEDICAL_LICENSE", "UUID", "CRYPTO", "DATE_TIME",
    )},
}
_PLAIN_TYPES = (str, int, float, bool, np.integer, np.floating, np.bool_, Decimal, date, datetime, pd.Timestamp)
NOT_DP_NOTICE = (
    "This scan reads the table it is given and is not differentially private; run on a synthetic "
    "table, its report holds counts, scores and masked examples only, never a value."
)


@dataclass(frozen=True)
class Finding:
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
    """

    name: str
    mode: str
    reason: str
    distinct: int
    analysed: int
    cached: int
    allowed: int
    prefiltered: int

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))


@dataclass
class ScanReport:
    """What a scan found. ``to_dict()`` is its JSON form (no value of the table in it)."""

    rows: int
    threshold: float
    entities: list[str] | None
    ner: dict[str, Any]
    columns: list[ColumnScan]
    findings: list[Finding]
    stats: dict[str, Any]
    source: str | None = None
    #: Per column, the entity types found in each row (no values); only with ``keep_cells=True``.
    cell_entities: dict[str, list[frozenset[str]]] | None = field(default=None, repr=False)

    @property
    def found(self) -> bool:
        """Whether any entity was found."""
        return bool(self.findings)

    def to_dict(self) -> dict[str, Any]:
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


@dataclass(frozen=True)
class _Profile:
    ner: bool
    context: tuple[str, ...]
    entities: tuple[str, ...]
    allow_list: tuple[str, ...]


def context_words(column: str) -> list[str]:
    """Context words from a column name: ``PhoneNumber``/``phone_number`` → ``phone``, ``number``."""
    parts = [p.lower() for p in _NAME_PART.findall(column) if not p.isdigit()]
    return list(dict.fromkeys(parts)) or [column.lower()]


def is_wordy(text: str) -> bool:
    """Whether a value holds a word of two letters or more standing alone (NER has something to read)."""
    return _WORD.search(text) is not None


def _features(text: str) -> frozenset[str]:
    out = {ch for ch in "@.:-" if ch in text}
    if any(ch.isdigit() for ch in text):
        out.add(_DIGIT)
    return frozenset(out)


class PIIScanner:
    """Presidio's AnalyzerEngine run over tables.

    Args:
        threshold: the lowest score reported, in [0, 1] (default 0.5).
        entities: the entity types to look for (default: every type the engine supports).
        use_ner: ``False`` to run the pattern recognizers only (the report says NER is off).
        batch_size: texts per ``nlp.pipe`` batch.
        engine: a built :class:`~dpsynth.pii._engine.Engine` to share between scanners.

    Raises:
        ParameterError: a threshold outside [0, 1], or an entity type Presidio does not know.
    """

    def __init__(self, *, threshold: float = DEFAULT_THRESHOLD, entities: Sequence[str] | None = None,
                 use_ner: bool = True, batch_size: int = 256, engine: Engine | None = None):
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0.0 <= threshold <= 1.0:
            raise ParameterError(f"threshold ({threshold!r}) must be a number in [0, 1]")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ParameterError(f"batch_size ({batch_size!r}) must be an integer >= 1")
        self.engine = engine if engine is not None else build_engine(use_ner=use_ner)
        self.threshold = float(threshold)
        self.batch_size = batch_size
        self.entities = self._check_entities(entities, "entities", ParameterError) if entities is not None else None
        supported = set(self.engine.supported_entities())
        nlp_recognizer = next((r for r in self.engine.analyzer.registry.recognizers
                               if r.name == "SpacyRecognizer"), None)
        self._ner_entities = frozenset(nlp_recognizer.supported_entities) if nlp_recognizer else frozenset()
        self._pattern_entities = frozenset(supported - self._ner_entities) | frozenset(
            e for r in self.engine.analyzer.registry.recognizers if r.name != "SpacyRecognizer"
            for e in r.supported_entities)
        self._candidates: dict[tuple[Any, ...], tuple[str, ...]] = {}
        self._cache: dict[_Profile, dict[str, list[tuple[str, float, int, int]]]] = {}
        #: Calls of ``AnalyzerEngine.analyze`` and texts sent through spaCy, over this scanner's life.
        self.analyze_calls = 0
        self.nlp_texts = 0

    def _check_entities(self, names: Iterable[str], what: str, error: type[Exception]) -> list[str]:
        names = list(names)
        known = self.engine.known_entities()
        unknown = [n for n in names if n not in known]
        if unknown:
            raise error(f"{what}: unknown entity type(s) {', '.join(map(repr, unknown))} (known: {', '.join(known)})")
        if not names:
            raise error(f"{what} must name at least one entity type")
        return list(dict.fromkeys(names))

    # -- one column -------------------------------------------------------------------------------

    def _texts(self, values: pd.Series, col: Column | None, schema: Schema | None) -> tuple[np.ndarray, np.ndarray]:
        """Factorised non-missing cells as text: (codes per row, -1 where missing; distinct texts)."""
        name = values.name
        missing = np.array(values.isna().to_numpy(dtype=bool), dtype=bool)  # a writable copy
        kept = values[~missing]
        if pd.api.types.is_object_dtype(kept.dtype):
            bad = {t.__name__ for t in set(map(type, kept.array)) if not issubclass(t, _PLAIN_TYPES)}
            if bad:
                raise DataError(f"column {name!r} holds values of type {', '.join(sorted(bad))}; "
                                "expected text, numbers or dates")
        if pd.api.types.is_datetime64_any_dtype(kept.dtype):
            text = kept.dt.strftime("%Y-%m-%dT%H:%M:%S").str.replace("T00:00:00", "", regex=False)
        else:
            text = kept.astype(str)
        if schema is not None and schema.missing_values:
            tokens = text.isin(list(schema.missing_values)).to_numpy(dtype=bool)
            text = text[~tokens]
            missing[np.flatnonzero(~missing)[tokens]] = True
        codes = np.full(len(values), -1, dtype=np.int64)
        sub, uniques = pd.factorize(text, sort=False)
        codes[~missing] = sub
        distinct = np.asarray(uniques, dtype=object)
        if col is not None and col.kind != "categorical" and len(distinct):
            parsed = (pd.to_datetime(pd.Series(distinct), errors="coerce", format="ISO8601", utc=True)
                      if col.kind == "datetime" else pd.to_numeric(pd.Series(distinct), errors="coerce"))
            bad_values = np.flatnonzero(parsed.isna().to_numpy())
            if len(bad_values):
                rows = int(np.isin(codes, bad_values).sum())
                what = "a date/time" if col.kind == "datetime" else "a number"
                raise DataError(f"column {name!r} is declared {col.kind} but holds text that is not {what} "
                                f"in {rows:,} row{'s' if rows != 1 else ''}")
        return codes, distinct

    def _profile(self, name: str, values: pd.Series, distinct: np.ndarray, col: Column | None) -> tuple[_Profile, str]:
        base = list(self.entities) if self.entities is not None else self.engine.supported_entities()
        entities = set(base)
        allow: list[str] = []
        if col is not None:
            if col.pii_entities is not None:
                entities &= set(self._check_entities(col.pii_entities, f"schema column {name!r}: pii entities",
                                                     SchemaError))
            elif col.kind == "datetime":
                entities.discard("DATE_TIME")  # a declared date column is dates by definition
            allow = list(col.pii_allow_list)
        numeric_dtype = (pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_bool_dtype(values.dtype)
                         or pd.api.types.is_datetime64_any_dtype(values.dtype))
        if not self.engine.ner_enabled:
            ner, reason = False, "NER is off"
        elif col is not None and col.pii_ner is not None:
            ner, reason = col.pii_ner, f"schema hint ner: {str(col.pii_ner).lower()}"
        elif col is not None and col.kind != "categorical":
            ner, reason = False, f"declared {col.kind}"
        elif numeric_dtype:
            ner, reason = False, f"{values.dtype} values"
        else:
            sample = distinct[:_WORDY_SAMPLE]
            share = float(np.mean([is_wordy(v) for v in sample])) if len(sample) else 0.0
            ner = share >= WORDY_SHARE
            reason = f"{share:.0%} of distinct values hold words" if ner else f"code-shaped ({share:.0%} hold words)"
        if not ner:
            entities -= self._ner_entities - self._pattern_entities
        profile = _Profile(ner=ner, context=tuple(context_words(name)), entities=tuple(sorted(entities)),
                           allow_list=tuple(sorted(set(allow))))
        return profile, reason

    def _candidate_entities(self, profile: _Profile, text: str) -> tuple[str, ...]:
        feats = _features(text)
        key = (profile.entities, profile.ner, feats)
        found = self._candidates.get(key)
        if found is None:
            keep = []
            for entity in profile.entities:
                needs = _NEEDS.get(entity)
                always = profile.ner and entity in self._ner_entities
                if always or needs is None or any(n in feats for n in needs):
                    keep.append(entity)
            found = self._candidates[key] = tuple(keep)
        return found

    def _analyse(self, profile: _Profile, texts: list[str]) -> dict[str, list[tuple[str, float, int, int]]]:
        """Presidio's results for each text (at or above the threshold)."""
        out: dict[str, list[tuple[str, float, int, int]]] = {}
        todo: list[tuple[str, tuple[str, ...]]] = []
        for text in texts:
            cands = self._candidate_entities(profile, text)
            if cands:
                todo.append((text, cands))
            else:
                out[text] = []
        if not todo:
            return out
        nlp = self.engine.nlp if profile.ner else self.engine.no_op
        if profile.ner:
            self.nlp_texts += len(todo)
        artifacts = nlp.process_batch([t for t, _ in todo], language=LANGUAGE, batch_size=self.batch_size)
        context = list(profile.context)
        allow = list(profile.allow_list) or None
        for (text, cands), (_, nlp_artifacts) in zip(todo, artifacts, strict=True):
            self.analyze_calls += 1
            results = self.engine.analyzer.analyze(
                text=text, language=LANGUAGE, entities=list(cands), nlp_artifacts=nlp_artifacts, context=context,
                allow_list=allow, score_threshold=self.threshold)
            out[text] = _resolve(results)
        return out

    def _scan_column(self, name: str, values: pd.Series, col: Column | None, schema: Schema | None,
                     rows: int, keep_cells: bool) -> tuple[ColumnScan, list[Finding], list[frozenset[str]] | None]:
        codes, distinct = self._texts(values, col, schema)
        if len(distinct) == 0:
            return ColumnScan(name, "empty", "no non-missing value", 0, 0, 0, 0, 0), [], (
                [frozenset()] * rows if keep_cells else None)
        profile, reason = self._profile(name, values, distinct, col)
        public: set[str] = set(profile.allow_list)
        if col is not None and col.kind == "categorical":
            public |= {str(level) for level in col.levels}
            if col.other is not None:
                public.add(col.other)
        cache = self._cache.setdefault(profile, {})
        is_public = np.fromiter((v in public for v in distinct), dtype=bool, count=len(distinct))
        is_cached = np.fromiter((v in cache for v in distinct), dtype=bool, count=len(distinct))
        todo = [v for v, p, c in zip(distinct, is_public, is_cached, strict=True) if not p and not c]
        before = self.analyze_calls
        cache.update(self._analyse(profile, todo))
        analysed = self.analyze_calls - before
        if is_public.all():
            mode, reason = "declared levels", "every value is a declared level or allow-listed"
        else:
            mode = "ner+patterns" if profile.ner else "patterns"
        counts = np.bincount(codes[codes >= 0], minlength=len(distinct))
        per_entity: dict[str, dict[str, Any]] = {}
        per_value: list[frozenset[str]] = []
        for i, text in enumerate(distinct):
            results = [] if is_public[i] else cache[text]
            per_value.append(frozenset(r[0] for r in results))
            for entity, score, start, end in results:
                agg = per_entity.setdefault(entity, {"values": set(), "cells": 0, "max": 0.0, "examples": []})
                if i not in agg["values"]:
                    agg["values"].add(i)
                    agg["cells"] += int(counts[i])
                agg["max"] = max(agg["max"], score)
                example = mask(text[start:end])
                if len(agg["examples"]) < MAX_EXAMPLES and example not in agg["examples"]:
                    agg["examples"].append(example)
        findings = [Finding(name, entity, agg["cells"], agg["cells"] / rows, agg["max"], tuple(agg["examples"]))
                    for entity, agg in sorted(per_entity.items())]
        n_public = int(is_public.sum())
        info = ColumnScan(name=name, mode=mode, reason=reason, distinct=len(distinct), analysed=analysed,
                          cached=int((is_cached & ~is_public).sum()), allowed=n_public,
                          prefiltered=len(todo) - analysed)
        cells = None
        if keep_cells:
            lookup = per_value + [frozenset()]
            cells = [lookup[c] for c in codes]
        return info, findings, cells

    # -- a table ----------------------------------------------------------------------------------

    def scan(self, table: pd.DataFrame, *, schema: Schema | None = None, columns: Sequence[str] | None = None,
             keep_cells: bool = False, source: str | None = None) -> ScanReport:
        """Scan every column of ``table`` (or ``columns``).

        Args:
            table: the table (text or typed columns).
            schema: the public schema: declared levels are public, ``pii`` hints apply, declared
                numeric and date columns must hold numbers and dates. Columns the schema does not
                declare are scanned too (a free-text column passed through is the usual leak).
            columns: only these columns.
            keep_cells: also return, per column, the entity types found in each row (no values).
            source: a name for the table in the report (e.g. its file name).

        Raises:
            DataError: a column of an unexpected type (lists, bytes …; text in a declared numeric
                column), or a column asked for that the table lacks.
            SchemaError: a ``pii`` hint names an entity type Presidio does not know.
        """
        start = time.perf_counter()
        names = list(table.columns) if columns is None else list(columns)
        absent = [c for c in names if c not in table.columns]
        if absent:
            raise DataError(f"the table has no column(s) {', '.join(map(repr, absent))}")
        if schema is not None:  # check every hint before reading any value
            for c in schema.columns:
                if c.pii_entities is not None:
                    self._check_entities(c.pii_entities, f"schema column {c.name!r}: pii entities", SchemaError)
        rows = len(table)
        calls, texts = self.analyze_calls, self.nlp_texts
        scans: list[ColumnScan] = []
        findings: list[Finding] = []
        cells: dict[str, list[frozenset[str]]] = {}
        for name in names:
            col = schema[name] if schema is not None and name in schema.names else None
            info, found, per_row = self._scan_column(str(name), table[name], col, schema, max(rows, 1), keep_cells)
            scans.append(info)
            findings.extend(found)
            if per_row is not None:
                cells[str(name)] = per_row
        stats = {
            "seconds": round(time.perf_counter() - start, 3),
            "distinct_values": sum(s.distinct for s in scans),
            "analyze_calls": self.analyze_calls - calls,
            "nlp_texts": self.nlp_texts - texts,
            "cached": sum(s.cached for s in scans),
            "allowed": sum(s.allowed for s in scans),
            "prefiltered": sum(s.prefiltered for s in scans),
        }
        return ScanReport(rows=rows, threshold=self.threshold, entities=self.entities, ner=self.engine.ner,
                          columns=scans, findings=findings, stats=stats, source=source,
                          cell_entities=cells if keep_cells else None)


def _resolve(results: Iterable[Any]) -> list[tuple[str, float, int, int]]:
    """Presidio's results as tuples, without those that lie strictly inside a longer match of another
    type scored at least as high (Presidio reports the URL inside every e-mail address, a medical
    licence inside an IBAN …). Matches of the same span are all kept."""
    found = [(r.entity_type, float(r.score), int(r.start), int(r.end)) for r in results]
    return [r for r in found if not any(
        q[0] != r[0] and q[1] >= r[1] and q[2] <= r[2] and r[3] <= q[3] and (q[3] - q[2]) > (r[3] - r[2])
        for q in found)]


def scan_table(table: pd.DataFrame, *, schema: Schema | None = None, threshold: float = DEFAULT_THRESHOLD,
               entities: Sequence[str] | None = None, use_ner: bool = True, keep_cells: bool = False) -> ScanReport:
    """Scan a table for PII with Presidio (see :class:`PIIScanner`).

    Privacy: not DP; reads ``table``; the report holds counts, scores and masked examples only.
    """
    scanner = PIIScanner(threshold=threshold, entities=entities, use_ner=use_ner)
    return scanner.scan(table, schema=schema, keep_cells=keep_cells)


def scan_file(path: str | Path, *, schema: Schema | None = None, threshold: float = DEFAULT_THRESHOLD,
              entities: Sequence[str] | None = None, use_ner: bool = True) -> ScanReport:
    """Scan a table file (CSV, CSV.GZ or Parquet). Everything that can be checked is checked before
    the file is read (threshold, entity names, schema hints)."""
    from dpsynth.io import read_table

    scanner = PIIScanner(threshold=threshold, entities=entities, use_ner=use_ner)
    table = read_table(path)
    return scanner.scan(table, schema=schema, source=Path(path).name)
