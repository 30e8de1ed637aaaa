"""NER first, lemmas only where they can change a score.

In a NER column every value goes through spaCy's tokenizer and NER (en_core_web_sm's NER has its own
token embedding: it does not listen to the shared tok2vec). Tagger, attribute ruler and lemmatizer,
which give the lemmas Presidio reads as context around pattern matches, then run on the same
documents only for the values whose lemmas can change Presidio's answer (:meth:`LemmaGate.needs_lemmas`);
what a token's lemmas can hold is over-approximated from the model's lemmatizer tables
(:meth:`LemmaGate.probes`). Tests compare entities, lemmas and answers with the full pipeline.

Privacy: reads the values it is given; returns spaCy's artifacts for them.
"""

from __future__ import annotations

from typing import Any

from dpsynth.pii import presidio_compat
from dpsynth.pii.engine import LANGUAGE, Engine
from dpsynth.pii.profile import ColumnProfile
from dpsynth.pii.reach import RecognizerReach
from dpsynth.pii.screen import RegexScreens

_LEMMA_PIPES = ("tok2vec", "tagger", "attribute_ruler", "lemmatizer", "morphologizer")


def _rule_lemmatize() -> Any:
    """spaCy's rule lemmatizer method, whose behaviour :meth:`LemmaGate.probes` reads."""
    from spacy.pipeline.lemmatizer import Lemmatizer

    return Lemmatizer.rule_lemmatize


def _rule_probes(lemmatizer: Any, word: str, probes: set[str], forms: set[str]) -> bool:
    """Add to ``probes`` and ``forms`` what the rule lemmatizer's tables say a token must hold for a
    lemma of it to contain ``word`` (see :meth:`LemmaGate.probes`); ``True`` when any token may."""
    if getattr(lemmatizer, "mode", None) != "rule" or type(lemmatizer).rule_lemmatize is not _rule_lemmatize():
        return True
    anything = False
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
        forms.update(form.lower() for form, lemmas in table.items() if any(word in lemma.lower() for lemma in lemmas))
    return anything


def _raw_results(recognizer: Any, text: str, raw: dict[str, list[Any]]) -> list[Any]:
    """A screened pattern recognizer's raw results for ``text``, computed once per text (kept in
    ``raw`` by recognizer id). Presidio's ``PatternRecognizer.analyze`` reads only the text: not the
    entity types asked for, not spaCy's output."""
    if recognizer.id not in raw:
        raw[recognizer.id] = recognizer.analyze(text=text, entities=list(recognizer.supported_entities))
    return raw[recognizer.id]


