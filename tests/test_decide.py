"""The edge decision: every reason code, table-driven, plus the door policies (anti-passback hard
and soft with its daily reset, dorm curfew flags, door schedules)."""

from __future__ import annotations

import json
import typing
from datetime import UTC, date, datetime, time, timedelta

import pytest

from readers.decide import (
    CAMPUS_TZ,
    Credential,
    Door,
    DoorGroupMembers,
    EdgeState,
    Emergency,
    EmergencyMode,
    Flag,
    Policy,
    Rule,
    Verdict,
    decide,
)
from streams import envelopes
from streams.calendar import DayType
from streams.cards import CardStatus, CardType, DeviceKind
from streams.reasons import Decision, Direction, Reason

IN, OUT = Direction.IN, Direction.OUT
NOW = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)  # 16:00 on campus
GATE = Door("G-E-01", DeviceKind.PEDESTRIAN_GATE)
DORM1 = Door("D1-01", DeviceKind.DORM_DOOR, building="D1")
LIBRARY = Door("L-GATE-01", DeviceKind.LIBRARY_READER)
VEHICLE = Door("V-E-IN", DeviceKind.VEHICLE_GATE)
HARD_GATE = Door("G-E-02", DeviceKind.PEDESTRIAN_GATE, area="campus", passback="hard")
HARD_GATE_WEST = Door("G-W-01", DeviceKind.PEDESTRIAN_GATE, area="campus", passback="hard")
SOFT_GATE = Door("G-S-01", DeviceKind.PEDESTRIAN_GATE, area="south", passback="soft")
CURFEW = (time(23, 0), time(6, 0))
DORM1_CURFEW = Door("D1-02", DeviceKind.DORM_DOOR, building="D1", curfew=CURFEW)
OPEN_HOURS = ((time(7, 0), time(22, 30)),)
LIBRARY_HOURS = Door("L-GATE-02", DeviceKind.LIBRARY_READER, schedule=OPEN_HOURS)


def local(hour: int, minute: int = 0, day: int = 27) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=CAMPUS_TZ)


def card(**overrides) -> Credential:
    base = dict(
        uid="A0000001",
        card_type=CardType.STUDENT,
        status=CardStatus.ACTIVE,
        blacklisted=False,
        valid_from=NOW - timedelta(days=10),
        valid_until=None,
        dorm_building="D1",
    )
    return Credential(**{**base, **overrides})


def entered(door: Door, at: datetime, uid: str = "A0000001") -> EdgeState:
    """A state in which ``uid`` was let in through ``door`` at ``at``."""
    state = EdgeState()
    state.record(Verdict(Decision.ALLOW, Reason.OK), uid, door, at, direction=IN)
    return state


TEMP = card(card_type=CardType.TEMPORARY, dorm_building=None)
STAFF = card(card_type=CardType.STAFF, dorm_building=None)

