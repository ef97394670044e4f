"""Small project-level views: the landing redirect to each role's desk, and /healthz."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render

from ops.accounts.permissions import can_view_gates, role_of
from ops.campus.redis_client import client


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """Each operator lands on their own desk."""
    if can_view_gates(request.user):
        return redirect("/live/gates/")
    return render(request, "home.html", {"role": role_of(request.user)})


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
    ok = all(v == "ok" for v in status.values())
    return JsonResponse(status, status=200 if ok else 503)
