"""The Spark session the Spark counting backend runs in: one per process, quiet, and errors without rows.

Starting Spark costs seconds (a JVM, a py4j gateway), so :func:`spark_session` keeps the session it
starts for the rest of the process, and reuses a session the caller already has (the active one, or
that of a DataFrame passed in). A session dpsynth starts is made quiet and private by construction:

* Spark's JVM logs go through a log4j2 configuration of dpsynth's whose level is ``FATAL``: Spark logs
  a failed task's exception (``Lost task ...: [CAST_INVALID_INPUT] The value '...'``) at ``WARN`` and
  ``ERROR``, with the cell that failed in it, so nothing below ``FATAL`` may reach the console; the
  JVM's start-up notices (``Using incubator modules``, ``Setting default log level``) are dropped from
  its stderr;
* pyspark's own Python loggers of query errors (``SQLQueryContextLogger``,
  ``DataFrameQueryContextLogger``), which print a failed query's message (a cell value among them),
  are switched off in every case, a caller's session too;
* :func:`engine_errors` turns whatever Spark raises (``AnalysisException``, a ``Py4JJavaError`` ...)
  into one :class:`~dpsynth.exceptions.DataError` line naming the error's class only, never its
  message (Spark puts values and rows in its messages);
* :func:`session_conf` sets the SQL options the counting queries are written for (UTC session time
  zone, ANSI mode) for the length of a computation and puts back the caller's values after it.

Nothing here reads the private table.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import subprocess
import sys
import tempfile
import threading
import warnings
from collections.abc import Iterator, Mapping
from typing import IO, TYPE_CHECKING, Any

from dpsynth.exceptions import DataError, DPSynthError, ParameterError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = ["DEFAULT_MASTER", "QUERY_CONF", "engine_errors", "quiet_python_loggers", "session_conf",
           "spark_session"]

#: The master of a session dpsynth starts when none is given (every core of this machine).
DEFAULT_MASTER = "local[*]"

#: The SQL options every counting query is written for: timestamps without a zone are UTC (as
#: :func:`dpsynth.schema.encode.numbers_of` reads them), and ANSI mode, so that an overflow fails
#: instead of wrapping (the queries use ``try_cast``, which never fails on a bad cell). And the
#: aggregated code tuples that a backend persists (``SparkSource.materialize``) may have their
#: partitions coalesced by adaptive execution, as any other shuffle's: without it the cached table
#: keeps ``spark.sql.shuffle.partitions`` partitions (200 by default) however few tuples it holds, and
#: every marginal query over it runs that many tasks (MST on 1M rows in ``local[2]``: 19-30 s with it
#: off, 5-10 s with it on; ``benchmarks/RESULTS.md``).
QUERY_CONF: Mapping[str, str] = {"spark.sql.session.timeZone": "UTC", "spark.sql.ansi.enabled": "true",
                                 "spark.sql.optimizer.canChangeCachedPlanOutputPartitioning": "true"}

#: Spark's JVM loggers, all at FATAL: WARN and ERROR lines of a failed task carry cell values.
_LOG4J2 = """\
rootLogger.level = fatal
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n
logger.repl.name = org.apache.spark.repl.Main
logger.repl.level = fatal
"""

#: Lines of the JVM's stderr that are dropped: the notices of every start of Spark 4 (Java 17's incubator
#: module; the shell's default level, which does not apply: the root logger stays at FATAL).
_DROPPED_STDERR = (b"WARNING: Using incubator modules", b"Setting default log level to", b"To adjust logging level use")

#: pyspark's Python loggers that print a failed query's message, values included.
_QUERY_LOGGERS = ("SQLQueryContextLogger", "DataFrameQueryContextLogger")

#: What an error class of Spark looks like (``FAILED_READ_FILE.NO_HINT``); anything else is not shown.
_CONDITION = re.compile(r"[A-Z][A-Z0-9_]*(\.[A-Z][A-Z0-9_]*)*")

_lock = threading.Lock()
_started: dict[str, SparkSession] = {}  # master -> the session this process started


def quiet_python_loggers() -> None:
    """Switch off pyspark's Python loggers of query errors (they print the failed query's message)."""
    from pyspark.logger import PySparkLogger

    for name in _QUERY_LOGGERS:
        logger = PySparkLogger.getLogger(name)
        logger.setLevel(logging.CRITICAL + 1)
        logger.disabled = True


def spark_session(master: str | None = None) -> SparkSession:
    """The Spark session to count in: the active one (when ``master`` is None or its own), else the one
    this process started for ``master`` (``DEFAULT_MASTER`` when None), started on first need.

    Raises:
        ParameterError: a session with another master already runs in this process (Spark allows one
            SparkContext per process), or Spark cannot start (no Java runtime, a bad master URL).
    """
    quiet_python_loggers()
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    with _lock:
        active = SparkSession.getActiveSession()
        if active is not None and (master is None or active.sparkContext.master == master):
            return active
        wanted = master or DEFAULT_MASTER
        cached = _started.get(wanted)
        if cached is not None and _running(cached):
            return cached
        context = SparkContext._active_spark_context  # pyspark's one handle on it
        if context is not None:
            raise ParameterError(f"spark master ({wanted!r}) cannot be used: this process already runs a Spark "
                                 f"session on {context.master!r} (one per process); pass that master or none")
        session = _start(wanted)
        _started[wanted] = session
        return session


@contextlib.contextmanager
def pandas_interop() -> Iterator[None]:
    """Silence pyspark 4.x's "does not yet fully support pandas >= 3.0.0" (it warns when it starts and on
    every pandas exchange). dpsynth's exchanges (a text-only DataFrame sent in, int64 vectors out of a
    ``mapInPandas``) are covered by its tests against the pandas it pins."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)
        yield


