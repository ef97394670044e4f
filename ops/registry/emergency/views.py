"""The security office's emergency page (issue 17, Build 2): the modes in force and pending
requests, the form that starts one (scope, reason) and its confirmation step, the approval of a
campus-wide lockdown by a second operator, and ending a mode. Plain server-rendered forms; every
POST goes through ``ops.registry.emergency.services`` (audited, refusals shown in the user's
language). The banner every desk shows is ``dashboard.emergency_feed``."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from ops.accounts.permissions import can_lead_emergency
from ops.registry.calendar.models import DoorGroup
from ops.registry.choices import DeviceApproval
from ops.registry.emergency import selectors, services
from ops.registry.emergency.choices import Kind, Scope
from ops.registry.emergency.models import EmergencyMode
from ops.registry.models import Building, Device

REFUSALS = (services.EmergencyError, services.EmergencyForbidden)


def _leader(request: HttpRequest) -> None:
    if not can_lead_emergency(request.user):
        raise PermissionDenied


@login_required
def emergency_list(request: HttpRequest) -> HttpResponse:
    _leader(request)
    response = render(
        request,
        "emergency/list.html",
        {
            "live": selectors.live_modes(),
            "ended": EmergencyMode.objects.exclude(status__in=["pending", "active"]).select_related(
                "building", "group", "requested_by", "ended_by"
            )[:20],
            "kinds": Kind.choices,
            "scopes": Scope.choices,
            "buildings": Building.objects.order_by("code"),
            "groups": DoorGroup.objects.order_by("code"),
            "user_id": request.user.pk,
        },
    )
    response["Cache-Control"] = "private, no-store"
    return response


def _target(post: dict[str, str]) -> str:
    scope = post.get("scope", "")
    if scope == Scope.BUILDING:
        return post.get("building", "")
    return post.get("group", "") if scope == Scope.GROUP else ""


def _doors_affected(scope: str, target: str) -> int:
    # the doors the mode reaches: an install still pending or a device removed holds no key and
    # takes no feed (R-DEV-1, issue 18 Build 2), so it is not counted
    doors = Device.objects.filter(approval=DeviceApproval.APPROVED)
    if scope == Scope.BUILDING:
        return doors.filter(building__code=target).count()
    if scope == Scope.GROUP:
        group = DoorGroup.objects.filter(code=target).first()
        if group is None:
            return 0
        return (
            doors.filter(pk__in=group.devices.values("pk")).count()
            + doors.filter(building__in=group.buildings.all()).exclude(pk__in=group.devices.values("pk")).count()
        )
    return doors.count()


@login_required
@require_POST
def start(request: HttpRequest) -> HttpResponse:
    """First POST: the confirmation page (what will happen, how many doors); the second, with
    ``confirm``, starts the mode (or requests it, for a campus-wide lockdown)."""
    _leader(request)
    post = {k: request.POST.get(k, "") for k in ("kind", "scope", "building", "group", "reason", "confirm")}
    target = _target(post)
    if post["confirm"] != "yes":
        # the rules first, so the confirmation is never shown for a request they would refuse
        problem = services.check_start(kind=post["kind"], scope=post["scope"], target=target, reason=post["reason"])
        if problem:
            messages.error(request, problem)
            return redirect("emergency-list")
        return render(
            request,
            "emergency/confirm.html",
            {
                "post": post,
                "target": target,
                "kind_label": Kind(post["kind"]).label,
                "scope_label": Scope(post["scope"]).label,
                "place": target or _("全校"),
                "doors": _doors_affected(post["scope"], target),
                "needs_approval": services.needs_approval(post["kind"], post["scope"]),
            },
        )
    try:
        mode = services.start_mode(
            kind=post["kind"],
            scope=post["scope"],
            target=target,
            reason=post["reason"],
            confirmed=True,
            by=request.user,
        )
    except REFUSALS as exc:
        messages.error(request, str(exc))
    else:
        if mode.status == "pending":
            messages.success(request, _("已提交，等待另一名保卫处操作员批准后生效"))
        else:
            messages.success(request, _("紧急模式已启动，正在下发到读卡器"))
    return redirect("emergency-list")


@login_required
@require_POST
def approve(request: HttpRequest, mode_id: int) -> HttpResponse:
    _leader(request)
    try:
        services.approve_mode(mode_id, by=request.user)
    except REFUSALS as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("已批准，紧急模式生效"))
    return redirect("emergency-list")


@login_required
@require_POST
def end(request: HttpRequest, mode_id: int) -> HttpResponse:
    _leader(request)
    if request.POST.get("confirm") != "yes":
        messages.error(request, _("请确认结束紧急模式"))
        return redirect("emergency-list")
    try:
        services.end_mode(mode_id, by=request.user, note=request.POST.get("note", ""))
    except REFUSALS as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("紧急模式已结束，读卡器恢复正常"))
    return redirect("emergency-list")
