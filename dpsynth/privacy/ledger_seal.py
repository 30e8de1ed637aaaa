"""The ledger's seal: a key kept outside the database, and the keyed MACs that it puts on every
entry and on the head.

A plain hash chain shows an edit only to someone who does not recompute the hashes: whoever can
write the database can also rebuild the chain, or delete the newest entries and set the head
back. A sealed ledger adds, with a 32-byte key that is *not* in the database,

* on every entry: ``mac`` = HMAC-SHA256(key, [seq, kind, dataset, ρ, additive δ, additive ε,
  Rényi-DP curve, entry hash]). The entry hash covers the rest (time, content, predecessor), so
  the MAC covers the whole entry, and the charge can check the columns it adds up without
  parsing each entry's content;
* on the head: ``mac`` = HMAC-SHA256(key, [seq, hash, key id]), and the key's id (an HMAC of a
  constant), so that a wrong key is named as such rather than as damage everywhere.

Without the key nobody can write an entry or a head that verifies: deleting entries and setting
the head back, emptying the ledger, editing an entry and rebuilding the chain all show. What the
seal cannot show: a ledger put back whole to an earlier copy of itself (every row of that copy
verifies; compare the head with one copied aside, ``ledger verify --anchor``), and anything done
by someone who holds the key.

Where the key is, first found first:

1. ``$DPSYNTH_LEDGER_KEY``: 64 hexadecimal characters (a CI secret, say);
2. ``$DPSYNTH_LEDGER_KEY_FILE``, or the ``key_file`` a caller gives: a file holding them;
3. the ledger's own key file: ``PATH.key`` beside a SQLite ledger ``PATH``, and for PostgreSQL
   ``$XDG_CONFIG_HOME/dpsynth/ledger-keys/<hash of the URL without its password>.key``
   (``~/.config`` without ``XDG_CONFIG_HOME``). Only this file is made by ``ledger create``
   (mode 0600), and only for a ledger that does not exist yet: its existence without its ledger
   says the ledger was deleted or moved, and nothing makes a fresh ledger under it.

A team sharing a PostgreSQL ledger shares the key (a file, or the environment variable): a
machine without it can show and verify nothing keyed, and charge nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from dpsynth.privacy.ledger_store import LedgerError
from dpsynth.privacy.redact import redact_url

KEY_ENV = "DPSYNTH_LEDGER_KEY"
KEY_FILE_ENV = "DPSYNTH_LEDGER_KEY_FILE"
_KEY_HEX = re.compile(r"[0-9a-fA-F]{64}")


class LedgerTamperedError(LedgerError):
    """The ledger was changed behind dpsynth's back: nothing is charged on it."""


@dataclass(frozen=True)
class KeySource:
    """Where a ledger's key is (never the key)."""

    #: the key file; None when the key is in the environment
    path: Path | None
    #: the ledger's own key file (made by ``ledger create``), not one the user named
    own: bool

    def describe(self) -> str:
        """Where the key is, for a message."""
        return f"${KEY_ENV}" if self.path is None else f"key file {str(self.path)!r}"


def key_source(url: str, key_file: str | os.PathLike[str] | None = None) -> KeySource:
    """Where the key of the ledger at ``url`` is looked for (see the module's docstring)."""
    if key_file is not None:
        return KeySource(Path(key_file), own=False)
    if os.environ.get(KEY_ENV):
        return KeySource(None, own=False)
    if os.environ.get(KEY_FILE_ENV):
        return KeySource(Path(os.environ[KEY_FILE_ENV]), own=False)
    if url.startswith("sqlite:///"):
        return KeySource(Path(url[len("sqlite:///"):] + ".key"), own=True)
    config = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    name = hashlib.sha256(redact_url(url).encode("utf-8")).hexdigest()[:32]
    return KeySource(config / "dpsynth" / "ledger-keys" / f"{name}.key", own=True)


def _parse(text: str, source: KeySource) -> bytes:
    text = text.strip()
    if not _KEY_HEX.fullmatch(text):  # the text is not repeated: it may be a mistyped key
        raise LedgerError(f"{source.describe()} must hold 64 hexadecimal characters (a ledger key)")
    return bytes.fromhex(text)


def read_key(source: KeySource) -> bytes | None:
    """The key, or None when there is none where ``source`` says."""
    if source.path is None:
        return _parse(os.environ.get(KEY_ENV, ""), source)
    try:
        with open(source.path, "rb") as fh:
            raw = fh.read(257)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise LedgerError(f"{source.describe()} cannot be read: {exc.strerror or exc.__class__.__name__}") from None
    try:
        return _parse(raw.decode("ascii"), source)
    except UnicodeDecodeError:
        raise LedgerError(f"{source.describe()} must hold 64 hexadecimal characters (a ledger key)") from None


def make_key(source: KeySource) -> bytes:
    """The key for a new ledger: the one ``source`` names if there is one, else a new own key file.

    An own key file that already exists is refused: its ledger was deleted or moved (or an earlier
    ``create`` was interrupted), and a fresh ledger must not quietly take its place.
    """
    key = read_key(source)
    if key is not None:
        if source.own:
            raise LedgerError(f"the ledger's {source.describe()} exists but its ledger does not (deleted or moved?): "
                              "restore the ledger, or remove the key file to start a new one")
        return key
    if source.path is None:  # pragma: no cover - read_key raised already
        raise LedgerError(f"{source.describe()} is empty")
    if source.own:
        source.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = os.urandom(32)
    try:
        fd = os.open(source.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise LedgerError(f"{source.describe()} appeared while the ledger was being created: try again") from None
    except OSError as exc:
        raise LedgerError(f"{source.describe()} cannot be written: {exc.strerror or exc.__class__.__name__}") from None
    try:
        os.write(fd, (key.hex() + "\n").encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    _fsync_folder(source.path.parent)
    return key


def _fsync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - a folder we just wrote into
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some file systems refuse fsync on folders
        pass
    finally:
        os.close(fd)


def key_id(key: bytes) -> str:
    """A public name of ``key``: whoever has the key can tell it is this ledger's."""
    return hmac.new(key, b"dpsynth ledger key id", hashlib.sha256).hexdigest()[:32]


def _mac(key: bytes, fields: list[object]) -> str:
    text = json.dumps(fields, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).hexdigest()


def entry_mac(key: bytes, seq: int, kind: str, dataset: str, rho: float, additive_delta: float,
              additive_epsilon: float, rdp: str, digest: str) -> str:
    """The keyed MAC of an entry: its number, the columns a charge adds up, and its hash."""
    return _mac(key, ["entry", int(seq), kind, dataset, float(rho), float(additive_delta), float(additive_epsilon),
                      rdp or "", digest])


def account_mac(key: bytes, dataset: str, digest: str) -> str:
    """The keyed MAC of a dataset's sealed account (:func:`~dpsynth.privacy.ledger_charge.account_digest`)."""
    return _mac(key, ["account", dataset, digest])


def head_mac(key: bytes, seq: int, digest: str, kid: str) -> str:
    """The keyed MAC of the head: the newest entry's number and hash, and the key's id."""
    return _mac(key, ["head", int(seq), digest, kid])


def same(a: str, b: str) -> bool:
    """``a == b``, in constant time."""
    return hmac.compare_digest(str(a).encode("utf-8"), str(b).encode("utf-8"))
