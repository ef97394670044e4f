"""What a dorm manager's desk shows of one building (R-OPS-4): the latest door taps (masked),
who of its residents is inside now, late returns after curfew today, and residents not seen
at any reader for N days. One building at a time: the caller decides which buildings the
viewer may see (``ops.accounts.permissions.dorm_scope``), never the browser."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Max, Q
from django.utils import timezone

from ops.masking import mask_name
from ops.registry.models import AccessEvent, Building, Cardholder
from ops.registry.selectors import _recent
from streams.cards import DeviceKind
from streams.reasons import Decision

INSIDE_LOOKBACK = timedelta(days=30)  # a last "in" older than this does not count as inside
LATE_KEPT = 200  # late returns listed on the desk (all of them are counted)


def in_curfew(ts: float, curfew: tuple[int, int] | None, tz: Any) -> bool:
    """Is this moment (epoch seconds) inside the building's late-return window (minutes of the
    day; the window may run past midnight, e.g. 23:00–06:00)?"""
    if curfew is None:
        return False
    local = datetime.fromtimestamp(ts, tz)
    minute = local.hour * 60 + local.minute
    start, end = curfew
    return start <= minute < end if start < end else (minute >= start or minute < end)


def _minutes(t: time) -> int:
    return t.hour * 60 + t.minute


def dorm_snapshot(code: str, *, rows: int, not_seen_days: int, with_names: bool) -> dict[str, Any]:
    building = Building.objects.get(code=code, is_dorm=True)
    curfew = (
        None
        if building.curfew_start is None or building.curfew_end is None
        else (_minutes(building.curfew_start), _minutes(building.curfew_end))
    )
    tz = timezone.get_current_timezone()
    midnight = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    with transaction.atomic():
        watermark = AccessEvent.objects.aggregate(m=Max("id"))["m"] or 0
        doors = AccessEvent.objects.filter(
            device__building=building, device__kind=DeviceKind.DORM_DOOR, id__lte=watermark
        )
        residents = Cardholder.objects.filter(dorm_building=building)
        passages = doors.filter(
            decision=Decision.ALLOW,
            holder__dorm_building=building,
            direction__in=["in", "out"],
            occurred_at__gte=timezone.now() - INSIDE_LOOKBACK,
        )
        latest = passages.values("holder").annotate(m=Max("id")).values("m")
        inside = list(AccessEvent.objects.filter(id__in=latest, direction="in").values_list("holder_id", flat=True))
        late = [
            {
                "id": str(e["event_id"]),
                "ts": e["occurred_at"].timestamp(),
                "holder": mask_name(e["holder__name"] or ""),
                "device": e["device__name"],
            }
            for e in doors.filter(
                decision=Decision.ALLOW, direction="in", occurred_at__gte=midnight, holder__dorm_building=building
            )
            .order_by("occurred_at")
            .values("event_id", "occurred_at", "holder__name", "device__name")
            if in_curfew(e["occurred_at"].timestamp(), curfew, tz)
        ]
        since = timezone.now() - timedelta(days=not_seen_days)
        seen_recently = AccessEvent.objects.filter(occurred_at__gte=since, id__lte=watermark).values("holder_id")
        missing = residents.exclude(Q(id__in=seen_recently))
        return {
            "watermark": watermark,
            "building": code,
            "name": building.name,
            "curfew": curfew,
            "residents": residents.count(),
            "rows": _recent(doors, rows),
            "inside": inside,
            "late": late[-LATE_KEPT:],
            "late_count": len(late),
            "not_seen_days": not_seen_days,
            "not_seen": missing.count(),
            "not_seen_names": (
                [mask_name(n) for n in missing.order_by("number").values_list("name", flat=True)[:50]]
                if with_names
                else []
            ),
        }
