"""A partition changing owner keeps its devices' sequence checks exact (issue 14; issue 12's split
sequence state): the new owner resumes from what the old one acknowledged, not from the device
row (written at most once a second, so up to a second behind)."""

from __future__ import annotations

import time

import pytest

from ops.alerts.choices import AlertKind
from ops.alerts.models import Alert
from ops.pipeline.processor import ReaderEventProcessor
from ops.registry.models import AccessEvent, Device
from tests.factories import publish, tap

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.pipeline]


def _drain(processor: ReaderEventProcessor, count: int) -> None:
    for _ in range(200):
        if AccessEvent.objects.count() >= count:
            break
        processor.poll_once()
    assert AccessEvent.objects.count() == count
    processor.alerts.flush()


def test_the_next_owner_resumes_each_device_where_the_last_acknowledgement_left_it(campus, redis_client):
    taps = [tap(uid=campus.cards[i].uid, seq=i + 1) for i in range(10)]
    first = ReaderEventProcessor(redis_client, fanout=None, consumer="a", block_ms=50)
    publish(redis_client, taps[:5])
    _drain(first, 5)
    publish(redis_client, taps[5:8])
    _drain(first, 8)
    assert Device.objects.get(code="G-E-01").last_seq == 8  # written with the batch (issue 12)
    Device.objects.filter(code="G-E-01").update(last_seq=5)  # as if the row lagged: the hash must carry it
    first.leases.release_all()  # stops; the partition passes on

    second = ReaderEventProcessor(redis_client, fanout=None, consumer="b", block_ms=50)
    publish(redis_client, taps[8:])
    _drain(second, 10)
    assert second.owned == list(range(second.partitions))
    assert not Alert.objects.filter(kind__in=[AlertKind.SEQUENCE_GAP, AlertKind.REPLAY]).exists()

    replayed = tap(uid=campus.cards[0].uid, seq=7)  # an old seq under a new id: a replay, still caught
    publish(redis_client, [replayed])
    for _ in range(5):
        second.poll_once()
    second.alerts.flush()
    assert Alert.objects.filter(kind=AlertKind.REPLAY).count() == 1


def test_a_processor_without_redis_state_resumes_from_the_row_written_with_the_batch(campus, redis_client):
    """Redis restarted empty and the processor restarted too: the state hash is gone, and the
    device row, written in the transaction of the taps it judged, is exact (no false gap)."""
    taps = [tap(uid=campus.cards[i].uid, seq=i + 1) for i in range(10)]
    first = ReaderEventProcessor(redis_client, fanout=None, consumer="a", block_ms=50)
    publish(redis_client, taps[:5])
    _drain(first, 5)
    first._flush_seen()  # the once-a-second liveness flush ran here …
    publish(redis_client, taps[5:7])
    _drain(first, 7)  # … and not since: 6 and 7 are committed and acknowledged
    first.leases.release_all()
    redis_client.flushdb()  # every stream, lease, state hash and acknowledgement gone

    second = ReaderEventProcessor(redis_client, fanout=None, consumer="b", block_ms=50)
    publish(redis_client, taps[6:])  # the agent re-sends from what it had not seen acknowledged, then more
    _drain(second, 10)
    second.alerts.flush()
    assert not Alert.objects.filter(kind__in=[AlertKind.SEQUENCE_GAP, AlertKind.REPLAY]).exists()
    assert redis_client.hget("campuscard:counters", "duplicate") == b"1"  # seq 7, stored already


def test_a_state_hash_behind_the_row_is_not_a_gap(campus, redis_client):
    """Redis restored from its AOF (``everysec``) lost the last write to the state hash after the
    taps' commit; the row, written in that commit, did not. The next owner resumes from the
    further of the two: the agent's next fresh tap is no false sequence gap (CI caught one)."""
    taps = [tap(uid=campus.cards[i].uid, seq=i + 1) for i in range(10)]
    first = ReaderEventProcessor(redis_client, fanout=None, consumer="a", block_ms=50)
    publish(redis_client, taps[:5])
    _drain(first, 5)
    stale = {k: v for k, v in ((k, redis_client.hgetall(k)) for k in redis_client.keys("*:seq")) if v}
    publish(redis_client, taps[5:8])
    _drain(first, 8)  # the agent read its acknowledgement (8) and trimmed its outbox
    first.leases.release_all()
    first._pool.shutdown(wait=True)  # its read-ahead ends empty: 9 and 10 reach the next owner fresh
    for key, fields in stale.items():  # … and Redis came back from an AOF that missed the last hset
        redis_client.delete(key)
        redis_client.hset(key, mapping=fields)
    print("STALE", stale, redis_client.keys("*"))
    assert Device.objects.get(code="G-E-01").last_seq == 8

    second = ReaderEventProcessor(redis_client, fanout=None, consumer="b", block_ms=50)
    publish(redis_client, taps[8:])  # seq 9, 10: fresh
    second.poll_once()
    print("STATE", second.supervisor.state, second.owned)
    _drain(second, 10)
    second.alerts.flush()
    print("STATE", second.supervisor.state, list(Alert.objects.values()))
    assert not Alert.objects.filter(kind__in=[AlertKind.SEQUENCE_GAP, AlertKind.REPLAY]).exists()


