"""Attacks through the events stream that got through (issue 20, items 6–9), each as it was tried:
a signed heartbeat with a 31-digit credential version, messages dated 2099 and 1970, a valid entry
carrying a 1 MB extra field, and a device key issued again while the processor runs.

Real parts: the test's Redis and database, the processor as production runs it (its ``run`` loop,
in this process), messages signed with the device's key exactly as an agent signs them."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.test import override_settings

from ops.alerts.choices import AlertKind
from ops.alerts.models import Alert
from ops.pipeline.processor import ReaderEventProcessor
from ops.registry import services as registry
from ops.registry.models import AccessEvent, Device
from streams import consumer, envelopes, names, producer, signing
from streams.frames import decode
from tests.factories import tap

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.pipeline]


def _key(code: str = "G-E-01") -> bytes:
    return bytes.fromhex(Device.objects.get(code=code).key_hex)


def _heartbeat(seq: int, *, version: int = 0, when: datetime | None = None) -> envelopes.Heartbeat:
    return envelopes.Heartbeat.model_construct(  # as a hostile agent builds it: no validation
        event_id=uuid.uuid4(),
        device_id="G-E-01",
        boot_epoch=1,
        seq=seq,
        occurred_at=when or datetime.now(UTC),
        credential_version=version,
        buffered=0,
        type="heartbeat",
    )


def _drain(redis_client) -> ReaderEventProcessor:
    processor = ReaderEventProcessor(redis_client, fanout=None, consumer="t", block_ms=50)
    processor.run(max_idle_polls=2)
    return processor


def test_a_signed_heartbeat_with_a_huge_number_is_dead_lettered_and_the_processor_goes_on(campus, redis_client):
    """Item 6: credential_version 10^30 stopped the processor (OverflowError outside the batch's
    error handling). Now the envelope bounds it: dead-lettered, the taps around it stored."""
    key = _key()
    huge = _heartbeat(2, version=10**30)
    raw = huge.model_dump_json().encode()
    partition = names.partition_of("G-E-01", names.EVENT_PARTITIONS)  # the device's, as its agent's
    producer.publish(redis_client, [tap("G-E-01", campus.cards[0].uid, seq=1)], keys={"G-E-01": key})
    producer.publish_raw(redis_client, {names.FIELD: raw, signing.MAC_FIELD: signing.sign(key, raw)}, partition)
    producer.publish(redis_client, [tap("G-E-01", campus.cards[1].uid, seq=3)], keys={"G-E-01": key})
    _drain(redis_client)
    assert AccessEvent.objects.count() == 2
    letters = consumer.dead_letter_list(redis_client)
    assert len(letters) == 1 and "credential_version" in letters[0].reason
    assert Device.objects.get(code="G-E-01").credential_version < 2**63


@pytest.mark.parametrize("field", ["boot_epoch", "seq", "credential_version", "buffered"])
def test_every_number_of_a_message_is_bounded_by_its_column(field):
    limit = envelopes.MAX_BUFFERED if field == "buffered" else envelopes.MAX_BIGINT
    ok = _heartbeat(1).model_dump() | {field: limit}
    envelopes.parse(envelopes.Heartbeat.model_validate(ok).model_dump_json())
    with pytest.raises(envelopes.InvalidEnvelope, match=field):
        envelopes.parse(envelopes.Heartbeat.model_construct(**(ok | {field: limit + 1})).model_dump_json())


def test_the_liveness_flush_failing_never_stops_the_processor(campus, redis_client, monkeypatch):
    """Whatever the once-a-second flush meets, the loop goes on (logged), and taps still land."""
    key = _key()
    processor = ReaderEventProcessor(redis_client, fanout=None, consumer="t", block_ms=50)

    def broken() -> None:
        raise OverflowError("Python int too large to convert to SQLite INTEGER")

    monkeypatch.setattr(processor, "_flush_seen", broken)
    thread = threading.Thread(target=processor.run, daemon=True)
    thread.start()
    try:
        producer.publish(redis_client, [tap("G-E-01", campus.cards[0].uid, seq=1)], keys={"G-E-01": key})
        _wait(lambda: AccessEvent.objects.count() == 1)
        time.sleep(1.2)  # a flush failed in between
        producer.publish(redis_client, [tap("G-E-01", campus.cards[1].uid, seq=2)], keys={"G-E-01": key})
        _wait(lambda: AccessEvent.objects.count() == 2)
        assert thread.is_alive() and processor._seen_failures >= 1
    finally:
        processor.stopping.set()
        thread.join(10)


@pytest.mark.parametrize(
    "when", [datetime(2099, 1, 1, tzinfo=UTC), datetime(1970, 1, 2, tzinfo=UTC)], ids=["2099", "1970"]
)
def test_a_message_dated_beyond_the_clock_skew_is_refused_and_alerted(campus, redis_client, when):
    """Item 7: a heartbeat dated 2099 made the device "alive" for ever (R-DEV-2) and taps dated
    2099/1970 were stored. Now refused, alerted, and last heard is the server's time."""
    key = _key()
    good = tap("G-E-01", campus.cards[0].uid, seq=1)
    skewed_tap = tap("G-E-01", campus.cards[1].uid, seq=2, when=when)
    skewed_beat = _heartbeat(3, when=when)
    producer.publish(redis_client, [good, skewed_tap, skewed_beat], keys={"G-E-01": key})
    before = datetime.now(UTC)
    _drain(redis_client)
    assert list(AccessEvent.objects.values_list("event_id", flat=True)) == [good.event_id]
    alert = Alert.objects.get(kind=AlertKind.CLOCK_SKEW, subject="G-E-01")
    assert alert.count == 2 and alert.device_id == campus.gate.id
    device = Device.objects.get(code="G-E-01")
    assert device.last_seen_at is not None
    assert before - timedelta(seconds=5) <= device.last_seen_at <= datetime.now(UTC)
    # in its sequence all the same: the next message is not a gap
    assert (device.boot_epoch, device.last_seq) == (1, 3)
    assert not Alert.objects.filter(kind=AlertKind.SEQUENCE_GAP).exists()


