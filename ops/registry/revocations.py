"""The revocation tracker (issue 17, Build 6; R-USE-1: a lost card must stop working everywhere at
once): for each loss report, blacklisting or cancellation, which readers already hold it and
which do not yet.

A *revocation* is a published credential change (an outbox row of topic ``credential``) that
stops its card: the card is lost, cancelled or replaced, or blacklisted. The relay gave it feed
version V when it published it. A reader *holds* it once the credential version it reports in
its heartbeats (``Device.credential_version``) is V or later: an agent applies the feed strictly
in order and reloads the whole snapshot — at a later version — on a gap, so holding V means
holding every change up to V. The readers *expected* to hold it are the registered devices with
a key (a retired device has none); a missing one is listed with its state (online, silent, in
fault, never heard from), so an operator sees at once whether it is cut off or merely behind.

Reads only; the 30 s alert is ``ops.pipeline.revocation_watch``; the pages are the card's admin
page (``CardAdmin``, live through ``dashboard.revocation_feed``) and the NIC desk.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Q, QuerySet
from django.db.models.fields.json import KeyTextTransform
from django.db.models.lookups import In
from django.utils.translation import gettext as _

from ops.masking import mask_uid
from ops.registry.choices import CARD_STATUSES, DeviceState
from ops.registry.lifecycle.choices import Topic
from ops.registry.lifecycle.models import OutboxMessage
from ops.registry.models import Device
from streams.cards import CardStatus

REVOKING_STATUSES = (CardStatus.LOST, CardStatus.CANCELLED, CardStatus.REPLACED)
WINDOW = timedelta(hours=24)  # the NIC desk and the 30 s check look this far back
DESK_LIMIT = 10  # revocations on the NIC desk
CARD_LIMIT = 5  # revocations of one card on its page
MISSING_NAMED = 5  # missing readers named per revocation on the desk (the rest counted)


@dataclass(frozen=True, slots=True)
class Revocation:
    id: int  # the outbox row
    card: str  # the card's UID, masked
    status: str
    blacklisted: bool
    version: int | None  # None: not published yet
    created_at: datetime
    published_at: datetime | None


@dataclass(frozen=True, slots=True)
class Reader:
    id: int
    code: str
    name: str
    state: str
    version: int
    heard: bool  # heard from at least once

    def holds(self, revocation: Revocation) -> bool:
        return revocation.version is not None and self.version >= revocation.version


def _revoking(rows: QuerySet[OutboxMessage]) -> QuerySet[OutboxMessage]:
    stops = Q(payload__status__in=[s.value for s in REVOKING_STATUSES]) | Q(payload__blacklisted=True)
    return rows.filter(topic=Topic.CREDENTIAL).filter(stops)


def _revocation(row: OutboxMessage) -> Revocation:
    payload = row.payload
    return Revocation(
        id=row.pk,
        card=mask_uid(str(payload.get("uid", ""))),
        status=str(payload.get("status", "")),
        blacklisted=bool(payload.get("blacklisted")),
        version=row.version,
        created_at=row.created_at,
        published_at=row.published_at,
    )


def card_revocations(uid: str, *, limit: int = CARD_LIMIT) -> list[Revocation]:
    """The card's latest revocations, newest first, published or still in the outbox (served
    by the index ``outbox_credential_uid``)."""
    rows = (
        _revoking(OutboxMessage.objects.all())
        .filter(In(KeyTextTransform("uid", "payload"), sorted({uid, uid.upper()})))
        .order_by("-id")
    )
    return [_revocation(r) for r in rows[:limit]]


def recent_revocations(
    *, now: datetime, limit: int = DESK_LIMIT, published_before: datetime | None = None
) -> list[Revocation]:
    """Revocations published within ``WINDOW`` of ``now`` (and before ``published_before``),
    newest first. The window is found by id (the primary key), so the query reads the last
    day's outbox rows only, however long the outbox has grown."""
    before_window = (
        OutboxMessage.objects.filter(created_at__lt=now - WINDOW).order_by("-id").values_list("id", flat=True).first()
    )
    rows = _revoking(OutboxMessage.objects.filter(id__gt=before_window or 0, version__isnull=False))
    rows = rows.filter(published_at__gte=now - WINDOW)
    if published_before is not None:
        rows = rows.filter(published_at__lte=published_before)
    return [_revocation(r) for r in rows.order_by("-id")[:limit]]


def expected_readers() -> list[Reader]:
    """Every device expected to hold the feed: registered, with a key (R-DEV-1)."""
    rows = Device.objects.exclude(key_hex="").order_by("code")
    return [
        Reader(
            id=pk,
            code=code,
            name=name,
            state=state,
            version=version,
            heard=seen is not None,
        )
        for pk, code, name, state, version, seen in rows.values_list(
            "id", "code", "name", "state", "credential_version", "last_seen_at"
        )
    ]


def _reader(r: Reader) -> dict[str, Any]:
    return {"code": r.code, "name": r.name, "state": r.state if r.heard else "never", "version": r.version}


def reach(revocation: Revocation, readers: list[Reader]) -> dict[str, Any]:
    """One revocation and who holds it: JSON-ready (the card's page renders it as it comes)."""
    have = [r for r in readers if r.holds(revocation)]
    missing = [r for r in readers if not r.holds(revocation)]
    return {
        "id": revocation.id,
        "card": revocation.card,
        "status": revocation.status,
        "blacklisted": revocation.blacklisted,
        "version": revocation.version,
        "published": revocation.published_at.timestamp() if revocation.published_at else None,
        "have": [_reader(r) for r in have],
        "missing": [_reader(r) for r in missing],
    }


def card_tracker(uid: str, revocations: list[Revocation] | None = None) -> dict[str, Any]:
    """The card page's panel: its latest revocations, each with the readers that hold it and
    those that do not yet. ``revocations``: already loaded (a device change needs only the
    readers read again)."""
    if revocations is None:
        revocations = card_revocations(uid)
    readers = expected_readers()
    return {"revocations": [reach(r, readers) for r in revocations], "readers": len(readers)}


def desk_tracker(*, now: datetime) -> list[dict[str, Any]]:
    """The NIC desk's rows: the last day's revocations with how many readers hold each, and the
    first few that do not yet."""
    readers = expected_readers()
    rows = []
    for revocation in recent_revocations(now=now):
        missing = [r for r in readers if not r.holds(revocation)]
        rows.append(
            {
                "id": revocation.id,
                "card": revocation.card,
                "status": revocation.status,
                "blacklisted": revocation.blacklisted,
                "version": revocation.version,
                "published": revocation.published_at.timestamp() if revocation.published_at else None,
                "have": len(readers) - len(missing),
                "missing": len(missing),
                "missing_codes": [r.code for r in missing[:MISSING_NAMED]],
            }
        )
    return rows


def tracker_labels() -> dict[str, Any]:
    """The panel's words in the viewer's language (the websocket sends data only)."""
    return {
        "status": {s.value: CARD_STATUSES.label(s.value) for s in CardStatus},
        "blacklisted": _("黑名单"),
        "states": {**{s.value: str(s.label) for s in DeviceState}, "never": _("从未上线")},
        "have": _("已收到"),
        "missing": _("尚未收到"),
        "version": _("凭证版本"),
        "published": _("发布于"),
        "pending": _("尚未发布（等待中继）"),
        "nobody": _("无"),
        "none": _("此卡没有挂失、注销或黑名单记录"),
        "live": _("实时更新中"),
        "offline": _("实时连接中断，正在重连…"),
    }
