"""The Library's workbench (issue 18, Build 5; R-ROLE-2): its readers, their faults, and the
SIP2 server's traffic today. The library and NIC only."""

from __future__ import annotations

import redis
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from ops.accounts.permissions import role_of
from ops.accounts.roles import LIBRARY_VIEWERS
from ops.library import selectors, traffic


@login_required
def workbench(request: HttpRequest) -> HttpResponse:
    if role_of(request.user) not in LIBRARY_VIEWERS:
        raise PermissionDenied
    operator = getattr(request.user, "operator", None)
    context = selectors.workbench(operator.department if operator is not None else None)
    try:
        context["traffic"] = traffic.today()
    except redis.RedisError:
        context["traffic"] = None  # the page still shows the readers and faults
    response = render(request, "library/workbench.html", context)
    response["Cache-Control"] = "private, no-store"
    return response
