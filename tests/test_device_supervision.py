"""Acceptance (issue 4, point 4): forged, replayed, unregistered and silent devices each produce
their alert and no tap row (R-DEV-1, R-DEV-2, R-SEC-5); a device id streaming from two agents
at once, sequence gaps and tamper faults are alerts too."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ops.alerts.choices import AlertKind
from ops.alerts.models import Alert
from ops.pipeline.processor import ReaderEventProcessor
from ops.pipeline.supervision import mark_silent_devices
from ops.registry.choices import DeviceState
from ops.registry.models import AccessEvent, Device
from streams import envelopes, names, producer, signing
from tests.factories import device_key, publish, tap

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.pipeline]


def _process(redis_client):
    ReaderEventProcessor(redis_client, fanout=None, consumer="t", block_ms=50).run(max_idle_polls=1)


def _alerts(kind):
    return list(Alert.objects.filter(kind=kind))


def test_a_forged_message_is_an_alert_and_no_tap(campus, redis_client):
    forged = tap("G-E-01", campus.cards[0].uid)
    producer.publish(redis_client, [forged], keys={"G-E-01": b"not the device key" * 2})
    unsigned = tap("G-E-01", campus.cards[1].uid, seq=2)
    producer.publish_raw(redis_client, {names.FIELD: envelopes.dump(unsigned)})
    _process(redis_client)
    assert AccessEvent.objects.count() == 0
    [alert] = _alerts(AlertKind.BAD_SIGNATURE)
    assert alert.subject == "G-E-01" and alert.count == 2 and alert.severity == "critical"


def test_a_replayed_message_is_an_alert_and_no_second_tap(campus, redis_client):
    first = tap("G-E-01", campus.cards[0].uid, seq=1)
    publish(redis_client, [first, tap("G-E-01", campus.cards[1].uid, seq=2)])
    _process(redis_client)
    # an attacker re-sends a captured message with a new id but the old (boot_epoch, seq)
    replay = first.model_copy(update={"event_id": envelopes.new_id()})
    publish(redis_client, [replay])
    _process(redis_client)
    assert AccessEvent.objects.count() == 2
    [alert] = _alerts(AlertKind.REPLAY)
    assert alert.detail["seq"] == 1 and alert.detail["current_seq"] == 2


def test_a_whole_batch_resent_by_an_agent_is_a_duplicate_not_a_replay(campus, redis_client):
    events = [tap("G-E-01", campus.cards[i].uid, seq=i + 1) for i in range(3)]
    publish(redis_client, events)
    _process(redis_client)
    publish(redis_client, events)  # same bytes, same MACs (the reply to XADD was lost)
    _process(redis_client)
    assert AccessEvent.objects.count() == 3
    assert not _alerts(AlertKind.REPLAY)
    assert int(redis_client.hget(names.COUNTERS, "duplicate")) == 3


def test_an_unregistered_device_is_an_alert_and_no_tap(campus, redis_client):
    rogue = tap("ROGUE-99", campus.cards[0].uid)
    producer.publish(redis_client, [rogue], keys={"ROGUE-99": signing.new_key()})
    _process(redis_client)
    assert AccessEvent.objects.count() == 0
    [alert] = _alerts(AlertKind.UNKNOWN_DEVICE)
    assert alert.subject == "ROGUE-99"


def test_a_silent_device_raises_upload_stopped_after_three_intervals(campus, redis_client):
    now = datetime.now(UTC)
    Device.objects.filter(code="G-E-01").update(
        last_seen_at=now - timedelta(seconds=29), heartbeat_s=10, state=DeviceState.ONLINE
    )
    Device.objects.filter(code="V-E-IN").update(
        last_seen_at=now - timedelta(seconds=31), heartbeat_s=10, state=DeviceState.ONLINE
    )
    assert mark_silent_devices(now=now) == 1
    [alert] = _alerts(AlertKind.UPLOAD_STOPPED)
    assert alert.subject == "V-E-IN"
    assert Device.objects.get(code="V-E-IN").state == DeviceState.SILENT
    assert mark_silent_devices(now=now) == 0  # once, until it is heard from again
    beat = envelopes.Heartbeat(
        event_id=envelopes.new_id(),
        device_id="V-E-IN",
        boot_epoch=5,
        seq=1,
        occurred_at=datetime.now(UTC),
        credential_version=7,
        buffered=3,
    )
    publish(redis_client, [beat])
    _process(redis_client)
    device = Device.objects.get(code="V-E-IN")
    assert device.state == DeviceState.ONLINE
    assert (device.credential_version, device.buffered) == (7, 3)


def test_one_device_id_from_two_agents_is_an_alert(campus, redis_client):
    def beat(epoch, seq):
        return envelopes.Heartbeat(
            event_id=envelopes.new_id(), device_id="G-E-01", boot_epoch=epoch, seq=seq, occurred_at=datetime.now(UTC)
        )

    publish(redis_client, [beat(100, 1), beat(100, 2), beat(200, 1), beat(100, 3), beat(200, 2)])
    _process(redis_client)
    [alert] = _alerts(AlertKind.DUPLICATE_DEVICE)
    assert alert.detail["boot_epoch"] == 100 and alert.detail["current_epoch"] == 200


def test_a_sequence_gap_and_a_tamper_fault_are_alerts(campus, redis_client):
    fault = envelopes.Fault(
        event_id=envelopes.new_id(),
        device_id="D1-01",
        boot_epoch=1,
        seq=6,
        occurred_at=datetime.now(UTC),
        code="tamper",
        detail="cover opened",
    )
    publish(redis_client, [tap("D1-01", campus.cards[0].uid, seq=1), fault])
    _process(redis_client)
    [gap] = _alerts(AlertKind.SEQUENCE_GAP)
    assert gap.detail["missing"] == 4
    [tamper] = _alerts(AlertKind.TAMPER)
    assert tamper.detail["detail"] == "cover opened"
    assert device_key("D1-01")  # the door's key signed both


def test_a_device_that_has_not_received_a_revocation_in_time_is_an_alert(campus):
    from ops.accounts.roles import Role
    from ops.accounts.services import create_or_update_operator
    from ops.pipeline.supervision import mark_lagging_devices
    from ops.registry.lifecycle import services
    from ops.registry.lifecycle.models import OutboxMessage

    nic = create_or_update_operator(username="nic", password="pw-nic-123", role=Role.NIC)
    services.report_loss(card=campus.cards[0], operator=nic, basis="挂失")
    now = datetime.now(UTC)
    OutboxMessage.objects.filter(topic="credential").update(version=41, published_at=now - timedelta(minutes=1))
    Device.objects.filter(code="G-E-01").update(credential_version=41, last_seen_at=now, state=DeviceState.ONLINE)
    Device.objects.filter(code="V-E-IN").update(credential_version=40, last_seen_at=now, state=DeviceState.ONLINE)
    assert mark_lagging_devices(now=now) == 1
    [alert] = _alerts(AlertKind.CREDENTIAL_LAG)
    assert alert.subject == "V-E-IN" and alert.detail == {"holds": 40, "missing_up_to": 41}
