"""Fan-out is one group_send per group per batch, not one per event (DESIGN.md: per event caps
near 400 events/s), and only after the commit."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from ops import push
from ops.pipeline.processor import ReaderEventProcessor
from ops.push import Fanout
from ops.registry.models import AccessEvent
from streams import names
from tests.factories import publish, tap
from tests.live import Feed

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.pipeline]


def test_a_batch_of_300_taps_is_one_push_per_group(campus, redis_client):
    gates = Feed(names.GROUP_GATES)
    dorm = Feed(names.dorm_group("D1"))
    uids = [c.uid for c in campus.cards]
    events = [tap("G-E-01", uids[i % len(uids)], seq=i) for i in range(250)]
    events += [tap("D1-01", uids[i % len(uids)], seq=1000 + i) for i in range(50)]
    publish(redis_client, events)

    fanout = Fanout(redis_client)
    processor = ReaderEventProcessor(redis_client, fanout=fanout, consumer="t", batch_size=500, block_ms=50)
    processor.run(max_idle_polls=1)
    fanout.close()

    assert AccessEvent.objects.count() == 300
    [gate_push] = gates.take(1)
    [dorm_push] = dorm.take(1)
    assert len(gate_push["rows"]) == 250 and len(dorm_push["rows"]) == 50
    # one push per tap group for the whole batch (device/alert pushes go to their own groups)
    assert fanout.sent_to[names.GROUP_GATES] == 1
    assert fanout.sent_to[names.dorm_group("D1")] == 1
    with pytest.raises(TimeoutError):
        gates.take(1, timeout=0.5)


def test_nothing_is_pushed_when_the_transaction_fails(campus, redis_client):
    gates = Feed(names.GROUP_GATES)
    publish(redis_client, [tap("G-E-01", campus.cards[0].uid)])
    fanout = Fanout(redis_client)

    class Failing(ReaderEventProcessor):
        def _record_faults(self, faults):
            raise RuntimeError("database went away")

    Failing(redis_client, fanout=fanout, consumer="t", block_ms=50, max_failures=1).run(max_idle_polls=1)
    fanout.close()
    assert AccessEvent.objects.count() == 0
    with pytest.raises(TimeoutError):
        gates.take(1, timeout=0.5)


def test_a_layer_that_cannot_keep_up_bounds_the_senders_queue(redis_client, monkeypatch):
    """A Redis that stalls must not make the processor grow without bound (issue 14, Build 6):
    past MAX_QUEUED waiting messages the oldest is dropped and counted; pages resync on the gap."""
    monkeypatch.setattr(push, "MAX_QUEUED", 5)
    fanout = Fanout(redis_client)

    entered = threading.Event()

    class StalledLayer:
        async def group_send(self, group, message):
            entered.set()
            await asyncio.Event().wait()  # never returns

    fanout.layer = StalledLayer()  # type: ignore[assignment]  # a stand-in with the one method the sender calls
    for n in range(20):
        fanout.send(names.GROUP_GATES, {"type": push.MESSAGE_TYPE, "n": n})
    assert entered.wait(5)  # one message is stuck in the layer
    deadline = time.monotonic() + 5
    while fanout.queue.qsize() + fanout.dropped < 19 and time.monotonic() < deadline:
        time.sleep(0.02)
    # the newest (at most five) wait, the oldest were dropped; whether the stuck one was taken
    # before or after the queue filled decides whether four or five wait
    assert fanout.queue.qsize() in (4, 5)
    assert fanout.queue.qsize() + fanout.dropped == 19
    fanout.close(timeout=0.5)
