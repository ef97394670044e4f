"""Repair requests and the repair queue pages (issue 18, Build 1): ``/repairs/`` — a department's
devices, their open faults, its requests and a form to file one; NIC's whole queue with the time
to repair — and ``/repairs/<id>/``, a ticket's steps and the buttons its viewer may press. Plain
server-rendered forms; every POST goes through ``ops.alerts.repairs``."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from ops.alerts import repairs
from ops.alerts.choices import AlertStatus, RepairState
from ops.alerts.models import Alert, RepairTicket
from ops.form_steps import run_step
from ops.registry.lifecycle import photo_store

QUEUE_LIMIT = 200


def _viewer(request: HttpRequest) -> None:
    if not repairs.can_view(request.user):
        raise PermissionDenied


def duration(td: timedelta | None) -> str:
    """A time to repair as people read it: 3 天 4 小时, 2 小时 5 分, 7 分."""
    if td is None:
        return "—"
    minutes = max(0, int(td.total_seconds() // 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return _("%(d)s 天 %(h)s 小时") % {"d": days, "h": hours}
    if hours:
        return _("%(h)s 小时 %(m)s 分") % {"h": hours, "m": mins}
    return _("%(m)s 分") % {"m": mins}


@login_required
def queue(request: HttpRequest) -> HttpResponse:
    _viewer(request)
    user, now = request.user, timezone.now()
    nic = repairs.is_nic(user)
    state = request.GET.get("state", "open")
    tickets = repairs.tickets_for(user)
    if state == "open":
        tickets = tickets.filter(state__in=repairs.OPEN_STATES)
    elif state in RepairState.values:
        tickets = tickets.filter(state=state)
    rows = [
        {"t": t, "ttr": duration(repairs.time_to_repair(t, now=now)), "late": t.repaired_at is None}
        for t in tickets.order_by("-opened_at")[:QUEUE_LIMIT]
    ]
    context = {
        "nic": nic,
        "rows": rows,
        "state": state,
        "states": [("open", _("未关闭")), *RepairState.choices, ("all", _("全部"))],
        "department": repairs.department_of(user),
    }
    if nic:
        repaired = list(
            repairs.tickets_for(user)
            .filter(repaired_at__isnull=False, repaired_at__gte=now - timedelta(days=30))
            .select_related(None)
            .only("opened_at", "repaired_at")
        )
        spans = [t.repaired_at - t.opened_at for t in repaired if t.repaired_at]
        context["mttr"] = duration(sum(spans, timedelta()) / len(spans)) if spans else "—"
        context["repaired_30d"] = len(spans)
        context["open_alerts"] = Alert.objects.filter(
            device__isnull=False, status__in=[AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED], tickets__isnull=True
        ).select_related("device")[:50]
    else:
        devices = repairs.devices_for(user).annotate(
            open_faults=Count("alerts", filter=~Q(alerts__status=AlertStatus.RESOLVED), distinct=True)
        )
        open_tickets = dict(
            repairs.tickets_for(user).filter(state__in=repairs.OPEN_STATES).values_list("device_id", "state")
        )
        context["devices"] = [
            {"d": d, "ticket_state": RepairState(open_tickets[d.pk]).label if d.pk in open_tickets else ""}
            for d in devices
        ]
        context["faults"] = (
            Alert.objects.filter(device__in=repairs.devices_for(user))
            .exclude(status=AlertStatus.RESOLVED)
            .select_related("device")
            .order_by("-last_at")[:50]
        )
    response = render(request, "repairs/queue.html", context)
    response["Cache-Control"] = "private, no-store"
    return response


@login_required
@require_POST
def file_request(request: HttpRequest) -> HttpResponse:
    _viewer(request)
    try:
        device = int(request.POST.get("device", ""))
    except ValueError:
        device = 0
    created: list[RepairTicket] = []

    def step() -> None:
        created.append(
            repairs.report(
                device=device,
                by=request.user,
                description=request.POST.get("description", ""),
                photo=request.FILES.get("photo"),
            )
        )

    response = run_step(request, step, (repairs.RepairError,), "repair-queue")
    return redirect("repair-detail", ticket_id=created[0].pk) if created else response


def _ticket_for(request: HttpRequest, ticket_id: int) -> RepairTicket:
    _viewer(request)
    ticket = repairs.tickets_for(request.user).filter(pk=ticket_id).first()
    if ticket is None:
        raise Http404  # no hint that another department's ticket exists
    return ticket


@login_required
def detail(request: HttpRequest, ticket_id: int) -> HttpResponse:
    ticket = _ticket_for(request, ticket_id)
    allowed = repairs.allowed_steps(ticket, request.user)
    response = render(
        request,
        "repairs/detail.html",
        {
            "ticket": ticket,
            "steps": ticket.steps.select_related("actor"),
            "allowed": [(s, RepairState(s).label) for s in allowed],
            "decide": RepairState.ACCEPTED == ticket.state and bool(allowed),
            "simple": [
                (s, RepairState(s).label)
                for s in allowed
                if s not in (RepairState.WITH_VENDOR, RepairState.CHARGED, RepairState.REJECTED)
            ],
            "can_reject": RepairState.REJECTED in allowed,
            "ttr": duration(repairs.time_to_repair(ticket)),
            "nic": repairs.is_nic(request.user),
        },
    )
    response["Cache-Control"] = "private, no-store"
    return response


@login_required
@require_POST
def step(request: HttpRequest, ticket_id: int) -> HttpResponse:
    _ticket_for(request, ticket_id)
    p = request.POST
    decision = repairs.Decision(
        vendor=p.get("vendor", ""), responsible_number=p.get("responsible", ""), price=p.get("price", "")
    )
    return run_step(
        request,
        lambda: repairs.transition(
            ticket_id, to=p.get("to", ""), by=request.user, comment=p.get("comment", ""), decision=decision
        ),
        (repairs.RepairError,),
        "repair-detail",
        ticket_id=ticket_id,
    )


@login_required
def photo(request: HttpRequest, ticket_id: int) -> FileResponse:
    ticket = _ticket_for(request, ticket_id)
    path = photo_store.path_for(ticket.photo_sha256)
    if path is None:
        raise Http404
    with path.open("rb") as handle:
        head = handle.read(8)
    content_type = "image/png" if head.startswith(b"\x89PNG") else "image/jpeg"
    response = FileResponse(path.open("rb"), content_type=content_type)
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response
