"""PII scan of a table with Microsoft Presidio, made for tables.

* every distinct value of a column is analysed once (a cache keyed by the column's analysis
  profile and the value; identical profiles share it across columns and tables);
* the column name feeds Presidio as context words (``phone_number`` lifts a phone-shaped value);
* the schema's hints: a categorical column's declared levels (and its ``other`` level) are public
  and never analysed; ``pii: {entities, allow_list, ner}`` narrows what is looked for, lists values
  that are never reported, and forces NER on or off;
* numeric, date and code-shaped columns never go to NER, only to the pattern recognizers; text
  columns go through spaCy in batches (``nlp.pipe``) before the recognizers;
* a value is only asked for the entity types it can hold and only the recognizers that can match
  it and reach the threshold are run (:mod:`dpsynth.pii.screen`, :mod:`dpsynth.pii.reach`); lemmas
  are computed only where they can change a score (:mod:`dpsynth.pii.lemmas`);
* the report (:mod:`dpsynth.pii.findings`) gives, per column and entity type, the number of cells,
  their share of the rows, the highest score and up to three MASKED examples
  (:func:`dpsynth.pii.mask.mask`), never a value.

Privacy: the scan reads the table it is given (usually the synthetic one); its report holds no
value from it, only counts, scores and masked shapes.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from dpsynth.exceptions import DataError, ParameterError, SchemaError
from dpsynth.pii.engine import LANGUAGE, Engine, build_engine
from dpsynth.pii.findings import (
    ColumnScan,
    Match,
    ScanFinding,
    ScanReport,
    entity_totals,
    resolve_overlaps,
    withheld_ner_types,
)
from dpsynth.pii.lemmas import LemmaGate
from dpsynth.pii.profile import ColumnProfile, column_texts, context_words, ner_decision
from dpsynth.pii.reach import RecognizerReach
from dpsynth.pii.screen import RegexScreens
from dpsynth.schema.schema import Column, Schema

DEFAULT_THRESHOLD = 0.5

class PIIScanner:
    """Presidio's AnalyzerEngine run over tables.

    Args:
        threshold: the lowest score reported, in [0, 1] (default 0.5).
        entities: the entity types to look for (default: every type the engine supports).
        use_ner: ``False`` to run the pattern recognizers only (the report says NER is off).
        batch_size: texts per ``nlp.pipe`` batch.
        engine: a built :class:`~dpsynth.pii.engine.Engine` to share between scanners.

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
        analyzer = self.engine.analyzer
        supported = set(self.engine.supported_entities())
        nlp_recognizer = next((r for r in analyzer.registry.recognizers if r.name == "SpacyRecognizer"), None)
        self._ner_entities = frozenset(nlp_recognizer.supported_entities) if nlp_recognizer else frozenset()
        self._pattern_entities = frozenset(supported - self._ner_entities) | frozenset(
            e for r in analyzer.registry.recognizers if r.name != "SpacyRecognizer" for e in r.supported_entities)
        self.screens = RegexScreens()
        self.reach = RecognizerReach(analyzer, self.threshold, self._ner_entities, self.screens)
        self.lemmas = LemmaGate(self.engine, self.reach, self.screens, self.threshold, batch_size)
        self._cache: dict[ColumnProfile, dict[str, list[Match]]] = {}
        #: Values analysed (``AnalyzerEngine.analyze`` calls) and texts sent through spaCy, over
        #: this scanner's life.
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

    def _profile(self, name: str, values: pd.Series, distinct: np.ndarray,
                 col: Column | None) -> tuple[ColumnProfile, str]:
        """The column's analysis profile and why NER does or does not read it."""
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
        ner, reason = ner_decision(values, distinct, col, self.engine.ner_enabled)
        if not ner:
            entities -= self._ner_entities - self._pattern_entities
        profile = ColumnProfile(ner=ner, context=tuple(context_words(name)), entities=tuple(sorted(entities)),
                                allow_list=tuple(sorted(set(allow))))
        return profile, reason

    def _analyse(self, profile: ColumnProfile, texts: list[str]) -> dict[str, list[Match]]:
        """Presidio's results for each text (at or above the threshold)."""
        out: dict[str, list[Match]] = {}
        todo: list[tuple[str, tuple[str, ...]]] = []
        for text in texts:
            cands = self.reach.candidate_entities(profile, text)
            if cands:
                todo.append((text, cands))
            else:
                out[text] = []
        if not todo:
            return out
        if profile.ner:
            self.nlp_texts += len(todo)
            artifacts, lemma_texts = self.lemmas.artifacts(profile, todo)
            self.lemma_texts += lemma_texts
        else:
            # the pattern-only engine's artifacts are the same empty ones for every text
            _, empty = next(iter(self.engine.no_op.process_batch([""], language=LANGUAGE)))
            artifacts = [empty] * len(todo)
        analyzer = self.engine.analyzer
        context = list(profile.context)
        allow = list(profile.allow_list) or None
        _, by_words = self.reach.reachable(profile)
        for (text, cands), nlp_artifacts in zip(todo, artifacts, strict=True):
            value_words = None
            if profile.ner:
                value_words = {t.lower_ for t in nlp_artifacts.tokens or []} | {
                    lemma.lower() for lemma in nlp_artifacts.lemmas or []}
            if by_words and any(e in by_words for e in cands):
                # types reachable only through the value's own words: keep them where it holds one
                cands = tuple(e for e in cands if e not in by_words
                              or any(c in w for c in by_words[e] for w in value_words or ()))
            cands = self.reach.contributing_types(profile, text, cands, nlp_artifacts, value_words)
            if not cands:
                out[text] = []
                continue
            self.analyze_calls += 1
            results = analyzer.analyze(text=text, language=LANGUAGE, entities=list(cands), nlp_artifacts=nlp_artifacts,
                                       context=context, allow_list=allow, score_threshold=self.threshold)
            out[text] = resolve_overlaps(results)
        return out

    def _scan_column(self, name: str, values: pd.Series, col: Column | None, schema: Schema | None,
                     rows: int, keep_cells: bool) -> tuple[ColumnScan, list[ScanFinding], list[frozenset[str]] | None]:
        codes, distinct = column_texts(values, col, schema)
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
        per_entity = entity_totals(distinct, is_public, counts, cache)
        suppressed = withheld_ner_types(name, profile, col, distinct[~is_public], per_entity)
        for entity in suppressed:
            del per_entity[entity]
        findings = [ScanFinding(name, entity, agg["cells"], agg["cells"] / rows, agg["max"], tuple(agg["examples"]))
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
        findings: list[ScanFinding] = []
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
