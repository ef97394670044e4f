"""Real headless Chromium (Debian's, never a downloaded one) driven by Playwright, and small
helpers for tests that run the real servers as subprocesses."""

from __future__ import annotations

import contextlib
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

from playwright.sync_api import Browser, Page, sync_playwright

from bench.cdp_pipe import CHROMIUM, HEADLESS_ARGS
from bench.common import wait_http  # noqa: F401  (the tests' one way to wait for a server)

ARGS = HEADLESS_ARGS


@contextlib.contextmanager
def chromium(*extra_args: str) -> Iterator[Browser]:
    """``extra_args``: more Chromium switches (e.g. its fake camera, for the webcam tests)."""
    if not Path(CHROMIUM).exists():  # fail, never skip: the browser tests must run
        raise RuntimeError(f"{CHROMIUM} is missing: run scripts/setup.sh --test")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=[*ARGS, *extra_args])
        try:
            yield browser
        finally:
            browser.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def log_in(page: Page, base: str, username: str, password: str, path: str) -> None:
    page.goto(f"{base}{path}")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("#login-submit")
    page.wait_for_url(f"{base}{path}")


def log_in_expecting(page: Page, base: str, username: str, password: str, path: str) -> int:
    """Open ``path``, log in on the page it redirects to, return the status ``path`` answers."""
    page.goto(f"{base}{path}")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    with page.expect_response(lambda r: r.url == f"{base}{path}") as response:
        page.click("#login-submit")
    return response.value.status


def stop(proc: subprocess.Popen, sig: int, timeout: float = 20.0) -> int:
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise


def stop_all(procs: list[subprocess.Popen], sig: int, timeout: float = 20.0) -> None:
    """Stop several servers at once: the signal to every one first, then wait for each (each
    takes seconds to wind down; one after the other, a test's teardown paid their sum). The
    first that had to be killed is raised, after all are stopped."""
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(sig)
    failure: subprocess.TimeoutExpired | None = None
    for proc in procs:
        try:
            proc.wait(timeout)  # signalled once, as by stop()
        except subprocess.TimeoutExpired as exc:
            proc.kill()
            proc.wait()
            failure = failure or exc
    if failure is not None:
        raise failure


def outside_the_browser_loop(fn):
    """Run a database check from inside a Playwright block (its sync API runs an event loop in
    this thread, and Django refuses ORM calls from a thread with a running loop)."""
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection

    def call():
        try:
            return fn()
        finally:
            connection.close()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(call).result()
