"""R-OPS-4: the dorm desk's late returns today are the day's entries the door itself flagged late
(issue 17: the door decides by the curfew in force — the central rules and calendar, else the
building's — so the desk counts by the same rule, never by a second reading of the building's
hours), found by the database since local midnight (issue 14: not by filtering the day in Python)."""

from __future__ import annotations

import uuid
from datetime import datetime, time, timedelta

import pytest
from django.utils import timezone

from ops.registry import selectors
from ops.registry.dorm import dorm_snapshot
from ops.registry.models import AccessEvent
from readers.decide import Credential, decide
from streams.cards import CardStatus, CardType
from streams.reasons import Decision, Direction

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("window", [(time(23, 0), time(6, 0)), (time(12, 0), time(13, 30))])
def test_late_returns_are_the_days_entries_the_door_flagged_and_no_others(campus, window):
    campus.dorm.curfew_start, campus.dorm.curfew_end = window
    campus.dorm.save()
    (door,) = [d for d in selectors.doors() if d.device_id == campus.dorm_door.code]
    tz = timezone.get_current_timezone()
    start = timezone.make_aware(datetime.combine(timezone.localdate(), time(0)), tz)
    moments = [start + timedelta(minutes=m) for m in range(0, 1440, 7)]  # the whole local day
    moments += [start - timedelta(minutes=30)]  # yesterday evening: not today's
    resident = campus.cards[0]
    credential = Credential(
        uid=resident.uid,
        card_type=CardType.STUDENT,
        status=CardStatus.ACTIVE,
        blacklisted=False,
        valid_from=start - timedelta(days=30),
        valid_until=None,
        dorm_building=campus.dorm.code,
    )
    rows, expected = [], []
    for i, at in enumerate(moments):
        for direction in (Direction.IN, Direction.OUT):  # exits are never late returns
            verdict = decide(credential, door, at, direction=direction)
            rows.append(
                AccessEvent(
                    event_id=uuid.uuid4(),
                    device=campus.dorm_door,
                    card=resident,
                    card_uid=resident.uid,
                    holder=resident.holder,
                    occurred_at=at,
                    direction=direction.value,
                    decision=verdict.decision.value,
                    reason=verdict.reason.value,
                    flags=",".join(verdict.flags),
                    boot_epoch=1,
                    seq=2 * i + (direction == Direction.OUT),
                )
            )
            if at >= start and verdict.decision == Decision.ALLOW and "late_return" in verdict.flags:
                expected.append(at)
    AccessEvent.objects.bulk_create(rows)
    assert 0 < len(expected) < len(moments) - 1

    snapshot = dorm_snapshot(campus.dorm.code, rows=10, not_seen_days=3, with_names=False)

    assert snapshot["late_count"] == len(expected)
    assert [row["ts"] for row in snapshot["late"]] == [at.timestamp() for at in expected][-200:]


def test_an_entry_in_the_window_the_door_did_not_flag_is_not_late(campus):
    """The building's hours say 23:00–06:00, but the door let this entry in unflagged (the central
    rule for that night is later, e.g. Friday): the desk follows the door."""
    campus.dorm.curfew_start, campus.dorm.curfew_end = time(23, 0), time(6, 0)
    campus.dorm.save()
    tz = timezone.get_current_timezone()
    at = timezone.make_aware(datetime.combine(timezone.localdate(), time(0, 30)), tz)
    resident = campus.cards[0]
    for n, flags in enumerate(("", "late_return")):
        AccessEvent.objects.create(
            event_id=uuid.uuid4(),
            device=campus.dorm_door,
            card=resident,
            card_uid=resident.uid,
            holder=resident.holder,
            occurred_at=at + timedelta(minutes=n),
            direction="in",
            decision="allow",
            reason="ok",
            flags=flags,
            boot_epoch=1,
            seq=n + 1,
        )
    snapshot = dorm_snapshot(campus.dorm.code, rows=10, not_seen_days=3, with_names=False)
    assert snapshot["late_count"] == 1
