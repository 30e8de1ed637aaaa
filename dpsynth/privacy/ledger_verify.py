"""Checking a ledger: the whole chain (``ledger verify``), and the quick check before a charge.

``verify_rows`` walks every entry: the sequence has no gap, each entry names its predecessor's
hash, each matches its own hash and (sealed) its keyed MAC, and the head names the last entry and
matches its MAC. An anchor (an entry's number and hash copied aside earlier) must still be in the
chain: that finds a ledger put back whole to an earlier copy, which every row of that copy would
otherwise pass.

``check_before_charge`` is what every write does first, in the writer's transaction: the head
matches its MAC, the entries number exactly 1 … head, the newest entry matches the head, its hash
and its MAC, and, for a charge, the dataset's registration and cap changes match their hashes and
MACs (the cap is read from their content), and either what the charge adds up (the dataset's
account) equals its sealed account, or every entry of the dataset matches its MAC (which covers
the columns the charge adds up). It reads no reservation's content, so a charge stays quick on a
long history; ``ledger verify`` checks the rest.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from dpsynth.privacy.ledger_seal import LedgerTamperedError, entry_mac, head_mac, key_id, same
from dpsynth.privacy.ledger_store import GENESIS, LedgerError

#: the columns of an entry, in the order ``verify_rows`` reads them
ROW_COLUMNS = ("seq, created_at, kind, dataset, rho, content, prev_hash, hash, additive_delta, rdp, "
               "additive_epsilon, mac")


def canonical(obj: Any) -> str:
    """The canonical JSON text that entry hashes are computed over."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def entry_hash(
    seq: int, created_at: str, kind: str, dataset: str, rho: float, content: str, prev: str,
    additive_delta: float = 0.0, rdp: str = "", additive_epsilon: float = 0.0,
) -> str:
    """The SHA-256 of an entry's canonical fields (a column at its default is left out, as before it existed)."""
    fields: dict[str, Any] = {"seq": seq, "created_at": created_at, "kind": kind, "dataset": dataset, "rho": rho,
                              "content": content, "prev_hash": prev}
    # An entry without an additive δ hashes exactly as before the column existed, so old chains
    # still verify; one with a δ covers it, so setting it to 0 (or giving an old entry one) shows.
    if additive_delta:
        fields["additive_delta"] = additive_delta
    if rdp:  # likewise for the Rényi-DP curve of a DP-SGD reservation
        fields["rdp"] = rdp
    if additive_epsilon:  # and for the additive ε of (ε, δ) claims
        fields["additive_epsilon"] = additive_epsilon
    return hashlib.sha256(canonical(fields).encode("utf-8")).hexdigest()


@dataclass
class VerifyResult:
    """What ``Ledger.verify`` found. ``head`` is the entry number and hash to copy aside (an anchor)."""

    ok: bool
    entries: int
    first_bad: int | None = None
    problem: str = ""
    #: the entries and the head carry keyed MACs, and they were checked
    sealed: bool = False
    head: dict[str, Any] = field(default_factory=dict)
    #: the anchor checked, if one was given: {"seq", "hash", "ok"}
    anchor: dict[str, Any] | None = None


def _row_hash(row: Sequence[Any]) -> str:
    seq, created_at, kind, dataset, rho, content, prev_hash, _digest, additive_delta, rdp, additive_epsilon = row[:11]
    return entry_hash(int(seq), created_at, kind, dataset, float(rho), content, prev_hash, float(additive_delta),
                      rdp or "", float(additive_epsilon))


def _row_mac(key: bytes, row: Sequence[Any]) -> str:
    seq, _c, kind, dataset, rho, _t, _p, digest, additive_delta, rdp, additive_epsilon = row[:11]
    return entry_mac(key, int(seq), kind, dataset, float(rho), float(additive_delta), float(additive_epsilon),
                     rdp or "", digest)


