"""The muster's pages (issue 17): the list of musters in the viewer's scope with the form that
starts one, a muster's page (its figures, the end form, the export) and the XLSX export. The
names themselves are on the live board (``/live/muster/``) and in the export, both audited.
Plain server-rendered forms; every POST goes through ``ops.muster.services``."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from ops.accounts.permissions import can_lead_musters, can_view_musters, muster_scope
from ops.form_steps import run_step
from ops.muster import selectors, services
from ops.muster.models import Muster
from ops.registry.models import Building

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _viewer(request: HttpRequest) -> None:
    if not can_view_musters(request.user):
        raise PermissionDenied


@login_required
def muster_list(request: HttpRequest) -> HttpResponse:
    _viewer(request)
    musters = selectors.visible(muster_scope(request.user))
    return render(
        request,
        "muster/list.html",
        {
            "active": musters.filter(ended_at__isnull=True).order_by("building__code"),
            "ended": musters.filter(ended_at__isnull=False)[:20],
            "can_lead": can_lead_musters(request.user),
            "buildings": Building.objects.order_by("code") if can_lead_musters(request.user) else [],
        },
    )


@login_required
@require_POST
def start(request: HttpRequest) -> HttpResponse:
    _viewer(request)
    try:
        services.start_muster(
            building=request.POST.get("building", ""), reason=request.POST.get("reason", ""), by=request.user
        )
    except (services.MusterError, services.MusterForbidden) as exc:
        messages.error(request, str(exc))
        return redirect("muster-list")
    return redirect("/live/muster/")


def _muster(request: HttpRequest, muster_id: int) -> Muster:
    _viewer(request)
    try:
        return services.visible_muster(request.user, muster_id)
    except services.MusterForbidden:
        raise Http404 from None  # no hint that a muster outside the viewer's scope exists


@login_required
def detail(request: HttpRequest, muster_id: int) -> HttpResponse:
    muster = _muster(request, muster_id)
    # figures only here (no names): the names are on the live board and in the export
    rep = selectors.report(muster, with_names=False)
    response = render(
        request,
        "muster/detail.html",
        {"muster": muster, "report": rep, "can_end": muster.active and can_lead_musters(request.user)},
    )
    response["Cache-Control"] = "private, no-store"
    return response


@login_required
@require_POST
def end(request: HttpRequest, muster_id: int) -> HttpResponse:
    _muster(request, muster_id)
    return run_step(
        request,
        lambda: services.end_muster(muster_id, by=request.user, note=request.POST.get("note", "")),
        (services.MusterError, services.MusterForbidden),
        "muster-detail",
        muster_id=muster_id,
    )


@login_required
def export_xlsx(request: HttpRequest, muster_id: int) -> HttpResponse:
    _muster(request, muster_id)
    name, content = services.export_muster(muster_id, by=request.user)
    response = HttpResponse(content, content_type=XLSX)
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    response["Cache-Control"] = "private, no-store"
    return response
