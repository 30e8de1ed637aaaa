"""A real, throw-away PostgreSQL server for the tests (not a test module).

`TemporaryPostgres` runs ``initdb`` in a fresh temporary directory, starts the server with
``pg_ctl`` on a free TCP port bound to 127.0.0.1 only (plus a Unix socket inside the temporary
directory), creates the database ``dpsynth_test`` and, on exit, stops the server and deletes the
directory. Authentication is ``trust`` for the superuser ``dpsynth``; nothing outside the machine
can connect. The server binaries come from the Debian ``postgresql`` package
(``scripts/install-postgres.sh``); see `find_pg_bin`.

PostgreSQL refuses to run as root. When the tests run as root, ``initdb``/``pg_ctl`` are run as the
``postgres`` OS user (created by the Debian package) through ``runuser``, and the temporary
directory is handed to that user.

Administrative SQL (CREATE/DROP DATABASE) goes through the ``psql`` that ships with the server, so
this module needs no Python driver.

    with TemporaryPostgres() as pg:
        pg.url                      # postgresql://dpsynth@127.0.0.1:PORT/dpsynth_test
        url = pg.new_database("ledger_a")
"""

from __future__ import annotations

import atexit
import itertools
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

__all__ = ["PG_BIN_ENV", "TemporaryPostgres", "database_name", "find_pg_bin"]

#: Environment variable naming a directory with initdb/pg_ctl/postgres, tried before the defaults.
PG_BIN_ENV = "DPSYNTH_PG_BIN"

_SERVER_TOOLS = ("initdb", "pg_ctl", "postgres")
_DB_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}\Z")
_RUN_AS = "postgres"  # the OS user the Debian package creates; used when we are root


def _has_tools(directory: Path) -> bool:
    return all(os.access(directory / tool, os.X_OK) and (directory / tool).is_file() for tool in _SERVER_TOOLS)


def _version_key(directory: Path) -> tuple[int, ...]:
    # /usr/lib/postgresql/<version>/bin; versions are "15", "16", or "9.6" for old ones.
    parts = re.findall(r"\d+", directory.parent.name)
    return tuple(int(p) for p in parts) if parts else (-1,)


def find_pg_bin() -> Path | None:
    """The directory holding the PostgreSQL server binaries (initdb, pg_ctl, postgres), or None.

    Order: ``$DPSYNTH_PG_BIN``; the newest ``/usr/lib/postgresql/<version>/bin`` (Debian/Ubuntu);
    the directory that ``initdb`` on PATH resolves to (following symlinks).
    """
    override = os.environ.get(PG_BIN_ENV)
    if override:
        directory = Path(override)
        return directory if _has_tools(directory) else None

    debian = [d for d in Path("/usr/lib/postgresql").glob("*/bin") if _has_tools(d)]
    if debian:
        return max(debian, key=_version_key)

    initdb = shutil.which("initdb")
    if initdb:
        directory = Path(initdb).resolve().parent
        if _has_tools(directory):
            return directory
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"(no server log: {exc})"
    return "\n".join(text.splitlines()[-lines:]) or "(server log is empty)"


