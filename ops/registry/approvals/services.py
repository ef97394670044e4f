"""Device approvals (issue 18, Build 2): the one place their rules live — every path (the
requests page, the admin's device registration, tests) comes through here.

- R-DEV-1: nothing is installed, moved or removed without NIC's approval. A request is filed by
  the device's owning department (an operator of that department) or by NIC, and decided by a
  NIC operator — never the one who filed it (four eyes: a NIC operator cannot approve or reject
  their own request).
- An install creates the device *pending*: it is given no key (``issue_device_key`` refuses) and
  the processor does not take its messages as a registered device's until approved.
- A move changes the device's building, location, site and approved address only on approval,
  and the device's "moved without approval" alert clears with its next heartbeat from there.
- A removal withdraws the device's key on approval (``retire_device``); its history stays.
- A rejection changes nothing on the device.

Every filing and decision is audited; each is one transaction.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from ops.accounts.permissions import role_of
from ops.accounts.roles import Role
from ops.audit import services as audit
from ops.registry import services as registry
from ops.registry.approvals.choices import RequestKind, RequestStatus
from ops.registry.approvals.models import DeviceRequest
from ops.registry.choices import DeviceApproval
from ops.registry.models import Building, Department, Device
from streams.cards import DeviceKind

MAX_REASON = 200


class ApprovalError(Exception):
    """A request the rules refuse; the message is for the operator, in their language. Nothing
    was changed."""


def department_of(user: Any) -> Department | None:
    operator = getattr(user, "operator", None)
    return operator.department if operator is not None else None


def may_request(user: Any) -> bool:
    """Who may open the requests page: NIC, and an operator of a department (for its devices)."""
    role = role_of(user)
    return role == Role.NIC or (role is not None and department_of(user) is not None)


def may_decide(user: Any) -> bool:
    return role_of(user) == Role.NIC


def may_request_for(user: Any, owner: Department) -> bool:
    """R-DEV-4: a department answers for its own devices; NIC for every one."""
    role = role_of(user)
    if role == Role.NIC:
        return True
    dept = department_of(user)
    return role is not None and dept is not None and dept.pk == owner.pk


def _reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ApprovalError(_("请填写申请理由"))
    if len(reason) > MAX_REASON:
        raise ApprovalError(_("申请理由不能超过 %(n)d 个字") % {"n": MAX_REASON})
    return reason


def _address(address: str | None) -> str | None:
    address = (address or "").strip()
    if not address:
        return None
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        raise ApprovalError(_("网络地址 %(address)s 不是有效的 IP 地址") % {"address": address}) from None


def _place(kind: str, building: Building | None, location: str, site: str) -> tuple[str, str]:
    location, site = (location or "").strip(), (site or "").strip()
    if not location:
        raise ApprovalError(_("请填写设备位置"))
    if len(location) > 100 or len(site) > 40:
        raise ApprovalError(_("位置不能超过 100 个字，地点分组不能超过 40 个字"))
    if kind == DeviceKind.DORM_DOOR and building is None:
        raise ApprovalError(_("宿舍门禁必须指定楼宇"))
    return location, site


def _where(device: Device) -> dict[str, Any]:
    return {
        "building": device.building.code if device.building_id and device.building else "",
        "location": device.location,
        "site": device.site,
        "address": device.approved_address or "",
    }


def _open(request: DeviceRequest) -> DeviceRequest:
    try:
        with transaction.atomic():
            request.save()
    except IntegrityError:
        raise ApprovalError(
            _("设备 %(code)s 已有一份待审批的申请，请等待网信中心审批") % {"code": request.device.code}
        ) from None
    return request


@transaction.atomic
def file_install(
    *,
    by: Any,
    code: str,
    name: str,
    kind: str,
    owner: Department,
    location: str,
    reason: str,
    building: Building | None = None,
    site: str = "",
    address: str | None = None,
) -> DeviceRequest:
    """Ask NIC to approve a new device: it is registered pending (no key, not trusted)."""
    if not may_request_for(by, owner):
        raise ApprovalError(_("只能为本部门的设备提出申请"))
    reason = _reason(reason)
    code, name = (code or "").strip(), (name or "").strip()
    if not code or not name:
        raise ApprovalError(_("请填写设备编号和名称"))
    if kind not in {k.value for k in DeviceKind}:
        raise ApprovalError(_("设备类型无效"))
    location, site = _place(kind, building, location, site)
    approved_address = _address(address)
    if Device.objects.filter(code=code).exists():
        raise ApprovalError(_("设备编号 %(code)s 已经登记") % {"code": code})
    device = Device(
        code=code,
        name=name,
        kind=kind,
        location=location,
        building=building,
        owner=owner,
        site=site,
        approved_address=approved_address,
        approval=DeviceApproval.PENDING,
    )
    try:
        device.full_clean()
    except Exception as exc:  # a field the model refuses (its own messages are Chinese)
        raise ApprovalError("; ".join(_flatten(exc))) from None
    device.save()
    return _filed(
        DeviceRequest(
            kind=RequestKind.INSTALL,
            device=device,
            department=owner,
            reason=reason,
            building=building,
            location=location,
            site=site,
            address=approved_address,
            requested_by=by,
        ),
        by,
    )


def request_registered(*, device: Device, by: Any, reason: str) -> DeviceRequest:
    """A device NIC registered directly (the admin's "add device"): registered pending, with its
    install request filed by that operator — another NIC operator approves it (four eyes)."""
    with transaction.atomic():
        Device.objects.filter(pk=device.pk).update(approval=DeviceApproval.PENDING, key_hex="", previous_key_hex="")
        device.approval = DeviceApproval.PENDING
        return _filed(
            DeviceRequest(
                kind=RequestKind.INSTALL,
                device=device,
                department=device.owner,
                reason=_reason(reason),
                building=device.building,
                location=device.location,
                site=device.site,
                address=device.approved_address,
                requested_by=by,
            ),
            by,
        )


@transaction.atomic
def file_move(
    *,
    by: Any,
    device: Device,
    location: str,
    reason: str,
    building: Building | None = None,
    site: str = "",
    address: str | None = None,
) -> DeviceRequest:
    """Ask NIC to approve moving a device (or reconnecting it elsewhere): its place is unchanged
    until approved."""
    device = _approved(by, device)
    reason = _reason(reason)
    location, site = _place(device.kind, building, location, site)
    approved_address = _address(address)
    if (building, location, site, approved_address) == (
        device.building,
        device.location,
        device.site,
        device.approved_address,
    ):
        raise ApprovalError(_("新位置与当前位置相同"))
    return _filed(
        DeviceRequest(
            kind=RequestKind.MOVE,
            device=device,
            department=device.owner,
            reason=reason,
            building=building,
            location=location,
            site=site,
            address=approved_address,
            before=_where(device),
            requested_by=by,
        ),
        by,
    )


@transaction.atomic
def file_removal(*, by: Any, device: Device, reason: str) -> DeviceRequest:
    device = _approved(by, device)
    return _filed(
        DeviceRequest(
            kind=RequestKind.REMOVE,
            device=device,
            department=device.owner,
            reason=_reason(reason),
            before=_where(device),
            requested_by=by,
        ),
        by,
    )


def _approved(by: Any, device: Device) -> Device:
    device = Device.objects.select_related("building", "owner").get(pk=device.pk)
    if not may_request_for(by, device.owner):
        raise ApprovalError(_("只能为本部门的设备提出申请"))
    if device.approval != DeviceApproval.APPROVED:
        raise ApprovalError(_("设备 %(code)s 尚未批准安装或已拆除") % {"code": device.code})
    return device


def _filed(request: DeviceRequest, by: Any) -> DeviceRequest:
    _open(request)
    audit.record(
        actor=by,
        action=f"device.{request.kind}_requested",
        object_type="device",
        object_id=request.device.code,
        basis=request.reason,
        data={"request": request.pk, "place": request.place_label, "before": request.before},
    )
    return request


def _pending(request_id: int, by: Any) -> DeviceRequest:
    """The request, locked, if ``by`` may decide it (NIC, not its own filer)."""
    if not may_decide(by):
        raise ApprovalError(_("只有网信中心可以审批设备申请"))
    request = (
        DeviceRequest.objects.select_for_update(of=("self",))
        .select_related("device", "building", "requested_by")
        .filter(pk=request_id)
        .first()
    )
    if request is None:
        raise ApprovalError(_("没有这份申请"))
    if request.status != RequestStatus.PENDING:
        raise ApprovalError(_("这份申请已经%(status)s") % {"status": request.get_status_display()})
    if request.requested_by_id == getattr(by, "pk", None):
        raise ApprovalError(_("不能审批自己提出的申请：需由另一名网信中心操作员审批"))
    return request


@transaction.atomic
def approve(request_id: int, *, by: Any, note: str = "") -> DeviceRequest:
    request = _pending(request_id, by)
    device = Device.objects.select_for_update().get(pk=request.device_id)
    if request.kind == RequestKind.INSTALL:
        Device.objects.filter(pk=device.pk).update(approval=DeviceApproval.APPROVED)
    elif request.kind == RequestKind.MOVE:
        Device.objects.filter(pk=device.pk).update(
            building=request.building,
            location=request.location,
            site=request.site,
            approved_address=request.address,
        )
        # a "moved without approval" alert of the device clears with its next heartbeat from the
        # place now approved (the processor takes the new place within a second, below)
    else:
        registry.retire_device(device=device, operator=by, basis=request.reason)
        Device.objects.filter(pk=device.pk).update(approval=DeviceApproval.REMOVED)
    _decide(request, by, RequestStatus.APPROVED, note)
    # the processors take the device's new standing within a second; its key (and with it its
    # agent's Redis user) is issued by NIC once approved — ``issue_device_key``
    registry.keys_changed()
    return request


@transaction.atomic
def reject(request_id: int, *, by: Any, note: str) -> DeviceRequest:
    """Refuse a request: the device stays as it was (an install stays pending, never trusted)."""
    request = _pending(request_id, by)
    note = (note or "").strip()
    if not note:
        raise ApprovalError(_("驳回时请填写审批意见"))
    _decide(request, by, RequestStatus.REJECTED, note)
    return request


def _decide(request: DeviceRequest, by: Any, status: RequestStatus, note: str) -> None:
    request.status, request.decided_by, request.decided_at = status, by, timezone.now()
    request.decision_note = (note or "").strip()[:MAX_REASON]
    request.save(update_fields=["status", "decided_by", "decided_at", "decision_note"])
    audit.record(
        actor=by,
        action=f"device.{request.kind}_{status}",
        object_type="device",
        object_id=request.device.code,
        basis=request.decision_note or request.reason,
        data={"request": request.pk, "requested_by": request.requested_by.get_username(), "place": request.place_label},
    )


def _flatten(exc: Exception) -> list[str]:
    messages = getattr(exc, "message_dict", None)
    if messages:
        return [m for ms in messages.values() for m in ms]
    return [str(m) for m in getattr(exc, "messages", [str(exc)])]
