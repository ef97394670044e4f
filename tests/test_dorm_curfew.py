"""R-OPS-4: the dorm desk's late returns today are found by the database in the day's curfew
window(s) (issue 14: filtering every door tap of the day in Python grew with the day's taps), and
agree minute by minute with the rule the live board applies to each new tap (``in_curfew``)."""

from __future__ import annotations

import uuid
from datetime import datetime, time, timedelta

import pytest
from django.utils import timezone

from ops.registry.dorm import dorm_snapshot, in_curfew
from ops.registry.models import AccessEvent

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("window", [(time(23, 0), time(6, 0)), (time(12, 0), time(13, 30))])
def test_late_returns_are_the_days_entries_inside_the_window_and_no_others(campus, window):
    campus.dorm.curfew_start, campus.dorm.curfew_end = window
    campus.dorm.save()
    tz = timezone.get_current_timezone()
    day = timezone.localdate()
    start = timezone.make_aware(datetime.combine(day, time(0)), tz)
    moments = [start + timedelta(minutes=m) for m in range(0, 1440, 7)]  # the whole local day
    curfew = (window[0].hour * 60 + window[0].minute, window[1].hour * 60 + window[1].minute)
    edges = {curfew[0] - 1, curfew[0], curfew[1] - 1, curfew[1]}  # either side of each edge
    moments = sorted(set(moments) | {start + timedelta(minutes=m) for m in edges})
    moments += [start - timedelta(minutes=30)]  # yesterday evening: not today's
    resident = campus.cards[0]
    AccessEvent.objects.bulk_create(
        AccessEvent(
            event_id=uuid.uuid4(),
            device=campus.dorm_door,
            card=resident,
            card_uid=resident.uid,
            holder=resident.holder,
            occurred_at=at,
            direction=direction,
            decision="allow",
            reason="ok",
            boot_epoch=1,
            seq=i,
        )
        for i, at in enumerate(moments)
        for direction in ("in", "out")  # exits are never late returns
    )
    expected = [at for at in moments if at >= start and in_curfew(at.timestamp(), curfew, tz)]
    assert 0 < len(expected) < len(moments) - 1

    snapshot = dorm_snapshot(campus.dorm.code, rows=10, not_seen_days=3, with_names=False)

    assert snapshot["late_count"] == len(expected)
    assert [row["ts"] for row in snapshot["late"]] == [at.timestamp() for at in expected][-200:]
