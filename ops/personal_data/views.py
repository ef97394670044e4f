"""The pages of personal-data queries (R-SEC-2): my requests and what waits for me, filing a
request with its written basis, a request's page with the steps my role may take, and the
person's data itself — unmasked under an active grant, otherwise a 403 refusal (audited).
Plain server-rendered forms; every POST goes through ``ops.personal_data.services``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from ops.accounts.permissions import role_of
from ops.form_steps import run_step
from ops.masking import mask_name
from ops.personal_data import basis_store, services
from ops.personal_data.models import PersonalDataRequest

_Response = TypeVar("_Response", bound=HttpResponseBase)


def _no_store(response: _Response) -> _Response:
    response["Cache-Control"] = "private, no-store"
    return response


def _operator(request: HttpRequest) -> None:
    if role_of(request.user) is None:
        raise PermissionDenied


@login_required
def request_list(request: HttpRequest) -> HttpResponse:
    _operator(request)
    services.expire_due()
    user = request.user
    return render(
        request,
        "grants/list.html",
        {
            "mine": services.requests_of(user),
            "approvals": services.pending_approvals(user),
            "reviews": services.pending_reviews(user),
            "grants": services.active_grants(user),
        },
    )


@login_required
def new_request(request: HttpRequest) -> HttpResponse:
    _operator(request)
    values = {"purpose": "", "numbers": request.GET.get("numbers", "")}
    error = ""
    if request.method == "POST":
        values = {"purpose": request.POST.get("purpose", ""), "numbers": request.POST.get("numbers", "")}
        upload = request.FILES.get("basis")
        try:
            if upload is None:
                raise services.GrantError(_("请上传书面依据（PDF、JPG 或 PNG 文件）"))
            req = services.file_request(
                by=request.user,
                purpose=values["purpose"],
                numbers=values["numbers"],
                basis_name=upload.name or "",
                basis_data=upload.read(basis_store.MAX_BYTES + 1),
            )
        except (services.GrantError, services.GrantForbidden) as exc:
            error = str(exc)
        else:
            messages.success(request, _("申请已提交，等待分管领导审批"))
            return redirect("privacy-request", request_id=req.pk)
    return render(
        request,
        "grants/new.html",
        {"values": values, "error": error, "max_mb": basis_store.MAX_BYTES // (1024 * 1024)},
        status=400 if error else 200,
    )


def _request_for(request: HttpRequest, request_id: int) -> PersonalDataRequest:
    req = (
        PersonalDataRequest.objects.select_related("requester", "approver", "reviewer", "revoked_by")
        .filter(pk=request_id)
        .first()
    )
    if req is None or not services.can_see(request.user, req):
        raise Http404  # no hint that a request outside the viewer's remit exists
    return req


@login_required
def detail(request: HttpRequest, request_id: int) -> HttpResponse:
    services.expire_due()
    req = _request_for(request, request_id)
    user = request.user
    mine = user.pk == req.requester_id
    # names masked here as everywhere: unmasked data only on the person's page, under the
    # grant, where each view is audited
    persons = [{"id": h.pk, "number": h.number, "name": mask_name(h.name)} for h in req.cardholders.order_by("number")]
    return _no_store(
        render(
            request,
            "grants/detail.html",
            {
                "req": req,
                "persons": persons,
                "mine": mine,
                "active": req.is_active(),
                "shown_status": req.shown_status(),
                "shown_label": req.shown_status_label(),
                "can_approve": services.can_approve(user, req),
                "can_review": services.can_review(user, req),
                "can_revoke": services.can_revoke(user, req),
                "default_hours": services.default_hours(),
                "max_hours": services.MAX_HOURS,
            },
        )
    )


def _act(request: HttpRequest, request_id: int, action: Callable[[], Any]) -> HttpResponse:
    _request_for(request, request_id)
    return run_step(
        request, action, (services.GrantError, services.GrantForbidden), "privacy-request", request_id=request_id
    )


@login_required
@require_POST
def approve(request: HttpRequest, request_id: int) -> HttpResponse:
    return _act(
        request,
        request_id,
        lambda: services.approve(request_id, by=request.user, comment=request.POST.get("comment", "")),
    )


@login_required
@require_POST
def reject(request: HttpRequest, request_id: int) -> HttpResponse:
    return _act(
        request,
        request_id,
        lambda: services.reject(request_id, by=request.user, comment=request.POST.get("comment", "")),
    )


@login_required
@require_POST
def review(request: HttpRequest, request_id: int) -> HttpResponse:
    return _act(
        request,
        request_id,
        lambda: services.review(
            request_id,
            by=request.user,
            hours=request.POST.get("hours") or None,
            comment=request.POST.get("comment", ""),
        ),
    )


@login_required
@require_POST
def revoke(request: HttpRequest, request_id: int) -> HttpResponse:
    return _act(
        request, request_id, lambda: services.revoke(request_id, by=request.user, reason=request.POST.get("reason", ""))
    )


@login_required
def basis(request: HttpRequest, request_id: int) -> FileResponse:
    """The written basis, to those who handle the request; audited, never cached."""
    try:
        req, path = services.open_basis(request.user, request_id)
    except services.GrantForbidden:
        raise Http404 from None
    except services.GrantError:
        raise Http404 from None
    response = FileResponse(path.open("rb"), content_type=req.basis_type, as_attachment=True, filename=req.basis_name)
    return _no_store(response)


def _refused_page(request: HttpRequest, exc: services.PersonalDataRefused, holder_id: int) -> HttpResponse:
    """No grant for this person: 403 with the reason (the refusal has been audited)."""
    context = {"message": str(exc.args[0]), "reason": exc.reason, "holder_id": holder_id}
    return _no_store(render(request, "grants/refused.html", context, status=403))


@login_required
def holder(request: HttpRequest, holder_id: int) -> HttpResponse:
    """A person's data, unmasked, under an active grant; otherwise a refusal (403, audited)."""
    try:
        data = services.view_personal_data(request.user, holder_id)
    except services.PersonalDataRefused as exc:
        return _refused_page(request, exc, holder_id)
    return _no_store(render(request, "grants/holder.html", {"data": data}))


@login_required
def passages(request: HttpRequest, holder_id: int) -> HttpResponse:
    """A person's passages for a month (``?month=YYYY-MM``) under an active grant; otherwise a
    refusal (403, audited). A malformed month is a 400 with the reason, and nothing is read."""
    month = request.GET.get("month", "")
    try:
        data = services.view_passages(request.user, holder_id, month)
    except services.GrantError as exc:
        context = {"holder_id": holder_id, "month": month, "error": exc.messages[0]}
        return _no_store(render(request, "grants/passages.html", context, status=400))
    except services.PersonalDataRefused as exc:
        return _refused_page(request, exc, holder_id)
    context = {"holder_id": holder_id, "month": data.month, "data": data}
    return _no_store(render(request, "grants/passages.html", context))
