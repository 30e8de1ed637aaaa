"""Everything the PII scan reads off Presidio beyond its documented API, in one place, checked before use.

The scan asks Presidio only what can change its answer (:mod:`dpsynth.pii.reach`,
:mod:`dpsynth.pii.screen`, :mod:`dpsynth.pii.lemmas`), and for that it reads how presidio-analyzer
2.2.x scores and enhances results: recognizer classes and their scores, the lemma context
enhancer's parameters, spaCy documents turned into Presidio's artifacts. The answer itself always
comes from ``AnalyzerEngine.analyze``: a copy of its internals did not pay for itself and was
removed (the figures, for both, are in docs/pii.md; ``benchmarks/pii_scan.py --compare-batch``).

:func:`check_presidio` runs once, when the engine is built: it checks that the installed
presidio-analyzer is in :data:`SUPPORTED` (the ``pii`` extra's range) and that every function in
:data:`SIGNATURES` takes the parameters dpsynth calls it with, and every constant in
:data:`CONSTANTS` exists; otherwise it raises :class:`UnsupportedPresidioError` naming the change.

Privacy: reads no data.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import inspect
import re
from typing import Any

from dpsynth.exceptions import DPSynthError

#: The presidio-analyzer versions whose internals this module was read against (pyproject's ``pii`` extra).
SUPPORTED = ">=2.2.366,<2.3"
_LOWEST, _BELOW = (2, 2, 366), (2, 3)
#: The upstream functions dpsynth calls or compares against, with the parameters it passes them.
SIGNATURES: dict[str, tuple[str, ...]] = {
    "presidio_analyzer.AnalyzerEngine.analyze": (
        "text", "language", "entities", "score_threshold", "context", "allow_list", "nlp_artifacts"),
    "presidio_analyzer.RecognizerRegistry.get_recognizers": ("language", "entities", "all_fields"),
    "presidio_analyzer.EntityRecognizer.enhance_using_context": (
        "text", "raw_recognizer_results", "other_raw_recognizer_results", "nlp_artifacts", "context"),
    "presidio_analyzer.PatternRecognizer.analyze": ("text", "entities", "nlp_artifacts"),
    "presidio_analyzer.PatternRecognizer.validate_result": ("pattern_text",),
    "presidio_analyzer.predefined_recognizers.IbanRecognizer.analyze": ("text", "entities", "nlp_artifacts"),
    "presidio_analyzer.predefined_recognizers.PhoneRecognizer.analyze": ("text", "entities", "nlp_artifacts"),
    "presidio_analyzer.context_aware_enhancers.LemmaContextAwareEnhancer.__init__": (
        "context_similarity_factor", "min_score_with_context_similarity", "context_matching_mode"),
    "presidio_analyzer.nlp_engine.SpacyNlpEngine._doc_to_nlp_artifact": ("doc", "language"),
}
#: The upstream constants dpsynth reads.
CONSTANTS = ("presidio_analyzer.predefined_recognizers.PhoneRecognizer.SCORE",)
#: Pattern recognizers that override ``analyze`` but, as read in presidio-analyzer 2.2.x, still return
#: only matches of their own regexes (so the regex screen applies to them).
PATTERN_ONLY_ANALYZE = frozenset({"IbanRecognizer"})


class UnsupportedPresidioError(DPSynthError):
    """The installed presidio-analyzer is not one whose internals dpsynth's PII scan was written against."""


def _installed_version() -> str:
    return importlib.metadata.version("presidio-analyzer")


def _release(version: str) -> tuple[int, ...]:
    """The release numbers of a version: ``2.2.366`` → (2, 2, 366); ``3.0.0rc1`` → (3, 0, 0)."""
    parts: list[int] = []
    for part in version.split("."):
        digits = re.match(r"\d+", part)
        if digits is None:
            break
        parts.append(int(digits.group(0)))
        if digits.end() < len(part):
            break
    return tuple(parts)


def _resolve(dotted: str) -> Any:
    """The object at ``module.Class.attribute`` (the longest importable module prefix)."""
    parts = dotted.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            obj = inspect.getattr_static(obj, name)
            if isinstance(obj, (staticmethod, classmethod)):
                obj = obj.__func__
        return obj
    raise ImportError(dotted)


def problems() -> list[str]:
    """What differs between the installed presidio-analyzer and the one this module was read against."""
    version = _installed_version()
    release = _release(version)
    if not _LOWEST <= release < _BELOW:
        return [f"presidio-analyzer {version} is installed; dpsynth's PII scan supports presidio-analyzer{SUPPORTED}"]
    found: list[str] = []
    for dotted, expected in SIGNATURES.items():
        try:
            params = inspect.signature(_resolve(dotted)).parameters
        except (ImportError, AttributeError, TypeError, ValueError):
            found.append(f"{dotted} is gone")
            continue
        missing = [p for p in expected if p not in params]
        if missing:
            found.append(f"{dotted} no longer takes {', '.join(missing)}")
    for dotted in CONSTANTS:
        try:
            _resolve(dotted)
        except (ImportError, AttributeError):
            found.append(f"{dotted} is gone")
    return [f"presidio-analyzer {version}: {p}" for p in found]