def test_a_little_ahead_is_accepted_and_counted_as_now(campus, redis_client):
    key = _key()
    ahead = datetime.now(UTC) + timedelta(seconds=60)
    producer.publish(redis_client, [_heartbeat(1, when=ahead)], keys={"G-E-01": key})
    _drain(redis_client)
    heard = Device.objects.get(code="G-E-01").last_seen_at
    assert heard is not None and heard <= datetime.now(UTC)
    assert not Alert.objects.filter(kind=AlertKind.CLOCK_SKEW).exists()


def test_an_entry_with_an_extra_or_oversize_field_is_dead_lettered(campus, redis_client):
    """Item 8: a valid ``e`` plus a 1 MB extra field was stored. Now: unknown fields and an entry
    over the limit are dead-lettered (the good entries around them stored)."""
    key = _key()
    fields = producer.entry(tap("G-E-01", campus.cards[0].uid, seq=1), key)
    with pytest.raises(consumer.InvalidEntry, match="unknown field"):
        decode({k.encode(): v if isinstance(v, bytes) else v.encode() for k, v in (fields | {"x": b"0"}).items()})
    partition = names.partition_of("G-E-01", names.EVENT_PARTITIONS)
    producer.publish_raw(redis_client, fields | {"junk": b"0" * 1_000_000}, partition)
    producer.publish(redis_client, [tap("G-E-01", campus.cards[1].uid, seq=2)], keys={"G-E-01": key})
    _drain(redis_client)
    assert list(AccessEvent.objects.values_list("card_uid", flat=True)) == [campus.cards[1].uid]
    (letter,) = consumer.dead_letter_list(redis_client)
    assert "unknown field" in letter.reason
    # a payload at the limit with its MAC is fine; one byte over any field is not
    big = {b"e": b"{" + b" " * (envelopes.MAX_ENTRY_BYTES - 2) + b"}", b"m": b"0" * 64}
    with pytest.raises(consumer.InvalidEntry) as caught:
        decode(big)
    assert "too large" not in str(caught.value)  # not valid JSON for an envelope, but within size
    with pytest.raises(consumer.InvalidEntry, match="too large"):
        decode(big | {b"m": b"0" * 65})


@override_settings(DEVICE_KEY_OVERLAP_S=2)
def test_a_key_issued_again_takes_effect_in_a_running_processor_with_an_overlap(campus, redis_client):
    """Item 9: after NIC issued a new key the new one was refused and the old one kept working
    until the processor restarted. Now, with the processor running: the new key works within
    seconds; the old one during the documented overlap (here 2 s), refused after it; a key marked
    compromised is refused at once."""
    old = _key()
    processor = ReaderEventProcessor(redis_client, fanout=None, consumer="t", block_ms=50)
    thread = threading.Thread(target=processor.run, daemon=True)
    thread.start()
    try:
        producer.publish(redis_client, [tap("G-E-01", campus.cards[0].uid, seq=1)], keys={"G-E-01": old})
        _wait(lambda: AccessEvent.objects.count() == 1)
        new = bytes.fromhex(registry.issue_device_key(device=Device.objects.get(code="G-E-01"), operator=None))
        time.sleep(1.2)  # the processor's check is once a second
        producer.publish(redis_client, [tap("G-E-01", campus.cards[1].uid, seq=2)], keys={"G-E-01": new})
        producer.publish(redis_client, [tap("G-E-01", campus.cards[2].uid, seq=3)], keys={"G-E-01": old})
        _wait(lambda: AccessEvent.objects.count() == 3)
        time.sleep(2.2)  # the overlap is over
        producer.publish(redis_client, [tap("G-E-01", campus.cards[3].uid, seq=4)], keys={"G-E-01": old})
        _wait(lambda: Alert.objects.filter(kind=AlertKind.BAD_SIGNATURE).exists())
        assert AccessEvent.objects.count() == 3
        # compromised: the key just issued is refused at once, the newest works
        newest = bytes.fromhex(
            registry.issue_device_key(device=Device.objects.get(code="G-E-01"), operator=None, compromised=True)
        )
        time.sleep(1.2)
        producer.publish(redis_client, [tap("G-E-01", campus.cards[4].uid, seq=5)], keys={"G-E-01": new})
        producer.publish(redis_client, [tap("G-E-01", campus.cards[5].uid, seq=6)], keys={"G-E-01": newest})
        _wait(lambda: AccessEvent.objects.count() == 4)
        time.sleep(0.5)
        assert set(AccessEvent.objects.values_list("card_uid", flat=True)) == {
            c.uid for c in (campus.cards[0], campus.cards[1], campus.cards[2], campus.cards[5])
        }
        assert Alert.objects.get(kind=AlertKind.BAD_SIGNATURE).count == 2
    finally:
        processor.stopping.set()
        thread.join(10)


def _wait(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
