"""The alert's own page: what happened, its timeline, and the actions (R-OPS-3, R-DEV-3) —
acknowledge with a comment, assign, resolve, open a repair ticket. Plain server-rendered forms:
they work on any browser, and every POST goes through ``ops.alerts.services``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_POST

from ops.accounts.permissions import role_of
from ops.accounts.roles import LANDING, Role
from ops.alerts import services as alert_services
from ops.alerts.choices import AlertStatus, RepairCause
from ops.alerts.models import Alert
from ops.alerts.selectors import deliveries
from ops.form_steps import run_step
from ops.registry.choices import CARD_TYPES


def _alert_for(request: HttpRequest, alert_id: int) -> Alert:
    alert = (
        Alert.objects.select_related("device", "building", "assignee", "acknowledged_by", "resolved_by")
        .filter(pk=alert_id)
        .first()
    )
    if alert is None or not alert_services.can_work(request.user, alert):
        raise Http404  # no hint that an alert outside the viewer's remit exists
    return alert


@login_required
def detail(request: HttpRequest, alert_id: int) -> HttpResponse:
    alert = _alert_for(request, alert_id)
    workers = [
        u
        for u in get_user_model()
        .objects.filter(is_active=True, operator__role__in=[Role.NIC, Role.SECURITY])
        .select_related("operator")
        if alert_services.can_work(u, alert)
    ]

    role = role_of(request.user)
    return render(
        request,
        "alerts/detail.html",
        {
            "alert": alert,
            "log": alert.log.select_related("actor"),
            "workers": workers,
            "causes": RepairCause.choices,
            "open": alert.status != AlertStatus.RESOLVED,
            "acknowledged": alert.status == AlertStatus.ACKNOWLEDGED,
            "can_ticket": alert.device_id is not None and role == Role.NIC,
            "tickets": alert.tickets.select_related("responsible", "fee"),
            "deliveries": deliveries(alert),
            "back": LANDING.get(role, "/") if role else "/",
            # the holder as the desk shows them (issue 19): photo, masked name, card type
            "card_type": CARD_TYPES.label(alert.detail.get("card_type", "")) if alert.detail.get("card_type") else "",
        },
    )


def _act(request: HttpRequest, alert_id: int, action: Callable[[], Any]) -> HttpResponse:
    _alert_for(request, alert_id)
    return run_step(request, action, (alert_services.AlertError,), "alert-detail", alert_id=alert_id)


@login_required
@require_POST
def acknowledge(request: HttpRequest, alert_id: int) -> HttpResponse:
    return _act(
        request,
        alert_id,
        lambda: alert_services.acknowledge(alert_id, by=request.user, comment=request.POST.get("comment", "")),
    )


@login_required
@require_POST
def assign(request: HttpRequest, alert_id: int) -> HttpResponse:
    try:
        assignee = int(request.POST.get("assignee", ""))
    except ValueError:
        assignee = 0
    return _act(request, alert_id, lambda: alert_services.assign(alert_id, by=request.user, assignee_id=assignee))


@login_required
@require_POST
def resolve(request: HttpRequest, alert_id: int) -> HttpResponse:
    return _act(
        request,
        alert_id,
        lambda: alert_services.resolve(alert_id, by=request.user, resolution=request.POST.get("resolution", "")),
    )


@login_required
@require_POST
def ticket(request: HttpRequest, alert_id: int) -> HttpResponse:
    p = request.POST
    req = alert_services.TicketRequest(
        cause=p.get("cause", ""),
        description=p.get("description", ""),
        vendor=p.get("vendor", ""),
        responsible_number=p.get("responsible", ""),
        price=p.get("price", ""),
    )
    return _act(request, alert_id, lambda: alert_services.open_ticket(alert_id, by=request.user, request=req))
