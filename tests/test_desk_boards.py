"""Snapshot + deltas equals a fresh snapshot for the newer live desks, checked with the real
processor, database and Channels layer, and with pushes dropped on purpose (the layer is
at-most-once): the dorm manager's desk (``DormBoard``) and the keyed boards of the alert and
device desks (``KeyedBoard``).

R-OPS-1: access events (and what follows from them: alerts, device states) stream live to the
dashboards. R-OPS-4: a dorm manager sees their building's door activity, who of its residents is
inside, and late returns after curfew. A page that missed a push must notice and reload, so what
it shows is always what a fresh snapshot of the record says.

A "page" here does what ``dashboard.live.run_feed`` does: a channel in the page's group, a
board loaded from the page's loader (sequence number first, then the snapshot), every pushed
``live.batch`` applied, ``settle()`` for keyed boards, and a reload when ``apply`` reports a gap.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from dashboard.dorm_board import DormBoard
from dashboard.keyed_board import KeyedBoard
from dashboard.pages import devices as device_page
from dashboard.pages.dorm import _panel
from ops.accounts.roles import Role
from ops.accounts.services import create_or_update_operator
from ops.alerts.choices import AlertKind, AlertStatus
from ops.alerts.models import Alert
from ops.alerts.selectors import RESOLVED_SHOWN_FOR, SNAPSHOT_LIMIT, alert_rows, alert_snapshot
from ops.alerts.services import AlertBuffer, acknowledge, notify, raise_alert, resolve
from ops.live_rows import DeviceInfo, HolderInfo, tap_row
from ops.pipeline.supervision import mark_silent_devices
from ops.push import current_seq
from ops.registry import selectors
from ops.registry.choices import DeviceState, HolderKind
from ops.registry.dorm import dorm_snapshot
from ops.registry.models import Building, Card, Cardholder, Device
from streams import names
from streams.cards import CardStatus, CardType, DeviceKind
from streams.reasons import Decision, Direction, Reason
from tests.factories import make_device, tap
from tests.live import Feed, Readers

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.pipeline]

DOOR, SIDE_DOOR, GATE = "D1-01", "D1-02", "G-E-01"
UNKNOWN_UID = "FFFFFFFF"
TZ = ZoneInfo(settings.TIME_ZONE)
DEVICE_KINDS = device_page.DEVICE_KINDS  # what the NIC desk's alert board shows


# -- the dorm desk (R-OPS-4) -------------------------------------------------------------------


@dataclass
class People:
    residents: list[Card]  # live in D1
    other_dorm: Card  # lives in D2: a visitor at D1's door
    staff: Card  # no dorm at all


class Dorm(Readers):
    """D1's door readers publishing signed taps, and the real processor and fan-out behind them.

    The taps run on a clock of their own: first a minute outside D1's curfew ("day"), then inside
    it (``curfew()``). Every tap falls on one local day, whatever the hour the suite runs at, so
    "late returns today" is well defined."""

    def __init__(self, campus: Any, redis_client: Any) -> None:
        super().__init__(redis_client)
        self.code = campus.dorm.code
        now = datetime.now(TZ)
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
        start = now.replace(second=0, microsecond=0) - timedelta(minutes=2)
        if start < midnight:
            start = midnight
        elif now >= midnight + timedelta(hours=23, minutes=50):
            start = midnight + timedelta(days=1)  # a few minutes ahead beats straddling midnight
        self.clock = start
        self.curfew_from = start + timedelta(minutes=1)
        first = self.curfew_from.hour * 60 + self.curfew_from.minute
        last = (first + 120) % 1440
        campus.dorm.curfew_start = dtime(first // 60, first % 60)
        campus.dorm.curfew_end = dtime(last // 60, last % 60)
        campus.dorm.save(update_fields=["curfew_start", "curfew_end"])
        self.in_curfew_phase = False
        self.n = 0

    def curfew(self) -> None:
        self.clock = max(self.clock, self.curfew_from)
        self.in_curfew_phase = True

    def tap(
        self, who: Card | str, *, out: bool = False, deny: bool = False, device: str = DOOR, at: datetime | None = None
    ):
        self.n += 1
        self.clock += timedelta(milliseconds=500)
        when = at or self.clock
        if not self.in_curfew_phase:
            assert when < self.curfew_from, "too many day taps for the test clock"
        uid = who if isinstance(who, str) else who.uid
        event = tap(
            device,
            uid,
            seq=self.n,
            decision=Decision.DENY if deny else Decision.ALLOW,
            reason=Reason.OUTSIDE_SCHEDULE if deny else Reason.OK,
            when=when.astimezone(UTC),
        )
        if out:
            return event.model_copy(update={"direction": Direction.OUT})
        # an entry the door let in during the curfew: the door flags it late (readers.decide)
        late = self.in_curfew_phase and not deny
        return event.model_copy(update={"flags": ("late_return",)}) if late else event


@pytest.fixture
def dorm(campus, redis_client):
    world = Dorm(campus, redis_client)
    yield world
    world.close()


@pytest.fixture
def dorm_feed(campus, redis_client):
    return Feed(names.dorm_group(campus.dorm.code))


@pytest.fixture
def people(campus) -> People:
    start = timezone.now() - timedelta(days=30)
    d2 = Building.objects.create(code="D2", name="2号学生公寓", is_dorm=True)
    visitor = Cardholder.objects.create(
        kind=HolderKind.STUDENT, number="2025EE00001", name="李四", department=campus.dept, dorm_building=d2
    )
    teacher = Cardholder.objects.create(kind=HolderKind.STAFF, number="T000001", name="王五", department=campus.dept)
    return People(
        residents=campus.cards,
        other_dorm=Card.objects.create(
            uid="B0000001", holder=visitor, card_type=CardType.STUDENT, status=CardStatus.ACTIVE, valid_from=start
        ),
        staff=Card.objects.create(
            uid="C0000001", holder=teacher, card_type=CardType.STAFF, status=CardStatus.ACTIVE, valid_from=start
        ),
    )


def _dorm_load(dorm: Dorm) -> tuple[int, dict[str, Any]]:
    """What the dorm page's loader does: the sequence number first, then the snapshot."""
    seq = current_seq(dorm.redis, names.dorm_group(dorm.code))
    return seq, dorm_snapshot(
        dorm.code, rows=settings.LIVE_FEED_ROWS, not_seen_days=settings.DORM_NOT_SEEN_DAYS, with_names=True
    )


