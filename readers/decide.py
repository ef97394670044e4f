"""The access decision: one pure function, used at the edge and re-used by the server to explain
"why was this card denied here?". No I/O, no clock of its own: ``now`` is an argument, and the
only memory (anti-passback) is an :class:`EdgeState` the caller owns and passes in.

Order of the checks (the first that applies is the reason, so the reason shown is the one an
operator must act on): unknown card → lost → cancelled/replaced → blacklisted → not yet valid →
expired → function not allowed (card type × kind of door unless a temporary card's grant names the
door or its building, dorm residents) → vacation closure (a student at a dorm door on a day a
central rule closes it, unless on the stay list) → outside the door's schedule → curfew closure
(a student, when a central rule closes the dorm at curfew) → anti-passback (hard: deny). An
allowed tap may carry flags: ``late_return`` (an entry during a dorm curfew) and ``passback``
(soft anti-passback: let through, but noted).

Where the schedule and curfew come from (issue 17): the central :class:`Policy` — door rules per
door group and day type, and the academic calendar — when the caller passes one and a rule of
that kind (schedule, or dorm) covers the door on that day; otherwise the door's own ``schedule``
and ``curfew`` (the agent's configuration), as before. A central curfew and vacation closure
bind students only (staff on night duty, and temporary cards a department granted the dorm, are
not held); a local curfew flags every entry, as it always did. A night belongs to the evening it
starts on: a window past midnight (23:30–06:00) is the rule of the day it opens, so Friday's
curfew still holds at 00:30 on Saturday.

Policy times (schedule, curfew, passback reset) are local campus times (Asia/Shanghai); ``now``
must be timezone-aware and is converted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Literal, NamedTuple, get_args
from zoneinfo import ZoneInfo

from streams.calendar import DayType, default_day_type
from streams.cards import CardStatus, CardType, DeviceKind
from streams.reasons import Decision, Direction, Reason

CAMPUS_TZ = ZoneInfo("Asia/Shanghai")

# the same literal as ``streams.envelopes.Tap.flags``; ``passback_offline`` (issue 17, Build 5)
# is set by the agent, never by decide(): anti-passback judged without the zone's shared state
Flag = Literal["late_return", "passback", "passback_offline", "emergency_open"]
LATE_RETURN: Flag = "late_return"
PASSBACK: Flag = "passback"
PASSBACK_OFFLINE: Flag = "passback_offline"
EMERGENCY_OPEN: Flag = "emergency_open"  # issue 17, Build 2: let through by an unlock-all
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
    stays: tuple[tuple[datetime, datetime], ...] = ()  # on the vacation stay list: [start, until)


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


# -- the central policy (issue 17) ------------------------------------------------------------
RuleKind = Literal["schedule", "dorm"]


@dataclass(frozen=True, slots=True)
class Rule:
    """One central door rule (``streams.credentials.DoorRule``, as an agent holds it)."""

    id: int
    name: str
    kind: RuleKind
    group: str
    day_types: frozenset[DayType]
    weekdays: frozenset[int] = frozenset()  # ISO weekdays (1 = Monday); empty: every day
    schedule: tuple[Window, ...] | None = None  # schedule rules: open windows; (): closed all day
    curfew: Window | None = None  # dorm rules
    curfew_closes: bool = False  # dorm rules: the curfew closes the door to students (else flags)
    vacation_closed: bool = False  # dorm rules: students only with a stay in force

    def applies_on(self, day_type: DayType, day: date) -> bool:
        return day_type in self.day_types and (not self.weekdays or day.isoweekday() in self.weekdays)


@dataclass(frozen=True, slots=True)
class DoorGroupMembers:
    devices: frozenset[str] = frozenset()
    buildings: frozenset[str] = frozenset()


class Policy:
    """The central door rules and the academic calendar as one agent holds them (immutable; the
    memo of which rule covers a door on a day is only a cache of what the rules say).

    Which rule covers a door on a day, for each kind (schedule; dorm): among the rules whose
    group names the door (or its building), whose day types hold the day's type and whose
    weekdays, if any, hold its weekday — a rule limited to weekdays first (Friday's curfew over
    the teaching days'), then one whose group names the door itself over one naming its
    building, then the oldest (lowest id)."""

    __slots__ = ("version", "days", "days_from", "days_until", "groups", "rules", "_by_door", "_memo")

    def __init__(
        self,
        *,
        days: Mapping[date, DayType],
        groups: Mapping[str, DoorGroupMembers],
        rules: Iterable[Rule],
        days_from: date | None = None,
        days_until: date | None = None,
        version: int = 0,
    ) -> None:
        self.version = version
        self.days = dict(days)
        self.days_from, self.days_until = days_from, days_until
        self.groups = dict(groups)
        self.rules = tuple(rules)
        self._by_door: dict[tuple[str, str | None], tuple[tuple[Rule, bool], ...]] = {}
        self._memo: dict[tuple[str, str | None, date], tuple[Rule | None, Rule | None]] = {}

    def day_type(self, day: date) -> DayType:
        return self.days.get(day) or default_day_type(day)

    def _candidates(self, door: Door) -> tuple[tuple[Rule, bool], ...]:
        key = (door.device_id, door.building)
        found = self._by_door.get(key)
        if found is None:
            found = tuple(
                (rule, door.device_id in members.devices)
                for rule in self.rules
                if (members := self.groups.get(rule.group)) is not None
                and (rule.kind == "schedule" or door.kind == DeviceKind.DORM_DOOR)  # dorm rules: dorm doors
                and (
                    door.device_id in members.devices
                    or (door.building is not None and door.building in members.buildings)
                )
            )
            self._by_door[key] = found
        return found

    def covers(self, door: Door) -> bool:
        """Whether any central rule names this door (else its own configuration is all there is)."""
        return bool(self._candidates(door))

    def rules_for(self, door: Door, day: date) -> tuple[Rule | None, Rule | None]:
        """The (schedule, dorm) rules covering ``door`` on local ``day``; None: no central rule of
        that kind, the door's own configuration applies."""
        key = (door.device_id, door.building, day)
        found = self._memo.get(key)
        if found is not None:
            return found
        day_type = self.day_type(day)
        best: dict[str, tuple[tuple[bool, bool, int], Rule]] = {}
        for rule, named in self._candidates(door):
            if not rule.applies_on(day_type, day):
                continue
            rank = (bool(rule.weekdays), named, -rule.id)
            if rule.kind not in best or rank > best[rule.kind][0]:
                best[rule.kind] = (rank, rule)
        found = (best["schedule"][1] if "schedule" in best else None, best["dorm"][1] if "dorm" in best else None)
        if len(self._memo) > 50_000:
            self._memo.clear()
        self._memo[key] = found
        return found


@dataclass(frozen=True, slots=True)
class DaySpec:
    """What holds at a door on one local day: the schedule and curfew, and where each comes from
    (a central :class:`Rule`, or None: the door's own configuration)."""

    day: date
    day_type: DayType | None  # None: no central policy at all
    schedule: tuple[Window, ...] | None
    schedule_rule: Rule | None
    curfew: Window | None
    curfew_closes: bool
    dorm_rule: Rule | None
    vacation_closed: bool


@dataclass(frozen=True, slots=True)
class Effective:
    """The policy in force at a door at one moment (what :func:`decide` applies and the help
    desk's explanation names): today's and yesterday's :class:`DaySpec` (a window past midnight
    belongs to the day it opened), whether the schedule is open now, and the curfew now."""

    today: DaySpec
    yesterday: DaySpec
    clock: time
    open_now: bool
    open_window: Window | None  # the window that is open now (None: no schedule, or closed)
    open_by: DaySpec | None  # the day whose schedule opened it
    curfew_now: DaySpec | None  # the day whose curfew holds now, if any

    @property
    def curfew_closes(self) -> bool:
        return self.curfew_now is not None and self.curfew_now.curfew_closes

    @property
    def curfew_central(self) -> bool:
        return self.curfew_now is not None and self.curfew_now.dorm_rule is not None


def day_spec(door: Door, day: date, policy: Policy | None) -> DaySpec:
    if policy is None:
        return DaySpec(day, None, door.schedule, None, door.curfew, False, None, False)
    schedule_rule, dorm_rule = policy.rules_for(door, day)
    schedule = schedule_rule.schedule if schedule_rule is not None else door.schedule
    if dorm_rule is not None:
        curfew, closes, vacation = dorm_rule.curfew, dorm_rule.curfew_closes, dorm_rule.vacation_closed
    else:
        curfew, closes, vacation = door.curfew, False, False
    return DaySpec(day, policy.day_type(day), schedule, schedule_rule, curfew, closes, dorm_rule, vacation)


def _today_part(clock: time, window: Window) -> bool:
    start, end = window
    return start <= clock < end if start < end else clock >= start


def _spill(clock: time, window: Window) -> bool:
    """The part of yesterday's window past midnight."""
    start, end = window
    return start > end and clock < end


def effective(door: Door, local: datetime, policy: Policy | None) -> Effective:
    """The schedule and curfew in force at ``door`` at ``local`` (a campus-local datetime)."""
    clock = local.time()
    today = day_spec(door, local.date(), policy)
    yesterday = day_spec(door, local.date() - timedelta(days=1), policy)
    open_now, open_window, open_by = today.schedule is None, None, None
    if not open_now:
        for window in today.schedule or ():
            if _today_part(clock, window):
                open_now, open_window, open_by = True, window, today
                break
        else:
            for window in yesterday.schedule or ():
                if _spill(clock, window):
                    open_now, open_window, open_by = True, window, yesterday
                    break
    curfew_now = None
    if today.curfew is not None and _today_part(clock, today.curfew):
        curfew_now = today
    elif yesterday.curfew is not None and _spill(clock, yesterday.curfew):
        curfew_now = yesterday
    return Effective(today, yesterday, clock, open_now, open_window, open_by, curfew_now)


def on_stay(credential: Credential, now: datetime) -> bool:
    """On the vacation stay list now (issue 17)."""
    return any(start <= now < until for start, until in credential.stays)


# -- emergency modes (issue 17, Build 2) --------------------------------------------------------
EmergencyKind = Literal["lockdown", "unlock_all"]


@dataclass(frozen=True, slots=True)
class EmergencyMode:
    """One mode in force (``streams.emergency.Mode``, as an agent holds it): every door
    (``campus``), or the doors named and those of the buildings named."""

    id: int
    kind: EmergencyKind
    campus: bool = False
    devices: frozenset[str] = frozenset()
    buildings: frozenset[str] = frozenset()

    def covers(self, door: Door) -> bool:
        return (
            self.campus
            or door.device_id in self.devices
            or (door.building is not None and door.building in self.buildings)
        )


@dataclass(frozen=True, slots=True)
class Emergency:
    """The emergency modes an agent holds, at their revision, and the cards of security staff
    (who alone pass a lockdown)."""

    revision: int = 0
    modes: tuple[EmergencyMode, ...] = ()
    security: frozenset[str] = frozenset()

    def at(self, door: Door) -> EmergencyKind | None:
        """The mode holding ``door``: an unlock-all over a lockdown (people must be able to get
        out: evacuation outranks shelter), else None."""
        kinds = {mode.kind for mode in self.modes if mode.covers(door)}
        if "unlock_all" in kinds:
            return "unlock_all"
        return "lockdown" if kinds else None


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
_EMERGENCY_OPEN = Verdict(Decision.ALLOW, Reason.OK, (EMERGENCY_OPEN,))
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
    policy: Policy | None = None,
    emergency: Emergency | None = None,
) -> Verdict:
    """Allow or deny, with the first reason that applies, and the flags of an allowed tap.

    ``direction`` (in/out) matters for anti-passback, curfew (only entries are late) and
    schedule (an exit is never held by the schedule); ``None`` or ``Direction.NONE`` means the
    reader does not know, and is treated as an entry for curfew and schedule. Without ``state``
    there is no anti-passback check. ``policy``: the central door rules and calendar (issue 17);
    None, or no rule for this door: the door's own schedule and curfew.

    ``emergency``: the modes in force (issue 17, Build 2) — an unlock-all lets every tap through,
    whatever the card (flagged ``emergency_open``: the door is released, the tap still
    recorded); a lockdown lets through only a valid card of security staff (skipping the door's
    function, schedule, curfew and anti-passback: a responder goes where the incident is) and
    refuses every other card with ``lockdown`` once its own validity was checked."""
    mode = emergency.at(door) if emergency is not None and emergency.modes else None
    if mode == "unlock_all":
        return _EMERGENCY_OPEN
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
    if mode == "lockdown":
        assert emergency is not None
        return _ALLOW if credential.uid in emergency.security else _DENY[Reason.LOCKDOWN]
    if credential.card_type not in ALLOWED_TYPES[door.kind] and not granted(credential, door, now):
        return _DENY[Reason.FUNCTION_NOT_ALLOWED]
    if (
        door.kind == DeviceKind.DORM_DOOR
        and credential.card_type == CardType.STUDENT
        and credential.dorm_building != door.building
    ):
        return _DENY[Reason.FUNCTION_NOT_ALLOWED]  # residents of this building only

    checks_passback = state is not None and door.passback != "off" and direction in _DIRECTED
    central = policy is not None and policy.covers(door)
    if door.schedule is None and door.curfew is None and not checks_passback and not central:
        return _ALLOW  # the common case: no local time needed
    if now.tzinfo is None:
        raise ValueError("decide() needs a timezone-aware now")
    local = now.astimezone(CAMPUS_TZ)
    clock = local.time()
    entering = direction != Direction.OUT
    student = credential.card_type == CardType.STUDENT

    late = False
    if central:
        policy_now = effective(door, local, policy)
        if entering and student and policy_now.today.vacation_closed and not on_stay(credential, now):
            return _DENY[Reason.VACATION_CLOSED]
        if entering and not policy_now.open_now:
            return _DENY[Reason.OUTSIDE_SCHEDULE]
        if entering and policy_now.curfew_now is not None:
            if not policy_now.curfew_central:
                late = True  # the door's own curfew: every entry, as before
            elif student and policy_now.curfew_closes:
                return _DENY[Reason.CURFEW_CLOSED]
            elif student:
                late = True
    else:
        if door.schedule is not None and entering:
            if not any(in_window(clock, window) for window in door.schedule):
                return _DENY[Reason.OUTSIDE_SCHEDULE]
        late = door.curfew is not None and entering and in_window(clock, door.curfew)

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

    if late and passback:
        return _FLAGGED[(LATE_RETURN, PASSBACK)]
    if late:
        return _FLAGGED[(LATE_RETURN,)]
    if passback:
        return _FLAGGED[(PASSBACK,)]
    return _ALLOW
