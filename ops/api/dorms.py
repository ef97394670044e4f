"""Dorm figures over the API (R-OPS-4), with the same scope as the dorm desk: a dorm manager
gets only their own buildings — any other building answers 403, exactly like one that does
not exist, so the API does not even confirm which buildings exist."""

from __future__ import annotations

from django.conf import settings
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.decorators import api_view
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response

from ops.accounts.permissions import can_view_dorms, dorm_scope
from ops.registry.dorm import dorm_snapshot
from ops.registry.models import Building

DormOut = inline_serializer(
    "DormOut",
    {
        "building": serializers.CharField(),
        "name": serializers.CharField(),
        "residents": serializers.IntegerField(),
        "inside": serializers.IntegerField(),
        "late_today": serializers.IntegerField(),
        "not_seen": serializers.IntegerField(),
        "not_seen_days": serializers.IntegerField(),
    },
)


@extend_schema(responses=DormOut, summary="宿舍楼实时概况（仅限本人负责的楼宇）")
@api_view(["GET"])
def dorm_summary(request: Request, code: str) -> Response:
    scope = dorm_scope(request.user)
    allowed = can_view_dorms(request.user) and (scope is None or code in scope)
    if not allowed or not Building.objects.filter(code=code, is_dorm=True).exists():
        raise PermissionDenied(_("无权查看此楼宇"))
    snap = dorm_snapshot(code, rows=0, not_seen_days=settings.DORM_NOT_SEEN_DAYS, with_names=False)
    return Response(
        {
            "building": code,
            "name": snap["name"],
            "residents": snap["residents"],
            "inside": len(snap["inside"]),
            "late_today": len(snap["late"]),
            "not_seen": snap["not_seen"],
            "not_seen_days": snap["not_seen_days"],
        }
    )