def _dorm_board(dorm: Dorm, seq: int, snapshot: dict[str, Any]) -> DormBoard:
    board = DormBoard(building=dorm.code, max_rows=settings.LIVE_FEED_ROWS, tz=TZ)
    board.load(snapshot, seq=seq)
    return board


def _dorm_fresh(dorm: Dorm) -> DormBoard:
    return _dorm_board(dorm, *_dorm_load(dorm))


def _ids(events) -> list[str]:
    return sorted(str(e.event_id) for e in events)


def _holders(*cards: Card) -> list[int]:
    return sorted(c.holder_id for c in cards)


def test_dorm_snapshot_plus_every_later_push_equals_a_fresh_snapshot(dorm, dorm_feed, people):
    """R-OPS-4, R-OPS-1: the dorm manager's live desk — residents inside and late returns —
    is what the record says, after any mix of entries, exits, denials and visitors."""
    r = people.residents
    before = [
        dorm.tap(r[0]),
        dorm.tap(r[1]),
        dorm.tap(r[2]),
        dorm.tap(r[3]),
        dorm.tap(r[4], deny=True),
        dorm.tap(people.other_dorm),
        dorm.tap(people.staff),
    ]
    dorm.process(before)
    seq, snapshot = _dorm_load(dorm)  # the page opens here
    board = _dorm_board(dorm, seq, snapshot)
    opened_with = board.comparable()
    assert opened_with["inside"] == _holders(r[0], r[1], r[2], r[3])  # not the denied, not visitors
    assert opened_with["late"] == [], "before the curfew nobody returns late"

    day = [dorm.tap(r[7]), dorm.tap(r[3], out=True), dorm.tap(r[3])]  # in, but not late
    dorm.curfew()
    first = [
        dorm.tap(r[1], out=True),
        dorm.tap(r[5]),
        dorm.tap(r[4], deny=True),  # denied: not late
        dorm.tap(people.other_dorm),
        dorm.tap(people.staff, out=True),
        dorm.tap(UNKNOWN_UID),
    ]
    second = [
        dorm.tap(r[0], out=True, device=GATE),  # the campus gate is not this building's door
        dorm.tap(r[2], out=True),
        dorm.tap(r[2]),
        dorm.tap(r[3], out=True, deny=True),
        dorm.tap(r[6]),
        dorm.tap(r[6], out=True),
    ]
    third = [dorm.tap(people.other_dorm, out=True), dorm.tap(r[8], out=True)]  # out, never in
    late5, late2, late6 = first[1], second[2], second[4]
    for batch in (day, first, second, third):
        dorm.process(batch)
    pushes = dorm_feed.take(5)

    assert [p["seq"] for p in pushes] == [1, 2, 3, 4, 5]  # one push per batch with door taps
    assert seq == 1
    assert all(board.apply(p) for p in pushes)
    fresh = _dorm_fresh(dorm).comparable()
    assert board.comparable() == fresh
    # …and it is not two empty boards agreeing: the pushes changed the desk as the rules say
    assert fresh != opened_with
    door_taps = [e for e in [*before, *day, *first, *second, *third] if e.device_id == DOOR]
    assert fresh["rows"] == _ids(door_taps)
    assert fresh["inside"] == _holders(r[0], r[2], r[3], r[5], r[7])
    assert fresh["late"] == _ids([late5, late2, late6])
    assert board.resyncs == 0


