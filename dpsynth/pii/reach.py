"""Which recognizers can report an entity type at or above the threshold, per column profile and value.

Presidio lifts a match's score only when a recognizer's context word is found among the column's
context words (constant per column) or the lemmas of the words before the match (only where NER
reads the value: the pattern-only engine gives no words). A recognizer that scores below the
threshold without context (Presidio's phone recognizer: 0.4; US bank number: 0.05 …) can therefore
not be reported in a column whose name holds none of its context words, nor, in a NER column, in a
value that holds none of them: it is not run there. This is exact (tests compare with Presidio's
full answer); it saves most of the python-phonenumbers time, which was half of a scan.

Privacy: reads the values it is given; returns recognizers and entity types.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from dpsynth.pii import presidio_compat
from dpsynth.pii.engine import LANGUAGE
from dpsynth.pii.profile import ColumnProfile
from dpsynth.pii.screen import NEEDS, RegexScreens, features, screen_matches

#: One step of a plan: (recognizer, the context words it needs in the value (``()``: none), whether
#: it is spaCy's NER, its regex screen or ``None``).
PlanStep = tuple[Any, tuple[str, ...], bool, Any]


class RecognizerReach:
    """What each recognizer of an analyzer can reach, worked out once per profile and set of types.

    Args:
        analyzer: Presidio's AnalyzerEngine (its registry and context enhancer).
        threshold: the lowest score reported.
        ner_entities: the entity types spaCy's NER recognizer supports.
        screens: the regex screens of the pattern recognizers.
    """

    def __init__(self, analyzer: Any, threshold: float, ner_entities: frozenset[str], screens: RegexScreens):
        self.analyzer = analyzer
        self.threshold = threshold
        self.ner_entities = ner_entities
        self.screens = screens
        self._reachable: dict[ColumnProfile, tuple[frozenset[str], dict[str, tuple[str, ...]]]] = {}
        self._words: dict[tuple[ColumnProfile, str], tuple[str, ...] | None] = {}
        self._candidates: dict[tuple[Any, ...], tuple[str, ...]] = {}
        self._plans: dict[tuple[ColumnProfile, tuple[str, ...]], tuple[PlanStep, ...] | None] = {}
        self._by_types: dict[tuple[str, ...], tuple[Any, ...]] = {}

    def _reach(self, recognizer: Any, context_possible: bool) -> float:
        return presidio_compat.recognizer_reach(self.analyzer, recognizer, context_possible)

    @staticmethod
    def _in_column_name(ctx: Iterable[str], profile: ColumnProfile) -> bool:
        """Whether a recognizer's (lower-cased) context words meet the column's: Presidio matches a
        recognizer's context word as a substring of a context word; both directions are taken here,
        to be safe."""
        words = [w.lower() for w in profile.context]
        return any(c in w or w in c for c in ctx for w in words)

    def reachable(self, profile: ColumnProfile) -> tuple[frozenset[str], dict[str, tuple[str, ...]]]:
        """Which entity types of ``profile`` some recognizer can report at or above the threshold.

        Returns:
            the types reachable in every value, and, per type reachable only with words of the
            value as context, the context words that make it reachable.
        """
        found = self._reachable.get(profile)
        if found is None:
            always: set[str] = set()
            by_words: dict[str, set[str]] = {}
            recognizers = self.analyzer.registry.get_recognizers(
                language=LANGUAGE, entities=list(profile.entities), all_fields=False) if profile.entities else []
            for recognizer in recognizers:
                ctx = [c.lower() for c in recognizer.context or []]
                entities = [e for e in recognizer.supported_entities if e in profile.entities]
                by_column = self._in_column_name(ctx, profile)
                if self._reach(recognizer, by_column) >= self.threshold:
                    always.update(entities)
                elif profile.ner and self._reach(recognizer, True) >= self.threshold:
                    for e in entities:
                        by_words.setdefault(e, set()).update(ctx)
            found = self._reachable[profile] = (
                frozenset(always), {e: tuple(sorted(c)) for e, c in by_words.items() if e not in always})
        return found

    def recognizer_words(self, profile: ColumnProfile, recognizer: Any) -> tuple[str, ...] | None:
        """``()`` when ``recognizer`` can reach the threshold in every value of the profile's column,
        its context words when only one of them in the value can lift it there, ``None`` when it
        cannot reach it at all (the per-recognizer form of :meth:`reachable`)."""
        key = (profile, recognizer.id)
        if key not in self._words:
            ctx = tuple(c.lower() for c in recognizer.context or [])
            by_column = self._in_column_name(ctx, profile)
            if recognizer.name == "SpacyRecognizer" or self._reach(recognizer, by_column) >= self.threshold:
                found: tuple[str, ...] | None = ()
            elif profile.ner and self._reach(recognizer, True) >= self.threshold:
                found = ctx
            else:
                found = None
            self._words[key] = found
        return self._words[key]

    def candidate_entities(self, profile: ColumnProfile, text: str) -> tuple[str, ...]:
        """The types of ``profile`` that ``text`` can hold (:data:`~dpsynth.pii.screen.NEEDS`) and
        some recognizer can reach; NER types always in a NER column."""
        feats = features(text)
        key = (profile, feats)
        found = self._candidates.get(key)
        if found is None:
            keep = []
            always, by_words = self.reachable(profile)
            for entity in profile.entities:
                if entity not in always and entity not in by_words:
                    continue
                needs = NEEDS.get(entity)
                ner_type = profile.ner and entity in self.ner_entities
                if ner_type or needs is None or any(n in feats for n in needs):
                    keep.append(entity)
            found = self._candidates[key] = tuple(keep)
        return found

    def contributing_types(self, profile: ColumnProfile, text: str, cands: tuple[str, ...], artifacts: Any,
                           value_words: set[str] | None) -> tuple[str, ...]:
        """The entity types of ``cands`` to ask Presidio for in ``text``: those of the registry's
        recognizers of ``cands`` that may contribute (a recognizer that returns no result, or only
        results that cannot reach the threshold, contributes nothing: enhancement is per result, the
        threshold applies before de-duplication); all of ``cands`` when one of them has its own
        context enhancement (it reads the other recognizers' results)."""
        plan = self.plan(profile, cands)
        if plan is None:
            return cands
        run = []
        for recognizer, words, is_ner, screen in plan:
            if words and value_words is not None and not any(c in w for c in words for w in value_words):
                continue
            if is_ner:
                if not any(ent.label_ in cands for ent in artifacts.entities or []):
                    continue
            elif screen is not None and not screen_matches(screen, text):
                continue
            run.append(recognizer)
        return tuple(e for e in cands if any(e in r.supported_entities for r in run))

    def plan(self, profile: ColumnProfile, cands: tuple[str, ...]) -> tuple[PlanStep, ...] | None:
        """Per profile and candidate types, once: the recognizers that can reach the threshold, each
        with its context words (:meth:`recognizer_words`), whether it is spaCy's and its screen;
        ``None`` when one of the registry's recognizers of ``cands`` has its own context enhancement."""
        key = (profile, cands)
        if key not in self._plans:
            recognizers = self.recognizers_of_types(cands)
            if any(presidio_compat.has_own_context_enhancement(r) for r in recognizers):
                self._plans[key] = None
                return None
            plan: list[PlanStep] = []
            for recognizer in recognizers:
                words = self.recognizer_words(profile, recognizer)
                if words is not None:
                    is_ner = recognizer.name == "SpacyRecognizer"
                    plan.append((recognizer, words, is_ner, None if is_ner else self.screens.of(recognizer)))
            self._plans[key] = tuple(plan)
        return self._plans[key]

    def recognizers_of_types(self, cands: tuple[str, ...]) -> tuple[Any, ...]:
        """The registry's recognizers of ``cands``, as ``AnalyzerEngine.analyze`` selects them."""
        found = self._by_types.get(cands)
        if found is None:
            found = self._by_types[cands] = tuple(self.analyzer.registry.get_recognizers(
                language=LANGUAGE, entities=list(cands), all_fields=False))
        return found

    def recognizers_of(self, entity: str) -> tuple[Any, ...]:
        """The registry's recognizers of ``entity`` (those ``AnalyzerEngine.analyze`` runs for it)."""
        return self.recognizers_of_types((entity,))
