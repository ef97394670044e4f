"""Device registry services (R-DEV-1: NIC registers every reader; R-DEV-4: an owning
department answers for it)."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from ops.audit import services as audit
from ops.registry.models import Device
from streams import signing


@transaction.atomic
def issue_device_key(*, device: Device, operator: Any, basis: str = "") -> str:
    """Give a registered device a new signing key and return it — the only time it is shown.
    Messages signed with the old key are rejected from now on (a stolen key is revoked by
    issuing a new one). The key itself is never written to the audit trail."""
    key = signing.new_key().hex()
    rotated = bool(device.key_hex)
    Device.objects.filter(pk=device.pk).update(key_hex=key)
    audit.record(
        actor=operator,
        action="device.key_rotated" if rotated else "device.key_issued",
        object_type="device",
        object_id=device.code,
        basis=basis,
    )
    return key
