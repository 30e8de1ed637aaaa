"""Masking of detected values for reports: enough shape to recognise what was found, never the value.

Privacy: every example a scan reports passes through :func:`mask`; it keeps at most the first
letter of each word of three letters or more, the top-level domain of an e-mail address, and the
punctuation; every digit is masked.
"""

from __future__ import annotations

import re

MAX_EXAMPLE_LENGTH = 40
_RUN = re.compile(r"[^\W_]+")


def _mask_word(word: str) -> str:
    if len(word) >= 3 and word[0].isalpha():
        return word[0] + "*" * (len(word) - 1)
    return "*" * len(word)


def _mask_email(text: str) -> str:
    local, _, domain = text.rpartition("@")
    labels = domain.split(".")
    tld = labels[-1] if len(labels) > 1 and labels[-1].isalpha() and len(labels[-1]) <= 6 else None
    masked = [_mask_word(label) if label else "" for label in (labels[:-1] if tld else labels)]
    return _mask_word(local) + "@" + ".".join(masked + ([tld] if tld else []))


def mask(text: str) -> str:
    """A masked form of ``text``: ``john.doe@example.com`` → ``j***.d**@e******.com``,
    ``John Smith`` → ``J*** S****``, ``123-45-6789`` → ``***-**-****``.

    Long texts are cut to :data:`MAX_EXAMPLE_LENGTH` characters (after masking).
    """
    text = str(text)
    if re.fullmatch(r"[^\s@]+@[^\s@]+\.[^\s@]+", text):
        local, _, domain = text.rpartition("@")
        out = "".join(_mask_word(w) if _RUN.fullmatch(w) else w for w in re.split(r"([^\W_]+)", local))
        out = out + "@" + _mask_email("x@" + domain).partition("@")[2]
    else:
        out = _RUN.sub(lambda m: _mask_word(m.group(0)), text)
    out = re.sub(r"\s+", " ", out)
    if out == text:  # nothing to mask (punctuation only): show its length, not the text
        out = "*" * len(text)
    return out if len(out) <= MAX_EXAMPLE_LENGTH else out[: MAX_EXAMPLE_LENGTH - 1] + "…"