@pytest.mark.parametrize("door", ["advance_sequences", "start_tap_batch"])
def test_the_row_never_moves_back(campus, redis_client, door):
    """A processor that lost its lease with a batch in hand writes its older sequence after the
    new owner stored newer ones: the row keeps the newer (the next owner resumes from it). Both
    writers: the liveness flush's, and a tap batch's start (on PostgreSQL one round trip with the
    commit lock and the batch's cards, whose rows it still returns)."""
    from django.db import transaction

    from ops.pipeline import taps

    def _advance_sequences(states):
        if door == "advance_sequences":
            taps.advance_sequences(states)
            return
        with transaction.atomic():
            cards = taps.start_tap_batch({campus.cards[0].uid, "FFFFFFFF"}, states)
        assert set(cards) == {campus.cards[0].uid} and cards[campus.cards[0].uid]["id"] == campus.cards[0].id

    device = Device.objects.get(code="G-E-01")
    Device.objects.filter(pk=device.pk).update(boot_epoch=2000, last_seq=50)
    _advance_sequences({device.pk: (2000, 40)})
    _advance_sequences({device.pk: (1000, 90)})
    device.refresh_from_db()
    assert (device.boot_epoch, device.last_seq) == (2000, 50)
    _advance_sequences({device.pk: (2000, 51)})
    device.refresh_from_db()
    assert device.last_seq == 51
    _advance_sequences({device.pk: (3000, 1)})
    device.refresh_from_db()
    assert (device.boot_epoch, device.last_seq) == (3000, 1)


def test_a_partition_is_handed_over_only_after_the_batch_read_ahead_is_handled(campus, redis_client):
    """A processor that gives a partition up (a second one arrived: the fair share halves) while
    its next batch is being read ahead lets go only once that read is back and handled. Had it
    let go first, the new owner could take the partition over (claiming nothing: the read had not
    reached Redis yet), the read would then hand the old owner the next event, and the new owner,
    reading on past it, would take the event after for a sequence gap (seen in the PostgreSQL
    outage run, at the startup split of two processors)."""
    import threading
    from concurrent.futures import Future

    from streams import names, producer
    from tests.factories import device_key

    parts = 2
    a = ReaderEventProcessor(redis_client, fanout=None, consumer="a", block_ms=50, partitions=parts)
    b = ReaderEventProcessor(redis_client, fanout=None, consumer="b", block_ms=50, partitions=parts)
    a.poll_once()  # owns both partitions
    given_up = a.leases._order[-1]  # the partition it gives up first (its own order, reversed)
    agent = next(f"agent-{i}" for i in range(100) if names.partition_of(f"agent-{i}", parts) == given_up)
    keys = {"G-E-01": device_key("G-E-01")}
    taps = [tap(uid=campus.cards[i].uid, seq=i + 1) for i in range(5)]

    def send(events):
        producer.publish(redis_client, events, keys, partitions=parts, partition_key=lambda _e: agent)

    send(taps[:3])
    _drain(a, 3)
    assert not a._take_prefetched()  # nothing in flight now
    send(taps[3:4])  # seq 4: a's next read ahead will bring it …
    in_flight: Future = Future()
    a._prefetched = in_flight  # … a read still on its way to Redis
    owned_before = a.owned

    def the_read_arrives() -> None:
        deadline = time.monotonic() + 1.5
        while given_up in a.leases.owned and time.monotonic() < deadline:
            time.sleep(0.01)
        if given_up not in a.leases.owned:  # a let go with its read in flight: b takes over now
            b._leases_at = 0.0
            b._keep_leases()  # (claiming a's pending entries: none yet)
        in_flight.set_result(a._decode(a._read_partitions(owned_before, ">")))

    reader = threading.Thread(target=the_read_arrives)
    b.leases.alive()  # b arrives: a's fair share halves
    reader.start()
    a._leases_at = 0.0  # a's lease refresh is due now
    a.poll_once()
    reader.join()
    assert given_up not in a.owned
    send(taps[4:5])  # seq 5
    for _ in range(50):
        if AccessEvent.objects.count() >= 5:
            break
        b._leases_at = 0.0
        b.poll_once()
    assert AccessEvent.objects.count() == 5
    a.alerts.flush()
    b.alerts.flush()
    gaps = Alert.objects.filter(kind__in=[AlertKind.SEQUENCE_GAP, AlertKind.REPLAY])
    assert not gaps.exists(), list(gaps.values("kind", "detail"))
