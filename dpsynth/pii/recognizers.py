"""Recognizers dpsynth adds to Presidio's predefined ones.

* :class:`LuhnCreditCardRecognizer`: Presidio's card regex only takes 13–16-digit numbers starting
  with 1, 3, 4, 5 or 6 in 4-digit groups; it misses 12-, 15-, 17-, 18- and 19-digit numbers and
  Mastercard's 2-series. This one takes any 12–19-digit run (or 4-digit groups) and keeps only the
  numbers whose Luhn check digit is right, so an arbitrary long number passes 1 time in 10.
* :class:`NorthAmericanPhoneRecognizer`: Presidio's phone recognizer (python-phonenumbers) keeps
  only numbers valid in the numbering plan, and drops ``+1-…``/``001-…`` numbers with an extension
  or an area code that is not assigned. This one takes the North American shapes (``555-123-4567``,
  ``(555)123-4567``, ``555.123.4567``, with ``+1``/``001`` and ``x1234`` extensions) at a score of
  0.4, below the default threshold: it is reported only with context (a column named ``phone``, or
  ``call``/``phone`` near it in the text), which lifts it to 0.75.

Privacy: reads no data; these are detectors.
"""

from __future__ import annotations

from typing import Any

_CARD_CONTEXT = ["credit", "card", "cc", "visa", "mastercard", "amex", "discover", "jcb", "diners", "maestro",
                 "payment", "pan"]


_PHONE_CONTEXT = ["phone", "number", "telephone", "cell", "cellphone", "mobile", "call", "tel", "fax", "contact"]


def luhn_valid(digits: str) -> bool:
    """Whether a string of digits passes the Luhn check."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def extra_recognizers() -> list[Any]:
    """dpsynth's recognizers, built on Presidio's classes (imported here, inside the extra)."""
    from presidio_analyzer import Pattern, PatternRecognizer

    class LuhnCreditCardRecognizer(PatternRecognizer):
        """Card numbers of 12 to 19 digits, plain or in groups, kept only when the Luhn check passes."""

        PATTERNS = [
            Pattern("card number, 12-19 digits", r"(?<![\w-])\d{12,19}(?![\w-])", 0.3),
            Pattern("card number, 4-digit groups", r"(?<![\w-])\d{4}(?:[ -]\d{4}){2}[ -]\d{1,7}(?![\w-])", 0.3),
            Pattern("card number, 4-6-4/5 groups", r"(?<![\w-])\d{4}[ -]\d{6}[ -]\d{4,5}(?![\w-])", 0.3),
        ]

        def __init__(self) -> None:
            super().__init__(supported_entity="CREDIT_CARD", name="LuhnCreditCardRecognizer",
                             patterns=self.PATTERNS, context=_CARD_CONTEXT, supported_language="en")

        def validate_result(self, pattern_text: str) -> bool:
            digits = "".join(ch for ch in pattern_text if ch.isdigit())
            return 12 <= len(digits) <= 19 and len(set(digits)) > 1 and luhn_valid(digits)

    class NorthAmericanPhoneRecognizer(PatternRecognizer):
        """North American phone numbers by shape; 0.4 without context, so reported only with it."""

        PATTERNS = [
            Pattern(
                "NANP phone number",
                r"(?<![\w+])(?:(?:\+1|001|1)[-. ]?)?(?:\(\d{3}\) ?|\d{3}[-. ])\d{3}[-. ]\d{4}"
                r"(?:\s?(?:x|ext\.?)\s?\d{1,5})?(?!\w)",
                0.4,
            ),
        ]

        def __init__(self) -> None:
            super().__init__(supported_entity="PHONE_NUMBER", name="NorthAmericanPhoneRecognizer",
                             patterns=self.PATTERNS, context=_PHONE_CONTEXT, supported_language="en")

    return [LuhnCreditCardRecognizer(), NorthAmericanPhoneRecognizer()]
