"""The access decision: one pure function, used at the edge and re-used by the server to explain
"why was this card denied here?". No I/O, no clock of its own: ``now`` is an argument."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from streams.cards import CardStatus, CardType, DeviceKind
from streams.reasons import Decision, Reason


@dataclass(frozen=True, slots=True)
class Credential:
    """What a reader caches about one card."""

    uid: str
    card_type: CardType
    status: CardStatus
    blacklisted: bool
    valid_from: datetime
    valid_until: datetime | None
    dorm_building: str | None = None  # building code of the holder's dorm, if a resident


@dataclass(frozen=True, slots=True)
class Door:
    device_id: str
    kind: DeviceKind
    building: str | None = None


# R-CARD-2 / R-CARD-7: which card types a kind of reader serves. Temporary cards get only
# campus-administration functions: no library, no dorms; student cards open no vehicle gate.
ALLOWED_TYPES: dict[DeviceKind, frozenset[CardType]] = {
    DeviceKind.PEDESTRIAN_GATE: frozenset(CardType),
    DeviceKind.VEHICLE_GATE: frozenset({CardType.STAFF, CardType.TEMPORARY}),
    DeviceKind.DORM_DOOR: frozenset({CardType.STUDENT, CardType.STAFF}),
    DeviceKind.LIBRARY_READER: frozenset({CardType.STUDENT, CardType.STAFF}),
    DeviceKind.DESK_READER: frozenset(CardType),
}


def decide(credential: Credential | None, door: Door, now: datetime) -> tuple[Decision, Reason]:
    """Allow or deny, with the first reason that applies (status before validity before
    function), so the reason shown is the one an operator must act on."""
    if credential is None:
        return Decision.DENY, Reason.UNKNOWN_CARD
    if credential.status == CardStatus.LOST:
        return Decision.DENY, Reason.LOST  # R-USE-1: a lost card stops everywhere
    if credential.status in (CardStatus.CANCELLED, CardStatus.REPLACED):
        return Decision.DENY, Reason.CANCELLED  # R-USE-2: the old card is dead forever
    if credential.blacklisted:
        return Decision.DENY, Reason.BLACKLISTED
    if now < credential.valid_from:
        return Decision.DENY, Reason.NOT_YET_VALID
    if credential.valid_until is not None and now >= credential.valid_until:
        return Decision.DENY, Reason.EXPIRED
    if credential.card_type not in ALLOWED_TYPES[door.kind]:
        return Decision.DENY, Reason.FUNCTION_NOT_ALLOWED
    if (
        door.kind == DeviceKind.DORM_DOOR
        and credential.card_type == CardType.STUDENT
        and credential.dorm_building != door.building
    ):
        return Decision.DENY, Reason.FUNCTION_NOT_ALLOWED  # residents of this building only
    return Decision.ALLOW, Reason.OK