@functools.cache
def check_presidio() -> None:
    """Raise :class:`UnsupportedPresidioError` unless Presidio is what this module expects (checked once).

    Raises:
        UnsupportedPresidioError: a version outside :data:`SUPPORTED`, or a function or constant of
            :data:`SIGNATURES` / :data:`CONSTANTS` gone or changed, named in the message.
    """
    found = problems()
    if found:
        raise UnsupportedPresidioError(
            "; ".join(found) + f" (dpsynth/pii/presidio_compat.py was written against presidio-analyzer{SUPPORTED}: "
            "install a version in that range)")


# -- what a recognizer can do, read off its class -------------------------------------------------


def has_own_context_enhancement(recognizer: Any) -> bool:
    """Whether ``recognizer`` overrides ``EntityRecognizer.enhance_using_context`` (it may then read
    the other recognizers' results, and only ``AnalyzerEngine.analyze`` runs it right)."""
    from presidio_analyzer import EntityRecognizer

    return type(recognizer).enhance_using_context is not EntityRecognizer.enhance_using_context


def returns_regex_matches_only(recognizer: Any) -> bool:
    """Whether ``recognizer``'s results are all matches of its own regexes (``PatternRecognizer.analyze``)."""
    from presidio_analyzer import PatternRecognizer

    return type(recognizer).analyze is PatternRecognizer.analyze


def screen_patterns(recognizer: Any) -> tuple[list[str], Any] | None:
    """A pattern recognizer's regexes and flags when its results can only come from matches of them,
    else ``None``."""
    from presidio_analyzer import PatternRecognizer

    kind = type(recognizer)
    is_pattern = isinstance(recognizer, PatternRecognizer)  # (not narrowed: Presidio's attributes are untyped)
    if not (is_pattern and recognizer.patterns):
        return None
    if not (returns_regex_matches_only(recognizer) or (
            kind.__qualname__ in PATTERN_ONLY_ANALYZE and kind.__module__.startswith("presidio_analyzer."))):
        return None
    return [p.regex for p in recognizer.patterns], recognizer.global_regex_flags


def lemma_enhancement(analyzer: Any) -> tuple[bool, float, float]:
    """``(whether the context enhancer is Presidio's lemma enhancer in substring mode, its score lift, its floor)``."""
    from presidio_analyzer.context_aware_enhancers import LemmaContextAwareEnhancer

    enhancer = analyzer.context_aware_enhancer
    is_lemma = (type(enhancer) is LemmaContextAwareEnhancer
                and getattr(enhancer, "context_matching_mode", "substring") == "substring")
    return (is_lemma, float(getattr(enhancer, "context_similarity_factor", 1.0)),
            float(getattr(enhancer, "min_score_with_context_similarity", 0.0)))


def recognizer_reach(analyzer: Any, recognizer: Any, context_possible: bool) -> float:
    """The highest score ``recognizer`` can give after Presidio's context enhancement (1.0 when
    that cannot be read off the recognizer: it validates matches, or overrides ``analyze`` or
    its own context enhancement)."""
    from presidio_analyzer import PatternRecognizer
    from presidio_analyzer.predefined_recognizers import PhoneRecognizer

    kind = type(recognizer)
    if has_own_context_enhancement(recognizer):
        return 1.0
    is_pattern, is_phone = isinstance(recognizer, PatternRecognizer), isinstance(recognizer, PhoneRecognizer)
    if is_pattern:
        if (kind.analyze is not PatternRecognizer.analyze
                or kind.validate_result is not PatternRecognizer.validate_result
                or not recognizer.patterns):
            return 1.0
        base = max(float(p.score) for p in recognizer.patterns)
    elif is_phone and kind.analyze is PhoneRecognizer.analyze:
        base = float(kind.SCORE)
    else:
        return 1.0
    if not (recognizer.context and context_possible):
        return base
    enhancer = analyzer.context_aware_enhancer
    factor = float(getattr(enhancer, "context_similarity_factor", 1.0))
    floor = float(getattr(enhancer, "min_score_with_context_similarity", 1.0))
    return min(max(base + factor, floor), 1.0)


def doc_to_artifacts(nlp_engine: Any, doc: Any, language: str) -> Any:
    """Presidio's ``NlpArtifacts`` of a spaCy document, as its spaCy engine makes them."""
    return nlp_engine._doc_to_nlp_artifact(doc, language)
