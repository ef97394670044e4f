"""The demo campus is big enough to look real, and seeding is idempotent."""

from __future__ import annotations

import pytest

from ops.accounts.models import Operator
from ops.demo.operators import ensure_demo_operators
from ops.demo.seed import seed_demo_campus
from ops.registry import citizen_id
from ops.registry.models import Building, Card, Cardholder, Device
from streams.cards import DeviceKind

pytestmark = pytest.mark.django_db


def test_the_demo_campus_has_the_promised_size_and_shape():
    report = seed_demo_campus()
    assert report.created and report.holders >= 2000 and report.devices >= 60
    assert Building.objects.filter(is_dorm=True).count() == 6
    assert Device.objects.filter(kind=DeviceKind.LIBRARY_READER).exists()
    assert Device.objects.filter(kind=DeviceKind.VEHICLE_GATE).exists()
    assert Device.objects.filter(kind=DeviceKind.DORM_DOOR).values("building").distinct().count() == 6
    assert Card.objects.count() == Cardholder.objects.count()
    assert Card.objects.filter(status="lost").exists() and Card.objects.filter(blacklisted=True).exists()
    assert all(citizen_id.is_valid(c) for c in Cardholder.objects.values_list("citizen_id", flat=True)[:500])
    again = seed_demo_campus()
    assert not again.created and again.holders == report.holders


def test_one_demo_operator_per_role_named_after_it():
    seed_demo_campus(holders=50)
    made = dict(ensure_demo_operators(password="pw-demo-123"))
    assert {"nic", "security", "dorm1", "dorm6", "hr", "finance", "leader"} <= set(made)
    dorm1 = Operator.objects.get(user__username="dorm1")
    assert list(dorm1.buildings.values_list("code", flat=True)) == ["D1"]
