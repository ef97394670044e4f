"""The security desk's anti-passback page (issue 17, Build 5): the zones, the form that forgives
one person or a whole zone, and the latest forgiveness. The security office only (R-SEC-5);
every POST goes through ``ops.registry.passback.services`` (audited)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_POST

from ops.accounts.permissions import can_forgive_passback
from ops.form_steps import run_step
from ops.registry.passback import selectors, services


def _forgiver(request: HttpRequest) -> None:
    if not can_forgive_passback(request.user):
        raise PermissionDenied


@login_required
def zones(request: HttpRequest) -> HttpResponse:
    _forgiver(request)
    response = render(
        request,
        "passback/zones.html",
        {"zones": list(selectors.zones().values()), "recent": selectors.recent()},
    )
    response["Cache-Control"] = "private, no-store"
    return response


@login_required
@require_POST
def forgive(request: HttpRequest) -> HttpResponse:
    _forgiver(request)
    return run_step(
        request,
        lambda: services.forgive(
            by=request.user,
            zone=request.POST.get("zone", ""),
            person=request.POST.get("person", "") if request.POST.get("scope") == "person" else "",
            reason=request.POST.get("reason", ""),
        ),
        (services.PassbackError,),
        "passback-zones",
    )
