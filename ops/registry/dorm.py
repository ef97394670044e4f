"""What a dorm manager's desk shows of one building (R-OPS-4): the latest door taps (masked),
who of its residents is inside now, late returns after curfew today, and residents not seen
at any reader for N days. One building at a time: the caller decides which buildings the
viewer may see (``ops.accounts.permissions.dorm_scope``), never the browser."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Exists, Max, OuterRef, Subquery
from django.utils import timezone

from ops.masking import mask_name
from ops.registry.models import AccessEvent, Building, Cardholder, Device
from ops.registry.selectors import _recent
from streams.cards import DeviceKind
from streams.reasons import Decision

INSIDE_LOOKBACK = timedelta(days=30)  # a last "in" older than this does not count as inside
LATE_KEPT = 200  # late returns listed on the desk (all of them are counted)
LATE_RETURN = "late_return"  # the tap flag (streams.envelopes.Tap.flags)


def _minutes(t: time) -> int:
    return t.hour * 60 + t.minute


def is_late_return(flags: str) -> bool:
    """A late return is an entry its door let in and flagged ``late_return`` (issue 17): the door
    decided by the curfew in force that night — the central door rules and the academic calendar
    (a later curfew on Friday, none in a vacation), else the building's own — so the desk counts
    what the door said, by the one rule, instead of judging the time again by the building's."""
    return LATE_RETURN in flags.split(",")


def dorm_snapshot(code: str, *, rows: int, not_seen_days: int, with_names: bool) -> dict[str, Any]:
    building = Building.objects.get(code=code, is_dorm=True)
    curfew = (
        None
        if building.curfew_start is None or building.curfew_end is None
        else (_minutes(building.curfew_start), _minutes(building.curfew_end))
    )
    with transaction.atomic():
        watermark = AccessEvent.objects.aggregate(m=Max("id"))["m"] or 0
        door_ids = list(
            Device.objects.filter(building=building, kind=DeviceKind.DORM_DOOR).values_list("id", flat=True)
        )
        doors = AccessEvent.objects.filter(device_id__in=door_ids, id__lte=watermark)
        residents = Cardholder.objects.filter(dorm_building=building)
        # Each resident's latest passage through one of this building's doors, by when it
        # happened: one walk down the resident's (holder, time) index that stops at the first
        # door passage — not an aggregate over every door tap of the look-back (7 s at a year
        # of taps, issue 14). A passage uploaded late (a reader that was offline) does not
        # overturn a newer one; the desk's board applies deltas by the same rule.
        latest = doors.filter(
            holder=OuterRef("pk"),
            decision=Decision.ALLOW,
            direction__in=["in", "out"],
            occurred_at__gte=timezone.now() - INSIDE_LOOKBACK,
        ).order_by("-occurred_at")
        passed = {
            holder: (direction, when)
            for holder, direction, when in residents.annotate(
                last_direction=Subquery(latest.values("direction")[:1]),
                last_at=Subquery(latest.values("occurred_at")[:1]),
            )
            .filter(last_at__isnull=False)
            .values_list("id", "last_direction", "last_at")
        }
        inside = sorted(holder for holder, (direction, _when) in passed.items() if direction == "in")
        # today's entries the doors flagged late (is_late_return), since local midnight
        midnight = timezone.make_aware(datetime.combine(timezone.localdate(), time(0)))
        tonight = doors.filter(
            occurred_at__gte=midnight,
            decision=Decision.ALLOW,
            direction="in",
            holder__dorm_building=building,
            flags__contains=LATE_RETURN,
        )
        late_count = tonight.count()
        late = [
            {
                "id": str(e["event_id"]),
                "ts": e["occurred_at"].timestamp(),
                "holder": mask_name(e["holder__name"] or ""),
                "device": e["device__name"],
            }
            for e in reversed(
                tonight.order_by("-occurred_at").values("event_id", "occurred_at", "holder__name", "device__name")[
                    :LATE_KEPT
                ]
            )
        ]
        # "not seen for N days": one probe of each resident's (holder, time) index, not a set of
        # every holder seen campus-wide in N days (issue 14)
        since = timezone.now() - timedelta(days=not_seen_days)
        seen_recently = AccessEvent.objects.filter(holder=OuterRef("pk"), occurred_at__gte=since, id__lte=watermark)
        missing = list(residents.exclude(Exists(seen_recently)).order_by("number").values_list("name", flat=True))
        return {
            "watermark": watermark,
            "building": code,
            "name": building.name,
            "curfew": curfew,
            "residents": residents.count(),
            "rows": _recent(doors, rows),
            "inside": inside,
            # each resident's latest door passage (epoch s): the board ignores older ones
            "passed_at": {holder: when.timestamp() for holder, (_direction, when) in passed.items()},
            "late": late,
            "late_count": late_count,
            "not_seen_days": not_seen_days,
            "not_seen": len(missing),
            "not_seen_names": [mask_name(n) for n in missing[:50]] if with_names else [],
        }
