"""The device requests page (issue 18, Build 2; R-DEV-1): a department (or NIC) files an
install, move or removal of its devices; NIC approves or rejects what another operator filed.
Plain server-rendered forms; every POST goes through :mod:`ops.registry.approvals.services`
(audited; a refusal is shown in the operator's language and changes nothing)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from ops.registry.approvals import services
from ops.registry.approvals.choices import RequestKind, RequestStatus
from ops.registry.approvals.models import DeviceRequest
from ops.registry.choices import DEVICE_KINDS, DeviceApproval
from ops.registry.models import Building, Department, Device


def _requester(request: HttpRequest) -> None:
    if not services.may_request(request.user):
        raise PermissionDenied


def _scope(user) -> tuple[bool, Department | None]:
    nic = services.may_decide(user)
    return nic, None if nic else services.department_of(user)


@login_required
def request_list(request: HttpRequest) -> HttpResponse:
    _requester(request)
    nic, dept = _scope(request.user)
    requests = DeviceRequest.objects.select_related("device", "department", "building", "requested_by", "decided_by")
    devices = Device.objects.filter(approval=DeviceApproval.APPROVED).select_related("building")
    if dept is not None:
        requests, devices = requests.filter(department=dept), devices.filter(owner=dept)
    response = render(
        request,
        "device_approvals/list.html",
        {
            "nic": nic,
            "department": dept,
            "pending": requests.filter(status=RequestStatus.PENDING),
            "decided": requests.exclude(status=RequestStatus.PENDING)[:30],
            "devices": devices.order_by("code"),
            "departments": Department.objects.order_by("code") if nic else [dept],
            "buildings": Building.objects.order_by("code"),
            "kinds": DEVICE_KINDS.choices,
            "user_id": request.user.pk,
        },
    )
    response["Cache-Control"] = "private, no-store"
    return response


def _building(code: str) -> Building | None:
    return Building.objects.filter(code=code).first() if code else None


@login_required
@require_POST
def install(request: HttpRequest) -> HttpResponse:
    _requester(request)
    post = request.POST
    owner = Department.objects.filter(code=post.get("owner", "")).first()
    try:
        if owner is None:
            raise services.ApprovalError(_("请选择设备所属部门"))
        filed = services.file_install(
            by=request.user,
            code=post.get("code", ""),
            name=post.get("name", ""),
            kind=post.get("kind", ""),
            owner=owner,
            location=post.get("location", ""),
            building=_building(post.get("building", "")),
            site=post.get("site", ""),
            address=post.get("address", ""),
            reason=post.get("reason", ""),
        )
    except services.ApprovalError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("安装申请已提交（设备 %(code)s），等待网信中心审批") % {"code": filed.device.code})
    return redirect("device-requests")


@login_required
@require_POST
def change(request: HttpRequest) -> HttpResponse:
    _requester(request)
    post = request.POST
    device = Device.objects.filter(code=post.get("device", "")).first()
    try:
        if device is None:
            raise services.ApprovalError(_("请选择设备"))
        if post.get("kind") == RequestKind.REMOVE:
            filed = services.file_removal(by=request.user, device=device, reason=post.get("reason", ""))
        else:
            filed = services.file_move(
                by=request.user,
                device=device,
                location=post.get("location", ""),
                building=_building(post.get("building", "")),
                site=post.get("site", ""),
                address=post.get("address", ""),
                reason=post.get("reason", ""),
            )
    except services.ApprovalError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request,
            _("%(kind)s申请已提交（设备 %(code)s），等待网信中心审批")
            % {"kind": filed.get_kind_display(), "code": filed.device.code},
        )
    return redirect("device-requests")


@login_required
@require_POST
def approve(request: HttpRequest, request_id: int) -> HttpResponse:
    _requester(request)
    try:
        done = services.approve(request_id, by=request.user, note=request.POST.get("note", ""))
    except services.ApprovalError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("已批准：%(what)s") % {"what": str(done)})
    return redirect("device-requests")


@login_required
@require_POST
def reject(request: HttpRequest, request_id: int) -> HttpResponse:
    _requester(request)
    try:
        done = services.reject(request_id, by=request.user, note=request.POST.get("note", ""))
    except services.ApprovalError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("已驳回：%(what)s") % {"what": str(done)})
    return redirect("device-requests")
