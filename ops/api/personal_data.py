"""Personal-data queries over the API (R-SEC-2): file a request with its written basis
(multipart), follow it, approve / reject / review / revoke it, and read a person's data under
an active grant. Without one the answer is 403 with the (translated) reason — and the refusal
is audited, as every view is. Rule errors are 400 with ``{"detail": ...}`` (ops.api.errors)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.decorators import api_view, parser_classes
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from ops.personal_data import basis_store, services
from ops.personal_data.models import PersonalDataRequest


class RequestIn(serializers.Serializer):
    purpose = serializers.CharField(max_length=500, allow_blank=True, required=False, default="")
    numbers = serializers.CharField(
        allow_blank=True, required=False, default="", help_text="学工号，逗号、空格或换行分隔"
    )
    basis = serializers.FileField(
        required=False, allow_empty_file=True, help_text="书面依据：PDF、JPG 或 PNG，不超过 10 MB"
    )


class CommentIn(serializers.Serializer):
    comment = serializers.CharField(max_length=200, allow_blank=True, required=False, default="")


class ReviewIn(CommentIn):
    hours = serializers.IntegerField(
        required=False,
        allow_null=True,
        default=None,
        help_text="授权时长（小时），默认 PERSONAL_DATA_GRANT_HOURS，最长 168",
    )


class RevokeIn(serializers.Serializer):
    reason = serializers.CharField(max_length=200, allow_blank=True, required=False, default="")


RequestOut = inline_serializer(
    "PersonalDataRequestOut",
    {
        "id": serializers.IntegerField(),
        "status": serializers.CharField(),
        "status_label": serializers.CharField(),
        "active": serializers.BooleanField(),
        "purpose": serializers.CharField(),
        "requester": serializers.CharField(),
        "numbers": serializers.ListField(child=serializers.CharField()),
        "basis": serializers.DictField(),
        "approver": serializers.CharField(allow_null=True),
        "approved_at": serializers.DateTimeField(allow_null=True),
        "reviewer": serializers.CharField(allow_null=True),
        "reviewed_at": serializers.DateTimeField(allow_null=True),
        "valid_until": serializers.DateTimeField(allow_null=True),
    },
)
PassagesOut = inline_serializer(
    "PassagesOut",
    {
        "holder_id": serializers.IntegerField(),
        "number": serializers.CharField(),
        "name": serializers.CharField(),
        "month": serializers.CharField(),
        "rows": serializers.ListField(child=serializers.DictField()),
        "truncated": serializers.BooleanField(),
        "request_id": serializers.IntegerField(),
        "valid_until": serializers.DateTimeField(),
    },
)
PersonalDataOut = inline_serializer(
    "PersonalDataOut",
    {
        "holder_id": serializers.IntegerField(),
        "number": serializers.CharField(),
        "name": serializers.CharField(),
        "kind": serializers.CharField(),
        "department": serializers.CharField(),
        "citizen_id": serializers.CharField(),
        "phone": serializers.CharField(),
        "class_name": serializers.CharField(),
        "title": serializers.CharField(),
        "request_id": serializers.IntegerField(),
        "valid_until": serializers.DateTimeField(),
    },
)


def _iso(value: Any) -> str | None:
    return value.isoformat() if value else None


def _out(req: PersonalDataRequest, status: int = 200) -> Response:
    return Response(
        {
            "id": req.pk,
            "status": req.shown_status(),
            "status_label": req.shown_status_label(),
            "active": req.is_active(),
            "purpose": req.purpose,
            "requester": req.requester.username,
            "numbers": sorted(req.cardholders.values_list("number", flat=True)),
            "basis": {
                "name": req.basis_name,
                "sha256": req.basis_sha256,
                "content_type": req.basis_type,
                "size": req.basis_size,
            },
            "approver": req.approver.username if req.approver else None,
            "approved_at": _iso(req.approved_at),
            "approver_comment": req.approver_comment,
            "reviewer": req.reviewer.username if req.reviewer else None,
            "reviewed_at": _iso(req.reviewed_at),
            "reviewer_comment": req.reviewer_comment,
            "valid_until": _iso(req.valid_until),
        },
        status=status,
    )


def _valid(serializer_class: type[serializers.Serializer], request: Request) -> dict[str, Any]:
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _forbidden_as_403(call: Callable[[], PersonalDataRequest]) -> PersonalDataRequest:
    """Django's PermissionDenied would become DRF's generic 403; keep the rule's message."""
    try:
        return call()
    except services.GrantForbidden as exc:
        raise PermissionDenied(str(exc.args[0]) if exc.args else None) from None