class LemmaGate:
    """Decides which values need lemmas, and makes spaCy's artifacts accordingly.

    Args:
        engine: the built engine (its spaCy pipeline and analyzer).
        reach: what each recognizer can reach (per profile).
        screens: the regex screens of the pattern recognizers.
        threshold: the lowest score reported.
        batch_size: texts per ``nlp.pipe`` batch.
    """

    def __init__(self, engine: Engine, reach: RecognizerReach, screens: RegexScreens, threshold: float,
                 batch_size: int):
        self.engine = engine
        self.reach = reach
        self.screens = screens
        self.threshold = threshold
        self.batch_size = batch_size
        self._probes: dict[str, tuple[frozenset[str], frozenset[str]] | None] = {}

    def artifacts(self, profile: ColumnProfile, todo: list[tuple[str, tuple[str, ...]]]) -> tuple[list[Any], int]:
        """spaCy's artifacts for each text, in order, and the number of texts whose lemmas were
        computed. Every text goes through the tokenizer and NER; the lemma pipes run afterwards on
        the same documents, only for the texts whose lemmas can change a score."""
        engine = self.engine.nlp
        nlp = engine.nlp[LANGUAGE]
        lemma_pipes = [p for p in _LEMMA_PIPES if p in nlp.pipe_names]
        texts = [t for t, _ in todo]
        with nlp.select_pipes(disable=lemma_pipes):
            docs = list(nlp.pipe(texts, batch_size=self.batch_size))
        full = [doc for doc, (t, c) in zip(docs, todo, strict=True)
                if self.needs_lemmas(profile, t, c, [tok.lower_ for tok in doc])]
        for name in lemma_pipes:
            full = list(nlp.get_pipe(name).pipe(full, batch_size=self.batch_size))
        return [presidio_compat.doc_to_artifacts(engine, doc, LANGUAGE) for doc in docs], len(full)

    def _column_supports(self, profile: ColumnProfile, recognizer: Any) -> bool:
        """Whether the column's context words already hold one of ``recognizer``'s context words as
        Presidio looks for them (substring): every result of it is then lifted whatever the lemmas."""
        words = [w.lower() for w in profile.context]
        return any(c.lower() in w for c in recognizer.context or [] for w in words)

    def probes(self, word: str) -> tuple[frozenset[str], frozenset[str]] | None:
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
        probes: set[str] = {word}
        forms: set[str] = set()
        anything = False
        if "lemmatizer" in nlp.pipe_names:
            anything = _rule_probes(nlp.get_pipe("lemmatizer"), word, probes, forms)
        if "attribute_ruler" in nlp.pipe_names:
            for pattern in nlp.get_pipe("attribute_ruler").patterns:
                lemma = pattern.get("attrs", {}).get("LEMMA")
                if lemma is not None and word in str(lemma).lower():
                    anything = True
        probes.discard("")
        found = None if anything else (frozenset(probes), frozenset(forms))
        self._probes[word] = found
        return found

    def may_hold_word(self, words: tuple[str, ...], tokens: list[str]) -> bool:
        """Whether a token or a lemma of one may contain one of ``words`` (over-approximated from the
        lower-cased tokens alone; see :meth:`probes`)."""
        for word in words:
            probes = self.probes(word)
            if probes is None:
                return True
            subs, forms = probes
            if any(p in t for t in tokens for p in subs) or any(t in forms for t in tokens):
                return True
        return False

    def needs_lemmas(self, profile: ColumnProfile, text: str, cands: tuple[str, ...],
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
        lemma_enhancer, factor, floor = presidio_compat.lemma_enhancement(self.engine.analyzer)
        _, by_words = self.reach.reachable(profile)
        matching = self._matching(text, cands, tokens, by_words)
        if matching is None or (matching and not lemma_enhancer):
            return True
        raw: dict[str, list[Any]] = {}
        needy = [(int(r.start), int(r.end)) for recognizer in matching
                 if recognizer.context and not self._column_supports(profile, recognizer)
                 for r in _raw_results(recognizer, text, raw)
                 if float(r.score) < 1.0 and min(max(float(r.score) + factor, floor), 1.0) >= self.threshold]
        if not needy:
            return False
        if profile.allow_list or factor < 0:
            return True
        solid = self._solid_spans(profile, text, cands, matching, raw, by_words, factor, floor)
        return not all(any(a <= start and end <= b and b - a > end - start for a, b in solid)
                       for start, end in needy)

    def _matching(self, text: str, cands: tuple[str, ...], tokens: list[str] | None,
                  by_words: dict[str, tuple[str, ...]]) -> list[Any] | None:
        """The recognizers of ``cands`` (spaCy's aside) that may match ``text``, each once, all of them
        screened pattern recognizers; ``None`` when one that may match is not (python-phonenumbers,
        or one that overrides ``analyze`` or its own context enhancement): it may need lemmas."""
        seen: set[str] = set()
        matching: list[Any] = []
        for entity in cands:
            if entity in by_words and tokens is not None and not self.may_hold_word(by_words[entity], tokens):
                continue  # dropped later whatever the lemmas: no word of the value can lift it
            for recognizer in self.reach.recognizers_of(entity):
                if recognizer.id in seen or recognizer.name == "SpacyRecognizer":
                    continue
                seen.add(recognizer.id)
                if not self.screens.may_match(recognizer, text):
                    continue
                if self.screens.of(recognizer) is None or presidio_compat.has_own_context_enhancement(recognizer):
                    return None
                matching.append(recognizer)
        return matching

    def _solid_spans(self, profile: ColumnProfile, text: str, cands: tuple[str, ...], matching: list[Any],
                     raw: dict[str, list[Any]], by_words: dict[str, tuple[str, ...]], factor: float,
                     floor: float) -> list[tuple[int, int]]:
        """Spans of results scored 1.0 whatever the context, from pattern recognizers that run on every
        value of the column.

        A result whose score the lemmas can change does not change the answer when such a result
        (a validated e-mail address) strictly contains it: Presidio's de-duplication (same type) or
        ``resolve_overlaps`` (another type) then drops it and everything inside it, lifted or not
        (an e-mail address's domain matched as a URL).
        """
        solid: list[tuple[int, int]] = []
        for recognizer in matching:
            if self.reach.recognizer_words(profile, recognizer) != ():
                continue
            lifted = bool(recognizer.context) and self._column_supports(profile, recognizer)
            for result in _raw_results(recognizer, text, raw):
                score = float(result.score)
                final = min(max(score + factor, floor), 1.0) if lifted else score
                if final >= 1.0 and result.entity_type in cands and result.entity_type not in by_words:
                    solid.append((int(result.start), int(result.end)))
        return solid
