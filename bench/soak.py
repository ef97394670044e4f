"""``campuscard bench soak``: one real Chromium page left open on the live gate page while gate
taps flow at ``rate``; every ``sample_s`` the page's JS heap (after a forced garbage
collection), its DOM size, the feed's row count, the chart's point count, how far behind the
page is, the browser's renderer processes and daphne's RSS are sampled; every
``DUMP_EVERY_S`` the renderer's memory is broken down by allocator (``memory_dump``). A page left
open all day must keep a flat footprint: bounded rows and points, and memory that stops growing
once warm — and it must keep up, or updates queue inside the browser.

Debian's Chromium (never a downloaded one), headless, driven over its DevTools pipe
(``bench/cdp_pipe.py``): between probes nothing is attached to the page, as for an operator's
browser — Playwright would keep every websocket frame it saw and be measured instead of the page.
The servers are the same as for ``bench fanout`` (real daphne + processor on the scratch system).

A page that falls behind answers late: each probe waits at most ``PROBE_TIMEOUT_S``, and a
probe that times out is counted (``probes_timed_out``) instead of hanging the run. Renderer
memory and CPU are read from /proc, which answers even when the page's main thread is busy.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings

from bench import memory_dump
from bench.cdp_pipe import Chromium
from bench.common import slope_per_10min
from bench.fanout import (
    PAGE,
    Stack,
    TapFlow,
    cpu_seconds,
    gate_simulator,
    live_stack,
    rss_mb,
    wait_committed,
)

WARMUP_S = 300.0
FULL_CHART_S = 35 * 60  # the chart's 30-minute window has filled (bars stop being added)
PROBE_TIMEOUT_S = 20.0
DUMP_EVERY_S = 600.0  # memory-infra dumps of the renderer (bench/memory_dump.py)

PROBE = """(() => {
  const plot = document.querySelector('#gates-per-minute .js-plotly-plot');
  const status = document.getElementById('gates-status');
  return {
    heap: performance.memory.usedJSHeapSize,
    heapTotal: performance.memory.totalJSHeapSize,
    dom: document.getElementsByTagName('*').length,
    rows: document.querySelectorAll('#gates-feed-body tr, tbody#gates-feed tr').length,
    points: plot && plot.data ? plot.data.reduce((n, t) => n + (t.x ? t.x.length : 0), 0) : 0,
    live: !!status && status.classList.contains('live'),
    status: status ? status.textContent : '',
    coalescing: window.__campuscardCoalescing || null,
    errors: window.__soakErrors || 0,
  };
})()"""
# uncaught errors and rejected promises in the page, counted from login on
COUNT_ERRORS = """(() => { window.__soakErrors = 0;
  const count = () => { window.__soakErrors += 1; };
  window.addEventListener('error', count);
  window.addEventListener('unhandledrejection', count);
  return true; })()"""


def _allocator_growth(dumps: list[tuple[int, dict[str, float]]]) -> dict[str, Any]:
    """The renderer's allocators at the first and last dump, what each grew by, and (from three
    dumps on) each one's least-squares growth per 10 minutes — over the whole run and once the
    chart is full."""
    if len(dumps) < 2:
        return {"allocators_mb": dumps[0][1]} if dumps else {}
    (t0, first), (t1, last) = dumps[0], dumps[-1]
    names = sorted({*first, *last}, key=lambda k: -abs(last.get(k, 0.0) - first.get(k, 0.0)))
    figures: dict[str, Any] = {
        "allocators_from_s": t0,
        "allocators_to_s": t1,
        "allocators_first_mb": first,
        "allocators_last_mb": last,
        "allocators_growth_mb": {k: round(last.get(k, 0.0) - first.get(k, 0.0), 1) for k in names},
    }
    for key, since in (
        ("allocators_slope_mb_per_10min", 0),
        ("allocators_slope_full_chart_mb_per_10min", FULL_CHART_S),
    ):
        span = [(t, d) for t, d in dumps if t >= since]
        if len(span) >= 3:
            slopes = {k: slope_per_10min([(t, d.get(k, 0.0)) for t, d in span]) for k in names}
            figures[key] = {k: round(v, 2) for k, v in slopes.items() if v is not None}
    return figures


def _behind_s(status: str, tz: ZoneInfo) -> float | None:
    """How old the page's "live · HH:MM:SS" stamp is: how far behind the pushes it is."""
    found = re.search(r"(\d\d):(\d\d):(\d\d)", status)
    if not found:
        return None
    now = datetime.now(tz)
    shown = now.replace(hour=int(found[1]), minute=int(found[2]), second=int(found[3]), microsecond=0)
    behind = (now - shown).total_seconds()
    return behind + 86400 if behind < -43200 else behind  # across midnight


def private_mb(pid: int) -> float:
    """Memory a process holds for itself alone (private clean + dirty pages, MiB, Linux): its
    RSS without the shared libraries and fonts it maps, which only grow as they are touched."""
    kb = 0
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith(("Private_Clean:", "Private_Dirty:")):
            kb += int(line.split()[1])
    return round(kb / 1024, 1)


