"""Ledger URLs as they may be shown: without the password a ``postgresql://`` URL may carry."""

from __future__ import annotations

import re

__all__ = ["redact_url"]


def redact_url(url: str) -> str:
    """``url`` without its password (``//user:***@host``); any other URL comes back unchanged."""
    return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", url)
