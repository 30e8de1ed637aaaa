"""The real PostgreSQL server the tests start (tests/postgres.py, fixtures in tests/conftest.py)."""

from __future__ import annotations

import os

import pytest

try:
    import psycopg
except ImportError:  # pragma: no cover - psycopg comes with the dev extra
    if os.environ.get("DPSYNTH_REQUIRE_POSTGRES") == "1":
        raise
    pytest.skip("psycopg is not installed (pip install 'psycopg[binary]')", allow_module_level=True)


def test_round_trip_on_a_real_server(postgres_url: str) -> None:
    assert postgres_url.startswith("postgresql://dpsynth@127.0.0.1:")
    with psycopg.connect(postgres_url) as conn:
        (version,) = conn.execute("SELECT version()").fetchone()
        assert "PostgreSQL" in version
        assert conn.execute("SHOW fsync").fetchone() == ("on",)
        conn.execute("CREATE TABLE events (id serial PRIMARY KEY, label text NOT NULL, epsilon numeric NOT NULL)")
        conn.execute("INSERT INTO events (label, epsilon) VALUES (%s, %s)", ("mst", "0.5"))
        conn.commit()
    with psycopg.connect(postgres_url) as conn:
        rows = conn.execute("SELECT id, label, epsilon::text FROM events").fetchall()
    assert rows == [(1, "mst", "0.5")]


def _user_tables(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        (name,) = conn.execute("SELECT current_database()").fetchone()
        tables = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()
    return [name, *(t for (t,) in tables)]


@pytest.fixture
def another_postgres_url(postgres_server) -> str:
    url = postgres_server.new_database(label="another")
    yield url
    postgres_server.drop_database(url)


def test_each_test_gets_a_new_empty_database(postgres_url: str, another_postgres_url: str) -> None:
    assert postgres_url != another_postgres_url
    with psycopg.connect(postgres_url) as conn:
        conn.execute("CREATE TABLE only_here (x int)")
        conn.commit()
    first, *first_tables = _user_tables(postgres_url)
    second, *second_tables = _user_tables(another_postgres_url)
    assert first != second
    assert first_tables == ["only_here"]
    assert second_tables == []


def test_databases_are_not_shared_between_tests(postgres_url: str) -> None:
    # The round-trip test above created `events` in its own database; this one starts empty.
    _, *tables = _user_tables(postgres_url)
    assert tables == []
