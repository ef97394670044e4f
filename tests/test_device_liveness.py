"""Devices heard from are online with their last-heard time; a fault sticks until cleared."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ops.pipeline.processor import ReaderEventProcessor
from ops.registry.choices import DeviceState
from ops.registry.models import Device
from streams import envelopes
from tests.factories import publish, tap

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.pipeline]


def _fault(device: str, *, cleared: bool, when: datetime, seq: int) -> envelopes.Fault:
    return envelopes.Fault(
        event_id=envelopes.new_id(),
        device_id=device,
        boot_epoch=1,
        seq=seq,
        occurred_at=when,
        code="motor_jam",
        cleared=cleared,
    )


def _process(redis_client):
    ReaderEventProcessor(redis_client, fanout=None, consumer="t", block_ms=50).run(max_idle_polls=1)


def test_last_heard_keeps_the_latest_time_even_from_a_late_backlog(campus, redis_client):
    now = datetime.now(UTC).replace(microsecond=0)
    publish(redis_client, [tap("G-E-01", campus.cards[0].uid, when=now)])
    _process(redis_client)
    gate = Device.objects.get(code="G-E-01")
    assert gate.state == DeviceState.ONLINE and gate.last_seen_at == now
    publish(redis_client, [tap("G-E-01", campus.cards[0].uid, seq=2, when=now - timedelta(minutes=5))])
    _process(redis_client)
    assert Device.objects.get(code="G-E-01").last_seen_at == now
    assert Device.objects.get(code="D1-01").state == DeviceState.UNKNOWN  # never heard from


def test_a_fault_sticks_until_the_device_clears_it(campus, redis_client):
    now = datetime.now(UTC)
    publish(redis_client, [_fault("V-E-IN", cleared=False, when=now, seq=1)])
    _process(redis_client)
    assert Device.objects.get(code="V-E-IN").state == DeviceState.FAULT
    publish(redis_client, [tap("V-E-IN", campus.cards[0].uid, seq=2, when=now)])
    _process(redis_client)
    assert Device.objects.get(code="V-E-IN").state == DeviceState.FAULT  # a tap does not clear it
    publish(redis_client, [_fault("V-E-IN", cleared=True, when=now, seq=3)])
    _process(redis_client)
    assert Device.objects.get(code="V-E-IN").state == DeviceState.ONLINE
