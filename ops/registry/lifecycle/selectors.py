"""Reads for the live card-action feed, and the temporary cards about to end."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Max, QuerySet
from django.utils import timezone

from ops.registry.lifecycle.choices import Topic
from ops.registry.lifecycle.models import OutboxMessage
from ops.registry.models import Card
from streams.cards import CardStatus, CardType


def card_action_snapshot(*, rows: int) -> dict[str, Any]:
    """Latest published card actions (masked, as pushed) and today's count per action, up to a
    watermark (the highest published outbox id) — the relay's pushes carry the same kind."""
    midnight = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    with transaction.atomic():
        published = OutboxMessage.objects.filter(published_at__isnull=False)
        watermark = published.aggregate(m=Max("id"))["m"] or 0
        actions = published.filter(topic=Topic.CARD_ACTION, id__lte=watermark)
        latest = [{**m.payload, "id": m.id, "ts": m.created_at.timestamp()} for m in actions.order_by("-id")[:rows]]
        counts: dict[str, int] = {}
        for payload in actions.filter(created_at__gte=midnight).values_list("payload", flat=True):
            counts[payload["action"]] = counts.get(payload["action"], 0) + 1
    return {"watermark": watermark, "rows": latest, "counts": counts, "since": midnight.timestamp()}


def temporary_cards_ending(*, now: datetime, within: timedelta) -> QuerySet[Card]:
    """Usable temporary cards whose agreed end (R-END-4) falls in ``(now, now + within]``, with
    their owning department (R-CARD-7) — for the expiry reminders."""
    return (
        Card.objects.filter(
            card_type=CardType.TEMPORARY,
            status=CardStatus.ACTIVE,
            valid_until__gt=now,
            valid_until__lte=now + within,
            owner_department__isnull=False,
        )
        .select_related("owner_department")
        .order_by("valid_until", "pk")
    )
