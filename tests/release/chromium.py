"""Headless Chromium driven over the DevTools protocol on a pipe (not a test module).

Chromium is started with ``--remote-debugging-pipe``: it reads protocol messages (JSON, each ended by
a NUL byte) on its file descriptor 3 and writes on 4. That needs nothing beyond the standard
library: no websocket client, no Playwright, no port to pick or leak. The browser is Debian's
``chromium`` (``scripts/install-chromium.sh``), or the one named by ``$DPSYNTH_CHROMIUM``.

    with Chromium(find_chromium()) as browser:
        page = browser.load(Path("report.html"))
        page.errors        # console errors, uncaught exceptions, failed loads, CSP violations
        page.evaluate("document.title")
"""

from __future__ import annotations

import fcntl
import json
import os
import select
import shutil
import signal
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["CHROMIUM_ENV", "Chromium", "LoadedPage", "find_chromium"]

#: Environment variable naming the Chromium executable, tried before the usual names on PATH.
CHROMIUM_ENV = "DPSYNTH_CHROMIUM"
_NAMES = ("chromium", "chromium-browser", "google-chrome-stable", "google-chrome", "chrome-headless-shell")


def find_chromium() -> str | None:
    """The Chromium executable: ``$DPSYNTH_CHROMIUM``, else the first of the usual names on PATH."""
    override = os.environ.get(CHROMIUM_ENV)
    if override:
        return override if os.access(override, os.X_OK) else None
    for name in _NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def _pipe_end_above_4(pipe: tuple[int, int], child_end: int) -> tuple[int, int]:
    """The pipe with the child's end moved to a descriptor above 4 (and close-on-exec), so that
    duplicating the ends onto 3 and 4 cannot overwrite one before it is copied."""
    ends = list(pipe)
    moved = fcntl.fcntl(ends[child_end], fcntl.F_DUPFD_CLOEXEC, 5)
    os.close(ends[child_end])
    ends[child_end] = moved
    return ends[0], ends[1]


