"""Reading and editing a ledger's database behind its back (what an attacker or a careless admin does)."""

from __future__ import annotations

import sqlite3


def raw_execute(url: str, *statements: str) -> None:
    """Run ``statements`` on the database behind the ledger at ``url``."""
    if url.startswith("sqlite:///"):
        conn = sqlite3.connect(url[len("sqlite:///"):])
        try:
            for statement in statements:
                conn.execute(statement)
            conn.commit()
        finally:
            conn.close()
        return
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


def raw_query(url: str, statement: str) -> list[tuple]:
    """Read the database behind the ledger at ``url``."""
    if url.startswith("sqlite:///"):
        conn = sqlite3.connect(url[len("sqlite:///"):])
        try:
            return conn.execute(statement).fetchall()
        finally:
            conn.close()
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(statement).fetchall()