# (credential, door, now, state, direction, reason, flags)
CASES = [
    (card(), GATE, NOW, None, IN, Reason.OK, ()),
    (None, GATE, NOW, None, IN, Reason.UNKNOWN_CARD, ()),
    (card(status=CardStatus.LOST), GATE, NOW, None, IN, Reason.LOST, ()),  # R-USE-1
    (card(status=CardStatus.REPLACED), GATE, NOW, None, IN, Reason.CANCELLED, ()),  # R-USE-2
    (card(status=CardStatus.CANCELLED), GATE, NOW, None, IN, Reason.CANCELLED, ()),  # R-END-3
    (card(blacklisted=True), GATE, NOW, None, IN, Reason.BLACKLISTED, ()),
    (card(valid_from=NOW + timedelta(hours=1)), GATE, NOW, None, IN, Reason.NOT_YET_VALID, ()),
    (card(valid_until=NOW), GATE, NOW, None, IN, Reason.EXPIRED, ()),  # R-END-4
    (TEMP, LIBRARY, NOW, None, None, Reason.FUNCTION_NOT_ALLOWED, ()),  # R-CARD-7
    (TEMP, DORM1, NOW, None, IN, Reason.FUNCTION_NOT_ALLOWED, ()),  # R-CARD-7
    (card(dorm_building="D2"), DORM1, NOW, None, IN, Reason.FUNCTION_NOT_ALLOWED, ()),  # resident
    (card(), DORM1, NOW, None, IN, Reason.OK, ()),
    (card(), VEHICLE, NOW, None, IN, Reason.FUNCTION_NOT_ALLOWED, ()),  # R-CARD-2
    (STAFF, VEHICLE, NOW, None, IN, Reason.OK, ()),
    (TEMP, GATE, NOW, None, IN, Reason.OK, ()),
    # anti-passback: in twice without going out
    (card(), HARD_GATE, NOW, entered(HARD_GATE, NOW - timedelta(hours=1)), IN, Reason.ANTI_PASSBACK, ()),
    (card(), HARD_GATE, NOW, entered(HARD_GATE, NOW - timedelta(hours=1)), OUT, Reason.OK, ()),
    (card(), SOFT_GATE, NOW, entered(SOFT_GATE, NOW - timedelta(hours=1)), IN, Reason.OK, ("passback",)),
    # schedules and curfews are local (Asia/Shanghai) times
    (card(), LIBRARY_HOURS, local(22, 30), None, None, Reason.OUTSIDE_SCHEDULE, ()),
    (card(), LIBRARY_HOURS, local(7, 0), None, None, Reason.OK, ()),
    (card(), DORM1_CURFEW, local(23, 30), None, IN, Reason.OK, ("late_return",)),
    (card(), DORM1_CURFEW, local(22, 59), None, IN, Reason.OK, ()),
]


@pytest.mark.parametrize(("credential", "door", "now", "state", "direction", "reason", "flags"), CASES)
def test_decide(credential, door, now, state, direction, reason, flags):
    verdict = decide(credential, door, now, state, direction=direction)
    assert verdict == Verdict(Decision.ALLOW if reason == Reason.OK else Decision.DENY, reason, flags)
    assert verdict.allowed == (reason == Reason.OK)
    assert (decision := verdict.decision) == verdict[0] and decision in Decision


# issue 17: the central policy's reasons (tests/test_door_calendar.py holds the rules themselves)
DORM_RULES = Policy(
    days={date(2027, 7, 20): DayType.SUMMER_VACATION},
    groups={"dorms": DoorGroupMembers(buildings=frozenset({"D1"}))},
    rules=[
        Rule(1, "宿舍教学日", "dorm", "dorms", frozenset({DayType.TEACHING}), curfew=CURFEW, curfew_closes=True),
        Rule(2, "暑假闭楼", "dorm", "dorms", frozenset({DayType.SUMMER_VACATION}), vacation_closed=True),
    ],
)
# (credential, door, now, direction, reason, flags) with DORM_RULES
POLICY_CASES = [
    (card(), DORM1, local(23, 30), IN, Reason.CURFEW_CLOSED, ()),  # Friday 2026-11-27, a teaching day
    (card(), DORM1, local(22, 30), IN, Reason.OK, ()),
    (card(), DORM1, datetime(2027, 7, 20, 12, tzinfo=CAMPUS_TZ), IN, Reason.VACATION_CLOSED, ()),
    (STAFF, DORM1, datetime(2027, 7, 20, 12, tzinfo=CAMPUS_TZ), IN, Reason.OK, ()),  # students only
]


@pytest.mark.parametrize(("credential", "door", "now", "direction", "reason", "flags"), POLICY_CASES)
def test_decide_with_a_central_policy(credential, door, now, direction, reason, flags):
    verdict = decide(credential, door, now, direction=direction, policy=DORM_RULES)
    assert verdict == Verdict(Decision.ALLOW if reason == Reason.OK else Decision.DENY, reason, flags)


# issue 17, Build 2: a lockdown of building D1 (security card S1 only) and an unlock-all of the gate
EMERGENCY = Emergency(
    1,
    (
        EmergencyMode(1, "lockdown", buildings=frozenset({"D1"})),
        EmergencyMode(2, "unlock_all", devices=frozenset({"G-E-01"})),
    ),
    frozenset({"S1"}),
)
EMERGENCY_CASES = [
    (card(), DORM1, Reason.LOCKDOWN, ()),
    (card(uid="S1", card_type=CardType.STAFF), DORM1, Reason.OK, ()),
    (None, GATE, Reason.OK, ("emergency_open",)),
]