def _visible(request: Request, pk: int) -> PersonalDataRequest:
    req = PersonalDataRequest.objects.select_related("requester", "approver", "reviewer").filter(pk=pk).first()
    if req is None or not services.can_see(request.user, req):
        raise NotFound(_("申请不存在"))
    return req


@extend_schema(
    request={"multipart/form-data": RequestIn},
    responses={201: RequestOut},
    summary="提交个人数据查询申请（含书面依据文件）",
)
@api_view(["POST"])
@parser_classes([MultiPartParser, FormParser])
def file_request(request: Request) -> Response:
    data = _valid(RequestIn, request)
    upload = data.get("basis")
    if upload is None:
        raise services.GrantError(_("请上传书面依据（PDF、JPG 或 PNG 文件）"))
    req = _forbidden_as_403(
        lambda: services.file_request(
            by=request.user,
            purpose=data["purpose"],
            numbers=data["numbers"],
            basis_name=upload.name or "",
            basis_data=upload.read(basis_store.MAX_BYTES + 1),
        )
    )
    return _out(req, 201)


@extend_schema(responses=RequestOut, summary="个人数据查询申请")
@api_view(["GET"])
def request_detail(request: Request, pk: int) -> Response:
    services.expire_due()
    return _out(_visible(request, pk))


def _step(request: Request, pk: int, call: Callable[[], PersonalDataRequest]) -> Response:
    if not PersonalDataRequest.objects.filter(pk=pk).exists():
        raise NotFound(_("申请不存在"))
    req = _forbidden_as_403(call)  # a role that may not take the step: 403 with the rule
    return _out(_visible(request, req.pk))


@extend_schema(request=CommentIn, responses=RequestOut, summary="分管领导批准")
@api_view(["POST"])
@parser_classes([JSONParser, FormParser, MultiPartParser])
def approve(request: Request, pk: int) -> Response:
    data = _valid(CommentIn, request)
    return _step(request, pk, lambda: services.approve(pk, by=request.user, comment=data["comment"]))


@extend_schema(request=CommentIn, responses=RequestOut, summary="驳回（领导审批时或网信中心复核时）")
@api_view(["POST"])
@parser_classes([JSONParser, FormParser, MultiPartParser])
def reject(request: Request, pk: int) -> Response:
    data = _valid(CommentIn, request)
    return _step(request, pk, lambda: services.reject(pk, by=request.user, comment=data["comment"]))


@extend_schema(request=ReviewIn, responses=RequestOut, summary="网信中心复核并授权")
@api_view(["POST"])
@parser_classes([JSONParser, FormParser, MultiPartParser])
def review(request: Request, pk: int) -> Response:
    data = _valid(ReviewIn, request)
    return _step(
        request, pk, lambda: services.review(pk, by=request.user, hours=data["hours"], comment=data["comment"])
    )


@extend_schema(request=RevokeIn, responses=RequestOut, summary="网信中心撤销申请或授权")
@api_view(["POST"])
@parser_classes([JSONParser, FormParser, MultiPartParser])
def revoke(request: Request, pk: int) -> Response:
    data = _valid(RevokeIn, request)
    return _step(request, pk, lambda: services.revoke(pk, by=request.user, reason=data["reason"]))


@extend_schema(responses={200: PersonalDataOut}, summary="查看个人数据（须有生效的授权；每次查看均审计）")
@api_view(["GET"])
def holder(request: Request, holder_id: int) -> Response:
    try:
        data = services.view_personal_data(request.user, holder_id)
    except services.PersonalDataRefused as exc:
        return Response({"detail": str(exc.args[0]), "reason": exc.reason}, status=403)
    response = Response(data.as_dict())
    response["Cache-Control"] = "private, no-store"
    return response


@extend_schema(
    parameters=[OpenApiParameter("month", str, description="YYYY-MM（校区时区），默认本月")],
    responses={200: PassagesOut},
    summary="查看某人一个月的通行记录（须有生效的授权；每次查看均审计）",
)
@api_view(["GET"])
def passages(request: Request, holder_id: int) -> Response:
    try:
        data = services.view_passages(request.user, holder_id, request.query_params.get("month"))
    except services.PersonalDataRefused as exc:
        return Response({"detail": str(exc.args[0]), "reason": exc.reason}, status=403)
    response = Response(data.as_dict())
    response["Cache-Control"] = "private, no-store"
    return response