def test_a_dropped_dorm_push_is_noticed_and_a_reload_brings_the_desk_back_in_step(dorm, dorm_feed, people):
    """R-OPS-4: a lost push (an exit and a late return) must not leave the desk wrong."""
    r = people.residents
    dorm.process([dorm.tap(r[0]), dorm.tap(r[1])])
    seq, snapshot = _dorm_load(dorm)
    board = _dorm_board(dorm, seq, snapshot)
    dorm.curfew()
    dorm.process([dorm.tap(r[2]), dorm.tap(people.other_dorm)])
    lost = [dorm.tap(r[0], out=True), dorm.tap(r[3])]  # an exit and a late return
    dorm.process(lost)
    dorm.process([dorm.tap(r[4], deny=True), dorm.tap(r[5])])
    second, dropped, fourth = dorm_feed.take(4)[1:]

    assert board.apply(second) is True
    # `dropped` never arrives (at-most-once layer)
    assert board.apply(fourth) is False, "a gap in the sequence must be reported"
    assert board.seq == second["seq"], "nothing after the gap is applied"
    assert board.comparable() != _dorm_fresh(dorm).comparable(), "the loss is real until reload"

    # what the page does on a gap: reload the snapshot, then carry on with the next pushes
    board.resyncs += 1
    reload_seq, reload_snapshot = _dorm_load(dorm)
    board.load(reload_snapshot, seq=reload_seq)
    dorm.process([dorm.tap(r[1], out=True)])
    (fifth,) = dorm_feed.take(1)
    assert fifth["seq"] == fourth["seq"] + 1
    assert board.apply(fifth) is True

    shown = board.comparable()
    assert shown == _dorm_fresh(dorm).comparable()
    assert {r["id"] for r in dropped["rows"]} <= set(shown["rows"])
    assert shown["inside"] == _holders(r[2], r[3], r[5])  # r0's lost exit counts again
    assert str(lost[1].event_id) in shown["late"]


