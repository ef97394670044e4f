"""Reads: what the edge needs (credentials, doors) and what live pages load first (snapshots)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db.models import Count
from django.utils import timezone

from ops.campus.choices import GATE_KINDS, DecisionChoice
from ops.campus.live_rows import DeviceInfo, HolderInfo, tap_row
from ops.campus.models import AccessEvent, Card, Device
from readers.decide import Credential, Door
from streams.cards import CardStatus, CardType, DeviceKind


def credentials() -> list[Credential]:
    """Every card a reader may be shown, as the edge caches it."""
    rows = Card.objects.values_list(
        "uid", "card_type", "status", "blacklisted", "valid_from", "valid_until",
        "holder__dorm_building__code",
    )
    return [
        Credential(uid=uid, card_type=CardType(t), status=CardStatus(s), blacklisted=b,
                   valid_from=vf, valid_until=vu, dorm_building=dorm)
        for uid, t, s, b, vf, vu, dorm in rows
    ]


def doors() -> list[Door]:
    return [
        Door(device_id=code, kind=DeviceKind(kind), building=building)
        for code, kind, building in Device.objects.values_list("code", "kind", "building__code")
    ]


def gate_devices() -> list[dict[str, Any]]:
    return list(Device.objects.filter(kind__in=GATE_KINDS).values("code", "name", "kind", "state")
                .order_by("code"))


def recent_gate_taps(*, limit: int) -> list[dict[str, Any]]:
    """The latest taps at gates, newest first, in the live-row shape (masked)."""
    events = (
        AccessEvent.objects.filter(device__kind__in=GATE_KINDS)
        .select_related("device", "device__building", "holder")
        .order_by("-occurred_at", "-id")[:limit]
    )
    return [
        tap_row(
            event_id=str(e.event_id), occurred_at=e.occurred_at,
            device=DeviceInfo(id=e.device.id, code=e.device.code, name=e.device.name,
                              kind=e.device.kind,
                              building=e.device.building.code if e.device.building else None),
            holder=HolderInfo(id=e.holder.id, name=e.holder.name, kind=e.holder.kind)
            if e.holder else None,
            card_uid=e.card_uid, direction=e.direction, decision=e.decision, reason=e.reason,
        )
        for e in events
    ]


def gate_minute_counts(*, minutes: int) -> dict[str, dict[int, int]]:
    """Taps per gate per minute (epoch minute → count) over the last ``minutes``."""
    since = timezone.now() - timedelta(minutes=minutes)
    out: dict[str, dict[int, int]] = {}
    rows = AccessEvent.objects.filter(device__kind__in=GATE_KINDS, occurred_at__gte=since)
    for code, when in rows.values_list("device__code", "occurred_at").iterator(chunk_size=5000):
        minute = int(when.timestamp() // 60)
        per_gate = out.setdefault(code, {})
        per_gate[minute] = per_gate.get(minute, 0) + 1
    return out


def gate_totals_today() -> dict[str, Any]:
    """Allow / deny totals since local midnight, and the deny reasons."""
    midnight = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    qs = AccessEvent.objects.filter(device__kind__in=GATE_KINDS, occurred_at__gte=midnight)
    by = {(r["decision"], r["reason"]): r["n"]
          for r in qs.values("decision", "reason").annotate(n=Count("id"))}
    return {
        "allow": sum(n for (d, _), n in by.items() if d == DecisionChoice.ALLOW),
        "deny": sum(n for (d, _), n in by.items() if d == DecisionChoice.DENY),
        "reasons": {r: n for (d, r), n in by.items() if d == DecisionChoice.DENY},
        "since": midnight.timestamp(),
    }
