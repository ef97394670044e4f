"""Small builders for test data (a real campus, just smaller)."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.utils import timezone

from ops.registry.choices import HolderKind
from ops.registry.models import Building, Card, Cardholder, Department, Device
from streams import envelopes, producer
from streams.cards import CardStatus, CardType, DeviceKind
from streams.reasons import Decision, Direction, Reason


@dataclass
class Campus:
    dept: Department
    dorm: Building
    gate: Device
    vehicle_gate: Device
    dorm_door: Device
    cards: list[Card]


def device_key(code: str) -> bytes:
    """Each test device's HMAC key (R-DEV-1: registered devices sign their messages)."""
    return hashlib.sha256(f"test-key:{code}".encode()).digest()


def publish(client, events, *, agent: str | None = None):
    """Sign each event with its device's key and append it to the stream, as a reader does: to
    its device's partition, or with ``agent`` all to that agent's (one controller, several doors:
    the processor then sees them in this order)."""
    if agent is None:
        return producer.publish(client, events, keys=_Keys())
    return producer.publish(client, events, keys=_Keys(), partition_key=lambda _event: agent)


class _Keys(dict):
    def __missing__(self, code: str) -> bytes:
        return device_key(code)


def make_device(
    code: str, name: str, kind: DeviceKind, location: str, owner: Department, *, building: Building | None = None
) -> Device:
    """A registered device holding its test key (:func:`device_key`)."""
    return Device.objects.create(
        code=code,
        name=name,
        kind=kind,
        location=location,
        building=building,
        owner=owner,
        key_hex=device_key(code).hex(),
    )


def make_campus(n_cards: int = 20) -> Campus:
    dept = Department.objects.create(code="SEC", name="保卫处")
    dorm = Building.objects.create(code="D1", name="1号学生公寓", is_dorm=True)
    gate = make_device("G-E-01", "东门人行1号闸", DeviceKind.PEDESTRIAN_GATE, "东门", dept)
    vgate = make_device("V-E-IN", "东门车辆入口", DeviceKind.VEHICLE_GATE, "东门", dept)
    door = make_device("D1-01", "1号学生公寓1号门", DeviceKind.DORM_DOOR, "1号学生公寓", dept, building=dorm)
    start = timezone.now() - timedelta(days=30)
    cards = []
    for i in range(n_cards):
        holder = Cardholder.objects.create(
            kind=HolderKind.STUDENT, number=f"2025CS{i:05d}", name=f"张三{i}", department=dept, dorm_building=dorm
        )
        cards.append(
            Card.objects.create(
                uid=f"A0{i:06X}", holder=holder, card_type=CardType.STUDENT, status=CardStatus.ACTIVE, valid_from=start
            )
        )
    return Campus(dept, dorm, gate, vgate, door, cards)


def tap(
    device: str = "G-E-01",
    uid: str = "A0000000",
    *,
    seq: int = 1,
    decision: Decision = Decision.ALLOW,
    reason: Reason = Reason.OK,
    when: datetime | None = None,
) -> envelopes.Tap:
    return envelopes.Tap(
        event_id=uuid.uuid4(),
        device_id=device,
        boot_epoch=1,
        seq=seq,
        occurred_at=when or datetime.now(UTC),
        card_uid=uid,
        direction=Direction.IN,
        decision=decision,
        reason=reason,
    )
