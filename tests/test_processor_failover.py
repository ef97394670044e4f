"""Three processors share the partitioned events stream; one is SIGKILLed under load (issue 14,
Build 4; issue 12, AC2 in short): every tap is stored exactly once, no device sees a false
replay or sequence gap, and the dead processor's partitions are served again within its lease."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time

import pytest
from django.conf import settings

from ops.alerts.choices import AlertKind
from ops.alerts.models import Alert
from ops.registry.models import AccessEvent
from streams import consumer, names
from streams.cards import DeviceKind
from tests.conftest import campuscard_cmd
from tests.factories import make_device, publish, tap
from tests.private_servers import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.pipeline]

DEVICES = 60
RATE = 300.0  # taps/s over all devices
# The suite's short run; issue 12's full one (60 s, killed at 20 s, the default 8 s lease) is
# FAILOVER_SECONDS=60 FAILOVER_KILL_AT=20 FAILOVER_LEASE_MS=8000 (figures in docs/reliability.md)
SECONDS = float(os.environ.get("FAILOVER_SECONDS", "16"))
KILL_AT = float(os.environ.get("FAILOVER_KILL_AT", "5"))
LEASE_MS = int(os.environ.get("FAILOVER_LEASE_MS", "4000"))


def test_a_processor_killed_under_load_loses_nothing_and_its_partitions_move(campus, redis_client, subprocess_env):
    codes = [f"G-F-{i:02d}" for i in range(DEVICES)]
    for code in codes:
        make_device(code, f"故障转移测试闸{code}", DeviceKind.PEDESTRIAN_GATE, "东门", campus.dept)
    env = dict(subprocess_env, PROCESSOR_LEASE_MS=str(LEASE_MS))
    processors = [
        subprocess.Popen(campuscard_cmd("process", "--name", f"p{i}", "--no-fanout"), env=env) for i in range(3)
    ]

    def owners() -> list[bytes | None]:
        return [redis_client.get(names.lease_key(p)) for p in range(settings.EVENT_PARTITIONS)]

    made = 0
    stop = threading.Event()

    def tapping() -> None:
        nonlocal made
        seq = dict.fromkeys(codes, 0)
        tick, n = 0.05, 0
        while not stop.is_set():
            batch = []
            for _ in range(int(RATE * tick)):
                code = codes[n % DEVICES]
                seq[code] += 1
                batch.append(tap(code, campus.cards[n % len(campus.cards)].uid, seq=seq[code]))
                n += 1
            publish(redis_client, batch)
            made += len(batch)
            time.sleep(tick)

    try:
        wait_until(lambda: set(owners()) == {b"p0", b"p1", b"p2"}, 30, "three processors sharing the partitions")
        feeder = threading.Thread(target=tapping)
        feeder.start()
        time.sleep(KILL_AT)
        orphaned = {p for p, owner in enumerate(owners()) if owner == b"p0"}
        assert orphaned
        processors[0].send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        processors[0].wait()
        wait_until(
            lambda: all(owners()[p] in (b"p1", b"p2") for p in orphaned), 15, "the dead one's partitions taken over"
        )
        takeover_s = time.monotonic() - killed_at
        time.sleep(max(0.0, SECONDS - KILL_AT - takeover_s))
        stop.set()
        feeder.join()
        wait_until(lambda: AccessEvent.objects.filter(device__code__in=codes).count() >= made, 60, f"all {made} taps")
        wait_until(lambda: consumer.pending(redis_client) == 0, 30, "every entry acknowledged")
    finally:
        stop.set()
        for proc in processors[1:]:
            proc.send_signal(signal.SIGTERM)
        for proc in processors:
            proc.wait(20)

    rows = AccessEvent.objects.filter(device__code__in=codes)
    print(f"failover: {made} taps sent, {rows.count()} stored, partitions served again after {takeover_s:.1f} s")
    assert rows.count() == made  # exactly once
    assert rows.values("event_id").distinct().count() == made
    # the lease, plus a renewal (issue 12: within 10 s with the default 8 s lease)
    assert takeover_s <= LEASE_MS / 1000 + 1.5, f"partitions served again after {takeover_s:.1f} s"
    assert not Alert.objects.filter(
        kind__in=[AlertKind.REPLAY, AlertKind.SEQUENCE_GAP, AlertKind.DUPLICATE_DEVICE]
    ).exists()
