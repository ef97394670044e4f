"""The reader agent's outbox: FIFO, durable across a reopen, fast enough, and a capacity alarm
that warns (buffer_filling at 80 %, buffer_full at 100 %) but never refuses an event."""

from __future__ import annotations

import pytest

from readers.agent.agent import BUFFER_FILLING, BUFFER_FULL, ReaderAgent, client_factory
from readers.agent.config import parse_config
from readers.agent.outbox import Outbox
from streams import envelopes, signing
from tests.signing_keys import PUBLIC_KEYS


@pytest.fixture
def outbox(tmp_path):
    o = Outbox(tmp_path / "outbox.sqlite3", capacity=10)
    yield o
    o.close()


def test_fifo(outbox):
    ids = [outbox.append(f"event {i}".encode(), f"mac{i}") for i in range(7)]
    assert ids == sorted(ids) and len(set(ids)) == 7
    assert len(outbox) == 7
    first = outbox.peek(3)
    assert [(p, m) for _i, p, m in first] == [(b"event 0", "mac0"), (b"event 1", "mac1"), (b"event 2", "mac2")]
    assert outbox.peek(3) == first  # peeking removes nothing
    assert outbox.delete_through(first[-1][0]) == 3
    assert len(outbox) == 4
    assert [p for _i, p, _m in outbox.peek(100)] == [f"event {i}".encode() for i in range(3, 7)]
    outbox.delete_through(ids[-1])
    assert len(outbox) == 0 and outbox.peek(10) == []
    # ids keep rising after the table emptied (never reused)
    assert outbox.append(b"later", "m") > ids[-1]


def test_durable_across_reopen(tmp_path):
    path = tmp_path / "outbox.sqlite3"
    with Outbox(path) as o:
        for i in range(100):
            o.append(f"event {i}".encode(), f"mac{i}")
        o.delete_through(o.peek(10)[-1][0])
        kept = o.peek(1000)
    with Outbox(path) as o:
        assert len(o) == 90
        assert o.peek(1000) == kept
        assert o.append(b"next", "m") > kept[-1][0]


def test_fill_ratio_counts_past_capacity(outbox):
    for i in range(15):
        outbox.append(b"x", str(i))
    assert len(outbox) == 15  # nothing refused
    assert outbox.fill_ratio == pytest.approx(1.5)


def test_many_appends_are_all_kept_in_order(tmp_path):
    """Their speed is `campuscard bench decide`'s `outbox_appends_per_s` (a figure, not a timed
    test): here, that 5,000 appends in a row are all there, in order, after a reopen."""
    path = tmp_path / "outbox.sqlite3"
    with Outbox(path) as o:
        for i in range(5000):
            o.append(b"x" * 350, f"{i:064d}")
    with Outbox(path) as o:
        assert len(o) == 5000
        macs = [mac for _seq, _payload, mac in o.peek(5000)]
        assert macs == [f"{i:064d}" for i in range(5000)]


def test_agent_raises_buffer_alarms_and_refuses_nothing(tmp_path):
    key = signing.new_key()
    config = parse_config(
        {
            "feed_keys": PUBLIC_KEYS,
            "redis_url": f"unix://{tmp_path}/no-redis.sock",
            "state_dir": str(tmp_path / "state"),
            "heartbeat_s": 3600,
            "outbox_capacity": 20,
            "doors": [{"device_id": "G-T-01", "key_hex": key.hex(), "kind": "pedestrian_gate", "direction": "in"}],
        }
    )
    agent = ReaderAgent(config, client_factory(config.redis_url), sources=[])
    agent.start()  # no Redis: forwarding fails and backs off, the door goes on deciding
    try:
        for _ in range(30):
            agent.tap("G-T-01", "04A1B2C3")
        assert len(agent.outbox) >= 31  # the heartbeat, 30 taps, and the faults: nothing refused
        assert agent.status()["alarms"] == [BUFFER_FILLING, BUFFER_FULL]
        events = []
        for _id, payload, mac in agent.outbox.peek(1000):
            assert signing.verify(key, payload, mac)
            events.append(envelopes.parse(payload))
        faults = [e for e in events if isinstance(e, envelopes.Fault)]
        assert [(f.code, f.cleared) for f in faults] == [(BUFFER_FILLING, False), (BUFFER_FULL, False)]
        assert "of 20 events buffered" in faults[0].detail
        seqs = [e.seq for e in events]
        assert seqs == list(range(1, len(events) + 1))  # one device, one sequence, in outbox order
    finally:
        agent.close()