@pytest.mark.parametrize(("credential", "door", "reason", "flags"), EMERGENCY_CASES)
def test_decide_in_an_emergency(credential, door, reason, flags):
    verdict = decide(credential, door, NOW, emergency=EMERGENCY)
    assert verdict == Verdict(Decision.ALLOW if reason == Reason.OK else Decision.DENY, reason, flags)


def test_the_table_covers_every_reason_code():
    reasons = {case[5] for case in CASES} | {case[4] for case in POLICY_CASES} | {case[2] for case in EMERGENCY_CASES}
    assert reasons == set(Reason)


def test_status_outranks_validity_so_the_reason_is_the_one_to_act_on():
    lost_and_expired = card(status=CardStatus.LOST, valid_until=NOW - timedelta(days=1))
    assert decide(lost_and_expired, GATE, NOW) == (Decision.DENY, Reason.LOST, ())


def test_card_checks_outrank_schedule_and_schedule_outranks_passback():
    closed = local(23, 0)
    expired = card(valid_until=closed - timedelta(days=1))
    assert decide(expired, LIBRARY_HOURS, closed).reason == Reason.EXPIRED
    door = Door("G-N-01", DeviceKind.PEDESTRIAN_GATE, area="campus", passback="hard", schedule=OPEN_HOURS)
    state = entered(door, local(20, 0))
    assert decide(card(), door, closed, state, direction=IN).reason == Reason.OUTSIDE_SCHEDULE


# --- anti-passback ---------------------------------------------------------------------------


def _walk(door_seq, start: datetime, *, state: EdgeState | None = None) -> list[Verdict]:
    """Tap one card through (door, direction) pairs a minute apart, recording as an agent does."""
    state = EdgeState() if state is None else state
    cred = card()
    out = []
    for i, (door, direction) in enumerate(door_seq):
        now = start + timedelta(minutes=i)
        verdict = decide(cred, door, now, state, direction=direction)
        state.record(verdict, cred.uid, door, now, direction=direction)
        out.append(verdict)
    return out


def test_hard_passback_denies_a_second_entry_until_the_card_goes_out():
    walk = _walk(
        [(HARD_GATE, IN), (HARD_GATE, IN), (HARD_GATE, OUT), (HARD_GATE, IN), (HARD_GATE, OUT), (HARD_GATE, OUT)], NOW
    )
    assert [v.reason for v in walk] == [
        Reason.OK,
        Reason.ANTI_PASSBACK,
        Reason.OK,
        Reason.OK,
        Reason.OK,
        Reason.ANTI_PASSBACK,
    ]


def test_passback_is_per_area_not_per_gate():
    # in at the east gate, in again at the west gate: the same "campus" area
    assert _walk([(HARD_GATE, IN), (HARD_GATE_WEST, IN)], NOW)[1].reason == Reason.ANTI_PASSBACK
    # a door with no area is its own area
    lone = Door("G-X-01", DeviceKind.PEDESTRIAN_GATE, passback="hard")
    assert [v.reason for v in _walk([(HARD_GATE, IN), (lone, IN)], NOW)] == [Reason.OK] * 2
    # another card is unaffected
    state = entered(HARD_GATE, NOW, uid="B0000002")
    assert decide(card(), HARD_GATE, NOW, state, direction=IN).reason == Reason.OK


def test_soft_passback_lets_through_flagged_and_records_the_passage():
    walk = _walk([(SOFT_GATE, IN), (SOFT_GATE, IN), (SOFT_GATE, OUT)], NOW)
    assert walk == [
        (Decision.ALLOW, Reason.OK, ()),
        (Decision.ALLOW, Reason.OK, ("passback",)),
        (Decision.ALLOW, Reason.OK, ()),
    ]


def test_a_denied_tap_is_not_recorded():
    state = EdgeState()
    _walk([(HARD_GATE, IN), (HARD_GATE, IN)], NOW, state=state)
    passage = state.last("A0000001", "campus")
    assert passage is not None and passage.at == NOW  # the first entry, not the refused one
    lost = card(status=CardStatus.LOST)
    verdict = decide(lost, HARD_GATE, NOW, EdgeState(), direction=IN)
    state2 = EdgeState()
    state2.record(verdict, lost.uid, HARD_GATE, NOW, direction=IN)
    assert len(state2) == 0


