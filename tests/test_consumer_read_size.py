"""A read the stream consumer's main thread waits for is one batch over all its partitions, not a
batch per partition (issue 14): under a backlog that was 16 batches read and decoded on the main
thread after every lease refresh — a tenth of its time — while the next batch's read, ahead on its
own thread, could have gone on beside the work. The read ahead still takes a batch per partition."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from streams import names
from streams.consumer import Entry, StreamConsumer

pytestmark = [pytest.mark.pipeline]

PARTITIONS = 4
BATCH = 8
PER_PARTITION = 10


class Recorder(StreamConsumer[dict[bytes, bytes]]):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.handled: list[tuple[int, bytes]] = []

    def decode(self, fields: dict[bytes, bytes]) -> dict[bytes, bytes]:
        return fields

    def handle(self, batch: Sequence[Entry[dict[bytes, bytes]]]) -> None:
        self.handled.extend((e.partition, e.value[b"n"]) for e in batch)


@pytest.fixture
def backlog(redis_client):
    pipe = redis_client.pipeline(transaction=False)
    for p in range(PARTITIONS):
        for i in range(PER_PARTITION):
            pipe.xadd(names.events_stream(p), {b"n": f"{p}-{i}".encode()})
    pipe.execute()


def _consumer(redis_client, *, prefetch: bool) -> Recorder:
    return Recorder(redis_client, consumer="t", partitions=PARTITIONS, batch_size=BATCH, block_ms=50, prefetch=prefetch)


def test_the_main_threads_own_read_is_one_batch_over_every_partition(redis_client, backlog):
    consumer = _consumer(redis_client, prefetch=True)
    try:
        # the first poll owns the partitions and reads on this thread (nothing was read ahead)
        first = consumer.poll_once()
        assert first <= BATCH, f"the main thread read {first} entries itself, more than one batch"
        assert {p for p, _n in consumer.handled} == set(range(PARTITIONS)), "one partition's entries only"
        while consumer.poll_once():
            pass
    finally:
        consumer.leases.release_all()
    # the rest came through the read ahead, each entry once
    assert len(consumer.handled) == PARTITIONS * PER_PARTITION
    assert len(set(consumer.handled)) == PARTITIONS * PER_PARTITION


def test_without_a_read_ahead_each_read_takes_a_batch_per_partition(redis_client, backlog):
    consumer = _consumer(redis_client, prefetch=False)
    try:
        assert consumer.poll_once() == PARTITIONS * BATCH
    finally:
        consumer.leases.release_all()
