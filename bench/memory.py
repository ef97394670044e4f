"""``campuscard bench memory``: the server processes' memory over a long run at a high tap rate
(issue 14, Build 6). daphne (with ``pages`` live gate pages open on it), one processor and the
relay run as the production processes do, on the scratch system; gate taps flow at ``rate``
and, every ``CARD_ACTION_S``, a card is reported lost and found again (so the relay has work).
Every ``sample_s`` each process's RSS is read from /proc; the figure is its least-squares slope
in MB per 10 minutes after ``WARMUP_S`` (caches filling, the interpreter's arenas growing to
their working size) — flat means it stays within noise of 0.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from bench.common import slope_per_10min
from bench.fanout import (
    Dashboards,
    TapFlow,
    gate_simulator,
    live_stack,
    log_in,
    rss_mb,
    stream_pending,
    wait_committed,
)
from ops.accounts.roles import Role
from ops.accounts.services import create_or_update_operator
from ops.registry.lifecycle import services
from ops.registry.models import Card

WARMUP_S = 120.0
CARD_ACTION_S = 10.0


def run(
    *, rate: float, minutes: float, sample_s: float, pages: int, progress: Callable[[str], None] = print
) -> dict[str, Any]:
    load_before = os.getloadavg()[0]
    duration = minutes * 60
    with live_stack("memory") as stack:
        nic = create_or_update_operator(username="bench-nic", password=secrets.token_urlsafe(12), role=Role.NIC)
        relay = subprocess.Popen(
            [sys.executable, "-m", "ops.cli", "relay"],
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
            stdout=subprocess.DEVNULL,
        )
        procs = {"daphne": stack.web, "processor": stack.processor, "relay": relay}
        cookie, info = log_in(stack)
        dashboards = Dashboards(stack, cookie, info, pages)
        dashboards.open()
        flow = TapFlow(gate_simulator(rate), remember=False)
        samples: list[dict[str, float]] = []
        card_actions = 0
        cards = list(Card.objects.filter(status="active").order_by("id")[:200])
        try:
            flow.start(duration + 3600)  # stopped below
            t0 = time.monotonic()
            next_sample = next_action = 0.0
            while (elapsed := time.monotonic() - t0) < duration:
                if elapsed >= next_action and cards:
                    card = cards[card_actions % len(cards)]
                    card = services.report_loss(card=card, operator=nic, basis="bench memory: 挂失")
                    services.report_found(card=card, operator=nic, basis="bench memory: 解挂")
                    card_actions += 1
                    next_action += CARD_ACTION_S
                if elapsed >= next_sample:
                    sample = {"t": round(elapsed, 1)} | {name: rss_mb(p.pid) for name, p in procs.items()}
                    samples.append(sample)
                    shown = " ".join(f"{k} {v:.1f} MB" for k, v in sample.items() if k != "t")
                    progress(f"{elapsed / 60:5.1f} min  taps {flow.taps:,}  {shown}")
                    next_sample += sample_s
                time.sleep(0.2)
        finally:
            flow.stop.set()
            dashboards.close()
            relay.send_signal(signal.SIGTERM)
            relay.wait(15)
        committed, _last = wait_committed(flow.started, flow.taps)
        pending = stream_pending()
        died = [name for name, p in procs.items() if p.poll() is not None and name != "relay"]
    figures: dict[str, Any] = {
        "rate": rate,
        "minutes": minutes,
        "pages": pages,
        "taps_offered": flow.taps,
        "taps_committed": committed,
        "offered_per_s": round(flow.taps / duration, 1),
        "stream_pending_end": pending,
        "card_actions": card_actions,
        "samples": len(samples),
        "slope_from_s": WARMUP_S,
        "processes_died": died,
        "load_1m_before": round(load_before, 2),
    }
    for name in procs:
        series = [(s["t"], s[name]) for s in samples]
        warm = [(t, v) for t, v in series if t >= WARMUP_S] or series
        figures[f"{name}_rss_mb_first"] = series[0][1] if series else None
        figures[f"{name}_rss_mb_warm"] = warm[0][1] if warm else None
        figures[f"{name}_rss_mb_last"] = series[-1][1] if series else None
        figures[f"{name}_rss_mb_max"] = max(v for _, v in series) if series else None
        slope = slope_per_10min(warm)
        figures[f"{name}_rss_slope_mb_per_10min"] = round(slope, 2) if slope is not None else None
    return figures
