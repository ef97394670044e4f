"""The agent's anti-passback memory (issue 17, Build 5; R-SEC-5): durable across a restart,
merged with its zone's stream, forgiven for one card or the whole zone — and a late passage
from before a forgiveness does not bring it back. Real SQLite files and a real Redis (the
tests' scratch database) for the zone stream contract."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
import redis

from readers.agent.passback import SharedPassback, ZoneFollower
from readers.decide import Credential, Door, Verdict, decide
from streams import passback as zone_feed
from streams.cards import CardStatus, CardType, DeviceKind
from streams.reasons import Decision, Direction, Reason

ZONE = "east"
G1 = Door("G-1", DeviceKind.PEDESTRIAN_GATE, area=ZONE, passback="hard", passback_reset=None)
G2 = Door("G-2", DeviceKind.PEDESTRIAN_GATE, area=ZONE, passback="hard", passback_reset=None)
OK = Verdict(Decision.ALLOW, Reason.OK)
T0 = datetime(2026, 12, 7, 1, 0, tzinfo=UTC)
A, B = "04AA000001", "04BB000002"


def cred(uid: str) -> Credential:
    return Credential(uid, CardType.STUDENT, CardStatus.ACTIVE, False, T0 - timedelta(days=30), None)


def verdict(state: SharedPassback, uid: str, door: Door, at: datetime) -> Reason:
    return decide(cred(uid), door, at, state, direction=Direction.IN).reason


def test_a_passage_survives_a_restart_of_the_agent(tmp_path):
    path = tmp_path / "passback.sqlite3"
    state = SharedPassback(path)
    assert verdict(state, A, G1, T0) == Reason.OK
    state.record(OK, A, G1, T0, direction=Direction.IN)
    assert verdict(state, A, G2, T0 + timedelta(seconds=5)) == Reason.ANTI_PASSBACK
    state.close()
    again = SharedPassback(path)  # the agent restarted: the same file
    try:
        assert again.last(A, ZONE) == (Direction.IN, T0)
        assert verdict(again, A, G2, T0 + timedelta(seconds=10)) == Reason.ANTI_PASSBACK
        assert verdict(again, B, G2, T0 + timedelta(seconds=10)) == Reason.OK
    finally:
        again.close()


def test_zone_entries_merge_by_time_and_forgiveness_holds_against_late_passages(tmp_path):
    path = tmp_path / "passback.sqlite3"
    state = SharedPassback(path)
    state.record(OK, A, G1, T0 + timedelta(seconds=10), direction=Direction.OUT)
    # an older passage of the zone arrives after: the later one held stays
    state.apply(ZONE, "1-0", zone_feed.ZonePassage(A, Direction.IN, T0, "G-2"))
    assert state.last(A, ZONE) == (Direction.OUT, T0 + timedelta(seconds=10))
    # another reader's newer passage wins
    state.apply(ZONE, "2-0", zone_feed.ZonePassage(A, Direction.IN, T0 + timedelta(seconds=20), "G-2"))
    state.apply(ZONE, "3-0", zone_feed.ZonePassage(B, Direction.IN, T0 + timedelta(seconds=20), "G-2"))
    assert verdict(state, A, G1, T0 + timedelta(seconds=30)) == Reason.ANTI_PASSBACK
    # one card forgiven: it alone
    state.apply(ZONE, "4-0", zone_feed.ZoneForgiveness((A,), T0 + timedelta(seconds=40), 1))
    assert state.last(A, ZONE) is None and state.last(B, ZONE) is not None
    # a passage from before the forgiveness, uploaded late by an agent that was offline: not taken
    state.apply(ZONE, "5-0", zone_feed.ZonePassage(A, Direction.IN, T0 + timedelta(seconds=35), "G-9"))
    assert state.last(A, ZONE) is None
    # the whole zone
    state.apply(ZONE, "6-0", zone_feed.ZoneForgiveness(None, T0 + timedelta(seconds=50), 2))
    assert state.last(B, ZONE) is None
    state.apply(ZONE, "7-0", zone_feed.ZonePassage(B, Direction.IN, T0 + timedelta(seconds=45), "G-9"))
    assert state.last(B, ZONE) is None
    # a passage after it counts again
    state.apply(ZONE, "8-0", zone_feed.ZonePassage(B, Direction.IN, T0 + timedelta(seconds=60), "G-2"))
    assert state.last(B, ZONE) == (Direction.IN, T0 + timedelta(seconds=60))
    state.close()
    again = SharedPassback(path)
    try:
        assert again.cursor(ZONE) == "8-0" and again.cursor("other") == "0"
        assert again.forgiven_at(A, ZONE) == T0 + timedelta(seconds=50)  # the zone's, later than A's own
        assert again.last(A, ZONE) is None and again.last(B, ZONE) is not None
        assert again.prune(T0 + timedelta(minutes=5)) == 1  # the day's reset: all forgotten, on disk too
    finally:
        again.close()
    third = SharedPassback(path)
    try:
        assert len(third) == 0 and third.forgiven_at(A, ZONE) is None
    finally:
        third.close()


def test_the_zone_stream_round_trips_and_skips_what_is_not_an_entry(redis_client):
    zone_feed.publish(redis_client, ZONE, zone_feed.ZonePassage(A.lower(), Direction.IN, T0, "G-1"))
    zone_feed.publish(redis_client, ZONE, zone_feed.ZoneForgiveness(None, T0 + timedelta(seconds=1), 7))
    redis_client.xadd(zone_feed.zone_stream(ZONE), {"e": '{"t": "x"}'})
    redis_client.xadd(zone_feed.zone_stream("west"), {"e": '{"t": "p", "uid": "X", "dir": "none", "at": "x"}'})
    read = zone_feed.read(redis_client, {ZONE: "0", "west": "0"})
    entries = [(zone, entry) for zone, _id, entry in read]
    assert entries == [
        (ZONE, zone_feed.ZonePassage(A, Direction.IN, T0, "G-1")),
        (ZONE, zone_feed.ZoneForgiveness(None, T0 + timedelta(seconds=1), 7)),
        (ZONE, None),
        ("west", None),
    ]
    last = read[2][1]
    assert zone_feed.read(redis_client, {ZONE: last}) == []


@pytest.mark.parametrize(
    "raw",
    ['{"t": "p", "uid": "A", "dir": "sideways", "at": "2026-01-01T00:00:00+00:00"}', "[]", "{", '{"t": "f"}'],
)
def test_a_malformed_zone_entry_is_refused(raw):
    with pytest.raises(ValueError):
        zone_feed.decode(raw)


def test_zones_of_doors():
    doors = [("G-1", "east", "hard"), ("G-2", "east", "soft"), ("G-3", None, "hard"), ("G-4", "west", "off")]
    assert zone_feed.zones_of(doors) == ["G-3", "east"]


def test_redis_errors_do_not_escape_a_closed_server(tmp_path):
    """The follower backs off on a Redis that is not there; the state stays usable."""
    state = SharedPassback(tmp_path / "p.sqlite3")
    stopping = threading.Event()
    follower = ZoneFollower(state, [ZONE], lambda: redis.Redis(port=1, socket_connect_timeout=0.2), stopping=stopping)
    thread = threading.Thread(target=follower.run)
    thread.start()
    try:
        stopping.wait(0.5)
        assert not follower.connected and state.cursor(ZONE) == "0"
    finally:
        stopping.set()
        thread.join(5)
        state.close()
    assert not thread.is_alive()
