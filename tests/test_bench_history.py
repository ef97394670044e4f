"""Issue 14, Build 3: the year-of-taps preload (COPY) and the history queries it benchmarks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from bench import history, preload
from ops.demo.seed import seed_demo_campus
from ops.pipeline import partitions
from ops.registry import selectors
from ops.registry.models import AccessEvent

pytestmark = [pytest.mark.django_db(transaction=True)]


def test_preload_fills_a_year_and_tops_up_only():
    seed_demo_campus(holders=60)
    now = datetime.now(UTC)
    done = preload.preload(3000, now=now)
    assert (done.rows, done.added) == (3000, 3000)
    assert AccessEvent.objects.count() == 3000
    oldest = AccessEvent.objects.order_by("occurred_at").first()
    newest = AccessEvent.objects.order_by("-occurred_at").first()
    assert oldest is not None and newest is not None
    assert now - timedelta(days=366) < oldest.occurred_at < now - timedelta(days=360)
    assert newest.occurred_at < now - timedelta(minutes=59)
    denied = AccessEvent.objects.filter(decision="deny").count()
    assert 0 < denied < 300  # about 3 %
    again = preload.preload(3000, now=now)
    assert again.added == 0 and AccessEvent.objects.count() == 3000
    if connection.vendor == "postgresql":  # the rows sit in their months' partitions
        assert len(partitions.months()) >= 12
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM campus_accessevent_default")
            assert cursor.fetchone()[0] == 0


def test_holder_passages_are_one_persons_month_in_order():
    seed_demo_campus(holders=60)
    now = datetime.now(UTC)
    preload.preload(4000, now=now, days=60)
    tap = AccessEvent.objects.exclude(holder=None).order_by("occurred_at")[1000]
    assert tap.holder_id is not None
    start, end = tap.occurred_at - timedelta(days=10), tap.occurred_at + timedelta(days=10)
    rows, more = selectors.holder_passages(tap.holder_id, start, end)
    expected = AccessEvent.objects.filter(holder_id=tap.holder_id, occurred_at__gte=start, occurred_at__lt=end)
    assert not more
    assert [r["id"] for r in rows] == [str(e.event_id) for e in expected.order_by("occurred_at", "id")]
    assert str(tap.event_id) in {r["id"] for r in rows}


def test_history_bench_reports_every_query():
    seed_demo_campus(holders=60)
    figures = history.run(preload_rows=2000, repeats=3)
    assert figures["taps_stored"] == 2000
    for name in ("gate_snapshot", "dorm_snapshot", "alert_snapshot", "explain", "passages_month", "totals_today"):
        assert figures[f"{name}_p99_ms"] > 0
    p99s = [v for k, v in figures.items() if k.endswith("_p99_ms") and k != "worst_p99_ms"]
    assert figures["worst_p99_ms"] == max(p99s)