def verify_rows(stored: Sequence[Sequence[Any]], head: Sequence[Any] | None, key: bytes | None,
                anchor: tuple[int, str] | None = None) -> VerifyResult:
    """Check ``stored``, the entries' database rows (``ROW_COLUMNS``, by seq), and ``head`` (seq, hash, key id, MAC).

    ``key`` is needed (and must be the head's) when the head names one; the caller checks that.
    """
    n = len(stored)
    sealed = head is not None and bool(head[2])
    anchor_info: dict[str, Any] | None = None if anchor is None else {"seq": anchor[0], "hash": anchor[1], "ok": False}

    def bad(first: int, problem: str) -> VerifyResult:
        return VerifyResult(False, n, first, problem, sealed, _head(head), anchor_info)

    if head is None:
        return bad(1, "the ledger's head row is missing")
    seal_key = key if sealed else None  # MACs are checked only on a sealed ledger, with its key
    prev = GENESIS
    for i, row in enumerate(stored, start=1):
        problem = _entry_problem(i, row, prev, seal_key)
        if problem is not None:
            return bad(i, problem)
        if anchor_info is not None and i == anchor_info["seq"]:
            anchor_info["ok"] = same(row[7], anchor_info["hash"])
        prev = row[7]
    found = _head_problem(head, n, prev, seal_key) or _anchor_problem(anchor_info, n)
    if found is not None:
        return bad(*found)
    return VerifyResult(True, n, None, "", sealed, _head(head), anchor_info)


def _entry_problem(i: int, row: Sequence[Any], prev: str, key: bytes | None) -> str | None:
    """What is wrong with entry ``i`` (stored as ``row``, after an entry of hash ``prev``), or None."""
    seq, kind, dataset = int(row[0]), row[2], row[3]
    if seq != i:
        return f"entry {i} is missing (the next stored entry is {seq}): deleted or renumbered"
    if row[6] != prev:
        return (f"entry {i} does not follow entry {i - 1} (its predecessor hash differs): an entry "
                "before it was changed, deleted or moved")
    if _row_hash(row) != row[7]:
        return f"entry {i} ({kind}, dataset {dataset!r}) does not match its hash: it was edited"
    if key is not None and not same(_row_mac(key, row), row[11] or ""):
        return (f"entry {i} ({kind}, dataset {dataset!r}) does not match its seal: it was written or "
                "rewritten without the ledger's key")
    return None


def _head_problem(head: Sequence[Any], n: int, last_hash: str, key: bytes | None) -> tuple[int, str] | None:
    """The first bad entry number and the problem of a head that does not close the ``n`` entries, or None."""
    head_seq, head_hash = int(head[0]), head[1]
    if head_seq > n:
        return n + 1, (f"the ledger head records entry {head_seq} but {n} entries remain: entries after {n} "
                       "were deleted")
    if head_seq < n:
        return head_seq + 1, (f"the ledger head records entry {head_seq} but {n} entries are stored: the head "
                              "was set back, or entries were added behind the ledger's back")
    if not same(head_hash, last_hash):
        return n, f"the ledger head's hash is not entry {n}'s: the head was changed"
    if key is not None and not same(head_mac(key, head_seq, head_hash, head[2]), head[3] or ""):
        return n + 1, ("the ledger head does not match its seal: it was set back or rewritten without the "
                       "ledger's key (entries after it deleted, or the ledger emptied)")
    return None


def _anchor_problem(anchor: dict[str, Any] | None, n: int) -> tuple[int, str] | None:
    """The first bad entry number and the problem of an anchor (checked while walking) not in the chain, or None."""
    if anchor is None:
        return None
    seq = anchor["seq"]
    if seq > n:
        return n + 1, (f"the anchor names entry {seq} but the ledger has {n}: entries after {n} were "
                       "deleted, or the ledger was put back to an earlier copy or replaced")
    if not anchor["ok"]:
        return seq, f"entry {seq} is not the anchor's: the ledger was put back to an earlier copy or replaced"
    return None