def test_a_dorm_push_already_in_the_snapshot_is_not_counted_twice(dorm, dorm_feed, people):
    """The page reads the sequence number, a batch commits, then the snapshot is taken: the
    batch is in the snapshot *and* arrives as the next push; its watermark says so."""
    r = people.residents
    dorm.process([dorm.tap(r[0])])
    dorm_feed.take(1)
    dorm.curfew()
    seq = current_seq(dorm.redis, names.dorm_group(dorm.code))  # the loader reads this first…
    dorm.process([dorm.tap(r[1]), dorm.tap(r[0], out=True)])  # …a batch commits in between…
    snapshot = _dorm_load(dorm)[1]  # …then the snapshot
    dorm.process([dorm.tap(r[2]), dorm.tap(r[1], out=True)])
    in_snapshot, after = dorm_feed.take(2)

    assert in_snapshot["seq"] == seq + 1
    assert in_snapshot["watermark"] <= snapshot["watermark"]
    assert {row["id"] for row in in_snapshot["rows"]} <= {row["id"] for row in snapshot["rows"]}

    board = _dorm_board(dorm, seq, snapshot)
    before = board.comparable()
    assert len(before["late"]) == 1  # r1's return, already in the snapshot
    assert board.apply(in_snapshot) is True
    assert board.comparable() == before, "rows and late returns in the snapshot added again"
    assert board.apply(after) is True, "the skipped push still advances the sequence"
    assert board.apply(after) is True  # a redelivered push is ignored…
    assert board.apply(in_snapshot) is True  # …and so is an older one
    assert board.seq == after["seq"]

    shown = board.comparable()
    assert shown == _dorm_fresh(dorm).comparable()
    assert shown["inside"] == _holders(r[2])
    assert len(shown["late"]) == 2 and len(shown["rows"]) == len(set(shown["rows"])) == 5


def test_inside_agrees_with_a_fresh_snapshot_when_a_batch_is_out_of_time_order(dorm, dorm_feed, people, campus):
    """R-OPS-4: one building, two doors; the side door's agent uploads a little late, so the
    same processor batch holds the main door's entry and then, after it, an earlier exit."""
    make_device(SIDE_DOOR, "1号学生公寓2号门", DeviceKind.DORM_DOOR, "1号学生公寓", campus.dept, building=campus.dorm)
    resident = people.residents[0]
    dorm.process([dorm.tap(resident)])
    seq, snapshot = _dorm_load(dorm)
    board = _dorm_board(dorm, seq, snapshot)
    entry = dorm.tap(resident)  # main door, at t
    exit_ = dorm.tap(
        resident, out=True, device=SIDE_DOOR, at=dorm.clock - timedelta(milliseconds=250)
    )  # side door, at t − 0.25 s
    dorm.process([entry, exit_])
    (push,) = dorm_feed.take(2)[1:]
    assert [row["id"] for row in push["rows"]] == [str(entry.event_id), str(exit_.event_id)]
    assert board.apply(push) is True
    assert board.comparable() == _dorm_fresh(dorm).comparable()
    # the entry is the later passage: inside, on the desk and in a fresh snapshot alike
    assert board.comparable()["inside"] == _holders(resident)
    # a reader that was offline for a minute uploads an older exit in a later batch: it is in
    # the record and the feed, but does not overturn the newer entry
    stale = dorm.tap(resident, out=True, device=SIDE_DOOR, at=dorm.clock - timedelta(minutes=1))
    dorm.process([stale])
    (late_push,) = dorm_feed.take(1)
    assert board.apply(late_push) is True
    shown = board.comparable()
    assert shown == _dorm_fresh(dorm).comparable()
    assert shown["inside"] == _holders(resident) and str(stale.event_id) in shown["rows"]


