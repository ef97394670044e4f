"""Reads for musters (issue 17): who is inside a building now, who of a muster's people is safe,
the live board's snapshot and the report an export is made of.

"Inside" is the dorm desk's rule (``ops.registry.dorm``: the latest allowed passage by when it
happened, a 30-day look-back), taken over every door and gate: a person is inside building B
when their latest passage *anywhere* is an entry through one of B's doors. So one person is in
one place — someone who went into B and later into C without tapping out is counted in C only,
and someone who left through a campus gate is not inside at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from django.db import transaction
from django.db.models import Max, OuterRef, QuerySet, Subquery
from django.utils import timezone

from ops.masking import mask_name
from ops.muster.models import Muster, MusterPerson, MusterPoint
from ops.registry.dorm import INSIDE_LOOKBACK
from ops.registry.models import AccessEvent, Building, Cardholder, Device
from streams.reasons import Decision, Direction

PASSAGE = (Direction.IN, Direction.OUT)


class Inside(NamedTuple):
    holder_id: int
    door_id: int
    entered_at: datetime


def inside_now(building: Building, *, at: datetime | None = None) -> list[Inside]:
    """The people inside ``building`` at ``at`` (now) by their latest passage (module doc).

    Candidates are those who entered through one of its doors within the look-back (the
    (device, time) index); for each, one walk down their (holder, time) index finds their latest
    passage anywhere — the same walk as the dorm snapshot's, not an aggregate over every tap."""
    at = at or timezone.now()
    doors = list(Device.objects.filter(building=building).values_list("id", flat=True))
    if not doors:
        return []
    passages = AccessEvent.objects.filter(
        decision=Decision.ALLOW, direction__in=PASSAGE, occurred_at__gte=at - INSIDE_LOOKBACK, occurred_at__lte=at
    )
    entered = passages.filter(device_id__in=doors, direction=Direction.IN, holder__isnull=False).values("holder_id")
    latest = passages.filter(holder=OuterRef("pk")).order_by("-occurred_at", "-id")
    rows = (
        Cardholder.objects.filter(pk__in=entered)
        .annotate(
            last_device=Subquery(latest.values("device_id")[:1]),
            last_direction=Subquery(latest.values("direction")[:1]),
            last_at=Subquery(latest.values("occurred_at")[:1]),
        )
        .filter(last_direction=Direction.IN, last_device__in=doors)
        .order_by("number")
        .values_list("id", "last_device", "last_at")
    )
    return [Inside(holder, door, when) for holder, door, when in rows]


def muster_points() -> dict[int, tuple[str, str]]:
    """Every muster point: device id → (device code, the assembly point's name)."""
    return {
        device: (code, place)
        for device, code, place in MusterPoint.objects.values_list("device_id", "device__code", "place")
    }


def safe_marks(
    muster: Muster, *, points: dict[int, tuple[str, str]] | None = None, upto_id: int | None = None
) -> dict[int, tuple[datetime, int]]:
    """Holder → (when, muster-point device) of their first allowed tap at a muster point from the
    muster's ``counted_from`` on (until its end) — for the people it accounts for only. A denied
    tap (a lost, cancelled or blacklisted card) marks nobody: the card may not be in its holder's
    hand. ``upto_id``: only taps committed up to this access-event id (a snapshot's watermark).

    Served by the (device, time) index: the taps at a few readers since the muster began."""
    points = muster_points() if points is None else points
    if not points:
        return {}
    taps = AccessEvent.objects.filter(
        device_id__in=list(points),
        decision=Decision.ALLOW,
        occurred_at__gte=muster.counted_from,
        holder_id__in=MusterPerson.objects.filter(muster=muster).values("holder_id"),
    )
    if muster.ended_at is not None:
        taps = taps.filter(occurred_at__lte=muster.ended_at)
    if upto_id is not None:
        taps = taps.filter(id__lte=upto_id)
    marks: dict[int, tuple[datetime, int]] = {}
    for holder, when, device in taps.order_by("occurred_at", "id").values_list("holder_id", "occurred_at", "device_id"):
        marks.setdefault(holder, (when, device))
    return marks


