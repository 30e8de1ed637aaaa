from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

from dpsynth.schema import Schema
from tests.small_tables import SMALL_SCHEMA, small_table

#: The least number of tests a run of the whole suite (all of tests/, slow ones included: `make test`)
#: must collect: a folder skipped silently (a broken conftest, a renamed file that no longer matches
#: test_*.py, a module-level skip) fails CI instead of passing with fewer tests. 1,455 were collected
#: on 2 Dec 2026; raise it when the suite grows, lower it only with the commit that removes tests.
TEST_COUNT_FLOOR = 1_400

TESTS = Path(__file__).resolve().parent


def _runs_whole_suite(session: pytest.Session) -> bool:
    """Whether this run collects all of tests/ with the slow tests: no paths narrower than tests/, no
    -k, --lf or --deselect, and both slow and other tests selected (``-m "slow or not slow"``)."""
    config = session.config
    if any(config.getoption(name, default=None) for name in ("keyword", "lf", "deselect")):
        return False
    paths = [Path(str(arg).split("::")[0]).resolve() for arg in config.args]
    if paths and any(p != TESTS for p in paths):
        return False
    slow = [item.get_closest_marker("slow") is not None for item in session.items]
    return any(slow) and not all(slow)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Fail a run of the whole suite that collected fewer tests than :data:`TEST_COUNT_FLOOR`."""
    if _runs_whole_suite(session) and len(session.items) < TEST_COUNT_FLOOR:
        raise pytest.UsageError(
            f"the whole suite collected {len(session.items)} tests, fewer than its floor of {TEST_COUNT_FLOOR} "
            "(tests/conftest.py TEST_COUNT_FLOOR): a test folder or module was skipped or not collected")


@pytest.fixture
def small_schema() -> Schema:
    return Schema.from_dict(SMALL_SCHEMA)


@pytest.fixture
def small_data() -> pd.DataFrame:
    return small_table()


# ---------------------------------------------------------------------------------------------------
# A real PostgreSQL server (tests/postgres.py), started once per session on 127.0.0.1 and a free port.
# Without server binaries the tests that use it are skipped, unless DPSYNTH_REQUIRE_POSTGRES=1 (CI),
# which turns the skip into a failure. Install the binaries with scripts/install-postgres.sh.


@pytest.fixture(scope="session")
def postgres_server():
    """A running `postgres.TemporaryPostgres` shared by the whole session (fsync on)."""
    import os

    from postgres import TemporaryPostgres, find_pg_bin

    if find_pg_bin() is None:
        reason = "no PostgreSQL server binaries (initdb, pg_ctl); run scripts/install-postgres.sh"
        if os.environ.get("DPSYNTH_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"{reason} (DPSYNTH_REQUIRE_POSTGRES=1)", pytrace=False)
        pytest.skip(reason)
    with TemporaryPostgres() as server:
        yield server


@pytest.fixture
def postgres_url(postgres_server, request, tmp_path, monkeypatch) -> str:
    """URL of a brand-new, empty database on `postgres_server` (named after the test), dropped afterwards.

    Its ledger key goes to a file of the test's own ($DPSYNTH_LEDGER_KEY_FILE, inherited by the CLI
    the test runs): a database of the same name in a later run is a new ledger with a new key."""
    monkeypatch.setenv("DPSYNTH_LEDGER_KEY_FILE", str(tmp_path / "postgres-ledger.key"))
    url = postgres_server.new_database(label=request.node.name)
    yield url
    postgres_server.drop_database(url)


@pytest.fixture(params=["sqlite", "postgres"])
def ledger_url(request, tmp_path):
    """A fresh ledger URL on each backend: a SQLite file, and a new PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture(autouse=True, scope="session")
def _keys_stay_in_the_test_tree(tmp_path_factory):
    """Ledger keys made without a path of their own (XDG_CONFIG_HOME) land in a temporary folder,
    never in the home folder of whoever runs the tests."""
    import os

    previous = os.environ.get("XDG_CONFIG_HOME")
    os.environ["XDG_CONFIG_HOME"] = str(tmp_path_factory.mktemp("config"))
    yield
    if previous is None:
        os.environ.pop("XDG_CONFIG_HOME", None)
    else:
        os.environ["XDG_CONFIG_HOME"] = previous


# -- Spark: one local session for the whole run -----------------------------------------------------
# Spark needs pyspark (PyPI) and a Java runtime (scripts/install-java.sh). Without either, the tests that
# use the ``spark`` fixture are skipped with the reason, unless DPSYNTH_REQUIRE_SPARK=1 (CI), which turns
# the skip into a failure.


def _spark_missing() -> str | None:
    """Why Spark cannot run here, or None."""
    if importlib.util.find_spec("pyspark") is None:
        return "pyspark is not installed (pip install pyspark)"
    java_home = os.environ.get("JAVA_HOME")
    if not (java_home and os.access(os.path.join(java_home, "bin", "java"), os.X_OK)) and shutil.which("java") is None:
        return "no Java runtime (java) for Spark; run scripts/install-java.sh"
    return None


@pytest.fixture(scope="session")
def spark():
    """A local[1] SparkSession shared by the session (one core: the machine is shared; deterministic)."""
    reason = _spark_missing()
    if reason is not None:
        if os.environ.get("DPSYNTH_REQUIRE_SPARK") == "1":
            pytest.fail(f"{reason} (DPSYNTH_REQUIRE_SPARK=1)", pytrace=False)
        pytest.skip(reason)
    import jax

    from dpsynth.marginals.spark_session import spark_session

    jax.devices()  # JAX running first installs its fork hook, which warns when pyspark forks the JVM (CI order)
    session = spark_session("local[1]")
    yield session
    # Left running: the process ends with the run, and stopping a JVM costs seconds.
