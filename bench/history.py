"""``campuscard bench history``: the queries people wait for, on a table holding a year of
taps (issue 14, Build 3; default 36 M, a 10,000-person campus). Each runs ``repeats`` times
and reports p50/p99 in ms (goal p99 ≤ 100 ms on PostgreSQL):

- ``gate_snapshot`` / ``dorm_snapshot`` / ``alert_snapshot``: what a desk loads when it opens;
  the dorm's includes "not seen for N days" (``DORM_NOT_SEEN_DAYS``);
- ``explain``: "why was this card denied here";
- ``passages_month``: one person's passages over a calendar month (the look-up a grant opens);
- ``totals_today``: today's allow/deny totals over every reader.

The taps are made with ``bench.preload`` (COPY); a database that already holds them is reused.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.db import connection

from bench import preload
from bench.common import percentile
from ops.alerts.selectors import alert_snapshot
from ops.demo.seed import seed_demo_campus
from ops.registry import selectors
from ops.registry.dorm import dorm_snapshot
from ops.registry.explain import explain
from ops.registry.models import AccessEvent, Building, Card, Device
from streams.cards import DeviceKind

CHART_MINUTES = 30  # the gate page's chart (dashboard.pages.gates)


def _timed(fn: Callable[[], Any], repeats: int) -> dict[str, float]:
    fn()  # warm: the first run pays for plans and cold pages once, as a desk opened earlier did
    took = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        took.append((time.perf_counter() - t0) * 1000)
    took.sort()
    return {"p50": round(percentile(took, 50), 1), "p99": round(percentile(took, 99), 1)}


def run(*, preload_rows: int, repeats: int) -> dict[str, Any]:
    call_command("migrate", verbosity=0, interactive=False)
    seed_demo_campus()
    stored = preload.preload(preload_rows) if preload_rows else None
    rng = random.Random(14)
    dorms = list(Building.objects.filter(is_dorm=True).values_list("code", flat=True))
    doors = list(Device.objects.filter(kind=DeviceKind.DORM_DOOR).values_list("code", flat=True))
    uids = list(Card.objects.values_list("uid", "holder_id"))
    last_month_start = (datetime.now(UTC).replace(day=1) - timedelta(days=1)).replace(
        day=1, hour=0, minute=0, second=0, microsecond=0
    )
    last_month_end = (last_month_start + timedelta(days=32)).replace(day=1)

    def passages() -> None:
        _uid, holder = rng.choice(uids)
        selectors.holder_passages(holder, last_month_start, last_month_end)

    queries: dict[str, Callable[[], Any]] = {
        "gate_snapshot": lambda: selectors.gate_snapshot(rows=settings.LIVE_FEED_ROWS, minutes=CHART_MINUTES),
        "dorm_snapshot": lambda: dorm_snapshot(
            rng.choice(dorms), rows=settings.LIVE_FEED_ROWS, not_seen_days=settings.DORM_NOT_SEEN_DAYS, with_names=True
        ),
        "alert_snapshot": lambda: alert_snapshot(),
        "explain": lambda: explain(uid=rng.choice(uids)[0], device_code=rng.choice(doors)),
        "passages_month": passages,
        "totals_today": lambda: selectors.totals_today(AccessEvent.objects.all()),
    }
    figures: dict[str, Any] = {
        "database": connection.vendor,
        "taps_stored": stored.rows if stored else AccessEvent.objects.count(),
        "preload_added": stored.added if stored else 0,
        "preload_rows_per_s": stored.rows_per_s if stored else None,
        "repeats": repeats,
    }
    for name, fn in queries.items():
        t = _timed(fn, repeats)
        figures[f"{name}_p50_ms"] = t["p50"]
        figures[f"{name}_p99_ms"] = t["p99"]
    figures["worst_p99_ms"] = max(v for k, v in figures.items() if k.endswith("_p99_ms"))
    return figures