class _Renderers:
    """RSS, private memory and CPU of the browser's renderer processes, read from /proc."""

    def __init__(self, chromium: Chromium) -> None:
        self.chromium = chromium
        self.pids: set[int] = set()
        self.last: tuple[float, float] | None = None

    def memory(self) -> tuple[float, float]:
        """(RSS, private) MiB summed over the renderers (looked up afresh: one may be new)."""
        self.pids = self.chromium.renderer_pids()
        rss = private = 0.0
        for pid in self.pids:
            try:
                rss += rss_mb(pid)
                private += private_mb(pid)
            except OSError:
                pass
        return round(rss, 1), round(private, 1)

    def cpu(self) -> float | None:
        """CPU % of the renderers found by the last ``memory()`` since the previous call."""
        cpu = 0.0
        for pid in self.pids or self.chromium.renderer_pids():
            try:
                cpu += cpu_seconds(pid)
            except OSError:
                pass
        now, pct = time.monotonic(), None
        if self.last is not None and now > self.last[1]:
            pct = round(100 * (cpu - self.last[0]) / (now - self.last[1]), 1)
        self.last = (cpu, now)
        return pct


def _profile(chromium: Chromium, seconds: float) -> list[dict[str, Any]]:
    """Sample the page's main thread for ``seconds``; the functions it spent most time in
    (self time), grouped by function and script — where a slow desk's time goes."""
    with chromium.attached() as session:
        chromium.send("Profiler.enable", session=session)
        chromium.send("Profiler.setSamplingInterval", {"interval": 1000}, session=session)
        chromium.send("Profiler.start", session=session)
        time.sleep(seconds)
        profile = chromium.send("Profiler.stop", session=session)["profile"]
    nodes = {n["id"]: n for n in profile["nodes"]}
    deltas = profile.get("timeDeltas", [])
    self_us: dict[tuple[str, str], float] = {}
    for node_id, delta in zip(profile.get("samples", []), deltas[1:] + [0], strict=False):
        frame = nodes[node_id]["callFrame"]
        key = (frame["functionName"] or "(anonymous)", frame["url"].rsplit("/", 1)[-1] + f":{frame['lineNumber']}")
        self_us[key] = self_us.get(key, 0.0) + delta
    total = sum(self_us.values()) or 1.0
    top = sorted(self_us.items(), key=lambda kv: -kv[1])[:25]
    return [
        {"function": f, "where": w, "ms": round(us / 1000, 1), "pct": round(100 * us / total, 1)} for (f, w), us in top
    ]


def _log_in(chromium: Chromium, stack: Stack) -> None:
    """The security operator logs in through the login form and lands on the gate page."""
    chromium.navigate(f"{stack.base}{PAGE}")  # → the login form
    chromium.wait_for("!!document.getElementById('login-submit')")
    chromium.evaluate(f"""(() => {{
        document.getElementById('id_username').value = {json.dumps(stack.username)};
        document.getElementById('id_password').value = {json.dumps(stack.password)};
        document.getElementById('login-submit').click(); return true; }})()""")
    chromium.wait_for(
        f"location.pathname === {json.dumps(PAGE)} && !!document.querySelector('#gates-status.live')", timeout=60
    )
    chromium.evaluate(COUNT_ERRORS)


def _probe(chromium: Chromium, tz: ZoneInfo) -> dict[str, Any]:
    """The page's own state after a forced garbage collection, in one short attachment."""
    with chromium.attached() as session:
        chromium.send("HeapProfiler.collectGarbage", session=session, timeout=PROBE_TIMEOUT_S)
        probe = chromium.evaluate(PROBE, session=session, timeout=PROBE_TIMEOUT_S)
        dom_all = chromium.send("Memory.getDOMCounters", session=session)["nodes"]
    sample = dict(
        heap_mb=probe["heap"] / 2**20,
        heap_total_mb=probe["heapTotal"] / 2**20,
        dom_nodes=probe["dom"],
        dom_nodes_all=dom_all,
        feed_rows=probe["rows"],
        chart_points=probe["points"],
        live=probe["live"],
        behind_s=_behind_s(probe["status"], tz),
        page_errors=probe["errors"],
    )
    if probe["coalescing"]:  # dashboard/assets/coalesce.js at work
        sample.update(pushes_received=probe["coalescing"]["received"], pushes_applied=probe["coalescing"]["applied"])
    return sample


