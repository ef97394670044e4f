"""A reader agent's local files stay small on a controller's small storage (issue 12: a busy
door's SQLite WAL filled a 2 MB volume in 5 s): the outbox's WAL is folded back and cut while a
door appends and the forwarder reads and deletes, as in service; and a full disk never costs a
verdict."""

from __future__ import annotations

import threading

from readers.agent.agent import STORAGE_FULL, ReaderAgent, client_factory
from readers.agent.config import parse_config
from readers.agent.outbox import Outbox
from readers.agent.storage import WAL_LIMIT_BYTES
from streams import envelopes, signing
from streams.reasons import Reason
from tests.signing_keys import PUBLIC_KEYS


def test_the_outbox_wal_stays_small_under_a_busy_door(tmp_path):
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    wal = tmp_path / "outbox.sqlite3-wal"
    stop = threading.Event()
    largest = 0

    def forward() -> None:  # the forwarder: read the oldest, delete them, over and over
        while not stop.is_set():
            rows = outbox.peek(200)
            if rows:
                outbox.delete_through(rows[-1][0])

    forwarder = threading.Thread(target=forward)
    forwarder.start()
    try:
        payload = b'{"type":"tap","x":"' + b"x" * 350 + b'"}'  # an envelope's size
        for n in range(30_000):  # ~12 MB through the outbox
            outbox.append(payload, "m" * 64)
            if n % 500 == 0 and wal.exists():
                largest = max(largest, wal.stat().st_size)
    finally:
        stop.set()
        forwarder.join()
        outbox.close()
    # with SQLite's defaults the WAL grows to several MB here; kept to a fold's worth plus the limit
    assert largest <= 2 * WAL_LIMIT_BYTES, f"the WAL reached {largest} bytes"


def test_a_full_disk_never_costs_a_verdict_and_loses_no_event_once_there_is_room(tmp_path):
    """Issue 12: a door whose disk was full returned no verdict at all. Now every tap is decided,
    the events wait in memory in order, ``storage_full`` is raised, and once there is room they
    are written before any later one. The disk fills for real as far as SQLite is concerned
    (``max_page_count``: SQLite's own SQLITE_FULL, "database or disk is full")."""
    key = signing.new_key()
    config = parse_config(
        {
            "feed_keys": PUBLIC_KEYS,
            "redis_url": f"unix://{tmp_path}/no-redis.sock",
            "state_dir": str(tmp_path / "state"),
            "heartbeat_s": 3600,
            "doors": [{"device_id": "G-T-01", "key_hex": key.hex(), "kind": "pedestrian_gate", "direction": "in"}],
        }
    )
    agent = ReaderAgent(config, client_factory(config.redis_url), sources=[])
    agent.start()  # no Redis: nothing leaves the outbox
    db = agent.outbox._db
    try:
        pages = db.execute("PRAGMA page_count").fetchone()[0]
        db.execute(f"PRAGMA max_page_count = {pages + 2}")  # the disk is nearly full
        verdicts = [agent.tap("G-T-01", "04A1B2C3") for _ in range(300)]
        assert len(verdicts) == 300 and {v.reason for v in verdicts} == {Reason.UNKNOWN_CARD}  # every tap decided
        assert agent.outbox.disk_full and agent.outbox.held > 0 and agent.outbox.lost == 0
        assert STORAGE_FULL in agent.status()["alarms"]

        db.execute("PRAGMA max_page_count = 1073741823")  # room again (an operator freed the disk)
        assert agent.outbox.flush_held() == 0
        agent._check_storage()
        assert not agent.outbox.disk_full and STORAGE_FULL not in agent.status()["alarms"]
        events = [envelopes.parse(payload) for _id, payload, mac in agent.outbox.peek(10_000)]
        assert all(signing.verify(key, p, m) for _i, p, m in agent.outbox.peek(10_000))
        assert [e.seq for e in events] == list(range(1, len(events) + 1))  # nothing lost, in order
        assert sum(isinstance(e, envelopes.Tap) for e in events) == 300
        faults = [(e.code, e.cleared) for e in events if isinstance(e, envelopes.Fault)]
        assert faults == [(STORAGE_FULL, False), (STORAGE_FULL, True)]
    finally:
        agent.close()
