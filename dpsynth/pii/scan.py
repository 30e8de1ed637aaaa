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
#: In a column of short values (median distinct value at most this many words), a NER-only type is
#: reported only when found in at least NER_COLUMN_SHARE of the distinct values analysed, or when
#: the column's name holds one of its NER_COLUMN_WORDS as a word (see ``PIIScanner._column_rule``);
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
_WORD = re.compile(r"(?:^|(?<=\s))[^\W\d_]{2,}[.,;:!?)]?(?=\s|$)")
_NAME_PART = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")
#: Characters a value must hold for an entity type to be possible (pattern recognizers).
#: Types not listed are always asked for. A test checks that the prefilter changes no result.
_DIGIT = "digit"
_DOT_LETTER = ".letter"
_DOT_LETTER_RE = re.compile(r"\.[^\W\d_]")
_NEEDS: dict[str, tuple[str, ...]] = {
    "EMAIL_ADDRESS": ("@",),
    # Presidio's URL patterns all hold ``[.]`` followed by a top-level domain made of letters
    # (case-insensitive, so a Unicode letter that folds to one counts).
    "URL": (_DOT_LETTER,),
    "IP_ADDRESS": (_DIGIT, ":"),
    "MAC_ADDRESS": (":", "-", "."),
    **{name: (_DIGIT,) for name in (
        "CREDIT_CARD", "US_SSN", "US_ITIN", "US_BANK_NUMBER", "US_PASSPORT", "US_DRIVER_LICENSE", "UK_NHS",
        "IBAN_CODE", "PHONE_NUMBER", "MEDICAL_LICENSE", "UUID", "CRYPTO", "DATE_TIME",
    )},
}
#: Pattern recognizers that override ``analyze`` but, as read in presidio-analyzer 2.2.x, still return
#: only matches of their own regexes (so the regex screen applies to them).
_PATTERN_ONLY_ANALYZE = frozenset({"IbanRecognizer"})
_SCREEN_TIMEOUT = 1.0
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
        suppressed: NER types found but not reported by the short-value column rule, with their
            cell counts (see :meth:`PIIScanner._column_rule`).
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
    if "." in out and _DOT_LETTER_RE.search(text):
        out.add(_DOT_LETTER)
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
                 use_ner: bool = True, batch_size: int = 1000, engine: Engine | None = None):
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
        self._reachable_cache: dict[_Profile, tuple[frozenset[str], dict[str, tuple[str, ...]]]] = {}
        self._cache: dict[_Profile, dict[str, list[tuple[str, float, int, int]]]] = {}
        self._by_entity: dict[str, tuple[Any, ...]] = {}
        self._screens: dict[str, tuple[Any, ...] | None] = {}
        self._probes: dict[str, tuple[frozenset[str], frozenset[str]] | None] = {}
        self._recognizer_reach_cache: dict[tuple[_Profile, str], tuple[str, ...] | None] = {}
        self._by_types: dict[tuple[str, ...], tuple[Any, ...]] = {}
        self._raw: dict[tuple[str, str], list[Any]] = {}
        self._plans: dict[tuple[_Profile, tuple[str, ...]], tuple[tuple[Any, ...], ...] | None] = {}
        self._mirrors: bool | None = None
        #: Values analysed (``AnalyzerEngine.analyze`` or its mirror ``_run``) and texts sent through
        #: spaCy, over this scanner's life.
        self.analyze_calls = 0
        self.nlp_texts = 0
        #: Texts whose lemmas were computed (tok2vec, tagger, attribute ruler, lemmatizer).
        self.lemma_texts = 0

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

    def _recognizer_reach(self, recognizer: Any, context_possible: bool) -> float:
        """The highest score ``recognizer`` can give after Presidio's context enhancement (1.0 when
        that cannot be read off the recognizer: it validates matches, or overrides ``analyze`` or
        its own context enhancement)."""
        from presidio_analyzer import EntityRecognizer, PatternRecognizer
        from presidio_analyzer.predefined_recognizers import PhoneRecognizer

        kind = type(recognizer)
        if kind.enhance_using_context is not EntityRecognizer.enhance_using_context:
            return 1.0
        if isinstance(recognizer, PatternRecognizer):
            if (kind.analyze is not PatternRecognizer.analyze
                    or kind.validate_result is not PatternRecognizer.validate_result
                    or not recognizer.patterns):
                return 1.0
            base = max(float(p.score) for p in recognizer.patterns)
        elif isinstance(recognizer, PhoneRecognizer) and kind.analyze is PhoneRecognizer.analyze:
            base = float(kind.SCORE)
        else:
            return 1.0
        if not (recognizer.context and context_possible):
            return base
        enhancer = self.engine.analyzer.context_aware_enhancer
        factor = float(getattr(enhancer, "context_similarity_factor", 1.0))
        floor = float(getattr(enhancer, "min_score_with_context_similarity", 1.0))
        return min(max(base + factor, floor), 1.0)

    def _reachable(self, profile: _Profile) -> tuple[frozenset[str], dict[str, tuple[str, ...]]]:
        """Which entity types of ``profile`` some recognizer can report at or above the threshold.

        Presidio lifts a match's score only when a recognizer's context word is found among the
        column's context words (constant per column) or the lemmas of the words before the match
        (only where NER reads the value: the pattern-only engine gives no words). A recognizer that
        scores below the threshold without context (Presidio's phone recognizer: 0.4; US bank
        number: 0.05 …) can therefore not be reported in a column whose name holds none of its
        context words, nor, in a NER column, in a value that holds none of them: it is not run
        there. This is exact (a test compares with Presidio's full answer); it saves most of the
        python-phonenumbers time, which was half of a scan.

        Returns:
            the types reachable in every value, and, per type reachable only with words of the
            value as context, the context words that make it reachable.
        """
        found = self._reachable_cache.get(profile)
        if found is None:
            always: set[str] = set()
            by_words: dict[str, set[str]] = {}
            words = [w.lower() for w in profile.context]
            recognizers = self.engine.analyzer.registry.get_recognizers(
                language=LANGUAGE, entities=list(profile.entities), all_fields=False) if profile.entities else []
            for recognizer in recognizers:
                # Presidio matches a recognizer's context word as a substring of a context word;
                # both directions are taken here, to be safe.
                ctx = [c.lower() for c in recognizer.context or []]
                entities = [e for e in recognizer.supported_entities if e in profile.entities]
                by_column = any(c in w or w in c for c in ctx for w in words)
                if self._recognizer_reach(recognizer, by_column) >= self.threshold:
                    always.update(entities)
                elif profile.ner and self._recognizer_reach(recognizer, True) >= self.threshold:
                    for e in entities:
                        by_words.setdefault(e, set()).update(ctx)
            found = self._reachable_cache[profile] = (
                frozenset(always), {e: tuple(sorted(c)) for e, c in by_words.items() if e not in always})
        return found

    def _recognizer_words(self, profile: _Profile, recognizer: Any) -> tuple[str, ...] | None:
        """``()`` when ``recognizer`` can reach the threshold in every value of the profile's column,
        its context words when only one of them in the value can lift it there, ``None`` when it
        cannot reach it at all (the per-recognizer form of :meth:`_reachable`)."""
        key = (profile, recognizer.id)
        if key not in self._recognizer_reach_cache:
            words = [w.lower() for w in profile.context]
            ctx = tuple(c.lower() for c in recognizer.context or [])
            by_column = any(c in w or w in c for c in ctx for w in words)
            if recognizer.name == "SpacyRecognizer" or self._recognizer_reach(recognizer, by_column) >= self.threshold:
                found: tuple[str, ...] | None = ()
            elif profile.ner and self._recognizer_reach(recognizer, True) >= self.threshold:
                found = ctx
            else:
                found = None
            self._recognizer_reach_cache[key] = found
        return self._recognizer_reach_cache[key]

    def _recognizers_for(self, profile: _Profile, text: str, cands: tuple[str, ...], artifacts: Any,
                         value_words: set[str] | None) -> tuple[list[Any] | None, tuple[str, ...]]:
        """The recognizers to run for ``text`` and the entity types to ask them for: those of the
        registry's recognizers of ``cands`` that may contribute (a recognizer that returns no result,
        or only results that cannot reach the threshold, contributes nothing: enhancement is per
        result, the threshold applies before de-duplication), in the registry's order; ``None`` when
        one of them has its own context enhancement (it reads the other recognizers' results):
        Presidio's own ``AnalyzerEngine.analyze`` must then run them all."""
        plan = self._plan(profile, cands)
        if plan is None:
            return None, cands
        run = []
        for recognizer, words, is_ner, screen in plan:
            if words and value_words is not None and not any(c in w for c in words for w in value_words):
                continue
            if is_ner:
                if not any(ent.label_ in cands for ent in artifacts.entities or []):
                    continue
            elif screen is not None and not _screen_matches(screen, text):
                continue
            run.append(recognizer)
        return run, tuple(e for e in cands if any(e in r.supported_entities for r in run))

    def _plan(self, profile: _Profile, cands: tuple[str, ...]) -> tuple[tuple[Any, ...], ...] | None:
        """Per profile and candidate types, once: the recognizers that can reach the threshold, each
        with its context words (:meth:`_recognizer_words`), whether it is spaCy's and its screen;
        ``None`` when one of the registry's recognizers of ``cands`` has its own context enhancement."""
        key = (profile, cands)
        if key not in self._plans:
            from presidio_analyzer import EntityRecognizer

            plan: list[tuple[Any, ...]] | None = []
            for recognizer in self._recognizers_of_types(cands):
                if type(recognizer).enhance_using_context is not EntityRecognizer.enhance_using_context:
                    plan = None
                    break
                words = self._recognizer_words(profile, recognizer)
                if words is not None:
                    is_ner = recognizer.name == "SpacyRecognizer"
                    plan.append((recognizer, words, is_ner, None if is_ner else self._screen_of(recognizer)))
            self._plans[key] = tuple(plan) if plan is not None else None
        return self._plans[key]

    def _recognizers_of_types(self, cands: tuple[str, ...]) -> tuple[Any, ...]:
        """The registry's recognizers of ``cands``, as ``AnalyzerEngine.analyze`` selects them."""
        found = self._by_types.get(cands)
        if found is None:
            found = self._by_types[cands] = tuple(self.engine.analyzer.registry.get_recognizers(
                language=LANGUAGE, entities=list(cands), all_fields=False))
        return found

    def _fast_path(self) -> bool:
        """Whether :meth:`_run` may stand in for ``AnalyzerEngine.analyze``: the engine is Presidio's
        own class with its lemma context enhancer (the code :meth:`_run` mirrors)."""
        if self._mirrors is None:
            from presidio_analyzer import AnalyzerEngine
            from presidio_analyzer.context_aware_enhancers import LemmaContextAwareEnhancer

            analyzer = self.engine.analyzer
            enhancer = analyzer.context_aware_enhancer
            self._mirrors = (type(analyzer) is AnalyzerEngine and type(enhancer) is LemmaContextAwareEnhancer
                             and not analyzer.log_decision_process
                             and enhancer.context_matching_mode in ("substring", "whole_word"))
        return self._mirrors

    def _run(self, run: list[Any], text: str, entities: list[str], artifacts: Any, context: list[str],
             allow: list[str] | None) -> list[Any]:
        """``AnalyzerEngine.analyze(text, entities=entities, nlp_artifacts=artifacts, context=context,
        allow_list=allow, score_threshold=self.threshold)`` restricted to the recognizers ``run``,
        step by step as presidio-analyzer 2.2.x does it (analyzer_engine.py and
        LemmaContextAwareEnhancer), less what does not reach the answer: the registry look-up (done
        once per set of types), the deep copy of the results before context enhancement (the raw
        results are not used again here, so they are enhanced in place) and the explanation
        objects. A test compares it with ``analyze`` on every distinct value of a mixed table."""
        from presidio_analyzer import AnalyzerEngine, EntityRecognizer, RecognizerResult
        from presidio_analyzer.context_aware_enhancers import ContextAwareEnhancer

        id_key, name_key = RecognizerResult.RECOGNIZER_IDENTIFIER_KEY, RecognizerResult.RECOGNIZER_NAME_KEY
        results: list[Any] = []
        for recognizer in run:
            if not recognizer.is_loaded:
                recognizer.load()
                recognizer.is_loaded = True
            current = self._raw.pop((recognizer.id, text), None)
            if current is None:
                current = recognizer.analyze(text=text, entities=entities, nlp_artifacts=artifacts)
            if current:
                for result in current:
                    if not result.recognition_metadata:
                        result.recognition_metadata = {}
                    result.recognition_metadata.setdefault(id_key, recognizer.id)
                    result.recognition_metadata.setdefault(name_key, recognizer.name)
                results.extend(current)
        if not results:
            return []
        # AnalyzerEngine._enhance_using_context: the recognizers' own enhancement (the base class's,
        # which returns the results unchanged: _recognizers_for checked it) regroups the results
        # recognizer by recognizer, then the lemma enhancer lifts each one a context word supports.
        by_id = {r.id: r for r in run}
        results = [r for recognizer in run for r in results if r.recognition_metadata[id_key] == recognizer.id]
        enhancer = self.engine.analyzer.context_aware_enhancer
        lowered = [w.lower() for w in context]
        for result in results:
            recognizer = by_id.get(result.recognition_metadata.get(id_key))
            if (recognizer is None or not recognizer.context
                    or result.recognition_metadata.get(RecognizerResult.IS_SCORE_ENHANCED_BY_CONTEXT_KEY)):
                continue
            surrounding = enhancer._extract_surrounding_words(
                nlp_artifacts=artifacts, word=text[result.start:result.end], start=result.start)
            surrounding.extend(lowered)
            if enhancer._find_supportive_word_in_context(surrounding, recognizer.context,
                                                         enhancer.context_matching_mode) != "":
                result.score += enhancer.context_similarity_factor
                result.score = max(result.score, enhancer.min_score_with_context_similarity)
                result.score = min(result.score, ContextAwareEnhancer.MAX_SCORE)
        results = [r for r in results if r.score >= self.threshold]
        results = EntityRecognizer.remove_duplicates(results)
        if allow:
            results = AnalyzerEngine._remove_allow_list(results, allow, text, None, "exact")
        return results

    def _candidate_entities(self, profile: _Profile, text: str) -> tuple[str, ...]:
        feats = _features(text)
        key = (profile, feats)
        found = self._candidates.get(key)
        if found is None:
            keep = []
            always, by_words = self._reachable(profile)
            for entity in profile.entities:
                if entity not in always and entity not in by_words:
                    continue
                needs = _NEEDS.get(entity)
                ner_type = profile.ner and entity in self._ner_entities
                if ner_type or needs is None or any(n in feats for n in needs):
                    keep.append(entity)
            found = self._candidates[key] = tuple(keep)
        return found

    # -- what can match a value: the regex screen ---------------------------------------------------

    def _recognizers_of(self, entity: str) -> tuple[Any, ...]:
        """The registry's recognizers of ``entity`` (those ``AnalyzerEngine.analyze`` runs for it)."""
        found = self._by_entity.get(entity)
        if found is None:
            found = self._by_entity[entity] = tuple(self.engine.analyzer.registry.get_recognizers(
                language=LANGUAGE, entities=[entity], all_fields=False))
        return found

    def _screen_of(self, recognizer: Any) -> tuple[Any, ...] | None:
        """Compiled copies of a pattern recognizer's regexes (same module, same flags), or ``None``
        when its results can come from something else than a match of one of them."""
        key = recognizer.id
        if key not in self._screens:
            from presidio_analyzer import PatternRecognizer

            kind = type(recognizer)
            screenable = isinstance(recognizer, PatternRecognizer) and bool(recognizer.patterns) and (
                kind.analyze is PatternRecognizer.analyze or (kind.__qualname__ in _PATTERN_ONLY_ANALYZE
                                                and kind.__module__.startswith("presidio_analyzer.")))
            self._screens[key] = _compile_screen(
                [p.regex for p in recognizer.patterns], recognizer.global_regex_flags) if screenable else None
        return self._screens[key]

    def _may_match(self, recognizer: Any, text: str) -> bool:
        """``False`` only when ``recognizer`` cannot return a result for ``text``: none of its regexes
        matches it (a pattern recognizer's results are matches of its regexes)."""
        screen = self._screen_of(recognizer)
        return screen is None or _screen_matches(screen, text)

    # -- lemmas only where they can change a score --------------------------------------------------

    def _column_supports(self, profile: _Profile, recognizer: Any) -> bool:
        """Whether the column's context words already hold one of ``recognizer``'s context words as
        Presidio looks for them (substring): every result of it is then lifted whatever the lemmas."""
        words = [w.lower() for w in profile.context]
        return any(c.lower() in w for c in recognizer.context or [] for w in words)

    def _lemma_probes(self, word: str) -> tuple[frozenset[str], frozenset[str]] | None:
        """What a token must hold for a lemma of it to contain ``word``, read off the model's
        lemmatizer tables: ``(substrings of the lower-cased token, lower-cased tokens)``, or ``None``
        when any token may give such a lemma.

        spaCy's rule lemmatizer gives a token either its text (lower-cased or not), or the text
        with a suffix ``old`` replaced by ``new`` (``lemma_rules``), or an exception's lemma
        (``lemma_exc``); the attribute ruler sets a few lemmas outright. A lemma containing ``word``
        therefore needs the token to contain ``word``, or ``word`` less the first ``k`` letters of
        a rule's ``new`` it ends with, or to be an exception form of such a lemma.
        """
        word = word.lower()
        if word in self._probes:
            return self._probes[word]
        nlp = self.engine.nlp.nlp[LANGUAGE]
        probes, forms, anything = {word}, set(), False
        if "lemmatizer" in nlp.pipe_names:
            lemmatizer = nlp.get_pipe("lemmatizer")
            if getattr(lemmatizer, "mode", None) != "rule" or type(lemmatizer).rule_lemmatize is not _rule_lemmatize():
                anything = True
            else:
                tables = lemmatizer.lookups
                rules = tables.get_table("lemma_rules", {}) if tables.has_table("lemma_rules") else {}
                for pairs in rules.values():
                    for _old, new in pairs:
                        new = new.lower()
                        if word in new:
                            anything = True
                        for k in range(1, min(len(new), len(word)) + 1):
                            if word[-k:] == new[:k]:
                                if k == len(word):
                                    anything = True
                                probes.add(word[:-k])
                exceptions = tables.get_table("lemma_exc", {}) if tables.has_table("lemma_exc") else {}
                for table in exceptions.values():
                    forms.update(form.lower() for form, lemmas in table.items()
                                 if any(word in lemma.lower() for lemma in lemmas))
        if "attribute_ruler" in nlp.pipe_names:
            for pattern in nlp.get_pipe("attribute_ruler").patterns:
                lemma = pattern.get("attrs", {}).get("LEMMA")
                if lemma is not None and word in str(lemma).lower():
                    anything = True
        probes.discard("")
        found = None if anything else (frozenset(probes), frozenset(forms))
        self._probes[word] = found
        return found

    def _may_hold_word(self, words: tuple[str, ...], tokens: list[str]) -> bool:
        """Whether a token or a lemma of one may contain one of ``words`` (over-approximated from the
        lower-cased tokens alone; see :meth:`_lemma_probes`)."""
        for word in words:
            probes = self._lemma_probes(word)
            if probes is None:
                return True
            subs, forms = probes
            if any(p in t for t in tokens for p in subs) or any(t in forms for t in tokens):
                return True
        return False

    def _needs_lemmas(self, profile: _Profile, text: str, cands: tuple[str, ...],
                      tokens: list[str] | None = None) -> bool:
        """Whether the lemmas of ``text`` can change Presidio's answer for it.

        Presidio reads lemmas only in its context enhancer, for the results of recognizers that have
        context words, and lifts a score to ``min(max(s + factor, floor), 1)``. Lemmas therefore
        matter only for a result that (a) comes from a recognizer with context words, (b) whose
        column does not already hold one of them, (c) scores below 1.0 and (d) would reach the
        threshold when lifted. A pattern recognizer none of whose regexes matches returns no result;
        one whose regexes match is run here (its results do not depend on spaCy) and its raw scores
        are checked. Any other recognizer that may match (python-phonenumbers, or one that overrides
        ``analyze`` or its own context enhancement) is taken to need lemmas.
        """
        from presidio_analyzer import EntityRecognizer
        from presidio_analyzer.context_aware_enhancers import LemmaContextAwareEnhancer

        enhancer = self.engine.analyzer.context_aware_enhancer
        lemma_enhancer = (type(enhancer) is LemmaContextAwareEnhancer
                          and getattr(enhancer, "context_matching_mode", "substring") == "substring")
        factor = float(getattr(enhancer, "context_similarity_factor", 1.0))
        floor = float(getattr(enhancer, "min_score_with_context_similarity", 0.0))
        _, by_words = self._reachable(profile)
        seen: set[str] = set()
        matching: list[Any] = []
        needy: list[tuple[int, int]] = []
        for entity in cands:
            if entity in by_words and tokens is not None and not self._may_hold_word(by_words[entity], tokens):
                continue  # dropped later whatever the lemmas: no word of the value can lift it
            for recognizer in self._recognizers_of(entity):
                if recognizer.id in seen or recognizer.name == "SpacyRecognizer":
                    continue
                seen.add(recognizer.id)
                if not self._may_match(recognizer, text):
                    continue
                if not lemma_enhancer:
                    return True
                kind = type(recognizer)
                if self._screen_of(recognizer) is None or (
                        kind.enhance_using_context is not EntityRecognizer.enhance_using_context):
                    return True
                matching.append(recognizer)
                if not recognizer.context or self._column_supports(profile, recognizer):
                    continue
                for result in self._pattern_results(recognizer, text):
                    score = float(result.score)
                    if score < 1.0 and min(max(score + factor, floor), 1.0) >= self.threshold:
                        needy.append((int(result.start), int(result.end)))
        if not needy:
            return False
        if profile.allow_list or factor < 0:
            return True
        # A result whose score the lemmas can change does not change the answer when a result of a
        # pattern recognizer that runs on every value of the column, scored 1.0 whatever the context
        # (a validated e-mail address), strictly contains it: Presidio's de-duplication (same type)
        # or ``_resolve`` (another type) then drops it and everything inside it, lifted or not (an
        # e-mail address's domain matched as a URL).
        solid: list[tuple[int, int]] = []
        for recognizer in matching:
            if self._recognizer_words(profile, recognizer) != ():
                continue
            lifted = bool(recognizer.context) and self._column_supports(profile, recognizer)
            for result in self._pattern_results(recognizer, text):
                score = float(result.score)
                final = min(max(score + factor, floor), 1.0) if lifted else score
                if final >= 1.0 and result.entity_type in cands and result.entity_type not in by_words:
                    solid.append((int(result.start), int(result.end)))
        return not all(any(a <= start and end <= b and b - a > end - start for a, b in solid)
                       for start, end in needy)

    def _pattern_results(self, recognizer: Any, text: str) -> list[Any]:
        """A screened pattern recognizer's raw results for ``text``, kept for :meth:`_run` (Presidio's
        ``PatternRecognizer.analyze`` reads only the text: not the entity types, not spaCy's output).
        Read-only here; ``_run`` takes them (and lifts their scores in place)."""
        key = (recognizer.id, text)
        found = self._raw.get(key)
        if found is None:
            found = recognizer.analyze(text=text, entities=list(recognizer.supported_entities))
            from presidio_analyzer import PatternRecognizer

            if type(recognizer).analyze is PatternRecognizer.analyze:
                self._raw[key] = found
        return found

    def _nlp(self, profile: _Profile, todo: list[tuple[str, tuple[str, ...]]]) -> list[Any]:
        """spaCy's artifacts for each text, in order. Every text goes through the tokenizer and NER
        (en_core_web_sm's NER has its own token embedding: it does not listen to the shared tok2vec);
        tok2vec, tagger, attribute ruler and lemmatizer, which give the lemmas Presidio reads as
        context around pattern matches, run afterwards on the same documents and only for the texts
        whose lemmas can change a score (:meth:`_needs_lemmas`). A test compares entities and lemmas
        with the full pipeline on every value of the benchmark table."""
        engine = self.engine.nlp
        nlp = engine.nlp[LANGUAGE]
        lemma_pipes = [p for p in ("tok2vec", "tagger", "attribute_ruler", "lemmatizer", "morphologizer")
                       if p in nlp.pipe_names]
        texts = [t for t, _ in todo]
        with nlp.select_pipes(disable=lemma_pipes):
            docs = list(nlp.pipe(texts, batch_size=self.batch_size))
        full = [doc for doc, (t, c) in zip(docs, todo, strict=True)
                if self._needs_lemmas(profile, t, c, [tok.lower_ for tok in doc])]
        self.lemma_texts += len(full)
        for name in lemma_pipes:
            full = list(nlp.get_pipe(name).pipe(full, batch_size=self.batch_size))
        return [engine._doc_to_nlp_artifact(doc, LANGUAGE) for doc in docs]

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
        if profile.ner:
            self.nlp_texts += len(todo)
            artifacts = self._nlp(profile, todo)
        else:
            # the pattern-only engine's artifacts are the same empty ones for every text
            _, empty = next(iter(self.engine.no_op.process_batch([""], language=LANGUAGE)))
            artifacts = [empty] * len(todo)
        context = list(profile.context)
        allow = list(profile.allow_list) or None
        _, by_words = self._reachable(profile)
        for (text, cands), nlp_artifacts in zip(todo, artifacts, strict=True):
            value_words = None
            if profile.ner:
                value_words = {t.lower_ for t in nlp_artifacts.tokens or []} | {
                    lemma.lower() for lemma in nlp_artifacts.lemmas or []}
            if by_words and any(e in by_words for e in cands):
                # types reachable only through the value's own words: keep them where it holds one
                cands = tuple(e for e in cands if e not in by_words
                              or any(c in w for c in by_words[e] for w in value_words or ()))
            run, cands = self._recognizers_for(profile, text, cands, nlp_artifacts, value_words)
            if not cands:
                out[text] = []
                continue
            self.analyze_calls += 1
            if run is not None and self._fast_path():
                results = self._run(run, text, list(cands), nlp_artifacts, context, allow)
            else:
                results = self.engine.analyzer.analyze(
                    text=text, language=LANGUAGE, entities=list(cands), nlp_artifacts=nlp_artifacts,
                    context=context, allow_list=allow, score_threshold=self.threshold)
            out[text] = _resolve(results)
        self._raw.clear()
        return out

    def _column_rule(self, name: str, profile: _Profile, col: Column | None, values: np.ndarray,
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
        words = np.median([len(str(v).split()) for v in values[:_WORDY_SAMPLE]])
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
        for i, text in enumerate(distinct):
            if is_public[i]:
                continue
            for entity, score, start, end in cache[text]:
                agg = per_entity.setdefault(entity, {"values": set(), "cells": 0, "max": 0.0, "examples": []})
                if i not in agg["values"]:
                    agg["values"].add(i)
                    agg["cells"] += int(counts[i])
                agg["max"] = max(agg["max"], score)
                example = mask(text[start:end])
                if len(agg["examples"]) < MAX_EXAMPLES and example not in agg["examples"]:
                    agg["examples"].append(example)
        suppressed = self._column_rule(name, profile, col, distinct[~is_public], per_entity)
        for entity in suppressed:
            del per_entity[entity]
        findings = [Finding(name, entity, agg["cells"], agg["cells"] / rows, agg["max"], tuple(agg["examples"]))
                    for entity, agg in sorted(per_entity.items())]
        n_public = int(is_public.sum())
        info = ColumnScan(name=name, mode=mode, reason=reason, distinct=len(distinct), analysed=analysed,
                          cached=int((is_cached & ~is_public).sum()), allowed=n_public,
                          prefiltered=len(todo) - analysed, suppressed=suppressed)
        cells = None
        if keep_cells:
            lookup = [frozenset() if is_public[i] else frozenset(r[0] for r in cache[text] if r[0] not in suppressed)
                      for i, text in enumerate(distinct)] + [frozenset()]
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
        calls, texts, lemmas = self.analyze_calls, self.nlp_texts, self.lemma_texts
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
            "lemma_texts": self.lemma_texts - lemmas,
            "cached": sum(s.cached for s in scans),
            "allowed": sum(s.allowed for s in scans),
            "prefiltered": sum(s.prefiltered for s in scans),
        }
        return ScanReport(rows=rows, threshold=self.threshold, entities=self.entities, ner=self.engine.ner,
                          columns=scans, findings=findings, stats=stats, source=source,
                          cell_entities=cells if keep_cells else None)


