"""Under a high load the stream consumer reads in bigger batches (issue 14): a read that brought at
least ``linger_from`` new entries, and not a full batch, makes the next read wait until
``linger_s`` after it began; a light load, or a full batch (a backlog), is read again at once.
Every batch costs the processor the same fixed work, so at 4,500 taps/s batches of ~130 cost it
twice the CPU per event of full ones (docs/benchmarks.md)."""

from __future__ import annotations

import time
from collections.abc import Sequence

import pytest

from streams import names
from streams.consumer import Entry, StreamConsumer

pytestmark = [pytest.mark.pipeline]

LINGER_S = 0.4


class Recorder(StreamConsumer[dict[bytes, bytes]]):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.handled: list[int] = []

    def decode(self, fields: dict[bytes, bytes]) -> dict[bytes, bytes]:
        return fields

    def handle(self, batch: Sequence[Entry[dict[bytes, bytes]]]) -> None:
        self.handled.append(len(batch))


def _publish(client, count: int) -> None:
    pipe = client.pipeline(transaction=False)
    for i in range(count):
        pipe.xadd(names.events_stream(0), {b"n": str(i).encode()})
    pipe.execute()


def _timed_poll(consumer: Recorder) -> tuple[int, float]:
    started = time.monotonic()
    got = consumer.poll_once()
    return got, time.monotonic() - started


@pytest.fixture
def consumer(redis_client):
    c = Recorder(
        redis_client,
        consumer="t",
        partitions=1,
        batch_size=100,
        block_ms=50,
        prefetch=False,
        linger_s=LINGER_S,
        linger_from=10,
    )
    c.poll_once()  # owns the partition, its group made
    yield c
    c.leases.release_all()


def test_after_a_busy_read_the_next_read_waits_for_more(consumer, redis_client):
    _publish(redis_client, 20)  # ≥ linger_from, < a full batch: a high load
    assert _timed_poll(consumer)[0] == 20
    _publish(redis_client, 3)
    got, took = _timed_poll(consumer)
    assert got == 3
    assert took >= LINGER_S * 0.8, f"read again after {took:.3f} s: no linger"


def test_a_light_load_is_read_at_once(consumer, redis_client):
    _publish(redis_client, 3)  # < linger_from: a tap must reach the desks within milliseconds
    assert _timed_poll(consumer)[0] == 3
    _publish(redis_client, 3)
    got, took = _timed_poll(consumer)
    assert got == 3
    assert took < LINGER_S / 2, f"a light load waited {took:.3f} s"


def test_a_full_batch_is_followed_at_once(consumer, redis_client):
    _publish(redis_client, 150)  # a backlog: the first read is full, the rest follows flat out
    assert _timed_poll(consumer)[0] == 100
    got, took = _timed_poll(consumer)
    assert got == 50
    assert took < LINGER_S / 2, f"a backlog's next read waited {took:.3f} s"
