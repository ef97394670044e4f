"""SIGKILL the processor in the middle of 10,000 events; after a restart exactly 10,000 rows."""

from __future__ import annotations

import signal
import subprocess
import threading
import time

import pytest

from ops.registry.models import AccessEvent
from streams import consumer
from tests.conftest import campuscard_cmd
from tests.factories import publish, tap
from tests.private_servers import wait_until

TOTAL = 10_000


@pytest.mark.slow
@pytest.mark.pipeline
@pytest.mark.parametrize("restart_name", ["same", "other"])
def test_killing_the_processor_mid_stream_loses_and_doubles_nothing(campus, redis_client, subprocess_env, restart_name):
    uids = [c.uid for c in campus.cards]
    events = [tap(uid=uids[i % len(uids)], seq=i + 1) for i in range(TOTAL)]

    def feed():  # a stream still flowing while the processor dies
        for start in range(0, TOTAL, 250):
            publish(redis_client, events[start : start + 250])
            time.sleep(0.02)

    feeder = threading.Thread(target=feed)
    first = subprocess.Popen(
        campuscard_cmd("process", "--name", "p1", "--batch", "200", "--no-fanout"), env=subprocess_env
    )
    try:
        feeder.start()
        wait_until(lambda: AccessEvent.objects.count() >= 2_000, 60, "the first rows", step=0.05)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
    killed_at = AccessEvent.objects.count()
    assert 0 < killed_at < TOTAL, "the kill must land mid-stream"
    feeder.join()

    name = "p1" if restart_name == "same" else "p2"  # p2 must XAUTOCLAIM what p1 left
    second = subprocess.Popen(
        campuscard_cmd("process", "--name", name, "--batch", "200", "--claim-idle-ms", "500", "--no-fanout"),
        env=subprocess_env,
    )
    try:
        wait_until(
            lambda: AccessEvent.objects.count() >= TOTAL and consumer.pending(redis_client) == 0,
            90,
            "every event processed and acknowledged",
            step=0.05,
        )
        time.sleep(1.0)  # anything redelivered late would show as an extra row now
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(15) == 0  # SIGTERM is a clean stop

    assert AccessEvent.objects.count() == TOTAL
    assert set(AccessEvent.objects.values_list("event_id", flat=True)) == {e.event_id for e in events}
