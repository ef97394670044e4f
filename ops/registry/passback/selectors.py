"""Reads of anti-passback (issue 17, Build 5): the zones the registry's doors make, the last
passage of a card in a zone as the database holds it (what the zone's readers were told), and
the forgiveness given."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q, QuerySet

from ops.registry.models import AccessEvent, Device
from ops.registry.passback.models import Forgiveness
from streams.reasons import Decision, Direction


@dataclass(frozen=True)
class Zone:
    code: str
    devices: tuple[str, ...]
    modes: tuple[str, ...]  # the anti-passback modes of its doors (hard, soft)


def zones() -> dict[str, Zone]:
    """Every zone: the anti-passback area of doors that check it (a door with no area is a zone
    of its own, as at the reader, ``readers.decide.Door.passback_area``)."""
    found: dict[str, tuple[list[str], set[str]]] = {}
    for code, mode, area in Device.objects.exclude(passback="off").values_list("code", "passback", "passback_area"):
        devices, modes = found.setdefault(area or code, ([], set()))
        devices.append(code)
        modes.add(mode)
    return {z: Zone(z, tuple(sorted(d)), tuple(sorted(m))) for z, (d, m) in sorted(found.items())}


@dataclass(frozen=True)
class LastPassage:
    direction: Direction
    at: datetime
    device: str


def last_passage(uid: str, zone: Zone, since: datetime) -> LastPassage | None:
    """The card's latest allowed, directed passage at a door of the zone since ``since`` and
    since its last forgiveness there (None: none that counts)."""
    row = (
        AccessEvent.objects.filter(
            card_uid=uid.upper(),
            device__code__in=zone.devices,
            decision=Decision.ALLOW,
            direction__in=[Direction.IN, Direction.OUT],
            occurred_at__gte=since,
        )
        .order_by("-occurred_at")
        .values_list("direction", "occurred_at", "device__code")
        .first()
    )
    if row is None:
        return None
    forgiven = last_forgiveness(zone.code, uid)
    if forgiven is not None and row[1] <= forgiven.at:
        return None
    return LastPassage(Direction(row[0]), row[1], row[2])


def last_forgiveness(zone: str, uid: str) -> Forgiveness | None:
    """The latest forgiveness in the zone that covers the card (its holder's, or the zone's)."""
    return (
        Forgiveness.objects.filter(zone=zone)
        .filter(Q(holder__isnull=True) | Q(holder__cards__uid=uid.upper()))
        .select_related("by", "holder")
        .order_by("-at")
        .first()
    )


def recent(limit: int = 30) -> QuerySet[Forgiveness]:
    return Forgiveness.objects.select_related("by", "holder").order_by("-at")[:limit]