def run(
    *, rate: float, minutes: float, sample_s: float, profile_s: float = 0.0, progress: Callable[[str], None] = print
) -> dict[str, Any]:
    load_before = os.getloadavg()[0]
    tz = ZoneInfo(settings.TIME_ZONE)
    duration = minutes * 60
    samples: list[dict[str, Any]] = []
    timeouts = 0
    profile: list[dict[str, Any]] | None = None
    # where the renderer's memory is: once warm, then every DUMP_EVERY_S, and at the end
    dumps: list[tuple[int, dict[str, float]]] = []
    next_dump = min(WARMUP_S, minutes * 30)
    with live_stack("soak") as stack:
        flow = TapFlow(gate_simulator(rate), remember=False)
        chromium = Chromium(stack.log_dir / "chromium-profile")
        try:
            _log_in(chromium, stack)
            renderers = _Renderers(chromium)
            renderers.cpu()
            flow_thread = flow.start(duration + 3600)  # stopped below
            t0 = time.monotonic()
            while True:
                elapsed = time.monotonic() - t0
                sample: dict[str, Any] = {"t": round(elapsed, 1)}
                try:
                    sample.update(_probe(chromium, tz))
                except TimeoutError:  # the page did not answer in PROBE_TIMEOUT_S
                    timeouts += 1
                sample["renderer_rss_mb"], sample["renderer_private_mb"] = renderers.memory()
                sample["renderer_cpu_pct"] = renderers.cpu()
                sample["daphne_rss_mb"] = rss_mb(stack.web.pid)
                samples.append(sample)
                shown = " ".join(
                    f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}" for k, v in sample.items() if k != "t"
                )
                progress(
                    f"[soak] t={elapsed:6.0f}s taps={flow.taps} "
                    f"{shown if 'live' in sample else 'page did not answer; ' + shown}"
                )
                last = elapsed >= duration - 0.5
                if "live" in sample and (last or elapsed >= next_dump):
                    dumps.append((round(elapsed), memory_dump.take(chromium, renderers.pids)))
                    next_dump += DUMP_EVERY_S
                    progress(f"[soak] renderer memory by allocator (MiB): {dumps[-1][1]}")
                if profile_s and profile is None:
                    profile = _profile(chromium, profile_s)
                    for line in profile:
                        progress(
                            f"[profile] {line['pct']:5.1f}% {line['ms']:9.1f} ms {line['function']} {line['where']}"
                        )
                if last:
                    break
                next_at = min(elapsed + sample_s, duration)
                time.sleep(max(0.0, next_at - (time.monotonic() - t0)))
        finally:
            flow.stop.set()
            chromium.close()
        flow_thread.join(10)
        t_end = time.time()
        committed, last_commit = wait_committed(flow.started, flow.taps, timeout=120)

    warmup = WARMUP_S if duration >= 2 * WARMUP_S else duration / 2

    def series(key: str) -> list[tuple[float, float]]:
        return [(s["t"], s[key]) for s in samples if s.get(key) is not None]

    def fl(key: str, digits: int = 1) -> dict[str, Any]:
        values = [v for _, v in series(key)]
        if not values:
            return {f"{key}_first": None, f"{key}_last": None, f"{key}_max": None}
        return {
            f"{key}_first": round(values[0], digits),
            f"{key}_last": round(values[-1], digits),
            f"{key}_max": round(max(values), digits),
        }

    def slope(key: str, since: float = warmup) -> float | None:
        value = slope_per_10min([(t, v) for t, v in series(key) if t >= since])
        return round(value, 2) if value is not None else None

    late = duration >= FULL_CHART_S + 600  # at least 10 minutes with a full chart

    cpu = [v for _, v in series("renderer_cpu_pct")]
    return {
        "minutes": minutes,
        "offered_per_s": round(flow.taps / max(1e-9, t_end - flow.started), 1),
        "events_per_s": round(committed / (last_commit - flow.started), 1) if last_commit else 0.0,
        "taps_offered": flow.taps,
        "taps_committed": committed,
        "samples": len(samples),
        "probes_timed_out": timeouts,
        **fl("heap_mb", 2),
        **fl("heap_total_mb", 2),
        "heap_total_slope_mb_per_10min": slope("heap_total_mb"),
        "heap_slope_mb_per_10min": slope("heap_mb"),
        "slope_from_s": round(warmup),
        # the chart adds 16 bars a minute until its window is full: the flat-footprint check
        "heap_slope_full_chart_mb_per_10min": slope("heap_mb", FULL_CHART_S) if late else None,
        **fl("dom_nodes", 0),
        **fl("dom_nodes_all", 0),
        **fl("feed_rows", 0),
        **fl("chart_points", 0),
        **fl("behind_s", 0),
        **fl("renderer_rss_mb"),
        "renderer_rss_slope_mb_per_10min": slope("renderer_rss_mb"),
        **fl("renderer_private_mb"),
        "renderer_private_slope_mb_per_10min": slope("renderer_private_mb"),
        "renderer_private_slope_full_chart_mb_per_10min": slope("renderer_private_mb", FULL_CHART_S) if late else None,
        "renderer_rss_slope_full_chart_mb_per_10min": slope("renderer_rss_mb", FULL_CHART_S) if late else None,
        "renderer_cpu_pct_mean": round(sum(cpu) / len(cpu), 1) if cpu else None,
        **fl("daphne_rss_mb"),
        "daphne_rss_slope_mb_per_10min": slope("daphne_rss_mb"),
        "page_live_throughout": all(s.get("live") for s in samples),
        "page_errors": max((x.get("page_errors", 0) for x in samples), default=0),
        "processor_lag_s": round(max(0.0, last_commit - flow.last_tap), 3) if last_commit else None,
        "load_1m_before": round(load_before, 2),
        **({"profile_top": profile} if profile else {}),
        **_allocator_growth(dumps),
    }