def _regex() -> Any:
    """The ``regex`` module, which Presidio's pattern recognizers use (a dependency of Presidio)."""
    import regex

    return regex


#: What keeps a recognizer's regexes out of one alternation: backreferences and group names (their
#: numbers and names would clash or shift), inline flags (they may apply to the whole pattern).
_NOT_JOINABLE = re.compile(r"\\[1-9]|\\g|\(\?[a-zA-Z^]|\(\?<[a-zA-Z_]")


def _screen_matches(screen: tuple[Any, ...], text: str) -> bool:
    """Whether one of a screen's regexes matches somewhere in ``text`` (``True`` on a time-out)."""
    try:
        for pattern in screen:
            if pattern.search(text, timeout=_SCREEN_TIMEOUT) is not None:
                return True
    except TimeoutError:  # pragma: no cover - pathological input: let Presidio decide
        return True
    return False


def _compile_screen(patterns: list[str], flags: int) -> tuple[Any, ...]:
    """A recognizer's regexes compiled for the screen (same module, same flags): one alternation
    ``(?:p1)|(?:p2)|…`` where they can be joined (it finds a match exactly where one of them does),
    else each on its own."""
    regex = _regex()
    if len(patterns) > 1 and not flags & regex.VERBOSE and not any(_NOT_JOINABLE.search(p) for p in patterns):
        try:
            return (regex.compile("|".join(f"(?:{p})" for p in patterns), flags=flags),)
        except regex.error:  # pragma: no cover - each compiles alone (Presidio compiles them)
            pass
    return tuple(regex.compile(p, flags=flags) for p in patterns)


def _rule_lemmatize() -> Any:
    """spaCy's rule lemmatizer method, whose behaviour :meth:`PIIScanner._lemma_probes` reads."""
    from spacy.pipeline.lemmatizer import Lemmatizer

    return Lemmatizer.rule_lemmatize


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
