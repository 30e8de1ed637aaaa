"""Keyed fingerprints of private inputs: an HMAC of their SHA-256 that may travel with a release.

A ledger keeps the plain SHA-256 of each private input and a secret of its own (32 random bytes,
in its own table, created on first need); the fingerprint that leaves is HMAC-SHA256(secret,
SHA-256). Without the secret it cannot be tested against guesses of the input, so it leaks no
fingerprint of the data. A fit without a ledger keys it with a secret drawn once per process and
never stored.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import threading
from collections.abc import Callable
from typing import Any

from dpsynth.exceptions import ParameterError
from dpsynth.privacy.ledger_store import Backend, LedgerError
from dpsynth.privacy.redact import redact_url

__all__ = ["FINGERPRINT_PREFIX", "keyed_fingerprint", "ledger_secret", "process_secret", "sha256_digest"]

#: Prefix of a keyed fingerprint (:meth:`~dpsynth.privacy.ledger.Ledger.keyed_fingerprint`).
FINGERPRINT_PREFIX = "hmac-sha256:"
_SHA256_HEX = re.compile(r"[0-9A-Fa-f]{64}")

_PROCESS_SECRET: tuple[int, bytes] | None = None
_PROCESS_SECRET_LOCK = threading.Lock()


def keyed_fingerprint(secret: Callable[[], bytes], sha256_hex: str) -> str:
    """``"hmac-sha256:"`` + HMAC-SHA256(``secret()``, the 32 bytes of ``sha256_hex``) in hex; ``secret``
    is asked only once ``sha256_hex`` is known to be well formed.

    Raises:
        ParameterError: ``sha256_hex`` is not 64 hexadecimal characters (the message does not repeat it).
    """
    digest = sha256_digest(sha256_hex)
    return FINGERPRINT_PREFIX + hmac.new(secret(), digest, hashlib.sha256).hexdigest()


def sha256_digest(sha256_hex: object) -> bytes:
    """The 32 bytes of a SHA-256 given in hex; the value is not repeated in the error (it could be
    a fingerprint of private data)."""
    if not isinstance(sha256_hex, str) or not _SHA256_HEX.fullmatch(sha256_hex):
        raise ParameterError("input_sha256 must be 64 hexadecimal characters")
    return bytes.fromhex(sha256_hex)


def process_secret() -> bytes:
    """32 random bytes drawn once per process (a forked child draws its own)."""
    global _PROCESS_SECRET
    with _PROCESS_SECRET_LOCK:
        if _PROCESS_SECRET is None or _PROCESS_SECRET[0] != os.getpid():
            _PROCESS_SECRET = (os.getpid(), secrets.token_bytes(32))
        return _PROCESS_SECRET[1]


def ledger_secret(db: Backend, url: str) -> bytes:
    """The fingerprint key of the ledger in ``db``, created in its table on first need (one per
    ledger, also when several processes ask at once: the table's primary key admits one row and the
    first writer's is kept).

    Raises:
        LedgerError: the stored secret is not 32 bytes.
    """
    select = "SELECT secret FROM dpsynth_ledger_secret WHERE id = 1"
    row: Any
    with db.read() as cur:
        cur.execute(select)
        row = cur.fetchone()
    if row is None:
        with db.write() as cur:  # one writer at a time; the primary key keeps one row
            cur.execute(db.sql("INSERT INTO dpsynth_ledger_secret (id, secret) VALUES (1, ?) "
                               "ON CONFLICT (id) DO NOTHING"), (secrets.token_hex(32),))
            cur.execute(select)
            row = cur.fetchone()
    key = bytes.fromhex(str(row[0]))
    if len(key) != 32:
        raise LedgerError(f"ledger {redact_url(url)!r} holds a fingerprint secret that is not 32 bytes")
    return key