def visible(codes: list[str] | None) -> QuerySet[Muster]:
    """The musters of the buildings ``codes`` (None: every building), newest first."""
    musters = Muster.objects.select_related("building", "started_by", "ended_by")
    return musters if codes is None else musters.filter(building__code__in=codes)


def _person(p: MusterPerson, *, with_names: bool) -> dict[str, Any]:
    return {
        "id": p.holder_id,
        "name": p.holder.name if with_names else mask_name(p.holder.name),
        "number": p.holder.number,
        "department": p.holder.department.name,
        "door": p.door.name if p.door else "",
        "entered_at": p.entered_at.timestamp(),
    }


def board_snapshot(codes: list[str] | None) -> dict[str, Any]:
    """What the muster board shows (``dashboard.muster_board``): the active musters of the
    buildings ``codes`` (None: all) with their people and who of them is safe, consistent up
    to one access-event id (the watermark), and the muster points by device code.

    Names are full: the board shows active musters only, to the roles allowed to see them, in an
    emergency (docs/decisions.md "Muster names"); the page audits each viewer."""
    with transaction.atomic():
        watermark = AccessEvent.objects.aggregate(m=Max("id"))["m"] or 0
        points = muster_points()
        musters = []
        for muster in visible(codes).filter(ended_at__isnull=True).order_by("building__code"):
            persons = muster.persons.select_related("holder", "holder__department", "door").order_by("holder__number")
            marks = safe_marks(muster, points=points, upto_id=watermark)
            musters.append(
                {
                    "id": muster.pk,
                    "building": muster.building.code,
                    "building_name": muster.building.name,
                    "reason": muster.reason,
                    "started_by": muster.started_by.get_username(),
                    "started_at": muster.started_at.timestamp(),
                    "counted_from": muster.counted_from.timestamp(),
                    "persons": [_person(p, with_names=True) for p in persons],
                    "safe": {holder: (when.timestamp(), points[device][1]) for holder, (when, device) in marks.items()},
                }
            )
        return {
            "watermark": watermark,
            "points": {code: place for code, place in points.values()},
            "musters": musters,
        }


@dataclass(frozen=True)
class Report:
    """A muster as recorded, for its page and its export."""

    muster: Muster
    persons: list[dict[str, Any]]  # each with "safe_at" (datetime | None) and "point"
    with_names: bool

    @property
    def inside(self) -> int:
        return len(self.persons)

    @property
    def safe(self) -> int:
        return sum(1 for p in self.persons if p["safe_at"] is not None)

    @property
    def unaccounted(self) -> int:
        return self.inside - self.safe


def report(muster: Muster, *, with_names: bool) -> Report:
    """Everyone the muster accounts for, unaccounted first (by number), then the safe in the
    order they reached an assembly point. While it runs, who is safe is read from the taps; once
    it has ended, from what was written down at its end."""
    persons = list(muster.persons.select_related("holder", "holder__department", "door", "safe_point"))
    points = muster_points()
    marks = safe_marks(muster, points=points) if muster.active else {}
    rows = []
    for p in persons:
        row = _person(p, with_names=with_names)
        if muster.active:
            when, device = marks.get(p.holder_id, (None, None))
            row["safe_at"], row["point"] = when, points[device][1] if device is not None else ""
        else:
            row["safe_at"] = p.safe_at
            row["point"] = (
                points[p.safe_point_id][1] if p.safe_point_id in points else (p.safe_point.name if p.safe_point else "")
            )
        row["entered"] = p.entered_at
        rows.append(row)
    rows.sort(key=lambda r: (r["safe_at"] is not None, r["safe_at"].timestamp() if r["safe_at"] else 0, r["number"]))
    return Report(muster, rows, with_names)
