"""The access decision: one pure function, used at the edge and re-used by the server to explain
"why was this card denied here?". No I/O, no clock of its own: ``now`` is an argument, and the
only memory (anti-passback) is an :class:`EdgeState` the caller owns and passes in.

Order of the checks (the first that applies is the reason, so the reason shown is the one an
operator must act on): unknown card → lost → cancelled/replaced → blacklisted → not yet valid →
expired → function not allowed (card type × kind of door unless a temporary card's grant names the
door or its building, dorm residents) → outside the door's
schedule → anti-passback (hard: deny). An allowed tap may carry flags: ``late_return`` (an entry
during a dorm curfew) and ``passback`` (soft anti-passback: let through, but noted).

Policy times (schedule, curfew, passback reset) are local campus times (Asia/Shanghai); ``now``
must be timezone-aware and is converted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Literal, NamedTuple, get_args
from zoneinfo import ZoneInfo

from streams.cards import CardStatus, CardType, DeviceKind
from streams.reasons import Decision, Direction, Reason

CAMPUS_TZ = ZoneInfo("Asia/Shanghai")

Flag = Literal["late_return", "passback"]  # the same literal as ``streams.envelopes.Tap.flags``
LATE_RETURN: Flag = "late_return"
PASSBACK: Flag = "passback"
Passback = Literal["off", "soft", "hard"]
Window = tuple[time, time]  # [start, end) local time of day; start > end wraps past midnight


@dataclass(frozen=True, slots=True)
class Grant:
    """Access to one place beyond the card type's functions, until a time (R-CARD-7: a temporary
    card's managing department may grant it a dorm or a door): ``place`` is a building code or a
    device id."""

    place: str
    until: datetime


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
    grants: tuple[Grant, ...] = ()  # temporary cards only: places granted beyond their functions


@dataclass(frozen=True, slots=True)
class Door:
    """A reader and its policy. All policy fields are optional: a bare ``Door(id, kind)`` has no
    schedule, no curfew and no anti-passback, exactly as before."""

    device_id: str
    kind: DeviceKind
    building: str | None = None
    area: str | None = None  # anti-passback area shared by several gates (default: this door)
    passback: Passback = "off"
    passback_reset: time | None = time(4, 0)  # local time the area forgets; None: never
    curfew: Window | None = None  # dorm: entries in this window are allowed, flagged late_return
    schedule: tuple[Window, ...] | None = None  # open windows; None: always open, (): never

    def __post_init__(self) -> None:
        if self.passback not in get_args(Passback):
            raise ValueError(f"{self.device_id}: passback must be off, soft or hard")
        windows = [*(self.schedule or ()), *((self.curfew,) if self.curfew else ())]
        for start, end in windows:
            if start == end or start.tzinfo is not None or end.tzinfo is not None:
                raise ValueError(f"{self.device_id}: a window is two different naive local times, got {start}–{end}")
        if self.passback_reset is not None and self.passback_reset.tzinfo is not None:
            raise ValueError(f"{self.device_id}: passback_reset is a naive local time")

    @property
    def passback_area(self) -> str:
        return self.area or self.device_id


class Verdict(NamedTuple):
    """What :func:`decide` returns. A tuple: ``decision, reason, flags = decide(...)``."""

    decision: Decision
    reason: Reason
    flags: tuple[Flag, ...] = ()

    @property
    def allowed(self) -> bool:
        return self.decision == Decision.ALLOW


class Passage(NamedTuple):
    direction: Direction
    at: datetime


class EdgeState:
    """Anti-passback memory of one reader agent: the last allowed passage of each card in each
    area. The caller owns it: :func:`decide` only reads it; after a tap the caller calls
    :meth:`record` (it records allowed, directed passages at anti-passback doors, nothing else)."""

    __slots__ = ("_last",)

    def __init__(self) -> None:
        self._last: dict[tuple[str, str], Passage] = {}

    def last(self, uid: str, area: str) -> Passage | None:
        return self._last.get((uid, area))

    def record(self, verdict: Verdict, uid: str, door: Door, now: datetime, *, direction: Direction | None) -> None:
        if verdict.decision == Decision.ALLOW and door.passback != "off" and direction in _DIRECTED:
            self._last[(uid, door.passback_area)] = Passage(direction, now)

    def prune(self, before: datetime) -> int:
        """Forget passages older than ``before`` (e.g. the last reset); returns how many."""
        stale = [key for key, passage in self._last.items() if passage.at < before]
        for key in stale:
            del self._last[key]
        return len(stale)

    def __len__(self) -> int:
        return len(self._last)


# R-CARD-2 / R-CARD-7: which card types a kind of reader serves. Temporary cards get only
# campus-administration functions: no library, no dorms; student cards open no vehicle gate.
ALLOWED_TYPES: dict[DeviceKind, frozenset[CardType]] = {
    DeviceKind.PEDESTRIAN_GATE: frozenset(CardType),
    DeviceKind.VEHICLE_GATE: frozenset({CardType.STAFF, CardType.TEMPORARY}),
    DeviceKind.DORM_DOOR: frozenset({CardType.STUDENT, CardType.STAFF}),
    DeviceKind.LIBRARY_READER: frozenset({CardType.STUDENT, CardType.STAFF}),
    DeviceKind.DESK_READER: frozenset(CardType),
}

_DIRECTED = frozenset({Direction.IN, Direction.OUT})
_ALLOW = Verdict(Decision.ALLOW, Reason.OK)
_DENY = {reason: Verdict(Decision.DENY, reason) for reason in Reason if reason != Reason.OK}
_FLAGGED: dict[tuple[Flag, ...], Verdict] = {
    flags: Verdict(Decision.ALLOW, Reason.OK, flags) for flags in ((LATE_RETURN,), (PASSBACK,), (LATE_RETURN, PASSBACK))
}


def in_window(at: time, window: Window) -> bool:
    start, end = window
    if start < end:
        return start <= at < end
    return at >= start or at < end  # wraps past midnight, e.g. 23:00–06:00


def last_reset(local_now: datetime, reset: time) -> datetime:
    """The most recent local ``reset`` time of day at or before ``local_now``."""
    instant = local_now.replace(
        hour=reset.hour, minute=reset.minute, second=reset.second, microsecond=reset.microsecond
    )
    return instant - timedelta(days=1) if instant > local_now else instant


def granted(credential: Credential, door: Door, now: datetime) -> bool:
    """R-CARD-7: a temporary card opens a door its type may not (a dorm, a library reader) only
    where a grant names this door or its building, and only until the grant ends."""
    return credential.card_type == CardType.TEMPORARY and any(
        now < grant.until and grant.place in (door.device_id, door.building) for grant in credential.grants
    )


def decide(
    credential: Credential | None,
    door: Door,
    now: datetime,
    state: EdgeState | None = None,
    *,
    direction: Direction | None = None,
) -> Verdict:
    """Allow or deny, with the first reason that applies, and the flags of an allowed tap.

    ``direction`` (in/out) matters for anti-passback, curfew (only entries are late) and
    schedule (an exit is never held by the schedule); ``None`` or ``Direction.NONE`` means the
    reader does not know, and is treated as an entry for curfew and schedule. Without ``state``
    there is no anti-passback check."""
    if credential is None:
        return _DENY[Reason.UNKNOWN_CARD]
    if credential.status == CardStatus.LOST:
        return _DENY[Reason.LOST]  # R-USE-1: a lost card stops everywhere
    if credential.status in (CardStatus.CANCELLED, CardStatus.REPLACED):
        return _DENY[Reason.CANCELLED]  # R-USE-2: the old card is dead forever
    if credential.blacklisted:
        return _DENY[Reason.BLACKLISTED]
    if now < credential.valid_from:
        return _DENY[Reason.NOT_YET_VALID]
    if credential.valid_until is not None and now >= credential.valid_until:
        return _DENY[Reason.EXPIRED]
    if credential.card_type not in ALLOWED_TYPES[door.kind] and not granted(credential, door, now):
        return _DENY[Reason.FUNCTION_NOT_ALLOWED]
    if (
        door.kind == DeviceKind.DORM_DOOR
        and credential.card_type == CardType.STUDENT
        and credential.dorm_building != door.building
    ):
        return _DENY[Reason.FUNCTION_NOT_ALLOWED]  # residents of this building only

    checks_passback = state is not None and door.passback != "off" and direction in _DIRECTED
    if door.schedule is None and door.curfew is None and not checks_passback:
        return _ALLOW  # the common case: no local time needed
    if now.tzinfo is None:
        raise ValueError("decide() needs a timezone-aware now")
    local = now.astimezone(CAMPUS_TZ)
    clock = local.time()
    entering = direction != Direction.OUT

    if door.schedule is not None and entering:
        if not any(in_window(clock, window) for window in door.schedule):
            return _DENY[Reason.OUTSIDE_SCHEDULE]

    passback = False
    if checks_passback and state is not None:
        last = state.last(credential.uid, door.passback_area)
        if (
            last is not None
            and last.direction == direction
            and (door.passback_reset is None or last.at >= last_reset(local, door.passback_reset))
        ):
            if door.passback == "hard":
                return _DENY[Reason.ANTI_PASSBACK]
            passback = True  # soft: let through, flagged

    late = door.curfew is not None and entering and in_window(clock, door.curfew)
    if late and passback:
        return _FLAGGED[(LATE_RETURN, PASSBACK)]
    if late:
        return _FLAGGED[(LATE_RETURN,)]
    if passback:
        return _FLAGGED[(PASSBACK,)]
    return _ALLOW