@dataclass
class LoadedPage:
    """A page after its load event: what went wrong while loading, and a way to ask it questions."""

    browser: Chromium
    session: str
    url: str
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (DevTools evaluation; the page's own CSP
        does not apply to it)."""
        result = self.browser.call("Runtime.evaluate", {"expression": expression, "returnByValue": True},
                                   session=self.session)
        if "exceptionDetails" in result:
            raise RuntimeError(f"evaluating {expression!r} failed: {result['exceptionDetails']}")
        return result["result"].get("value")


class Chromium:
    """One headless Chromium process; use as a context manager."""

    def __init__(self, executable: str, *, width: int = 1200, height: int = 900, timeout: float = 60.0) -> None:
        self.executable = executable
        self.width, self.height = width, height
        self.timeout = timeout
        self._next_id = 0
        self._buffer = b""
        self._events: list[dict[str, Any]] = []
        self._pid: int | None = None
        self._tmp: str | None = None

    # -- lifecycle ------------------------------------------------------------------------------------

    def __enter__(self) -> Chromium:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        self._tmp = tempfile.mkdtemp(prefix="dpsynth-chromium-")
        to_browser_r, self._to_browser = _pipe_end_above_4(os.pipe(), 0)
        self._from_browser, from_browser_w = _pipe_end_above_4(os.pipe(), 1)
        argv = [
            self.executable, "--headless", "--remote-debugging-pipe", f"--user-data-dir={self._tmp}/profile",
            "--disable-gpu", "--no-first-run", "--no-default-browser-check", "--disable-extensions",
            "--disable-background-networking", "--disable-component-update", "--disable-sync", "--mute-audio",
            "--disable-dev-shm-usage", f"--window-size={self.width},{self.height}", "about:blank",
        ]
        if os.geteuid() == 0:
            argv.insert(1, "--no-sandbox")  # Chromium refuses to run as root with its sandbox
        log = os.open(Path(self._tmp) / "chromium.log", os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            # Chromium expects the protocol on descriptors 3 (it reads) and 4 (it writes); dup2 puts
            # the pipe ends there (the originals are close-on-exec, so the child keeps only 3 and 4).
            self._pid = os.posix_spawn(argv[0], argv, dict(os.environ), file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                (os.POSIX_SPAWN_DUP2, log, 1), (os.POSIX_SPAWN_DUP2, log, 2),
                (os.POSIX_SPAWN_DUP2, to_browser_r, 3), (os.POSIX_SPAWN_DUP2, from_browser_w, 4),
            ])
        finally:
            for fd in (log, to_browser_r, from_browser_w):
                os.close(fd)
        try:
            self.version = self.call("Browser.getVersion")
        except BaseException:
            self.close()
            raise

    def _wait(self, timeout: float) -> bool:
        """Reap the browser within ``timeout`` seconds; whether it is gone."""
        deadline = time.monotonic() + timeout
        while self._pid is not None:
            if os.waitpid(self._pid, os.WNOHANG)[0] != 0:
                self._pid = None
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def close(self) -> None:
        if self._pid is not None:
            try:
                try:
                    self._send("Browser.close", {})
                except OSError:
                    pass
                if not self._wait(10):
                    os.kill(self._pid, signal.SIGKILL)
                    self._wait(10)
            finally:
                self._pid = None
                for fd in (self._to_browser, self._from_browser):
                    try:
                        os.close(fd)
                    except OSError:
                        pass
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def log_tail(self, lines: int = 30) -> str:
        if self._tmp is None:
            return ""
        text = (Path(self._tmp) / "chromium.log").read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    # -- protocol -----------------------------------------------------------------------------------------

    def _send(self, method: str, params: dict[str, Any], session: str | None = None) -> int:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session is not None:
            message["sessionId"] = session
        data = json.dumps(message).encode() + b"\0"
        while data:
            data = data[os.write(self._to_browser, data):]
        return self._next_id

    def _read(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no answer from Chromium in {self.timeout:g} s\n{self.log_tail()}")
            ready, _, _ = select.select([self._from_browser], [], [], left)
            if ready:
                chunk = os.read(self._from_browser, 1 << 20)
                if not chunk:
                    raise RuntimeError(f"Chromium closed the DevTools pipe\n{self.log_tail()}")
                self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    def call(self, method: str, params: dict[str, Any] | None = None, *, session: str | None = None) -> dict[str, Any]:
        """Send a command and return its result (events that arrive meanwhile are kept)."""
        wanted = self._send(method, params or {}, session)
        deadline = time.monotonic() + self.timeout
        while True:
            message = self._read(deadline)
            if message.get("id") == wanted:
                if "error" in message:
                    raise RuntimeError(f"{method} failed: {message['error']}")
                return message.get("result", {})
            if "method" in message:
                self._events.append(message)

    def wait_for(self, method: str, *, session: str) -> dict[str, Any]:
        """Wait for an event of a session (one that already arrived counts)."""
        deadline = time.monotonic() + self.timeout
        while True:
            for i, event in enumerate(self._events):
                if event.get("method") == method and event.get("sessionId") == session:
                    return self._events.pop(i)
            message = self._read(deadline)
            if "method" in message:
                self._events.append(message)

    def _drain(self, seconds: float) -> None:
        """Keep every message that arrives within ``seconds``."""
        deadline = time.monotonic() + seconds
        while True:
            if b"\0" not in self._buffer:
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([self._from_browser], [], [], left)[0]:
                    return
            message = self._read(time.monotonic() + self.timeout)
            if "method" in message:
                self._events.append(message)

    # -- pages ----------------------------------------------------------------------------------------------

    def load(self, path: Path, *, settle: float = 0.3) -> LoadedPage:
        """Open ``path`` in a new tab, wait for its load event and collect what went wrong."""
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Runtime", "Log", "Page", "Network"):
            self.call(f"{domain}.enable", session=session)
        self._events = [e for e in self._events if e.get("sessionId") != session]
        url = path.resolve().as_uri()
        self.call("Page.navigate", {"url": url}, session=session)
        self.wait_for("Page.loadEventFired", session=session)
        self._drain(settle)
        page = LoadedPage(self, session, url)
        for event in [e for e in self._events if e.get("sessionId") == session]:
            method, params = event["method"], event.get("params", {})
            if method == "Runtime.exceptionThrown":
                page.errors.append(f"uncaught exception: {params.get('exceptionDetails', {}).get('text')}")
            elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                args = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
                page.errors.append(f"console.{params['type']}: {args}")
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                page.errors.append(f"log ({params['entry'].get('source')}): {params['entry'].get('text')}")
            elif method == "Network.requestWillBeSent":
                page.requests.append(params.get("request", {}).get("url", ""))
            elif method == "Network.loadingFailed":
                page.errors.append(f"failed load: {params.get('errorText')}")
        self._events = [e for e in self._events if e.get("sessionId") != session]
        return page

    def screenshot(self, page: LoadedPage, *, clip: tuple[float, float, float, float] | None = None) -> bytes:
        """A PNG of the page (of ``clip`` = x, y, width, height in CSS pixels when given)."""
        import base64

        params: dict[str, Any] = {"format": "png", "captureBeyondViewport": True}
        if clip is not None:
            x, y, w, h = clip
            params["clip"] = {"x": x, "y": y, "width": w, "height": h, "scale": 1}
        return base64.b64decode(self.call("Page.captureScreenshot", params, session=page.session)["data"])
