"""The hash chain of a ledger and its seal: appending an entry, the check before every write,
sealing an older ledger, and verifying the whole chain.

Each entry holds the SHA-256 of its canonical content and of its predecessor's; the head row holds
the last one. A sealed ledger also carries a keyed MAC (:mod:`~dpsynth.privacy.ledger_seal`) on every
entry and on the head, with a key kept outside the database. :class:`Chain` is the part of a
:class:`~dpsynth.privacy.ledger.Ledger` that writes and checks them; the checks themselves are
:mod:`~dpsynth.privacy.ledger_verify`'s.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from dpsynth.exceptions import InternalError
from dpsynth.privacy.budgets import RDP
from dpsynth.privacy.ledger_seal import (
    KeySource,
    LedgerTamperedError,
    account_mac,
    entry_mac,
    head_mac,
    key_id,
    make_key,
    read_key,
    same,
)
from dpsynth.privacy.ledger_store import ACCOUNTS_TABLE, GENESIS, Backend, LedgerError
from dpsynth.privacy.ledger_verify import (
    ROW_COLUMNS,
    VerifyResult,
    canonical,
    check_before_charge,
    check_entries,
    check_key,
    entry_hash,
    verify_rows,
)
from dpsynth.privacy.redact import redact_url

__all__ = ["Chain"]


class Chain:
    """The entries of the ledger in ``db`` at ``url``, sealed with the key ``key_source`` names (read
    when first needed)."""

    def __init__(self, db: Backend, url: str, key_source: KeySource):
        self.db = db
        self.url = url
        self.key_source = key_source
        self.key: bytes | None = None

    def seal_new(self, cur: Any) -> None:
        """Seal a ledger being created (in its creating transaction): its key, and the head's MAC."""
        key = make_key(self.key_source)
        kid = key_id(key)
        cur.execute(self.db.sql("UPDATE dpsynth_ledger_head SET key_id = ?, mac = ? WHERE id = 1"),
                    (kid, head_mac(key, 0, GENESIS, kid)))
        self.key = key

    @staticmethod
    def head(cur: Any) -> tuple[Any, ...] | None:
        """The head row: (seq, hash, key id, MAC), or None when it is missing."""
        cur.execute("SELECT seq, hash, key_id, mac FROM dpsynth_ledger_head WHERE id = 1")
        row = cur.fetchone()
        return None if row is None else tuple(row)

    def own_key_exists(self) -> bool:
        """Whether the ledger's own key file (beside a SQLite ledger) exists."""
        src = self.key_source
        return src.own and src.path is not None and src.path.exists()

    def ledger_key(self, head: Sequence[Any]) -> bytes:
        """The key of this (sealed) ledger, checked against the head's key id."""
        if self.key is None:
            key = read_key(self.key_source)
            if key is None:
                raise LedgerError(
                    f"the key of ledger {redact_url(self.url)!r} was not found ({self.key_source.describe()}): give "
                    "it with $DPSYNTH_LEDGER_KEY_FILE or $DPSYNTH_LEDGER_KEY")
            check_key(head, key, self.key_source.describe(), redact_url(self.url))
            self.key = key
        return self.key

    def guard(self, cur: Any, dataset: str | None,
              account: Callable[[], str | None] | None = None) -> tuple[Any, ...]:
        """What every write does first: refuse an unsealed or damaged ledger; return its head.

        With a ``dataset``, its entries are checked one by one (:func:`check_entries`) unless
        ``account()`` (what a charge of it adds up, :func:`~dpsynth.privacy.ledger_charge.account_digest`,
        computed after the registration and cap entries passed their checks) equals its sealed
        account: then no change to those entries can change what the charge decides, and
        ``ledger verify`` still finds it."""
        url = redact_url(self.url)
        head = self.head(cur)
        if head is None:
            raise LedgerTamperedError(f"ledger {url!r} is damaged: its head row is missing; nothing "
                                      "was charged or changed")
        if not head[2]:
            if self.own_key_exists():
                raise LedgerTamperedError(
                    f"ledger {url!r} is damaged: it has no seal, but its key file exists (its seal was "
                    "removed); nothing was charged or changed")
            raise LedgerError(f"ledger {url!r} was made by an older dpsynth and is not sealed: run "
                              "'dpsynth ledger seal' once (it checks the chain and keys every entry)")
        key = self.ledger_key(head)
        check_before_charge(cur, self.db.sql, key, head, url, dataset)
        if dataset is not None:
            digest = None if account is None else account()
            if digest is None or self.sealed_account(cur, key, dataset) != digest:
                check_entries(cur, self.db.sql, key, url, dataset)
        return head

    def sealed_account(self, cur: Any, key: bytes, dataset: str) -> str | None:
        """The digest of ``dataset``'s sealed account when its MAC holds, else None (none sealed, a
        ledger made before accounts were sealed, or a row written without the key)."""
        if "dpsynth_ledger_accounts" not in self.db.tables(cur):
            return None
        cur.execute(self.db.sql("SELECT digest, mac FROM dpsynth_ledger_accounts WHERE dataset = ?"), (dataset,))
        row = cur.fetchone()
        if row is None or not same(account_mac(key, dataset, row[0]), row[1]):
            return None
        return str(row[0])

    def seal_account(self, cur: Any, dataset: str, digest: str | None) -> None:
        """Seal ``digest`` as ``dataset``'s account (in the writer's transaction, after a charge)."""
        if digest is None or self.key is None:
            return
        cur.execute(ACCOUNTS_TABLE)  # a ledger made before accounts were sealed gains the table
        cur.execute(self.db.sql("DELETE FROM dpsynth_ledger_accounts WHERE dataset = ?"), (dataset,))
        cur.execute(self.db.sql("INSERT INTO dpsynth_ledger_accounts (dataset, digest, mac) VALUES (?, ?, ?)"),
                    (dataset, digest, account_mac(self.key, dataset, digest)))

    def seal(self) -> int:
        """Seal a ledger made before ledgers were sealed (see :meth:`~dpsynth.privacy.ledger.Ledger.seal`)."""
        url = redact_url(self.url)
        with self.db.write() as cur:
            head = self.head(cur)
            if head is not None and head[2]:
                raise LedgerError(f"ledger {url!r} is sealed already")
            cur.execute(f"SELECT {ROW_COLUMNS} FROM dpsynth_ledger_entries ORDER BY seq")
            stored = cur.fetchall()  # the entries' database rows, in order
            result = verify_rows(stored, head, None)
            if not result.ok:
                raise LedgerTamperedError(f"ledger {url!r} cannot be sealed: {result.problem}")
            if self.own_key_exists():
                raise LedgerTamperedError(
                    f"ledger {url!r} has no seal, but its key file exists: its seal was removed (or an "
                    "earlier seal was interrupted); remove the key file to seal it again")
            if head is None:
                raise InternalError(f"ledger {url!r}: a ledger without its head row passed the chain check")
            key = make_key(self.key_source)
            sql = self.db.sql
            for row in stored:
                cur.execute(sql("UPDATE dpsynth_ledger_entries SET mac = ? WHERE seq = ?"), (
                    entry_mac(key, int(row[0]), row[2], row[3], float(row[4]), float(row[8]), float(row[10]),
                              row[9] or "", row[7]), int(row[0])))
            kid = key_id(key)
            cur.execute(sql("UPDATE dpsynth_ledger_head SET key_id = ?, mac = ? WHERE id = 1"),
                        (kid, head_mac(key, int(head[0]), head[1], kid)))
        self.key = key
        return len(stored)

    def append(
        self, cur: Any, head: Sequence[Any], kind: str, dataset: str, rho: float, content: dict[str, Any],
        additive_delta: float = 0.0, rdp: RDP | None = None, additive_epsilon: float = 0.0,
    ) -> int:
        """Append one entry after ``head`` (what :meth:`guard` returned in this transaction)."""
        sql = self.db.sql
        key = self.ledger_key(head)
        last_seq, last_hash = int(head[0]), head[1]
        seq = last_seq + 1
        created_at = datetime.now(UTC).isoformat(timespec="microseconds")
        text = canonical(content)
        curve = canonical(rdp.to_dict()) if rdp is not None else ""
        digest = entry_hash(seq, created_at, kind, dataset, float(rho), text, last_hash, float(additive_delta), curve,
                            float(additive_epsilon))
        mac = entry_mac(key, seq, kind, dataset, float(rho), float(additive_delta), float(additive_epsilon), curve,
                        digest)
        cur.execute(
            sql(
                "INSERT INTO dpsynth_ledger_entries "
                "(seq, created_at, kind, dataset, rho, content, prev_hash, hash, additive_delta, rdp, "
                "additive_epsilon, mac) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            ),
            (seq, created_at, kind, dataset, float(rho), text, last_hash, digest, float(additive_delta), curve,
             float(additive_epsilon), mac),
        )
        cur.execute(sql("UPDATE dpsynth_ledger_head SET seq = ?, hash = ?, mac = ? WHERE id = 1"),
                    (seq, digest, head_mac(key, seq, digest, head[2])))
        return seq

    def verify(self, anchor: tuple[int, str] | None = None) -> VerifyResult:
        """Check the whole chain (see :meth:`~dpsynth.privacy.ledger.Ledger.verify`)."""
        with self.db.read() as cur:
            cur.execute(f"SELECT {ROW_COLUMNS} FROM dpsynth_ledger_entries ORDER BY seq")
            stored = cur.fetchall()  # the entries' database rows, in order
            head = self.head(cur)
        key = self.ledger_key(head) if head is not None and head[2] else None
        result = verify_rows(stored, head, key, anchor)
        if result.ok and not result.sealed and self.own_key_exists():
            return VerifyResult(False, result.entries, result.entries + 1, "the ledger has no seal, but its key file "
                                "exists: its seal was removed", False, result.head, result.anchor)
        return result
