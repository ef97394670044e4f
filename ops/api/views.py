"""Card API for HR and Academic Affairs systems: parse, call the service, render."""

from __future__ import annotations

from datetime import datetime, time

from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework.decorators import api_view, parser_classes
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from ops.api import serializers as s
from ops.registry.explain import NO_CARD_READ, explain_for
from ops.registry.lifecycle import importing, services
from ops.registry.lifecycle import photos as photo_checks
from ops.registry.lifecycle.errors import CardRuleError
from ops.registry.lifecycle.models import AccessGrant, ImportBatch
from ops.registry.models import Building, Card, Cardholder, Device
from ops.registry.selectors import may_view_cards, readable_cards


def _end_of(day):
    return timezone.make_aware(datetime.combine(day, time(23, 59, 59)))


def _card(uid: str) -> Card:
    return get_object_or_404(Card.objects.select_related("holder"), uid=uid.upper())


def _out(card: Card, status: int = 200) -> Response:
    return Response(s.CardOut(card).data, status=status)


def _valid(serializer_class, request: Request):
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


@extend_schema(request=s.IssueIn, responses={201: s.CardOut}, summary="发卡")
@api_view(["POST"])
def issue(request: Request) -> Response:
    data = _valid(s.IssueIn, request)
    holder = get_object_or_404(Cardholder, number=data["holder_number"])
    owner = services.department_on_record(data["owner_department"]) if data.get("owner_department") else None
    # R-CARD-9: an operator's username or a department's code on record, never a free-text name
    approver, approving_department = (
        services.approver_on_record(data["approved_by"]) if data.get("approved_by") else (None, None)
    )
    card = services.issue_card(
        holder=holder,
        uid=data["uid"],
        operator=request.user,
        approved_by_operator=approver,
        approving_department=approving_department,
        basis=data["basis"],
        card_type=data.get("card_type"),
        owner_department=owner,
        valid_until=_end_of(data["valid_until"]) if data.get("valid_until") else None,
    )
    return _out(card, 201)


@extend_schema(responses=s.CardOut, summary="查询卡")
@api_view(["GET"])
def card_detail(request: Request, uid: str) -> Response:
    """Scoped as the card admin is (issue 20, item 2): a token whose operator may not open card
    pages reads none (403); others read only the cards the admin shows them — any other UID is
    a 404, the same as a UID on no card."""
    if not may_view_cards(request.user):
        raise PermissionDenied(NO_CARD_READ)
    return _out(get_object_or_404(readable_cards(request.user).select_related("holder"), uid=uid.upper()))


@extend_schema(request=s.BasisIn, responses=s.CardOut, summary="挂失")
@api_view(["POST"])
def loss(request: Request, uid: str) -> Response:
    data = _valid(s.BasisIn, request)
    return _out(services.report_loss(card=_card(uid), operator=request.user, basis=data["basis"]))


@extend_schema(request=s.BasisIn, responses=s.CardOut, summary="解挂")
@api_view(["POST"])
def found(request: Request, uid: str) -> Response:
    data = _valid(s.BasisIn, request)
    return _out(services.report_found(card=_card(uid), operator=request.user, basis=data["basis"]))


@extend_schema(request=s.ReplaceIn, responses={201: s.CardOut}, summary="补卡/换卡")
@api_view(["POST"])
def replace(request: Request, uid: str) -> Response:
    data = _valid(s.ReplaceIn, request)
    card = services.replace_card(
        card=_card(uid),
        new_uid=data["new_uid"],
        operator=request.user,
        reason=data["reason"],
        basis=data["basis"],
        window=data.get("window", "API"),
        fee=data.get("fee"),
    )
    return _out(card, 201)


@extend_schema(request=s.CancelIn, responses=s.CardOut, summary="注销")
@api_view(["POST"])
def cancel(request: Request, uid: str) -> Response:
    data = _valid(s.CancelIn, request)
    return _out(
        services.cancel_card(
            card=_card(uid), operator=request.user, basis=data["basis"], holder_status=data.get("holder_status")
        )
    )