def test_late_return_count_agrees_with_a_fresh_snapshot_past_200(dorm, dorm_feed, people):
    """R-OPS-4: a big building easily sees more than 200 late returns in a night."""
    seq, snapshot = _dorm_load(dorm)
    board = _dorm_board(dorm, seq, snapshot)
    dorm.curfew()
    returns = [dorm.tap(people.residents[i % len(people.residents)]) for i in range(201)]
    dorm.process(returns)
    (push,) = dorm_feed.take(1)
    assert board.apply(push) is True
    fresh = _dorm_fresh(dorm)
    tile = f"dorm-{dorm.code}-late"
    assert _shown(_panel(fresh, TZ, True), tile) == "201"
    assert _shown(_panel(board, TZ, True), tile) == "201"
    assert board.comparable() == fresh.comparable()


def _shown(component: Any, element_id: str) -> Any:
    """The children of the rendered element with this id (a Dash component tree)."""
    stack = [component]
    while stack:
        node = stack.pop()
        if getattr(node, "id", None) == element_id:
            return node.children
        kids = getattr(node, "children", None)
        if isinstance(kids, list | tuple):
            stack.extend(kids)
        elif kids is not None and not isinstance(kids, str):
            stack.append(kids)
    raise AssertionError(f"{element_id} not rendered")


def _local(y: int, mo: int, d: int, h: int, mi: int, tz: ZoneInfo = TZ) -> float:
    return datetime(y, mo, d, h, mi, tzinfo=tz).timestamp()


def _late_row(n: int, ts: float, holder_id: int = 1) -> dict[str, Any]:
    return tap_row(
        event_id=f"late-{n:04d}",
        occurred_at=datetime.fromtimestamp(ts, UTC),
        device=DeviceInfo(id=1, code=DOOR, name="1号门", kind=DeviceKind.DORM_DOOR, building="D1"),
        holder=HolderInfo(id=holder_id, name="张三", kind=HolderKind.STUDENT, dorm="D1"),
        card_uid="A0000001",
        direction="in",
        decision="allow",
        reason="ok",
        flags="late_return",  # as the door flagged it (readers.decide)
    )


def _empty_dorm_snapshot(late: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "watermark": 0,
        "building": "D1",
        "name": "1号学生公寓",
        "curfew": (23 * 60, 6 * 60),
        "residents": 1,
        "rows": [],
        "inside": [],
        "passed_at": {},
        "late": late or [],
        "late_count": len(late or []),
        "not_seen_days": 3,
        "not_seen": 0,
        "not_seen_names": [],
    }


def test_late_returns_stay_bounded_and_are_pruned_at_local_midnight():
    """R-OPS-4: "late returns today" — a page left open all night keeps flat memory, and at
    local (campus) midnight yesterday's late returns leave the desk."""
    board = DormBoard(building="D1", max_rows=50, tz=TZ)
    board.load(_empty_dorm_snapshot(), seq=0)
    start = _local(2025, 3, 2, 0, 0)
    rows = [_late_row(i, start + i) for i in range(250)]
    assert board.apply({"seq": 1, "watermark": 1, "rows": rows}) is True
    assert len(board.late) == 200
    assert [r["id"] for r in board.late] == [r["id"] for r in rows[-200:]], "the newest kept"
    assert len(board.rows) == 50 and board.inside == {1}

    yesterday, today = _late_row(1, _local(2025, 3, 1, 23, 30)), _late_row(2, _local(2025, 3, 2, 0, 30))
    board.load(
        _empty_dorm_snapshot(
            [{k: row[k] for k in ("id", "ts", "holder")} | {"device": row["device_name"]} for row in (yesterday, today)]
        ),
        seq=0,
    )
    board.prune(_local(2025, 3, 1, 23, 59))  # still the first day: both stay
    assert [r["id"] for r in board.late] == [yesterday["id"], today["id"]]
    # 01:00 in Shanghai is 17:00 UTC the day before: a UTC midnight would keep 23:30 too
    board.prune(_local(2025, 3, 2, 1, 0))
    assert [r["id"] for r in board.late] == [today["id"]]
    board.prune(_local(2025, 3, 3, 0, 0))
    assert board.late == []