def _head(head: Sequence[Any] | None) -> dict[str, Any]:
    return {} if head is None else {"seq": int(head[0]), "hash": head[1]}


def _damaged(url: str, what: str) -> LedgerTamperedError:
    return LedgerTamperedError(f"ledger {url!r} is damaged: {what}; nothing was charged or changed "
                               "(dpsynth ledger verify names the first bad entry)")


def check_before_charge(cur: Any, sql: Callable[[str], str], key: bytes, head: Sequence[Any], url: str,
                        dataset: str | None) -> None:
    """Refuse to write on a damaged ledger (see the module's docstring); ``head`` is (seq, hash,
    key id, MAC) as read in this transaction, and ``key`` the ledger's (its id checked). With a
    ``dataset``, its registration and cap entries are checked too; its other entries are
    :func:`check_entries`'s."""
    def damaged(what: str) -> LedgerTamperedError:
        return _damaged(url, what)

    head_seq, head_hash, kid, mac = int(head[0]), head[1], head[2], head[3] or ""
    if not same(head_mac(key, head_seq, head_hash, kid), mac):
        raise damaged("its head does not match its seal (set back, or rewritten without the key)")
    cur.execute("SELECT COUNT(*), COALESCE(MAX(seq), 0), COALESCE(MIN(seq), 1) FROM dpsynth_ledger_entries")
    count, last, first = (int(v) for v in cur.fetchone())
    if count != head_seq or last != head_seq or first != 1:
        raise damaged(f"it holds {count} entries numbered {first}–{last} where its head records {head_seq}")
    if head_seq:
        cur.execute(sql(f"SELECT {ROW_COLUMNS} FROM dpsynth_ledger_entries WHERE seq = ?"), (head_seq,))
        row = cur.fetchone()
        if not same(row[7], head_hash) or _row_hash(row) != row[7] or not same(_row_mac(key, row), row[11] or ""):
            raise damaged(f"its newest entry ({head_seq}) does not match the head, its hash or its seal")
    if dataset is None:
        return
    # The registration and the cap changes, with their content (the charge reads the cap from it).
    cur.execute(sql(f"SELECT {ROW_COLUMNS} FROM dpsynth_ledger_entries WHERE dataset = ? "
                    "AND kind IN ('dataset', 'cap') ORDER BY seq"), (dataset,))
    for row in cur.fetchall():
        if not same(_row_mac(key, row), row[11] or ""):
            raise damaged(f"entry {int(row[0])} ({row[2]}, dataset {dataset!r}) does not match its seal")
        if _row_hash(row) != row[7]:
            raise damaged(f"entry {int(row[0])} ({row[2]}, dataset {dataset!r}) does not match its hash")


def check_entries(cur: Any, sql: Callable[[str], str], key: bytes, url: str, dataset: str) -> None:
    """Refuse a charge of ``dataset`` if one of its entries other than the registration and the cap
    changes does not match its MAC (which covers the columns a charge adds up; no content is read)."""
    cur.execute(sql("SELECT seq, created_at, kind, dataset, rho, '', prev_hash, hash, additive_delta, rdp, "
                    "additive_epsilon, mac FROM dpsynth_ledger_entries WHERE dataset = ? "
                    "AND kind NOT IN ('dataset', 'cap') ORDER BY seq"), (dataset,))
    for row in cur.fetchall():
        if not same(_row_mac(key, row), row[11] or ""):
            raise _damaged(url, f"entry {int(row[0])} ({row[2]}, dataset {dataset!r}) does not match its seal")


def check_key(head: Sequence[Any], key: bytes, describe: str, url: str) -> None:
    """Refuse a key that is not the one ``head`` was sealed with."""
    if not same(key_id(key), head[2]):
        raise LedgerError(f"the key in {describe} is not the key of ledger {url!r}")
