"""R-DEV-1: NIC registers a device and gets its key once; messages signed with an old key are
rejected after a rotation; the key never enters the audit trail."""

from __future__ import annotations

import pytest

from ops.accounts.roles import Role
from ops.accounts.services import create_or_update_operator
from ops.alerts.choices import AlertKind
from ops.alerts.models import Alert
from ops.audit.models import AuditRecord
from ops.pipeline.processor import ReaderEventProcessor
from ops.registry.models import AccessEvent, Device
from streams import producer
from tests.factories import tap

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.pipeline]


def test_nic_issues_a_key_once_and_the_old_one_stops_working(campus, client, redis_client):
    """A compromised key (stolen reader): the old one is refused at once, the new one works."""
    create_or_update_operator(username="nic", password="pw-nic-123", role=Role.NIC, is_superuser=True)
    client.post("/accounts/login/", {"username": "nic", "password": "pw-nic-123"})
    old_key = bytes.fromhex(Device.objects.get(code="G-E-01").key_hex)
    response = client.post(
        "/admin/campus/device/", {"action": "issue_keys_compromised", "_selected_action": [campus.gate.pk]}
    )
    html = response.content.decode()
    new_key = Device.objects.get(code="G-E-01").key_hex
    assert new_key in html and bytes.fromhex(new_key) != old_key
    assert new_key not in str(list(AuditRecord.objects.values_list("data", "basis")))
    assert AuditRecord.objects.filter(action="device.key_rotated", object_id="G-E-01").exists()
    assert new_key not in client.get(f"/admin/campus/device/{campus.gate.pk}/change/").content.decode()

    producer.publish(redis_client, [tap("G-E-01", campus.cards[0].uid, seq=1)], keys={"G-E-01": old_key})
    producer.publish(redis_client, [tap("G-E-01", campus.cards[1].uid, seq=2)], keys={"G-E-01": bytes.fromhex(new_key)})
    ReaderEventProcessor(redis_client, fanout=None, consumer="t", block_ms=50).run(max_idle_polls=1)
    assert list(AccessEvent.objects.values_list("card_uid", flat=True)) == [campus.cards[1].uid]
    assert Alert.objects.filter(kind=AlertKind.BAD_SIGNATURE, subject="G-E-01").exists()
