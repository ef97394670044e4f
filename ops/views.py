"""Small project-level views: the landing redirect to each role's desk, and /healthz."""

from __future__ import annotations

import time

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _

from dashboard.guard import FORBIDDEN, LIVE_REFUSAL
from ops.accounts.permissions import can_view_photos, role_of
from ops.accounts.roles import LANDING, places_for
from ops.audit.services import record
from ops.redis_client import client, stream_client
from ops.registry.lifecycle import photo_store
from ops.registry.models import Cardholder
from ops.workbench import greeting_name, panels_for
from streams import names


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """Each operator lands on their own desk; a role whose work is in the admin (HR, Academic
    Affairs, Finance, General Affairs …) or in the personal-data requests (the responsible
    leader) lands on a workbench: its day (the panels of ``ops.workbench``: today's figures,
    what waits for it), then every place it may enter and each record list it may open."""
    from django.contrib import admin

    role = role_of(request.user)
    if role in LANDING:
        return redirect(LANDING[role])
    return render(
        request,
        "home.html",
        {
            "role": role,
            # issue 19, item 11: the role's day first (ops.workbench), greeting the operator by name
            "panels": panels_for(request.user),
            "greeting_name": greeting_name(request.user),
            "today": timezone.localdate(),
            "places": places_for(role),
            "app_list": admin.site.get_app_list(request),
        },
    )


def live_refused(request: HttpRequest, rest: str = "") -> HttpResponse:
    """A ``/live/`` path the desks' guard did not serve (issue 19, item 6): the project's 403 page
    when the guard refused the operator's role (the marker ``dashboard.guard.RoleGuard`` puts in
    the ASGI scope), else its 404 page — not a bare line or a desk app's JSON."""
    scope = getattr(request, "scope", None) or {}
    if scope.get(LIVE_REFUSAL) == FORBIDDEN and request.user.is_authenticated:
        raise PermissionDenied(_("您的角色不能打开这个值班台。如需权限，请联系网信中心。"))
    raise Http404


@login_required
def holder_photo(request: HttpRequest, holder_id: int) -> FileResponse:
    """A cardholder's photo, for roles that must recognise people (security, NIC). Personal data:
    every view is audited (R-SEC-2); never cached by the browser or a proxy."""

    if not can_view_photos(request.user):
        raise PermissionDenied
    sha = Cardholder.objects.filter(pk=holder_id).values_list("photo_sha256", flat=True).first()
    path = photo_store.path_for(sha or "")
    if path is None:
        raise Http404
    record(actor=request.user, action="personal_data.view_photo", object_type="cardholder", object_id=holder_id)
    response = FileResponse(path.open("rb"), content_type="image/jpeg")
    response["Cache-Control"] = "private, no-store"
    return response


@login_required
def logout_confirm(request: HttpRequest) -> HttpResponse:
    """Logging out is a POST (Django 5); live pages link here for the button."""
    return render(request, "registration/logout_confirm.html")


def healthz(request: HttpRequest) -> JsonResponse:
    """Touches the database and Redis; 503 if either is down (for load balancers and compose)."""
    status: dict[str, str] = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        status["database"] = "ok"
    except Exception as exc:  # health check reports, never raises
        status["database"] = f"error: {exc.__class__.__name__}"
    try:
        client().ping()
        status["redis"] = "ok"
    except Exception as exc:
        status["redis"] = f"error: {exc.__class__.__name__}"
    processors: int | None = None
    try:  # the events stream (its own Redis or cluster, if configured so)
        events = stream_client()
        processors = int(events.zcount(names.PROCESSORS, int(time.time() * 1000) - settings.PROCESSOR_LEASE_MS, "+inf"))
        status["events"] = "ok"
    except Exception as exc:
        status["events"] = f"error: {exc.__class__.__name__}"
    ok = all(v == "ok" for v in status.values())
    # processors alive (heartbeat within a lease): shown for NIC, not a reason to take a web
    # process out of the load balancer
    return JsonResponse({**status, "processors": processors}, status=200 if ok else 503)
