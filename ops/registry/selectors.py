"""Reads: what the edge needs (credentials, doors) and what live pages load first (snapshots)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, cast

from django.db import transaction
from django.db.models import Count, Max, QuerySet
from django.utils import timezone

from ops.accounts.permissions import role_of
from ops.accounts.roles import Role
from ops.live_rows import DeviceInfo, HolderInfo, tap_row
from ops.registry.choices import DeviceApproval
from ops.registry.lifecycle.choices import Topic
from ops.registry.lifecycle.models import AccessGrant, OutboxMessage
from ops.registry.models import AccessEvent, Card, Device
from readers.decide import Credential, Door, Grant, Passback
from streams.cards import GATE_KINDS, CardStatus, CardType, DeviceKind
from streams.reasons import Decision


def cards_visible_to(user: Any, cards: QuerySet[Card] | None = None) -> QuerySet[Card]:
    """The cards ``user`` may look at: NIC every card; a department only the temporary cards it
    approved and manages (R-CARD-7: 谁审批，谁管理，谁负责). The card admin and the card page's
    live revocation panel (issue 17) ask the same question."""
    cards = cards if cards is not None else Card.objects.all()
    if sees_every_card(user):
        return cards
    department = getattr(getattr(user, "operator", None), "department_id", None)
    return cards.filter(card_type=CardType.TEMPORARY, owner_department_id=department)


def sees_every_card(user: Any) -> bool:
    return bool(getattr(user, "is_superuser", False) or role_of(user) == Role.NIC)


def readable_cards(user: Any) -> QuerySet[Card]:
    """The cards ``user`` may read — a card's page in the admin, ``GET /api/v1/cards/<uid>/``,
    为什么被拒绝 in both (issue 20, item 2): the admin's rule exactly, the card view permission
    (:func:`may_view_cards`) and then :func:`cards_visible_to`. None for anyone else (hr,
    finance, library, a leader: their tokens read no card)."""
    if not may_view_cards(user):
        return Card.objects.none()
    return cards_visible_to(user)


def may_view_cards(user: Any) -> bool:
    """Whether ``user`` may open card pages at all (the admin's own rule: staff with the view
    permission)."""
    return bool(
        getattr(user, "is_active", False) and getattr(user, "is_staff", False) and user.has_perm("campus.view_card")
    )


def credentials() -> list[Credential]:
    """Every card a reader may be shown, as the edge caches it."""
    rows = Card.objects.values_list(
        "uid",
        "card_type",
        "status",
        "blacklisted",
        "valid_from",
        "valid_until",
        "holder__dorm_building__code",
    )
    grants: dict[str, list[Grant]] = {}  # temporary cards' grants in force (R-CARD-7), one query
    live = AccessGrant.objects.filter(revoked_at__isnull=True, valid_until__gt=timezone.now())
    for uid, building, device, until in live.values_list("card__uid", "building__code", "device__code", "valid_until"):
        grants.setdefault(uid, []).append(Grant(building or device, until))
    return [
        Credential(
            uid=uid,
            card_type=CardType(t),
            status=CardStatus(s),
            blacklisted=b,
            valid_from=vf,
            valid_until=vu,
            dorm_building=dorm,
            grants=tuple(grants.get(uid, ())) if t == CardType.TEMPORARY else (),
        )
        for uid, t, s, b, vf, vu, dorm in rows
    ]


def doors() -> list[Door]:
    """Every registered door with its policies: anti-passback and the building's curfew."""
    rows = Device.objects.values_list(
        "code", "kind", "building__code", "passback", "passback_area", "building__curfew_start", "building__curfew_end"
    )
    return [
        Door(
            device_id=code,
            kind=DeviceKind(kind),
            building=building,
            passback=cast(Passback, passback),  # the field's choices; Door checks it again
            area=area or None,
            curfew=(start, end) if start and end else None,
        )
        for code, kind, building, passback, area, start, end in rows
    ]


def device_keys() -> dict[str, bytes]:
    """Registered devices' HMAC keys — for the simulator, which signs as each device would."""
    return {code: bytes.fromhex(key) for code, key in Device.objects.exclude(key_hex="").values_list("code", "key_hex")}