def test_passback_resets_at_the_local_reset_time():
    before, after = local(3, 59), local(4, 1)
    assert decide(card(), HARD_GATE, after, entered(HARD_GATE, before), direction=IN).allowed
    # entered just after today's reset: still inside the same period until tomorrow 04:00
    state = entered(HARD_GATE, local(4, 0))
    assert decide(card(), HARD_GATE, local(3, 59, day=28), state, direction=IN).reason == Reason.ANTI_PASSBACK
    assert decide(card(), HARD_GATE, local(4, 0, day=28), state, direction=IN).allowed
    # a custom reset time, given in UTC: 20:00 UTC is 04:00 on campus the next day
    noon = Door("G-E-03", DeviceKind.PEDESTRIAN_GATE, passback="hard", passback_reset=time(12))
    state = entered(noon, local(11, 0))
    assert decide(card(), noon, local(11, 59), state, direction=IN).reason == Reason.ANTI_PASSBACK
    assert decide(
        card(), noon, datetime(2026, 11, 27, 4, 0, tzinfo=UTC), state, direction=IN
    ).allowed  # 12:00 on campus


def test_passback_without_reset_never_forgets():
    door = Door("G-E-04", DeviceKind.PEDESTRIAN_GATE, passback="hard", passback_reset=None)
    state = entered(door, NOW - timedelta(days=30))
    assert decide(card(), door, NOW, state, direction=IN).reason == Reason.ANTI_PASSBACK


def test_no_passback_check_without_state_or_direction_or_policy():
    state = entered(HARD_GATE, NOW - timedelta(minutes=1))
    assert decide(card(), HARD_GATE, NOW, direction=IN).allowed  # no state
    assert decide(card(), HARD_GATE, NOW, state).allowed  # no direction
    assert decide(card(), HARD_GATE, NOW, state, direction=Direction.NONE).allowed
    off = Door("G-E-01", DeviceKind.PEDESTRIAN_GATE, area="campus")
    assert decide(card(), off, NOW, state, direction=IN).allowed
    off_state = EdgeState()
    off_state.record(Verdict(Decision.ALLOW, Reason.OK), "A0000001", off, NOW, direction=IN)
    assert len(off_state) == 0  # nothing to remember at a door without anti-passback


def test_prune_forgets_old_passages():
    state = entered(HARD_GATE, local(3, 0))
    state.record(Verdict(Decision.ALLOW, Reason.OK), "B0000002", HARD_GATE, local(5, 0), direction=IN)
    assert state.prune(local(4, 0)) == 1
    assert state.last("A0000001", "campus") is None
    assert state.last("B0000002", "campus") is not None


# --- dorm curfew -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "direction", "flags"),
    [
        (local(23, 0), IN, ("late_return",)),
        (local(2, 15), IN, ("late_return",)),  # past midnight: the window wraps
        (local(5, 59), IN, ("late_return",)),
        (local(6, 0), IN, ()),
        (local(22, 59), IN, ()),
        (local(23, 30), OUT, ()),  # leaving late is not a late return
        (local(23, 30), None, ("late_return",)),  # a reader without direction: an entry
        (datetime(2026, 11, 27, 15, 30, tzinfo=UTC), IN, ("late_return",)),  # 23:30 on campus
        (datetime(2026, 11, 27, 22, 0, tzinfo=UTC), IN, ()),  # 06:00 on campus
    ],
)
def test_curfew_entries_are_allowed_but_flagged(now, direction, flags):
    cred = card(valid_from=now - timedelta(days=1))
    assert decide(cred, DORM1_CURFEW, now, direction=direction) == (Decision.ALLOW, Reason.OK, flags)


def test_curfew_does_not_let_non_residents_in():
    outsider = card(dorm_building="D2", valid_from=local(0) - timedelta(days=1))
    assert decide(outsider, DORM1_CURFEW, local(23, 30), direction=IN).reason == (Reason.FUNCTION_NOT_ALLOWED)