# -- the alert and device desks (R-OPS-1: alerts and device states live) --------------------------


@pytest.fixture
def alerts_feed(campus, redis_client):
    return Feed(names.GROUP_ALERTS)


@pytest.fixture
def devices_feed(campus, redis_client):
    return Feed(names.GROUP_DEVICES)


@pytest.fixture
def nic(campus):
    return create_or_update_operator(username="nic-desk", password="desk-test-Passw0rd", role=Role.NIC)


def _alert_board(**kwargs: Any) -> KeyedBoard:
    """As the NIC device desk builds it (dashboard.pages.devices)."""
    board = KeyedBoard(fetch=lambda ids: alert_rows(ids, kinds=DEVICE_KINDS), **kwargs)
    seq, snapshot = device_page._alerts_load()
    board.load(snapshot, seq=seq)
    return board


def _fresh_alerts() -> dict[int, dict[str, Any]]:
    return {r["id"]: r for r in device_page._alerts_load()[1]["rows"]}


def _alert(kind: AlertKind, subject: str) -> Alert:
    return Alert.objects.get(kind=kind, subject=subject)


def test_alert_desk_snapshot_plus_pushes_equals_a_fresh_snapshot(campus, alerts_feed, nic):
    """R-OPS-1, R-OPS-3: raised, repeated, acknowledged and resolved alerts reach the desk as
    pushed ids; the refetched rows equal a fresh snapshot (other desks' kinds stay off)."""
    now = timezone.now()
    raise_alert(
        kind=AlertKind.UPLOAD_STOPPED, subject=campus.gate.code, device_id=campus.gate.pk, at=now - timedelta(minutes=5)
    )
    raise_alert(
        kind=AlertKind.DEVICE_FAULT,
        subject=campus.vehicle_gate.code,
        device_id=campus.vehicle_gate.pk,
        at=now - timedelta(minutes=4),
    )
    raise_alert(kind=AlertKind.BLACKLIST_HIT, subject="A0000001", at=now - timedelta(minutes=3))
    board = _alert_board()  # the page opens here
    opened_with = dict(board.rows)
    silent = _alert(AlertKind.UPLOAD_STOPPED, campus.gate.code)
    fault = _alert(AlertKind.DEVICE_FAULT, campus.vehicle_gate.code)
    hit = _alert(AlertKind.BLACKLIST_HIT, "A0000001")
    assert set(opened_with) == {silent.pk, fault.pk}

    raise_alert(
        kind=AlertKind.UPLOAD_STOPPED, subject=campus.gate.code, device_id=campus.gate.pk, at=now - timedelta(minutes=1)
    )  # a repeat
    acknowledge(fault.pk, by=nic, comment="派人去东门车辆入口查看")
    raise_alert(
        kind=AlertKind.TAMPER, subject=campus.dorm_door.code, device_id=campus.dorm_door.pk, at=now
    )  # a new one
    resolve(silent.pk, by=nic, resolution="交换机端口已恢复")
    raise_alert(kind=AlertKind.BLACKLIST_HIT, subject="A0000001", at=now)  # the security desk's
    pushes = alerts_feed.take(8)

    assert [p["seq"] for p in pushes] == list(range(1, 9))
    assert board.seq == 3
    assert all(board.apply(p) for p in pushes)
    tamper = _alert(AlertKind.TAMPER, campus.dorm_door.code)
    assert board.pending == {silent.pk, fault.pk, tamper.pk, hit.pk}
    board.settle()

    fresh = _fresh_alerts()
    assert board.rows == fresh
    assert {pk: (r["status"], r["count"]) for pk, r in fresh.items()} == {
        silent.pk: (AlertStatus.RESOLVED, 2),
        fault.pk: (AlertStatus.ACKNOWLEDGED, 1),
        tamper.pk: (AlertStatus.OPEN, 1),
    }
    assert hit.pk not in board.rows
    assert board.rows != opened_with

    # a row that no longer belongs on the desk (resolved long ago) goes when a push names it
    Alert.objects.filter(pk=silent.pk).update(resolved_at=now - RESOLVED_SHOWN_FOR - timedelta(minutes=1))
    with transaction.atomic():
        notify([silent.pk])
    (push,) = alerts_feed.take(1)
    assert board.apply(push) is True
    board.settle()
    assert board.rows == _fresh_alerts()
    assert set(board.rows) == {fault.pk, tamper.pk}
    assert board.resyncs == 0