def gate_devices() -> list[Mapping[str, Any]]:
    gates = Device.objects.filter(kind__in=GATE_KINDS, approval=DeviceApproval.APPROVED)
    return list(gates.values("code", "name", "kind", "state").order_by("code"))


def gate_snapshot(*, rows: int, minutes: int) -> dict[str, Any]:
    """Everything the gate page shows, consistent up to one access-event id (the watermark):
    the latest taps (masked), taps per gate per minute, and today's allow/deny totals.
    Deltas pushed later carry their own watermark; the page applies those above this one."""
    with transaction.atomic():
        watermark = AccessEvent.objects.aggregate(m=Max("id"))["m"] or 0
        at_gates = AccessEvent.objects.filter(device__kind__in=GATE_KINDS, id__lte=watermark)
        return {
            "watermark": watermark,
            "rows": _recent(at_gates, rows),
            "counts": _minute_counts(at_gates, minutes),
            "inout": _minute_flows(at_gates, minutes),
            "totals": totals_today(at_gates),
        }


def _recent(events: QuerySet[AccessEvent], limit: int) -> list[dict[str, Any]]:
    latest = events.select_related("device", "device__building", "holder", "holder__dorm_building").order_by(
        "-occurred_at", "-id"
    )[:limit]
    return [
        tap_row(
            event_id=str(e.event_id),
            occurred_at=e.occurred_at,
            device=DeviceInfo(
                id=e.device.id,
                code=e.device.code,
                name=e.device.name,
                kind=e.device.kind,
                building=e.device.building.code if e.device.building else None,
            ),
            holder=HolderInfo(
                id=e.holder.id,
                name=e.holder.name,
                kind=e.holder.kind,
                dorm=e.holder.dorm_building.code if e.holder.dorm_building else None,
            )
            if e.holder
            else None,
            card_uid=e.card_uid,
            direction=e.direction,
            decision=e.decision,
            reason=e.reason,
            flags=e.flags,
        )
        for e in latest
    ]


