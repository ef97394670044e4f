"""Writing outbox messages (inside the service's transaction) and their payloads."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from ops.bulk import fast_insert
from ops.masking import mask_name, mask_uid
from ops.registry.calendar.policy import live_stays
from ops.registry.lifecycle.choices import Topic
from ops.registry.lifecycle.models import AccessGrant, OutboxMessage
from ops.registry.models import Card
from streams.cards import CardStatus, CardType
from streams.credentials import CardCredential, Grant, Stay


def card_credential(card: Card, *, stays: tuple[Stay, ...] | None = None) -> CardCredential:
    """What a reader caches about a card: the feed's one contract,
    :class:`streams.credentials.CardCredential` (built here and nowhere else in ``ops``; the
    server's own explanations read it too). ``stays``: the holder's vacation stays when the
    caller loaded them for many cards at once (``calendar.policy.live_stays_by_holder``)."""
    building = card.holder.dorm_building  # None without a query when there is none
    if stays is None:
        stays = live_stays(card)
    elif card.card_type != CardType.STUDENT or card.status != CardStatus.ACTIVE:
        stays = ()
    return CardCredential(
        uid=card.uid,
        card_type=CardType(card.card_type),
        status=CardStatus(card.status),
        blacklisted=card.blacklisted,
        valid_from=card.valid_from,
        valid_until=card.valid_until,
        dorm_building=building.code if building is not None else None,
        grants=live_grants(card),
        stays=stays,
    )


def credential_payload(card: Card, *, stays: tuple[Stay, ...] | None = None) -> dict[str, Any]:
    return card_credential(card, stays=stays).wire()


def live_grants(card: Card) -> tuple[Grant, ...]:
    """A temporary card's grants in force (R-CARD-7): not revoked, not yet ended. Other cards
    have none (no query)."""
    if card.card_type != CardType.TEMPORARY:
        return ()
    rows = (
        AccessGrant.objects.filter(card=card, revoked_at__isnull=True, valid_until__gt=timezone.now())
        .select_related("building", "device")
        .order_by("id")
    )
    return tuple(Grant(place=g.place_code, until=g.valid_until) for g in rows)


def card_action_payload(card: Card, action: str, operator: Any) -> dict[str, Any]:
    holder = card.holder
    return {
        "action": action,
        "card": mask_uid(card.uid),
        "card_type": card.card_type,
        "status": card.status,
        "holder": mask_name(holder.name),
        "holder_kind": holder.kind,
        "operator": getattr(operator, "username", "") or "system",
    }


def announce(card: Card, action: str, operator: Any, *, live: bool = True) -> None:
    """A credential change for the readers and (if ``live``) a card action for the live feed."""
    rows = [OutboxMessage(topic=Topic.CREDENTIAL, payload=credential_payload(card))]
    if live:
        rows.append(OutboxMessage(topic=Topic.CARD_ACTION, payload=card_action_payload(card, action, operator)))
    OutboxMessage.objects.bulk_create(rows)


def announce_many(cards: list[Card], action: str, operator: Any) -> None:
    """The same messages as :func:`announce`, for a bulk change, in one statement."""
    now = timezone.now()
    rows: list[tuple[Any, ...]] = []
    for card in cards:
        rows.append((Topic.CREDENTIAL.value, credential_payload(card), now))
        rows.append((Topic.CARD_ACTION.value, card_action_payload(card, action, operator), now))
    fast_insert(OutboxMessage, ("topic", "payload", "created_at"), rows)