def test_a_dropped_alert_push_is_noticed_and_a_reload_brings_the_desk_back_in_step(campus, alerts_feed, nic):
    """R-OPS-1: a lost push (a new alert) must not leave it off the desk."""
    now = timezone.now()
    raise_alert(
        kind=AlertKind.DEVICE_FAULT, subject=campus.gate.code, device_id=campus.gate.pk, at=now - timedelta(minutes=2)
    )
    board = _alert_board()
    fault = _alert(AlertKind.DEVICE_FAULT, campus.gate.code)
    acknowledge(fault.pk, by=nic, comment="已通知厂商")
    raise_alert(
        kind=AlertKind.TAMPER,
        subject=campus.dorm_door.code,
        device_id=campus.dorm_door.pk,
        at=now - timedelta(minutes=1),
    )  # lost
    resolve(fault.pk, by=nic, resolution="读卡器已更换")
    second, dropped, fourth = alerts_feed.take(4)[1:]
    tamper = _alert(AlertKind.TAMPER, campus.dorm_door.code)
    assert dropped["ids"] == [tamper.pk]

    assert board.apply(second) is True
    assert board.apply(fourth) is False, "a gap in the sequence must be reported"
    assert board.seq == second["seq"], "nothing after the gap is applied"
    board.settle()
    assert tamper.pk not in board.rows
    assert board.rows != _fresh_alerts(), "the loss is real until reload"

    board.resyncs += 1
    seq, snapshot = device_page._alerts_load()
    board.load(snapshot, seq=seq)
    assert board.pending == set()
    assert board.apply(second) is True and board.pending == set(), "an old push is ignored"
    raise_alert(kind=AlertKind.SEQUENCE_GAP, subject=campus.vehicle_gate.code, device_id=campus.vehicle_gate.pk, at=now)
    (fifth,) = alerts_feed.take(1)
    assert fifth["seq"] == fourth["seq"] + 1
    assert board.apply(fifth) is True
    board.settle()

    fresh = _fresh_alerts()
    assert board.rows == fresh
    assert fresh[tamper.pk]["status"] == AlertStatus.OPEN
    assert fresh[fault.pk]["status"] == AlertStatus.RESOLVED
    assert len(fresh) == 3