@extend_schema(request=s.ExtendIn, responses=s.CardOut, summary="延期")
@api_view(["POST"])
def extend(request: Request, uid: str) -> Response:
    data = _valid(s.ExtendIn, request)
    code = data.get("approving_department")
    return _out(
        services.extend_validity(
            card=_card(uid),
            new_until=_end_of(data["new_until"]),
            operator=request.user,
            basis=data["basis"],
            approving_department=services.department_on_record(code) if code else None,
        )
    )


@extend_schema(request=s.GrantIn, responses={201: s.GrantOut}, summary="临时卡授权通行（楼宇或设备）")
@api_view(["POST"])
def grant(request: Request, uid: str) -> Response:
    data = _valid(s.GrantIn, request)
    if data.get("building"):
        place: Building | Device = get_object_or_404(Building, code=data["building"])
    else:
        place = get_object_or_404(Device, code=data["device"])
    made = services.grant_access(
        card=_card(uid), place=place, until=_end_of(data["until"]), operator=request.user, basis=data["basis"]
    )
    return Response(s.GrantOut(made).data, status=201)


@extend_schema(request=s.BasisIn, responses=s.GrantOut, summary="撤销临时卡授权")
@api_view(["POST"])
def revoke_grant(request: Request, uid: str, pk: int) -> Response:
    data = _valid(s.BasisIn, request)
    found = get_object_or_404(AccessGrant.objects.select_related("card"), pk=pk, card__uid=uid.upper())
    return Response(s.GrantOut(services.revoke_grant(grant=found, operator=request.user, basis=data["basis"])).data)


def _batch_out(batch: ImportBatch, status: int = 200) -> Response:
    return Response(
        {
            "id": batch.id,
            "status": batch.status,
            "filename": batch.filename,
            "rows": batch.rows,
            **importing.summary(batch),
            "rejected_rows": importing.for_display(batch.plan["rejected"]),
        },
        status=status,
    )


@extend_schema(
    request={"multipart/form-data": s.ImportIn}, responses={201: s.ImportOut}, summary="导入名单：预览（不做任何更改）"
)
@api_view(["POST"])
@parser_classes([MultiPartParser, FormParser, JSONParser])
def import_preview(request: Request) -> Response:
    data = _valid(s.ImportIn, request)
    importing.require_import_right(request.user, data["kind"])  # before a byte is unpacked
    content = importing.read_upload(data["file"])  # refused by its size first (issue 20, item 5)
    photo_set = None
    if data.get("photos"):
        try:  # read where Django keeps it, capped (issue 20, item 4)
            photo_set = photo_checks.load_photo_set_from_upload(data["photos"])
        except photo_checks.PhotoSetError as exc:
            raise CardRuleError(str(exc)) from None
    batch = importing.preview_import(
        kind=data["kind"],
        filename=data["file"].name,
        data=content,
        operator=request.user,
        photo_set=photo_set,
    )
    return _batch_out(batch, 201)


@extend_schema(request=None, responses=s.ImportOut, summary="导入名单：确认并执行预览的计划")
@api_view(["POST"])
def import_apply(request: Request, pk: int) -> Response:
    batch = get_object_or_404(ImportBatch, pk=pk)
    importing.apply_import(batch=batch, operator=request.user)
    batch.refresh_from_db()
    return _batch_out(batch)


@extend_schema(responses=s.ImportOut, summary="导入批次")
@api_view(["GET"])
def import_detail(request: Request, pk: int) -> Response:
    batch = get_object_or_404(ImportBatch, pk=pk)
    importing.require_import_right(request.user, batch.kind)
    return _batch_out(batch)


@extend_schema(parameters=[], responses=None, summary="为什么这张卡在这里被拒绝？")
@api_view(["GET"])
def explain_view(request: Request) -> Response:
    uid, device = request.query_params.get("uid", ""), request.query_params.get("device", "")
    if not uid or not device:
        return Response({"detail": "需要参数 uid 和 device"}, status=400)
    try:
        result = explain_for(user=request.user, uid=uid, device_code=device)
    except LookupError as exc:
        return Response({"detail": str(exc)}, status=404)
    return Response(
        {
            "allowed": result.allowed,
            "reason": result.reason,
            "reason_label": result.reason_label,
            "explanation": result.text,
            "facts": result.facts,
        }
    )