def test_a_late_soft_passback_carries_both_flags():
    door = Door("D1-03", DeviceKind.DORM_DOOR, building="D1", area="D1", passback="soft", curfew=CURFEW)
    cred = card(valid_from=local(0) - timedelta(days=1))
    state = entered(door, local(23, 10))
    assert decide(cred, door, local(23, 40), state, direction=IN).flags == ("late_return", "passback")


# --- schedules -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("schedule", "now", "direction", "reason"),
    [
        (OPEN_HOURS, local(6, 59), IN, Reason.OUTSIDE_SCHEDULE),
        (OPEN_HOURS, local(7, 0), IN, Reason.OK),
        (OPEN_HOURS, local(22, 29), IN, Reason.OK),
        (OPEN_HOURS, local(22, 30), IN, Reason.OUTSIDE_SCHEDULE),  # the end is exclusive
        (OPEN_HOURS, local(23, 0), OUT, Reason.OK),  # an exit is never held by the schedule
        (((time(7), time(12)), (time(14), time(18))), local(13), IN, Reason.OUTSIDE_SCHEDULE),
        (((time(7), time(12)), (time(14), time(18))), local(15), IN, Reason.OK),
        (((time(20), time(2)),), local(1, 0), IN, Reason.OK),  # a night window wraps midnight
        (((time(20), time(2)),), local(3, 0), IN, Reason.OUTSIDE_SCHEDULE),
        ((), local(12), IN, Reason.OUTSIDE_SCHEDULE),  # an empty schedule: always closed
        (None, local(3), IN, Reason.OK),  # no schedule: always open
        (OPEN_HOURS, datetime(2026, 11, 27, 23, 30, tzinfo=UTC), IN, Reason.OK),  # 07:30 local
        (OPEN_HOURS, datetime(2026, 11, 27, 14, 30, tzinfo=UTC), IN, Reason.OUTSIDE_SCHEDULE),
    ],
)
def test_schedule(schedule, now, direction, reason):
    door = Door("G-L-01", DeviceKind.PEDESTRIAN_GATE, schedule=schedule)
    cred = card(valid_from=local(0) - timedelta(days=1))
    assert decide(cred, door, now, direction=direction).reason == reason


# --- contract --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "policy",
    [
        dict(passback="strict"),
        dict(curfew=(time(23), time(23))),
        dict(schedule=((time(8), time(8)),)),
        dict(schedule=((time(8, tzinfo=UTC), time(9)),)),
        dict(passback_reset=time(4, tzinfo=UTC)),
    ],
)
def test_a_door_policy_that_makes_no_sense_is_refused(policy):
    with pytest.raises(ValueError):
        Door("G-E-09", DeviceKind.PEDESTRIAN_GATE, **policy)


def test_policy_checks_need_an_aware_now():
    naive = datetime(2026, 11, 27, 8, 0)
    cred = card(valid_from=naive - timedelta(days=1))
    with pytest.raises(ValueError):
        decide(cred, LIBRARY_HOURS, naive)


def _tap(**fields) -> envelopes.Tap:
    return envelopes.Tap(
        event_id=envelopes.new_id(),
        device_id="D1-02",
        boot_epoch=1,
        seq=1,
        occurred_at=NOW,
        card_uid="A0000001",
        direction=IN,
        decision=Decision.ALLOW,
        reason=Reason.OK,
        **fields,
    )


def test_the_flags_fit_the_tap_envelope():
    literal, _ellipsis = typing.get_args(envelopes.Tap.model_fields["flags"].annotation)
    assert typing.get_args(literal) == typing.get_args(Flag)
    flagged = _tap(flags=decide(card(), DORM1_CURFEW, local(23, 40), EdgeState(), direction=IN).flags)
    parsed = envelopes.parse(envelopes.dump(flagged))
    assert isinstance(parsed, envelopes.Tap) and parsed.flags == ("late_return",)
    legacy = json.loads(envelopes.dump(_tap()))
    del legacy["flags"]  # a tap from a reader that predates flags still parses
    parsed = envelopes.parse(json.dumps(legacy))
    assert isinstance(parsed, envelopes.Tap) and parsed.flags == ()
    with pytest.raises(envelopes.InvalidEnvelope):
        envelopes.parse(json.dumps({**legacy, "flags": ["vip"]}))
