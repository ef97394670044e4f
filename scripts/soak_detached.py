"""Experiment (docs/benchmarks.md, "Soak without DevTools attached"): the soak page with no
DevTools session attached between samples. Chromium is started by hand with a debugging port;
Playwright connects only to log in and, for a few seconds, for each memory dump.

    .venv/bin/python scripts/soak_detached.py [minutes]     # default 12

To become `campuscard bench soak --detached`; kept here until then.
"""

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SCRATCH = Path(tempfile.mkdtemp(prefix="campuscard-bare-"))
os.environ.update(CAMPUSCARD_VAR_DIR=str(SCRATCH), DJANGO_SETTINGS_MODULE="ops.settings",
                  DATABASE_URL=f"sqlite:///{SCRATCH / 'bench.sqlite3'}")
os.environ.pop("REDIS_URL", None)  # the embedded Redis, private to the scratch directory


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    import django

    django.setup()
    from playwright.sync_api import sync_playwright

    from ops.bench import memory_dump
    from ops.bench.fanout import PAGE, TapFlow, gate_simulator, live_stack
    from ops.bench.soak import ARGS, CHROMIUM, _Renderers

    minutes = float(sys.argv[1]) if len(sys.argv) > 1 else 12.0
    dumps_at = [120.0, 60 + minutes * 30, minutes * 60]
    with live_stack("detached") as stack:
        port = _port()
        chrome = subprocess.Popen([CHROMIUM, *ARGS, f"--remote-debugging-port={port}",
                                   f"--user-data-dir={SCRATCH / 'chrome'}", "about:blank"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(3)
        with sync_playwright() as pw:
            browser = pw.chromium.connect_over_cdp(f"http://127.0.0.1:{port}")
            page = browser.contexts[0].pages[0]
            page.goto(f"{stack.base}{PAGE}")
            page.fill("#id_username", stack.username)
            page.fill("#id_password", stack.password)
            page.click("#login-submit")
            page.wait_for_url(f"{stack.base}{PAGE}")
            page.wait_for_selector("#gates-status.live", timeout=30_000)
            browser.close()  # disconnects: DevTools detaches from the page
        flow = TapFlow(gate_simulator(200.0), remember=False)
        flow.start(minutes * 60 + 600)
        t0 = time.monotonic()
        for at in dumps_at:
            time.sleep(max(0.0, at - (time.monotonic() - t0)))
            with sync_playwright() as pw:
                browser = pw.chromium.connect_over_cdp(f"http://127.0.0.1:{port}")
                renderers = _Renderers(browser)
                page = browser.contexts[0].pages[0]
                status = page.evaluate("document.getElementById('gates-status').textContent")
                dump = memory_dump.take(renderers.cdp, renderers.pids(), page.wait_for_timeout)
                print(json.dumps([round(time.monotonic() - t0), renderers.memory(), status, dump],
                                 ensure_ascii=False), flush=True)
                browser.close()
        flow.stop.set()
        chrome.terminate()
        chrome.wait(10)
        print("taps", flow.taps)


if __name__ == "__main__":
    main()
