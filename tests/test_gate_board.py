"""Snapshot + deltas equals a fresh snapshot — checked with the real processor, database and
Channels layer, including pushes dropped on purpose (the layer is at-most-once).

A "page" here is what ``dashboard.live.run_feed`` does for the gate page: a channel in the
``live.gates`` group, a ``GateBoard`` loaded from ``dashboard.pages.gates._load()``, then every
pushed ``live.batch`` applied, with a reload when ``apply`` reports a gap.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings

from dashboard.gate_board import GateBoard
from dashboard.pages import gates
from ops.push import MESSAGE_TYPE, current_seq
from ops.registry import selectors
from ops.registry.models import AccessEvent
from streams import names
from streams.cards import GATE_KINDS
from streams.reasons import Decision, Reason
from tests.factories import tap
from tests.live import Feed, Readers

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.pipeline]

GATE, VEHICLE_GATE, DORM_DOOR = "G-E-01", "V-E-IN", "D1-01"


class Campus(Readers):
    """Readers publishing taps, and the real processor with the real fan-out behind them."""

    def __init__(self, campus, redis_client) -> None:
        super().__init__(redis_client)
        self.uids = [c.uid for c in campus.cards]
        self.clock = datetime.now(UTC) - timedelta(seconds=30)  # distinct, increasing
        self.n = 0

    def tap(self, device: str, *, reason: Reason = Reason.OK, uid: str | None = None):
        self.n += 1
        self.clock += timedelta(milliseconds=500)
        decision = Decision.ALLOW if reason == Reason.OK else Decision.DENY
        return tap(
            device,
            uid or self.uids[self.n % len(self.uids)],
            seq=self.n,
            decision=decision,
            reason=reason,
            when=self.clock,
        )

    def mixed(self) -> list:
        """A realistic handful: both gates, allows and denies (with reasons), a dorm door."""
        return [
            self.tap(GATE),
            self.tap(VEHICLE_GATE),
            self.tap(GATE, reason=Reason.BLACKLISTED),
            self.tap(DORM_DOOR),
            self.tap(GATE, reason=Reason.UNKNOWN_CARD, uid="FFFFFFFF"),
            self.tap(VEHICLE_GATE, reason=Reason.EXPIRED),
            self.tap(GATE),
        ]


@pytest.fixture
def live(campus, redis_client):
    world = Campus(campus, redis_client)
    yield world
    world.close()


@pytest.fixture
def feed(redis_client):
    return Feed(names.GROUP_GATES)


def _board(seq: int, snapshot: dict) -> GateBoard:
    board = GateBoard(max_rows=settings.LIVE_FEED_ROWS, minutes=gates.CHART_MINUTES, tz=ZoneInfo(settings.TIME_ZONE))
    board.load(snapshot, seq=seq)
    return board


def _fresh() -> GateBoard:
    return _board(*gates._load())


def _gate_ids(events) -> set[str]:
    return {str(e.event_id) for e in events if e.device_id != DORM_DOOR}


# ---------------------------------------------------------------------------------------------


def test_a_snapshot_plus_every_later_push_equals_a_fresh_snapshot(live, feed):
    """R-OPS-2: what the security office sees live is what the database says."""
    first = live.mixed()
    live.process(first)
    seq, snapshot = gates._load()  # the page opens here
    later = [live.mixed() for _ in range(3)]
    for events in later:
        live.process(events)
    pushes = feed.take(4)

    assert [p["seq"] for p in pushes] == [1, 2, 3, 4]  # one push per batch, in order
    assert seq == 1
    board = _board(seq, snapshot)
    opened_with = board.comparable(time.time())
    assert all(board.apply(p) for p in pushes)

    fresh = _fresh()
    now = time.time()
    assert board.comparable(now) == fresh.comparable(now)
    # …and it is not two empty boards agreeing: the pushes changed the page, reasons included
    shown = fresh.comparable(now)
    assert shown != opened_with
    assert set(shown["rows"]) == _gate_ids(first) | {i for b in later for i in _gate_ids(b)}
    assert shown["totals"] == {"allow": 12, "deny": 12, "reasons": {"blacklisted": 4, "unknown_card": 4, "expired": 4}}
    assert sum(sum(per.values()) for per in shown["counts"].values()) == 24
    assert board.resyncs == 0


def test_a_dropped_push_is_noticed_and_a_reload_brings_the_board_back_in_step(live, feed):
    live.process(live.mixed())
    seq, snapshot = gates._load()
    board = _board(seq, snapshot)
    for _ in range(3):
        live.process(live.mixed())
    second, dropped, fourth = feed.take(4)[1:]

    assert board.apply(second) is True
    # `dropped` never arrives (at-most-once layer)
    assert board.apply(fourth) is False, "a gap in the sequence must be reported"
    assert board.seq == second["seq"], "nothing after the gap is applied"
    now = time.time()
    assert board.comparable(now) != _fresh().comparable(now), "the loss is real until reload"

    # what the page does on a gap: reload the snapshot, then carry on with the next pushes
    board.resyncs += 1
    reload_seq, reload_snapshot = gates._load()
    board.load(reload_snapshot, seq=reload_seq)
    live.process(live.mixed())
    (fifth,) = feed.take(1)
    assert fifth["seq"] == fourth["seq"] + 1
    assert board.apply(fifth) is True

    now = time.time()
    assert board.comparable(now) == _fresh().comparable(now)
    assert {r["id"] for r in dropped["rows"]} <= set(board.comparable(now)["rows"])


def test_a_push_already_in_the_snapshot_is_not_counted_twice(live, feed):
    """The page reads the sequence number, a batch commits, then the snapshot is taken: the
    batch is in the snapshot *and* arrives as the next push; its watermark says so."""
    live.process(live.mixed())
    feed.take(1)
    seq = current_seq(live.redis, names.GROUP_GATES)  # gates._load() reads this first…
    live.process(live.mixed())  # …a batch commits in between…
    snapshot = selectors.gate_snapshot(rows=settings.LIVE_FEED_ROWS, minutes=gates.CHART_MINUTES)  # …then the snapshot
    live.process(live.mixed())
    in_snapshot, after = feed.take(2)

    assert in_snapshot["seq"] == seq + 1
    assert in_snapshot["watermark"] <= snapshot["watermark"]
    assert {r["id"] for r in in_snapshot["rows"]} <= {r["id"] for r in snapshot["rows"]}

    board = _board(seq, snapshot)
    now = time.time()
    before = board.comparable(now)
    assert board.apply(in_snapshot) is True
    assert board.comparable(now) == before, "rows already in the snapshot were added again"
    assert board.apply(after) is True, "the skipped push still advances the sequence"
    assert board.apply(after) is True  # a redelivered push is ignored too

    now = time.time()
    assert board.comparable(now) == _fresh().comparable(now)


def test_only_gate_taps_reach_the_gate_board(live, feed, campus, redis_client):
    """R-OPS-4: dorm-door traffic goes to that building's own group, never to the gate page."""
    dorm_feed = Feed(names.dorm_group(campus.dorm.code))
    live.process([live.tap(GATE)])
    seq, snapshot = gates._load()
    dorm_only = [live.tap(DORM_DOOR), live.tap(DORM_DOOR, reason=Reason.OUTSIDE_SCHEDULE)]
    live.process(dorm_only)
    assert current_seq(redis_client, names.GROUP_GATES) == seq, "no gate push for dorm taps"
    both = [live.tap(DORM_DOOR), live.tap(GATE, reason=Reason.LOST), live.tap(VEHICLE_GATE)]
    live.process(both)
    pushes = feed.take(2)
    dorm_pushes = dorm_feed.take(2)

    dorm_ids = {str(e.event_id) for e in [*dorm_only, both[0]]}
    assert AccessEvent.objects.filter(event_id__in=dorm_ids).count() == 3  # recorded…
    assert {r["id"] for p in dorm_pushes for r in p["rows"]} == dorm_ids  # …and pushed to D1
    for push in pushes:
        assert push["type"] == MESSAGE_TYPE and push["group"] == names.GROUP_GATES
        assert all(r["kind"] in GATE_KINDS for r in push["rows"])
    assert {r["id"] for r in pushes[1]["rows"]} == _gate_ids(both)

    board = _board(seq, snapshot)
    assert all(board.apply(p) for p in pushes)
    now = time.time()
    shown = board.comparable(now)
    assert shown == _fresh().comparable(now)
    assert not dorm_ids & set(shown["rows"])
    assert DORM_DOOR not in shown["counts"]
    assert shown["totals"] == {"allow": 2, "deny": 1, "reasons": {"lost": 1}}
