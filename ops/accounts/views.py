"""Sign-in and sign-out pages (issue 16): the login form (local accounts, and campus accounts
when LDAP is on) offering the campus CAS beside it, the CAS entry point, and a logout that also
ends the campus SSO session when the operator came in through CAS. Every way out ends the Django
session, so the session's open live-desk websockets close within ``WS_RECHECK_S``
(``dashboard/guard.py``)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY
from django.contrib.auth import views as auth_views
from django.http import Http404, HttpRequest, HttpResponse
from django.utils.decorators import method_decorator
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.csrf import csrf_exempt
from django_cas_ng import views as cas_views

CAS_BACKEND = "ops.accounts.cas_backend.CampusCASBackend"


class LoginView(auth_views.LoginView):
    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["cas_enabled"] = bool(settings.CAS_SERVER_URL)
        context["ldap_enabled"] = bool(settings.LDAP_SERVER_URI)
        return context


class CASLoginView(cas_views.LoginView):
    """django-cas-ng's login: off to the CAS server, back with a ticket. Its POST is the CAS
    server's single-logout call, which deletes the session the ticket opened. The page to land
    on (``next``) must be on this site."""

    @method_decorator(csrf_exempt)  # the single-logout POST comes from the CAS server, not a form of ours
    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not settings.CAS_SERVER_URL:
            raise Http404  # CAS is off
        return super().dispatch(request, *args, **kwargs)

    def get(self, request: HttpRequest) -> HttpResponse:
        wanted = request.GET.get("next")
        if wanted and not url_has_allowed_host_and_scheme(
            wanted, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        ):
            query = request.GET.copy()
            query["next"] = settings.CAS_REDIRECT_URL
            request.GET = query  # type: ignore[assignment]  # a QueryDict copy, as Django's own
        return super().get(request)


class LogoutView(auth_views.LogoutView):
    """Logging out (a POST). A session that signed in through CAS also leaves the campus SSO:
    django-cas-ng ends the session and sends the browser to the CAS server's logout, which ends
    the campus session and single-logs-out the person's other CAS services."""

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if settings.CAS_SERVER_URL and request.session.get(BACKEND_SESSION_KEY) == CAS_BACKEND:
            return cas_views.LogoutView().get(request)
        return super().post(request, *args, **kwargs)