class TemporaryPostgres:
    """A PostgreSQL cluster in a temporary directory, alive between `start` and `stop`.

    Use as a context manager. ``fsync`` stays on by default (the server backs a privacy ledger in
    the tests, so it runs with production durability unless a test opts out for speed).
    """

    user = "dpsynth"
    host = "127.0.0.1"

    def __init__(
        self,
        *,
        bin_dir: Path | str | None = None,
        dbname: str = "dpsynth_test",
        fsync: bool = True,
        start_timeout: float = 60.0,
        extra_settings: dict[str, str] | None = None,
    ) -> None:
        found = Path(bin_dir) if bin_dir is not None else find_pg_bin()
        if found is None or not _has_tools(found):
            raise RuntimeError(
                "no PostgreSQL server binaries (initdb, pg_ctl, postgres) found; run scripts/install-postgres.sh "
                f"or set {PG_BIN_ENV}"
            )
        _check_db_name(dbname)
        self.bin_dir: Path = found
        self.dbname = dbname
        self.fsync = fsync
        self.start_timeout = start_timeout
        self.extra_settings = dict(extra_settings or {})
        self.port: int | None = None
        self.base_dir: Path | None = None
        self._counter = itertools.count(1)
        self._as_root = os.geteuid() == 0
        self._version_num: int | None = None

    # ----------------------------------------------------------------- paths and URLs

    @property
    def data_dir(self) -> Path:
        return self._base / "data"

    @property
    def socket_dir(self) -> Path:
        return self._base / "sock"

    @property
    def log_path(self) -> Path:
        return self._base / "server.log"

    @property
    def _base(self) -> Path:
        if self.base_dir is None:
            raise RuntimeError("TemporaryPostgres is not started")
        return self.base_dir

    def url_for(self, dbname: str) -> str:
        if self.port is None:
            raise RuntimeError("TemporaryPostgres is not started")
        return f"postgresql://{self.user}@{self.host}:{self.port}/{dbname}"

    @property
    def url(self) -> str:
        """URL of the ``dpsynth_test`` database."""
        return self.url_for(self.dbname)

    @property
    def running(self) -> bool:
        return self.port is not None

    # ----------------------------------------------------------------- lifecycle

    def __enter__(self) -> TemporaryPostgres:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> TemporaryPostgres:
        if self.base_dir is not None:
            raise RuntimeError("TemporaryPostgres already started")
        try:
            self._make_base_dir()
            self._initdb()
            self._start_server()
            self.psql(f'CREATE DATABASE "{self.dbname}"', dbname="postgres")
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the server (fast shutdown; immediate if that fails) and delete the directory."""
        if self.base_dir is None:
            return
        atexit.unregister(self.stop)
        try:
            for mode in ("fast", "immediate"):
                if not (self.data_dir / "postmaster.pid").exists():
                    break
                argv = ["pg_ctl", "stop", "-D", str(self.data_dir), "-m", mode, "-w", "-t", "30"]
                try:
                    self._run_server_tool(argv, timeout=40)
                except subprocess.TimeoutExpired:
                    pass
        finally:
            shutil.rmtree(self.base_dir, ignore_errors=True)
            self.base_dir = None
            self.port = None

    def _make_base_dir(self) -> None:
        # Unix socket paths are limited to ~107 bytes, so stay in a short directory; when root, use
        # /tmp, which the postgres user can always traverse (a private $TMPDIR might not be).
        parent = "/tmp" if self._as_root and os.path.isdir("/tmp") else tempfile.gettempdir()
        base = Path(tempfile.mkdtemp(prefix="dpsynth-pg-", dir=parent))
        self.base_dir = base
        atexit.register(self.stop)
        self.socket_dir.mkdir()
        if self._as_root:
            import pwd

            try:
                account = pwd.getpwnam(_RUN_AS)
            except KeyError:
                raise RuntimeError(
                    f"running as root, but there is no '{_RUN_AS}' OS user to run PostgreSQL as "
                    "(PostgreSQL refuses to run as root; the Debian 'postgresql' package creates that user)"
                ) from None
            if shutil.which("runuser") is None:
                raise RuntimeError("running as root, but 'runuser' (util-linux) is not available")
            for path in (base, self.socket_dir):
                os.chown(path, account.pw_uid, account.pw_gid)

    def _run_server_tool(self, argv: list[str], *, timeout: float) -> subprocess.CompletedProcess[str]:
        argv = [str(self.bin_dir / argv[0]), *argv[1:]]
        if self._as_root:
            argv = ["runuser", "-u", _RUN_AS, "--", *argv]
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        env["TZ"] = "UTC"
        return subprocess.run(
            argv,
            cwd=self._base,  # the postgres user may not be able to enter our working directory
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def _initdb(self) -> None:
        argv = ["initdb", "-D", str(self.data_dir), "-U", self.user, "-A", "trust", "-E", "UTF8", "--locale=C"]
        if not self.fsync:
            argv.append("--no-sync")
        result = self._run_server_tool(argv, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"initdb failed (exit {result.returncode}):\n{result.stdout}\n{result.stderr}")

    def _start_server(self) -> None:
        settings = {
            "listen_addresses": self.host,
            "unix_socket_directories": str(self.socket_dir),
            "fsync": "on" if self.fsync else "off",
            **self.extra_settings,
        }
        last_error = ""
        for _attempt in range(3):  # the free port can be taken between probing and binding
            port = _free_port()
            options = " ".join([f"-p {port}", *(f"-c {key}={value}" for key, value in settings.items())])
            argv = ["pg_ctl", "start", "-D", str(self.data_dir), "-l", str(self.log_path), "-w"]
            argv += ["-t", str(int(self.start_timeout)), "-o", options]
            try:
                result = self._run_server_tool(argv, timeout=self.start_timeout + 15)
            except subprocess.TimeoutExpired:
                result = None
            if result is not None and result.returncode == 0:
                self.port = port
                self._wait_ready()
                return
            output = "pg_ctl timed out" if result is None else f"{result.stdout}\n{result.stderr}".strip()
            last_error = f"pg_ctl start failed on port {port}: {output}\n--- server log ---\n{_tail(self.log_path)}"
            if "already in use" not in _tail(self.log_path):
                break
            self.log_path.unlink(missing_ok=True)
        raise RuntimeError(last_error)

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while True:
            result = self._psql_raw("SELECT 1", dbname="postgres", timeout=10)
            if result.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"PostgreSQL on port {self.port} does not accept connections: {result.stderr.strip()}\n"
                    f"--- server log ---\n{_tail(self.log_path)}"
                )
            time.sleep(0.1)

    # ----------------------------------------------------------------- SQL through psql

    def _psql_raw(self, sql: str, *, dbname: str, timeout: float) -> subprocess.CompletedProcess[str]:
        psql = self.bin_dir / "psql"
        argv = [str(psql) if psql.exists() else "psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"]
        argv += ["-d", self.url_for(dbname), "-c", sql]
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["PGCONNECT_TIMEOUT"] = "5"
        return subprocess.run(
            argv, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout, check=False
        )

    def psql(self, sql: str, *, dbname: str | None = None, timeout: float = 60) -> str:
        """Run one SQL command as the superuser with psql; return its unaligned output."""
        result = self._psql_raw(sql, dbname=dbname or self.dbname, timeout=timeout)
        if result.returncode != 0:
            raise RuntimeError(f"psql failed ({sql!r}): {result.stderr.strip()}")
        return result.stdout

    def new_database(self, name: str | None = None, *, label: str | None = None) -> str:
        """Create an empty database and return its URL.

        `name` is used as is; without it a unique name is made from `label` (e.g. a test's name).
        """
        if name is None:
            name = database_name(label or "db", suffix=f"_{next(self._counter)}")
        _check_db_name(name)
        self.psql(f"CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8'", dbname="postgres")
        return self.url_for(name)

    def drop_database(self, name_or_url: str) -> None:
        """Drop a database (by name or URL), disconnecting any sessions still attached to it."""
        name = name_or_url.rsplit("/", 1)[-1]
        _check_db_name(name)
        force = " WITH (FORCE)" if self.server_version_num >= 130000 else ""
        self.psql(f'DROP DATABASE IF EXISTS "{name}"{force}', dbname="postgres")

    @property
    def server_version_num(self) -> int:
        if self._version_num is None:
            self._version_num = int(self.psql("SHOW server_version_num", dbname="postgres").strip())
        return self._version_num


def database_name(text: str, *, suffix: str = "") -> str:
    """A valid, lower-case database name derived from arbitrary text (e.g. a test's name)."""
    base = re.sub(r"[^a-z0-9_]+", "_", text.lower()).strip("_") or "db"
    if base[0].isdigit():
        base = "t_" + base
    return base[: 63 - len(suffix)] + suffix


def _check_db_name(name: str) -> None:
    if not _DB_NAME.match(name):
        raise ValueError(f"database name {name!r} must match {_DB_NAME.pattern}")