def _running(session: SparkSession) -> bool:
    """Whether ``session``'s SparkContext is still up (a caller may have stopped it)."""
    from pyspark import SparkContext

    return SparkContext._active_spark_context is session.sparkContext


def _start(master: str) -> SparkSession:
    """Start a quiet Spark session on ``master`` (its JVM with dpsynth's log4j2 configuration)."""
    from pyspark import SparkConf, SparkContext
    from pyspark.java_gateway import launch_gateway
    from pyspark.sql import SparkSession

    fd, log4j = tempfile.mkstemp(prefix="dpsynth-log4j2-", suffix=".properties")
    with os.fdopen(fd, "w") as f:
        f.write(_LOG4J2)
    conf = (SparkConf().setMaster(master).setAppName("dpsynth")
            .set("spark.ui.enabled", "false")
            .set("spark.ui.showConsoleProgress", "false")
            .set("spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile=file:{log4j}")
            .set("spark.sql.session.timeZone", "UTC"))
    if master.startswith("local"):
        # on the loopback interface, advertised as such: a task result above spark.task.maxDirectResultSize
        # (1 MB) is fetched from the block manager at the advertised host, which the machine's own address
        # may not reach (TaskResultLost)
        conf = (conf.set("spark.sql.shuffle.partitions", "8").set("spark.driver.bindAddress", "127.0.0.1")
                .set("spark.driver.host", "127.0.0.1"))
    try:
        with warnings.catch_warnings():  # pyspark starts the JVM with a preexec_fn, so Python's fork hooks
            # run; JAX's (installed once mbi has used JAX) warns that "os.fork() was called". The child only
            # sets a signal and execs java: no JAX thread is used in it
            warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called", category=RuntimeWarning)
            gateway = launch_gateway(conf, popen_kwargs={"stderr": subprocess.PIPE})
        proc = getattr(gateway, "proc", None)
        if proc is not None and proc.stderr is not None:
            threading.Thread(target=_pump, args=(proc.stderr,), name="dpsynth-spark-stderr", daemon=True).start()
        with pandas_interop():
            context = SparkContext(conf=conf, gateway=gateway)
        if master.startswith("local") and "PYSPARK_PYTHON" not in os.environ:
            context.pythonExec = sys.executable  # a UDF's workers run this interpreter (it has dpsynth), not python3
        return SparkSession(context)
    except Exception as exc:  # Spark cannot start: one line, the cause's class only
        raise ParameterError(f"spark master ({master!r}) cannot be started: {exc.__class__.__name__} (is a Java "
                             "runtime installed? scripts/install-java.sh installs one)") from None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(log4j)  # read once by the JVM at its start


def _pump(stream: IO[bytes]) -> None:
    """Copy the JVM's stderr to ours, less the start-up notices of :data:`_DROPPED_STDERR`."""
    for line in iter(stream.readline, b""):
        if line.startswith(_DROPPED_STDERR):
            continue
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.buffer.write(line) if hasattr(sys.stderr, "buffer") else sys.stderr.write(
                line.decode("utf-8", "replace"))
            sys.stderr.flush()


@contextlib.contextmanager
def session_conf(session: SparkSession, conf: Mapping[str, str] = QUERY_CONF) -> Iterator[None]:
    """Set ``conf`` on ``session`` for the length of the block, then put back what was there before."""
    before: dict[str, str | None] = {}
    for key, value in conf.items():
        before[key] = session.conf.get(key, None)
        session.conf.set(key, value)
    try:
        yield
    finally:
        for key, old in before.items():
            if old is None:
                session.conf.unset(key)
            else:
                session.conf.set(key, old)


@contextlib.contextmanager
def engine_errors(what: str) -> Iterator[None]:
    """Turn an error raised by Spark inside the block into one DataError line: ``what`` and the error's
    class, never Spark's message (which may hold cell values or whole rows)."""
    try:
        yield
    except DPSynthError:
        raise
    except Exception as exc:
        raise DataError(f"{what} failed in Spark: {_condition(exc)}") from None


def _condition(exc: BaseException) -> str:
    """The error class of a Spark error (``PATH_NOT_FOUND``, ``Py4JJavaError`` ...), no message."""
    condition: Any = None
    with contextlib.suppress(Exception):
        getter = getattr(exc, "getCondition", None) or getattr(exc, "getErrorClass", None)
        condition = getter() if callable(getter) else None
    name = exc.__class__.__name__
    return f"{name} [{condition}]" if isinstance(condition, str) and _CONDITION.fullmatch(condition) else name
