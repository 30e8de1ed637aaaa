"""What can match a value, decided before Presidio runs: the characters an entity type needs, and
the regex screen of pattern recognizers.

* a value is only asked for the entity types it can hold (no ``@``: no e-mail address; no digit: no
  card, SSN, phone …): :func:`features` and :data:`NEEDS`;
* a pattern recognizer is only run where one of its own regexes matches somewhere in the value
  (same ``regex`` module, same flags; joined into one alternation where nothing forbids it):
  :class:`RegexScreens`.

Both are exact (a pattern recognizer's results are matches of its regexes); tests compare the scan
with Presidio's full answer.

Privacy: reads the values it is given; returns booleans.
"""

from __future__ import annotations

import re
from typing import Any

from dpsynth.pii import presidio_compat

#: Characters a value must hold for an entity type to be possible (pattern recognizers).
#: Types not listed are always asked for. A test checks that the prefilter changes no result.
DIGIT = "digit"
DOT_LETTER = ".letter"
_DOT_LETTER_RE = re.compile(r"\.[^\W\d_]")
NEEDS: dict[str, tuple[str, ...]] = {
    "EMAIL_ADDRESS": ("@",),
    # Presidio's URL patterns all hold ``[.]`` followed by a top-level domain made of letters
    # (case-insensitive, so a Unicode letter that folds to one counts).
    "URL": (DOT_LETTER,),
    "IP_ADDRESS": (DIGIT, ":"),
    "MAC_ADDRESS": (":", "-", "."),
    **{name: (DIGIT,) for name in (
        "CREDIT_CARD", "US_SSN", "US_ITIN", "US_BANK_NUMBER", "US_PASSPORT", "US_DRIVER_LICENSE", "UK_NHS",
        "IBAN_CODE", "PHONE_NUMBER", "MEDICAL_LICENSE", "UUID", "CRYPTO", "DATE_TIME",
    )},
}
_SCREEN_TIMEOUT = 1.0
#: What keeps a recognizer's regexes out of one alternation: backreferences and group names (their
#: numbers and names would clash or shift), inline flags (they may apply to the whole pattern).
_NOT_JOINABLE = re.compile(r"\\[1-9]|\\g|\(\?[a-zA-Z^]|\(\?<[a-zA-Z_]")


def features(text: str) -> frozenset[str]:
    """The characters of :data:`NEEDS` that ``text`` holds (``digit`` for any digit, ``.letter`` for
    a dot followed by a letter)."""
    out = {ch for ch in "@.:-" if ch in text}
    if any(ch.isdigit() for ch in text):
        out.add(DIGIT)
    if "." in out and _DOT_LETTER_RE.search(text):
        out.add(DOT_LETTER)
    return frozenset(out)


def _regex() -> Any:
    """The ``regex`` module, which Presidio's pattern recognizers use (a dependency of Presidio)."""
    import regex

    return regex


def screen_matches(screen: tuple[Any, ...], text: str) -> bool:
    """Whether one of a screen's regexes matches somewhere in ``text`` (``True`` on a time-out)."""
    try:
        for pattern in screen:
            if pattern.search(text, timeout=_SCREEN_TIMEOUT) is not None:
                return True
    except TimeoutError:  # pragma: no cover - pathological input: let Presidio decide
        return True
    return False


def compile_screen(patterns: list[str], flags: Any) -> tuple[Any, ...]:
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


class RegexScreens:
    """The compiled screens of the recognizers seen so far, by recognizer id."""

    def __init__(self) -> None:
        self._screens: dict[str, tuple[Any, ...] | None] = {}

    def of(self, recognizer: Any) -> tuple[Any, ...] | None:
        """Compiled copies of a pattern recognizer's regexes (same module, same flags), or ``None``
        when its results can come from something else than a match of one of them."""
        key = recognizer.id
        if key not in self._screens:
            source = presidio_compat.screen_patterns(recognizer)
            self._screens[key] = compile_screen(*source) if source is not None else None
        return self._screens[key]

    def may_match(self, recognizer: Any, text: str) -> bool:
        """``False`` only when ``recognizer`` cannot return a result for ``text``: none of its regexes
        matches it (a pattern recognizer's results are matches of its regexes)."""
        screen = self.of(recognizer)
        return screen is None or screen_matches(screen, text)
