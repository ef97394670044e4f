"""What the card system tells the library about a patron (issue 18, Build 5; R-CARD-2, R-CARD-7).

A patron is named by a card UID or a student/staff number. The answer follows the card the
readers would see (the same order of reasons as ``readers.decide``): lost, cancelled or
replaced, blacklisted, not yet valid, expired → not a valid patron and no borrowing; a temporary
card → a valid patron who may not borrow (R-CARD-7: "no library"; a grant to a library reader
opens its door, never the loan desk); any other card in force → valid, may borrow."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from django.conf import settings
from django.utils.translation import gettext as _

from ops.masking import mask_name
from ops.registry.choices import LIVE_CARD_STATUSES
from ops.registry.models import Card
from streams.cards import CardStatus, CardType

# A card UID or a student/staff number is never longer than this (Card.uid, Cardholder.number).
MAX_IDENTIFIER = 32


class Standing(StrEnum):
    """Why the answer is what it is (counted, logged; the screen message follows it)."""

    OK = "ok"
    TEMPORARY = "temporary"
    LOST = "lost"
    CANCELLED = "cancelled"
    REPLACED = "replaced"
    BLACKLISTED = "blacklisted"
    NOT_YET_VALID = "not_yet_valid"
    EXPIRED = "expired"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Patron:
    """The answer for one patron identifier."""

    standing: Standing
    name: str = ""  # as sent to the library: masked unless SIP2_PERSONAL_NAME=full (R-SEC-2)

    @property
    def valid(self) -> bool:
        """SIP2 BL: the card system knows this patron and the card is in force."""
        return self.standing in (Standing.OK, Standing.TEMPORARY)

    @property
    def may_borrow(self) -> bool:
        """Charge, renewal, recall and hold privileges (patron status flags 1–4)."""
        return self.standing == Standing.OK

    def status_flags(self) -> str:
        """The 14-character SIP2 patron status: privileges denied (positions 1–4) and card
        reported lost (position 5); the rest (loans, fines) is the library's own business."""
        denied = " " if self.may_borrow else "Y"
        lost = "Y" if self.standing == Standing.LOST else " "
        return denied * 4 + lost + " " * 9

    def message(self) -> str:
        """The screen message (SIP2 AF) in the active language."""
        return str(MESSAGES[self.standing]())


MESSAGES = {
    Standing.OK: lambda: _("校园卡有效，可以借阅"),
    Standing.TEMPORARY: lambda: _("临时卡只能用于校园行政事务，不能借阅图书"),
    Standing.LOST: lambda: _("校园卡已挂失，不能借阅"),
    Standing.CANCELLED: lambda: _("校园卡已注销，不能借阅"),
    Standing.REPLACED: lambda: _("此卡已补卡作废，请使用新卡"),
    Standing.BLACKLISTED: lambda: _("校园卡已被列入黑名单，不能借阅"),
    Standing.NOT_YET_VALID: lambda: _("校园卡尚未生效，不能借阅"),
    Standing.EXPIRED: lambda: _("校园卡已过期，不能借阅"),
    Standing.UNKNOWN: lambda: _("一卡通系统中没有此读者（卡号或学工号）"),
}


def standing_of(card: Card, now: datetime) -> Standing:
    """The card's standing at ``now``, reasons in the readers' order (``readers.decide``)."""
    if card.status == CardStatus.LOST:
        return Standing.LOST  # R-USE-1: a lost card stops everywhere
    if card.status == CardStatus.REPLACED:
        return Standing.REPLACED  # R-USE-2: dead forever
    if card.status == CardStatus.CANCELLED:
        return Standing.CANCELLED
    if card.blacklisted:
        return Standing.BLACKLISTED
    if now < card.valid_from:
        return Standing.NOT_YET_VALID
    if card.valid_until is not None and now >= card.valid_until:
        return Standing.EXPIRED  # R-END-4: a temporary card ends at its agreed date
    if card.card_type == CardType.TEMPORARY:
        return Standing.TEMPORARY  # R-CARD-7: only campus-administration functions, no library
    return Standing.OK


def find_card(identifier: str) -> Card | None:
    """The card a patron identifier names: a card UID (any case), else the holder's live card
    (active or lost: one per person, R-CARD-3), else their latest card (replaced, cancelled)."""
    ident = identifier.strip()
    if not ident or len(ident) > MAX_IDENTIFIER:
        return None
    cards = Card.objects.select_related("holder")
    card = cards.filter(uid__iexact=ident).first()
    if card is not None:
        return card
    held = cards.filter(holder__number=ident)
    return held.filter(status__in=LIVE_CARD_STATUSES).first() or held.order_by("-issue_no", "-created_at").first()


def patron(identifier: str, now: datetime) -> Patron:
    """The answer for ``identifier`` at ``now``."""
    card = find_card(identifier)
    if card is None:
        return Patron(Standing.UNKNOWN)
    name = card.holder.name
    if settings.SIP2_PERSONAL_NAME != "full":
        name = mask_name(name)  # R-SEC-2: minimal by default (docs/decisions.md)
    return Patron(standing_of(card, now), name)
