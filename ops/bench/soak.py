"""``campuscard bench soak``: one real Chromium page left open on the live gate page while gate
taps flow at ``rate``; every ``sample_s`` the page's JS heap (after a forced garbage
collection), its DOM size, the feed's row count, the chart's point count and daphne's RSS are
sampled. A page left open all day must keep a flat footprint: bounded rows and points, and a
heap that stops growing once warm.

Debian's Chromium (never a downloaded one), headless, driven by Playwright; the servers are
the same as for ``bench fanout`` (real daphne + processor on the scratch system).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ops.bench.fanout import PAGE, TapFlow, gate_simulator, live_stack, rss_mb, wait_committed

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
        "--enable-precise-memory-info"]  # performance.memory unrounded
WARMUP_S = 300.0

PROBE = """() => {
  const plot = document.querySelector('#gates-per-minute .js-plotly-plot');
  const status = document.getElementById('gates-status');
  return {
    heap: performance.memory.usedJSHeapSize,
    dom: document.getElementsByTagName('*').length,
    rows: document.querySelectorAll('#gates-feed tr').length,
    points: plot && plot.data ? plot.data.reduce((n, t) => n + (t.x ? t.x.length : 0), 0) : 0,
    live: !!status && status.classList.contains('live'),
    status: status ? status.textContent : '',
  };
}"""


def _slope_per_10min(points: list[tuple[float, float]]) -> float | None:
    """Least-squares growth of y per 10 minutes (t in seconds)."""
    if len(points) < 2:
        return None
    n = len(points)
    mt = sum(t for t, _ in points) / n
    my = sum(y for _, y in points) / n
    var = sum((t - mt) ** 2 for t, _ in points)
    if not var:
        return None
    return sum((t - mt) * (y - my) for t, y in points) / var * 600


def _off_the_browser_thread(fn: Callable[[], Any]) -> Any:
    """Django refuses ORM calls from a thread where Playwright's sync API runs its loop."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(fn).result()


def run(*, rate: float, minutes: float, sample_s: float,
        progress: Callable[[str], None] = print) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"{CHROMIUM} is missing: run scripts/setup.sh --test")

    load_before = os.getloadavg()[0]
    duration = minutes * 60
    samples: list[dict[str, Any]] = []
    page_errors: list[str] = []
    with live_stack("soak") as stack:
        sim = gate_simulator(rate)
        flow = TapFlow(sim, remember=False)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            try:
                page = browser.new_page()
                page.on("pageerror", lambda exc: page_errors.append(str(exc)))
                page.goto(f"{stack.base}{PAGE}")  # → the login form
                page.fill("#id_username", stack.username)
                page.fill("#id_password", stack.password)
                page.click("#login-submit")
                page.wait_for_url(f"{stack.base}{PAGE}")
                page.wait_for_selector("#gates-status.live", timeout=30_000)
                cdp = page.context.new_cdp_session(page)
                flow_thread = flow.start(duration + 3600)  # stopped below
                t0 = time.monotonic()
                while True:
                    elapsed = time.monotonic() - t0
                    cdp.send("HeapProfiler.collectGarbage")
                    probe = page.evaluate(PROBE)
                    nodes = cdp.send("Memory.getDOMCounters")["nodes"]
                    sample = {"t": round(elapsed, 1), "heap_mb": probe["heap"] / 2**20,
                              "dom_nodes": probe["dom"], "dom_nodes_all": nodes,
                              "feed_rows": probe["rows"], "chart_points": probe["points"],
                              "live": probe["live"], "daphne_rss_mb": rss_mb(stack.web.pid)}
                    samples.append(sample)
                    progress(f"[soak] t={elapsed:7.0f}s heap={sample['heap_mb']:.2f} MB "
                             f"dom={probe['dom']} (all {nodes}) rows={probe['rows']} "
                             f"points={probe['points']} daphne_rss={sample['daphne_rss_mb']} MB "
                             f"taps={flow.taps} status={probe['status']!r}")
                    if elapsed >= duration - 0.5:
                        break
                    page.wait_for_timeout(1000 * min(sample_s, duration - elapsed))
            finally:
                flow.stop.set()
                browser.close()
        flow_thread.join(10)
        t_end = time.time()
        committed, last_commit = _off_the_browser_thread(
            lambda: wait_committed(flow.started, flow.taps, timeout=120))

    warmup = WARMUP_S if duration >= 2 * WARMUP_S else duration / 2
    warm = [s for s in samples if s["t"] >= warmup]

    def fl(key: str, digits: int = 2) -> dict[str, Any]:
        values = [s[key] for s in samples]
        return {f"{key}_first": round(values[0], digits), f"{key}_last": round(values[-1], digits),
                f"{key}_max": round(max(values), digits)}

    heap_slope = _slope_per_10min([(s["t"], s["heap_mb"]) for s in warm])
    rss_slope = _slope_per_10min([(s["t"], s["daphne_rss_mb"]) for s in warm])
    return {
        "minutes": minutes,
        "offered_per_s": round(flow.taps / max(1e-9, t_end - flow.started), 1),
        "events_per_s": round(committed / (last_commit - flow.started), 1) if last_commit else 0.0,
        "taps_offered": flow.taps,
        "taps_committed": committed,
        "samples": len(samples),
        **fl("heap_mb"),
        "heap_slope_mb_per_10min": round(heap_slope, 3) if heap_slope is not None else None,
        "slope_from_s": round(warmup),
        **fl("dom_nodes", 0),
        **fl("dom_nodes_all", 0),
        **fl("feed_rows", 0),
        **fl("chart_points", 0),
        **fl("daphne_rss_mb", 1),
        "daphne_rss_slope_mb_per_10min": round(rss_slope, 2) if rss_slope is not None else None,
        "page_live_throughout": all(s["live"] for s in samples),
        "page_errors": len(page_errors),
        "processor_lag_s": round(max(0.0, last_commit - flow.last_tap), 3) if last_commit else None,
        "load_1m_before": round(load_before, 2),
    }
