"""An agent lets go of an event only once a replica holds it too (issue 14; issue 12: Redis
acknowledges a write before any replica or disk has it). Private redis-servers started here: a
master alone, then given a replica."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

import pytest
import redis

from readers.agent.forwarder import Forwarder, NotReplicatedYet
from readers.agent.outbox import Outbox
from streams import envelopes, names, producer
from streams.consumer import stream_entries
from streams.reasons import Decision, Direction, Reason
from tests.private_servers import start_redis, stop

KEY = b"k" * 32


def _tap(seq: int) -> envelopes.Tap:
    return envelopes.Tap(
        event_id=uuid.uuid4(),
        device_id="G-R-01",
        boot_epoch=1,
        seq=seq,
        occurred_at=datetime.now(UTC),
        card_uid="A0000001",
        direction=Direction.IN,
        decision=Decision.ALLOW,
        reason=Reason.OK,
    )


def _append(outbox: Outbox, seq: int) -> None:
    fields = producer.entry(_tap(seq), KEY)
    outbox.append(bytes(fields[names.FIELD]), str(fields["m"]))  # type: ignore[arg-type]  # bytes payload, str MAC


@pytest.fixture
def master(tmp_path):
    proc, port = start_redis(tmp_path / "m")
    yield port
    stop(proc)


def test_events_stay_in_the_outbox_until_a_replica_holds_them_and_later_ones_still_flow(master, tmp_path):
    client = redis.Redis(port=master)
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    forwarder = Forwarder(outbox, client, batch=10, agent_id="G-R-01", confirm="redis", replicas=1, wait_ms=100)
    for seq in range(1, 6):
        _append(outbox, seq)
    assert forwarder.send_batch() == 5  # Redis has them, no replica does
    assert len(outbox) == 5
    for seq in range(6, 9):
        _append(outbox, seq)
    assert forwarder.send_batch() == 3  # a later tap is not held back behind the unconfirmed ones
    assert len(outbox) == 8
    assert len(stream_entries(client)) == 8  # each sent once so far
    with pytest.raises(NotReplicatedYet):
        forwarder.send_batch()  # nothing new: only asks again, and still no replica

    replica, replica_port = start_redis(tmp_path / "r", "--replicaof", "127.0.0.1", str(master))
    try:
        deadline = time.monotonic() + 20
        while redis.Redis(port=replica_port).info("replication").get("master_link_status") != "up":
            assert time.monotonic() < deadline, "the replica did not sync"
            time.sleep(0.1)
        assert forwarder.send_batch() == 0  # the replica confirms everything sent on this connection
        assert len(outbox) == 0
        assert len(stream_entries(client)) == 8  # confirmed without being sent again
        assert len(stream_entries(redis.Redis(port=replica_port))) == 8
    finally:
        stop(replica)
        forwarder.close()
        outbox.close()


def test_unconfirmed_events_are_sent_again_on_a_new_connection(master, tmp_path):
    client = redis.Redis(port=master)
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    forwarder = Forwarder(outbox, client, batch=10, agent_id="G-R-01", confirm="redis", replicas=1, wait_ms=50)
    for seq in range(1, 4):
        _append(outbox, seq)
    forwarder.send_batch()
    client.client_kill_filter(_type="normal", skipme=True)  # the connection is cut (a failover looks alike)
    with pytest.raises(redis.RedisError):
        forwarder.send_batch()
    assert forwarder.send_batch() == 3  # the same three again: what only the old master held may be lost
    assert len(outbox) == 3
    assert len(stream_entries(client)) == 6  # duplicates, removed by the processor's event id
    forwarder.close()
    outbox.close()


def test_without_replicas_wanted_the_outbox_empties_at_once(master, tmp_path):
    client = redis.Redis(port=master)
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    forwarder = Forwarder(outbox, client, batch=10, agent_id="G-R-01", confirm="redis")
    for seq in range(1, 4):
        _append(outbox, seq)
    assert forwarder.send_batch() == 3
    assert len(outbox) == 0
    forwarder.close()
    outbox.close()