def _minute_counts(events: QuerySet[AccessEvent], minutes: int) -> dict[str, dict[int, int]]:
    """Taps per gate per minute (epoch minute → count) over the last ``minutes``."""
    since = timezone.now() - timedelta(minutes=minutes)
    out: dict[str, dict[int, int]] = {}
    recent = events.filter(occurred_at__gte=since).values_list("device__code", "occurred_at")
    for code, when in recent.iterator(chunk_size=5000):
        minute = int(when.timestamp() // 60)
        per_gate = out.setdefault(code, {})
        per_gate[minute] = per_gate.get(minute, 0) + 1
    return out


def _minute_flows(events: QuerySet[AccessEvent], minutes: int) -> dict[str, dict[int, list[int]]]:
    """Allowed passages in / out per gate per minute over the last ``minutes``."""
    since = timezone.now() - timedelta(minutes=minutes)
    out: dict[str, dict[int, list[int]]] = {}
    recent = events.filter(occurred_at__gte=since, decision=Decision.ALLOW, direction__in=["in", "out"]).values_list(
        "device__code", "occurred_at", "direction"
    )
    for code, when, direction in recent.iterator(chunk_size=5000):
        flow = out.setdefault(code, {}).setdefault(int(when.timestamp() // 60), [0, 0])
        flow[0 if direction == "in" else 1] += 1
    return out


def totals_today(events: QuerySet[AccessEvent]) -> dict[str, Any]:
    """Allow / deny totals since local midnight, and the deny reasons."""
    midnight = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    by = {
        (r["decision"], r["reason"]): r["n"]
        for r in events.filter(occurred_at__gte=midnight)
        .values("decision", "reason")
        .annotate(n=Count("id"))
        .order_by()
    }
    return {
        "allow": sum(n for (d, _), n in by.items() if d == Decision.ALLOW),
        "deny": sum(n for (d, _), n in by.items() if d == Decision.DENY),
        "reasons": {r: n for (d, r), n in by.items() if d == Decision.DENY},
        "since": midnight.timestamp(),
    }


def _published_credential_version() -> int:
    return (
        OutboxMessage.objects.filter(topic=Topic.CREDENTIAL, published_at__isnull=False).aggregate(v=Max("version"))[
            "v"
        ]
        or 0
    )


def device_health(ids: list[int] | None = None) -> dict[int, dict[str, Any]]:
    """The NIC desk's device grid (R-OPS-3): state, last heartbeat, how far behind the
    published credentials the device is, and how many events it holds un-uploaded."""
    # a device pending installation or removed is not one NIC watches (R-DEV-1, issue 18 Build 2)
    devices = Device.objects.filter(approval=DeviceApproval.APPROVED).select_related("building").order_by("code")
    if ids is not None:
        devices = devices.filter(id__in=ids)
    published = _published_credential_version()
    return {
        d.pk: {
            "id": d.pk,
            "code": d.code,
            "name": d.name,
            "kind": d.kind,
            "state": d.state,
            "location": d.location,
            "building": d.building.code if d.building else "",
            "building_name": d.building.name if d.building else "",
            "last_seen": d.last_seen_at.timestamp() if d.last_seen_at else None,
            "heartbeat_s": d.heartbeat_s,
            "buffered": d.buffered,
            "lag": max(published - d.credential_version, 0) if d.last_seen_at else 0,
            "rank": 0,
        }
        for d in devices
    }


MAX_LOOKBACK = timedelta(days=7)
PASSAGES_MAX = 5000  # rows of one person's look-up; a month of ~40 taps a day is far below


def holder_passages(holder_id: int, start: datetime, end: datetime) -> tuple[list[dict[str, Any]], bool]:
    """One person's taps between ``start`` and ``end``, oldest first (R-SEC-2: shown only under
    a grant, by ``personal_data.services.view_passages``), and whether there were more than
    ``PASSAGES_MAX``. Served by the (holder, time) index, one partition per month touched."""
    taps = (
        AccessEvent.objects.filter(holder_id=holder_id, occurred_at__gte=start, occurred_at__lt=end)
        .order_by("occurred_at", "id")
        .values("event_id", "occurred_at", "device__code", "device__name", "direction", "decision", "reason", "flags")
    )
    rows = list(taps[: PASSAGES_MAX + 1])
    return [
        {
            "id": str(r["event_id"]),
            "at": r["occurred_at"],
            "device": r["device__code"],
            "device_name": r["device__name"],
            "direction": r["direction"],
            "decision": r["decision"],
            "reason": r["reason"],
            "flags": r["flags"],
        }
        for r in rows[:PASSAGES_MAX]
    ], len(rows) > PASSAGES_MAX


def history_bucket(start: datetime, end: datetime) -> int:
    """Seconds per chart bar for a look-back range: minutes for a few hours, coarser beyond,
    so a week's chart is ~1,000 bars per gate at most (bounded memory in the browser)."""
    span = (end - start).total_seconds()
    return 60 if span <= 6 * 3600 else 600 if span <= 48 * 3600 else 3600


def gate_history(start: datetime, end: datetime) -> dict[str, Any]:
    """Taps per gate per bucket over a past period (R-OPS-2 look-back)."""
    bucket = history_bucket(start, end)
    counts: dict[str, dict[int, int]] = {}
    taps = AccessEvent.objects.filter(
        device__kind__in=GATE_KINDS, occurred_at__gte=start, occurred_at__lt=end
    ).values_list("device__name", "occurred_at")
    for name, when in taps.iterator(chunk_size=5000):
        slot = int(when.timestamp() // bucket) * bucket
        per = counts.setdefault(name, {})
        per[slot] = per.get(slot, 0) + 1
    return {"bucket": bucket, "counts": counts}


def gate_state_at(start: datetime, at: datetime, *, rows: int) -> dict[str, Any]:
    """The gate page as it stood at ``at`` in a replay from ``start``: the taps shown then
    (masked, like the live page) and the totals since ``start``."""
    events = AccessEvent.objects.filter(device__kind__in=GATE_KINDS, occurred_at__gte=start, occurred_at__lte=at)
    by = {
        (r["decision"], r["reason"]): r["n"]
        for r in events.values("decision", "reason").annotate(n=Count("id")).order_by()
    }
    return {
        "rows": _recent(events, rows),
        "allow": sum(n for (d, _), n in by.items() if d == Decision.ALLOW),
        "deny": sum(n for (d, _), n in by.items() if d == Decision.DENY),
        "reasons": {r: n for (d, r), n in by.items() if d == Decision.DENY},
    }
