"""The cardholder's pages under /me/ (issue 18, Build 6): phone-sized, Simplified Chinese by
default. A cardholder session opens these pages and nothing else; an operator's login opens none
of them (least privilege both ways)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST
from django_cas_ng.utils import get_cas_client

from ops.registry.lifecycle.models import FeePolicy
from ops.selfservice import services
from ops.selfservice.services import LockedOut, SelfServiceError

LOGIN_URL = "/me/login/"


def _holder_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        holder = services.signed_in_holder(request)
        if holder is None:
            return HttpResponseRedirect(LOGIN_URL)
        return view(request, holder, *args, **kwargs)

    wrapped.__name__ = view.__name__
    wrapped.__doc__ = view.__doc__
    return wrapped


@never_cache
@require_http_methods(["GET", "POST"])
def login(request: HttpRequest) -> HttpResponse:
    error, status, number = "", 200, ""
    if request.method == "POST":
        number = request.POST.get("number", "")
        try:
            services.sign_in(
                request,
                number=number,
                id_digits=request.POST.get("id_digits", ""),
                password=request.POST.get("password", ""),
            )
        except LockedOut as exc:
            error, status = str(exc), 429
        except SelfServiceError as exc:
            error, status = str(exc), 400
        else:
            return HttpResponseRedirect("/me/")
    context = {
        "error": error,
        "number": number[:32],
        "id_digits_n": services.ID_DIGITS,
        "cas": bool(settings.CAS_SERVER_URL),
    }
    return render(request, "selfservice/login.html", context, status=status)


@never_cache
@require_http_methods(["GET"])
def sso(request: HttpRequest) -> HttpResponse:
    """Sign in through the campus CAS server (when it is configured): off to its login page, back
    here with a ticket, which the CAS server validates; the CAS uid is the cardholder number."""
    if not settings.CAS_SERVER_URL:
        raise Http404
    client = get_cas_client(service_url=request.build_absolute_uri("/me/sso/"), request=request)
    ticket = request.GET.get("ticket")
    if not ticket:
        return HttpResponseRedirect(client.get_login_url())
    try:
        username, _attributes, _pgtiou = client.verify_ticket(ticket)
    except (OSError, ValueError, SyntaxError):  # the CAS server unreachable, or not CAS XML
        username = None
    try:
        if not username:
            raise SelfServiceError(_("统一身份认证未通过，请重试或使用自助服务密码登录"))
        services.sign_in_through_cas(request, str(username))
    except SelfServiceError as exc:
        context = {"error": str(exc), "number": "", "id_digits_n": services.ID_DIGITS, "cas": True}
        return render(request, "selfservice/login.html", context, status=403)
    return HttpResponseRedirect("/me/")


@never_cache
@require_POST
def logout(request: HttpRequest) -> HttpResponse:
    services.sign_out(request)
    return HttpResponseRedirect(LOGIN_URL)


@never_cache
@require_http_methods(["GET"])
@_holder_required
def home(request: HttpRequest, holder: Any) -> HttpResponse:
    context = {
        "holder": holder,
        "card": services.own_card(holder),
        "done": request.GET.get("done"),
        "desk": settings.SELF_SERVICE_NIC_DESK,  # where and when NIC's window is open, as configured
        "fee": FeePolicy.current().replacement_fee,  # R-FEE-2: what a replacement costs
    }
    return render(request, "selfservice/home.html", context)


@never_cache
@require_http_methods(["GET", "POST"])
@_holder_required
def loss(request: HttpRequest, holder: Any) -> HttpResponse:
    """挂失, confirmed on a page of its own (a tap on a phone is easy to make by mistake)."""
    card = services.own_card(holder)
    error, status = "", 200
    if request.method == "POST":
        try:
            services.report_own_loss(holder)
        except SelfServiceError as exc:
            error, status = str(exc), 400
        else:
            return HttpResponseRedirect("/me/?done=lost")
    return render(request, "selfservice/loss.html", {"holder": holder, "card": card, "error": error}, status=status)


@never_cache
@require_http_methods(["GET"])
@_holder_required
def passages(request: HttpRequest, holder: Any) -> HttpResponse:
    rows = services.own_passages(holder, request)
    context = {"holder": holder, "rows": rows, "days": services.PASSAGE_DAYS, "limit": services.PASSAGE_LIMIT}
    return render(request, "selfservice/passages.html", context)