def test_limit_keeps_the_highest_ranked_rows(campus, alerts_feed, nic):
    """Memory stays flat: beyond ``limit`` the rows with the lowest rank (oldest last_at) go,
    even when an old row is the one a push names."""
    board = _alert_board(limit=3)
    now = timezone.now()
    buffer = AlertBuffer()
    for i in range(5):
        buffer.add(kind=AlertKind.SEQUENCE_GAP, subject=f"X-{i}", at=now - timedelta(minutes=10 - i))
    buffer.flush()
    (push,) = alerts_feed.take(1)
    assert len(push["ids"]) == 5
    assert board.apply(push) is True
    board.settle()
    by_rank = [r["id"] for r in alert_snapshot(kinds=DEVICE_KINDS)["rows"]]  # newest first
    assert set(board.rows) == set(by_rank[:3])

    oldest = by_rank[-1]
    acknowledge(oldest, by=nic, comment="序号缺失，观察")
    (push,) = alerts_feed.take(1)
    assert board.apply(push) is True
    board.settle()
    assert board.changed == {oldest}
    assert set(board.rows) == set(by_rank[:3]), "refetched, then trimmed again by rank"

    raise_alert(kind=AlertKind.SEQUENCE_GAP, subject="X-0", at=timezone.now())  # newest now
    (push,) = alerts_feed.take(1)
    assert board.apply(push) is True
    board.settle()
    assert set(board.rows) == {oldest, *by_rank[:2]}
    assert set(board.rows) == {r["id"] for r in alert_snapshot(kinds=DEVICE_KINDS)["rows"][:3]}


def test_more_alerts_than_the_snapshot_holds_agree_with_a_fresh_snapshot(campus, alerts_feed):
    """R-OPS-1: an attack or an outage can put hundreds of alerts on the desk at once."""
    board = _alert_board()  # default limit, exactly as the desks build it
    now = timezone.now()
    buffer = AlertBuffer()
    for i in range(SNAPSHOT_LIMIT + 1):
        buffer.add(
            kind=AlertKind.SEQUENCE_GAP, subject=f"R-{i:03d}", at=now - timedelta(seconds=SNAPSHOT_LIMIT + 1 - i)
        )
    buffer.flush()
    (push,) = alerts_feed.take(1)
    assert board.apply(push) is True
    board.settle()
    fresh = _fresh_alerts()
    assert len(fresh) == SNAPSHOT_LIMIT
    assert set(board.rows) == set(fresh)


def test_device_grid_follows_silence_pushes_and_resyncs_after_a_lost_one(campus, devices_feed):
    """R-OPS-1, R-DEV-2: devices going silent reach the NIC device grid; a page that lost one
    of those pushes reloads and shows the same as a fresh snapshot."""
    heard = timezone.now()
    Device.objects.update(last_seen_at=heard, state=DeviceState.ONLINE)  # no push: before
    every = _device_board()  # sees every push
    lossy = _device_board()  # loses the second
    assert every.rows == lossy.rows == _fresh_devices()
    assert {d["state"] for d in every.rows.values()} == {DeviceState.ONLINE}

    order = [campus.gate, campus.vehicle_gate, campus.dorm_door]
    for device in order:
        Device.objects.filter(pk=device.pk).update(last_seen_at=heard - timedelta(hours=1))
        assert mark_silent_devices(now=timezone.now()) == 1
    pushes = devices_feed.take(3)
    assert [p["ids"] for p in pushes] == [[d.pk] for d in order]

    assert all(every.apply(p) for p in pushes)
    every.settle()
    fresh = _fresh_devices()
    assert every.rows == fresh
    assert {pk: d["state"] for pk, d in fresh.items()} == {d.pk: DeviceState.SILENT for d in order}

    first, dropped, third = pushes
    assert lossy.apply(first) is True
    assert lossy.apply(third) is False, "a gap in the sequence must be reported"
    lossy.settle()
    assert lossy.rows[campus.vehicle_gate.pk]["state"] == DeviceState.ONLINE, "loss is real"
    lossy.resyncs += 1
    seq, snapshot = device_page._devices_load()
    lossy.load(snapshot, seq=seq)
    assert lossy.apply(third) is True  # already in the snapshot: ignored
    lossy.settle()
    assert lossy.rows == _fresh_devices() == every.rows


def _device_board() -> KeyedBoard:
    board = KeyedBoard(fetch=selectors.device_health, limit=100_000)
    seq, snapshot = device_page._devices_load()
    board.load(snapshot, seq=seq)
    return board


def _fresh_devices() -> dict[int, dict[str, Any]]:
    return {d["id"]: d for d in device_page._devices_load()[1]["rows"]}
