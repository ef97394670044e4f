"""Reads of emergency modes (issue 17, Build 2): the modes in force and pending (the desks'
banner, the security desk's page), and the state the readers get — built here and nowhere else
in ``ops`` (:func:`reader_state`), sent by the relay."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from ops.registry.emergency.choices import LIVE_STATUSES, Kind, Scope, Status
from ops.registry.emergency.models import EmergencyMode, EmergencyRevision
from ops.registry.models import Card
from streams import emergency as feed
from streams.cards import CardStatus, CardType


def live_modes() -> QuerySet[EmergencyMode]:
    """Modes in force and requests pending, the oldest first."""
    return (
        EmergencyMode.objects.filter(status__in=LIVE_STATUSES)
        .select_related("building", "group", "requested_by", "approved_by")
        .order_by("requested_at", "id")
    )


def banner() -> list[dict[str, Any]]:
    """What every desk's banner shows: one line per live mode (no personal data but operator
    user names, which every operator may see on the audit anyway)."""
    out = []
    for mode in live_modes():
        started = mode.started_at or mode.requested_at
        out.append(
            {
                "id": mode.pk,
                "kind": mode.kind,
                "status": mode.status,
                "text": _("%(kind)s：%(place)s（%(status)s，%(at)s 起）")
                % {
                    "kind": Kind(mode.kind).label,
                    "place": mode.place_label(),
                    "status": Status(mode.status).label,
                    "at": timezone.localtime(started).strftime("%H:%M:%S"),
                },
                "reason": mode.reason,
            }
        )
    return out


def security_uids() -> tuple[str, ...]:
    """The cards that pass a lockdown: active, not blacklisted staff cards of holders in the
    security departments (``EMERGENCY_SECURITY_DEPARTMENTS``)."""
    rows = Card.objects.filter(
        card_type=CardType.STAFF,
        status=CardStatus.ACTIVE,
        blacklisted=False,
        holder__department__code__in=list(settings.EMERGENCY_SECURITY_DEPARTMENTS),
    ).order_by("uid")
    return tuple(uid.upper() for uid in rows.values_list("uid", flat=True))


def revision() -> tuple[int, int]:
    """(the revision of the modes in force, the last one the relay published)."""
    row = EmergencyRevision.objects.filter(pk=1).values_list("revision", "published").first()
    return (int(row[0]), int(row[1])) if row else (0, 0)


def _mode_spec(mode: EmergencyMode) -> feed.Mode:
    devices: tuple[str, ...] = ()
    buildings: tuple[str, ...] = ()
    if mode.scope == Scope.BUILDING and mode.building is not None:
        buildings = (mode.building.code,)
    elif mode.scope == Scope.GROUP and mode.group is not None:
        devices = tuple(sorted(d.code for d in mode.group.devices.all()))
        buildings = tuple(sorted(b.code for b in mode.group.buildings.all()))
        if not devices and not buildings:
            buildings = ("-",)  # an empty group: a mode that covers no door (never every door)
    return feed.Mode(
        id=mode.pk,
        kind=cast("feed.Kind", mode.kind),  # Kind's values are the contract's literals
        scope=cast("feed.Scope", mode.scope),
        name=mode.place_label()[:100],
        devices=devices,
        buildings=buildings,
        started_at=mode.started_at or mode.requested_at,
    )


def reader_state(at_revision: int, now: datetime | None = None) -> feed.EmergencyState:
    """The modes in force, as the readers get them, at ``at_revision``."""
    active = (
        EmergencyMode.objects.filter(status=Status.ACTIVE)
        .select_related("building", "group")
        .prefetch_related("group__devices", "group__buildings")
        .order_by("id")
    )
    modes = tuple(_mode_spec(m) for m in active)
    lockdown = any(m.kind == Kind.LOCKDOWN for m in modes)
    return feed.EmergencyState(
        revision=max(at_revision, 1),
        issued_at=now or timezone.now(),
        modes=modes,
        security=security_uids() if lockdown else (),
    )
