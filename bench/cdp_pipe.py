"""A Chromium driven through the DevTools protocol over ``--remote-debugging-pipe``: the
least a measurement can attach to a page. ``bench soak`` uses it instead of Playwright because
Playwright, once connected, enables the Network and Runtime domains on every page and so sees
(and keeps) every websocket frame the page receives — an hour-long soak then measures
Playwright's instrumentation, not the page (docs/benchmarks.md, "Soak without DevTools
attached"). Here nothing is enabled: a probe attaches to the page, evaluates one expression and
detaches again.

The pipe protocol: Chromium reads commands from fd 3 and writes replies and events to fd 4,
each message one JSON object ended by a NUL byte.
"""

from __future__ import annotations

import fcntl
import json
import os
import select
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"  # Debian's, never a downloaded one
# The flags every headless run here uses (the browser tests too, tests/browser.py).
HEADLESS_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
ARGS = [*HEADLESS_ARGS, "--enable-precise-memory-info"]  # performance.memory unrounded


class CDPError(RuntimeError):
    pass


class Chromium:
    """One headless Chromium with its own profile directory; ``send`` runs a DevTools command
    on the browser (or, with ``session``, on an attached page) and returns its result."""

    def __init__(self, profile_dir: Path) -> None:
        if not Path(CHROMIUM).exists():
            raise RuntimeError(f"{CHROMIUM} is missing: run scripts/setup.sh --test")
        self.profile_dir = profile_dir
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()

        def wire_fds() -> None:  # in the child, before exec: fd 3 in, fd 4 out
            # out of the way first: the pipe's own fds may be 3 or 4 already
            high_r = fcntl.fcntl(to_chrome_r, fcntl.F_DUPFD, 10)
            high_w = fcntl.fcntl(from_chrome_w, fcntl.F_DUPFD, 10)
            os.dup2(high_r, 3)
            os.dup2(high_w, 4)

        self.proc = subprocess.Popen(
            [CHROMIUM, *ARGS, "--remote-debugging-pipe", f"--user-data-dir={profile_dir}", "about:blank"],
            preexec_fn=wire_fds,
            close_fds=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []

    # -- the protocol ---------------------------------------------------------------------------
    def _read_message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_chrome], [], [], left)[0]:
                raise TimeoutError("Chromium did not answer in time")
            chunk = os.read(self._from_chrome, 1 << 20)
            if not chunk:
                raise CDPError("Chromium closed its DevTools pipe")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    def send(
        self, method: str, params: dict[str, Any] | None = None, *, session: str | None = None, timeout: float = 30.0
    ) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_chrome, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise CDPError(f"{method}: {reply['error'].get('message')}")
                return reply.get("result", {})
            if "method" in reply:
                self.events.append(reply)

    def wait_event(self, method: str, timeout: float = 30.0) -> dict[str, Any]:
        """The params of the first ``method`` event (already received or still to come)."""
        deadline = time.monotonic() + timeout
        while True:
            for i, event in enumerate(self.events):
                if event["method"] == method:
                    return self.events.pop(i).get("params", {})
            message = self._read_message(deadline)
            if "method" in message:
                self.events.append(message)

    # -- the page -------------------------------------------------------------------------------
    def page_target(self) -> str:
        targets = self.send("Target.getTargets")["targetInfos"]
        return next(t["targetId"] for t in targets if t["type"] == "page")

    @contextmanager
    def attached(self) -> Iterator[str]:
        """A DevTools session on the page for the length of the block; nothing is enabled."""
        session = self.send("Target.attachToTarget", {"targetId": self.page_target(), "flatten": True})["sessionId"]
        try:
            yield session
        finally:
            self.send("Target.detachFromTarget", {"sessionId": session})
            self.events.clear()  # the detach notice; nothing else was asked for

    def evaluate(self, expression: str, *, session: str | None = None, timeout: float = 20.0) -> Any:
        """The value of ``expression`` in the page (awaited if a promise)."""
        if session is None:
            with self.attached() as session:
                return self.evaluate(expression, session=session, timeout=timeout)
        result = self.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
            session=session,
            timeout=timeout,
        )
        if "exceptionDetails" in result:
            raise CDPError(f"page: {result['exceptionDetails'].get('text')}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 30.0) -> Any:
        """Poll ``expression`` in the page until it is truthy."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                value = self.evaluate(expression)
            except CDPError:  # the page is between documents
                value = None
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"page never satisfied: {expression}")
            time.sleep(0.25)

    def navigate(self, url: str) -> None:
        with self.attached() as session:
            self.send("Page.navigate", {"url": url}, session=session)

    def renderer_pids(self) -> set[int]:
        """This browser's renderer processes: its descendants (through the zygote) started with
        ``--type=renderer``, found in /proc without asking the browser."""
        children: dict[int, list[int]] = {}
        for proc in Path("/proc").iterdir():
            if proc.name.isdigit():
                try:
                    stat = (proc / "stat").read_text()
                except OSError:
                    continue
                ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
                children.setdefault(ppid, []).append(int(proc.name))
        pids, todo = set(), [self.proc.pid]
        while todo:
            for child in children.get(todo.pop(), []):
                todo.append(child)
                try:  # Chromium rewrites its command line into one string: a substring test
                    cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
                except OSError:
                    continue
                if b"--type=renderer" in cmdline:
                    pids.add(child)
        return pids

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=5)
        except (CDPError, TimeoutError, OSError):
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        for fd in (self._to_chrome, self._from_chrome):
            try:
                os.close(fd)
            except OSError:
                pass
