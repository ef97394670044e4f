"""A partition changing owner keeps its devices' sequence checks exact (issue 14; issue 12's split
sequence state): the new owner resumes from what the old one acknowledged, not from the device
row (written at most once a second, so up to a second behind)."""

from __future__ import annotations

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
