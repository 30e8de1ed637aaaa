"""Fixtures of the counting-backend tests: one local Spark session for the whole run.

Spark needs pyspark (PyPI) and a Java runtime (scripts/install-java.sh). Without either, the tests
that use the ``spark`` fixture are skipped with the reason, unless DPSYNTH_REQUIRE_SPARK=1 (CI), which
turns the skip into a failure.
"""

from __future__ import annotations

import importlib.util
import os
import shutil

import pytest


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
