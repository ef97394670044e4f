"""Device registry services (R-DEV-1: NIC registers every reader; R-DEV-4: an owning
department answers for it). Every change that touches a reader agent also brings its Redis ACL
user up to date after the commit (issue 12, Build 6: :mod:`ops.registry.device_acl`)."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import redis
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from ops import redis_client
from ops.audit import services as audit
from ops.registry import device_acl
from ops.registry.choices import DeviceApproval
from ops.registry.models import Device
from streams import names, signing

log = logging.getLogger(__name__)


class DeviceNotApproved(ValueError):
    """R-DEV-1 (issue 18, Build 2): a device NIC has not approved (its install pending, or it was
    removed) is given no key: it cannot sign, and is not trusted."""


@transaction.atomic
def issue_device_key(*, device: Device, operator: Any, basis: str = "", compromised: bool = False) -> str:
    """Give a registered device a new signing key and return it — the only time it is shown.
    Processors take it up within a second (issue 20). A key issued again: the old one is still
    accepted for ``DEVICE_KEY_OVERLAP_S`` (what the agent signed and buffered before it was given
    the new key is stored), unless it was ``compromised`` (stolen): then it is refused at once.
    The keys themselves are never written to the audit trail. A device whose install NIC has not
    approved, or that was removed, gets none (:class:`DeviceNotApproved`)."""
    approval = Device.objects.filter(pk=device.pk).values_list("approval", flat=True).first()
    if approval != DeviceApproval.APPROVED:
        raise DeviceNotApproved(
            _("设备 %(code)s 尚未经网信中心批准安装（或已拆除），不能生成密钥") % {"code": device.code}
        )
    key = signing.new_key().hex()
    rotated = bool(device.key_hex)
    overlap = 0 if compromised or not rotated else settings.DEVICE_KEY_OVERLAP_S
    Device.objects.filter(pk=device.pk).update(
        key_hex=key,
        previous_key_hex=device.key_hex if overlap else "",
        previous_key_until=timezone.now() + timedelta(seconds=overlap) if overlap else None,
    )
    audit.record(
        actor=operator,
        action="device.key_rotated" if rotated else "device.key_issued",
        object_type="device",
        object_id=device.code,
        basis=basis,
        data={"old_key_accepted_s": overlap, "compromised": compromised} if rotated else None,
    )
    # the agent's Redis password derives from its lead door's key: its user changes with it,
    # and connections made with the old one are closed
    device_acl.changed([device_acl.agent_of(device)], actor=operator, basis=basis, disconnect=True)
    keys_changed()
    return key


@transaction.atomic
def retire_device(*, device: Device, operator: Any, basis: str) -> None:
    """Withdraw a device's key (issue 12, Build 6): its messages are refused from now on, and it
    loses its place in Redis — its agent's user if it led one (and that user's connections), its
    acknowledgement key otherwise. Its history stays; a new key brings it back (R-DEV-1)."""
    Device.objects.filter(pk=device.pk).update(key_hex="", previous_key_hex="", previous_key_until=None)
    audit.record(actor=operator, action="device.retired", object_type="device", object_id=device.code, basis=basis)
    device_acl.changed([device_acl.agent_of(device)], actor=operator, basis=basis, disconnect=True)
    keys_changed()


def keys_changed() -> None:
    """After the commit, tell the processors a device key changed (they reload within a second).
    A Redis away then is logged: the processors also reload every ``KEYS_RELOAD_S`` regardless."""

    def bump() -> None:
        try:
            redis_client.client().incr(names.DEVICE_KEYS_VERSION)
        except (redis.RedisError, OSError) as exc:
            log.error("processors not told of a device key change (%s): they reload within a minute", exc)

    transaction.on_commit(bump)


@transaction.atomic
def assign_agent(*, device: Device, agent: str, operator: Any, basis: str) -> None:
    """Record which reader agent serves the device (the code of the agent's lead door; "" : the
    device is its own agent), audited; both agents' Redis users follow (issue 12, Build 6)."""
    before = device_acl.agent_of(device)
    Device.objects.filter(pk=device.pk).update(agent=agent)
    audit.record(
        actor=operator,
        action="device.agent_assigned",
        object_type="device",
        object_id=device.code,
        basis=basis,
        data={"from": before, "to": agent or device.code},
    )
    device.agent = agent
    device_acl.changed([before, device_acl.agent_of(device)], actor=operator, basis=basis)


def device_saved(*, device: Device, agent_before: str | None, operator: Any, basis: str = "admin") -> None:
    """A device registered or edited (the admin): its agent's user, and the previous agent's if
    it moved (issue 12, Build 6)."""
    device_acl.changed([agent_before or "", device_acl.agent_of(device)], actor=operator, basis=basis)


def device_removed(*, code: str, agent: str, operator: Any, basis: str = "admin") -> None:
    """A device deleted from the registry: its agent's user loses it (or goes, if it led one)."""
    device_acl.changed([agent or code], actor=operator, basis=basis, disconnect=True)
