"""The API's front door (issue 19, item 12): ``/api/`` answers with an index, ``/api/docs/`` is
the interactive documentation (Swagger UI, its files served from here by
drf-spectacular-sidecar: no CDN), and an unknown ``/api/…`` path answers in JSON, never with an
HTML page. The docs and the schema are for a staff session (an operator logged in) or a token."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.decorators import api_view, authentication_classes, permission_classes
from rest_framework.permissions import AllowAny, BasePermission
from rest_framework.request import Request
from rest_framework.response import Response

TOKEN_COMMAND = "campuscard api_token USERNAME"  # noqa: S105  (a command line, not a password)

# (path, method(s), what it does) — the index's list; the schema has the details
ENDPOINTS = [
    ("v1/cards/", "POST", gettext_lazy("发卡")),
    ("v1/cards/{uid}/", "GET", gettext_lazy("查询校园卡")),
    ("v1/cards/{uid}/loss/", "POST", gettext_lazy("挂失")),
    ("v1/cards/{uid}/found/", "POST", gettext_lazy("解挂")),
    ("v1/cards/{uid}/replace/", "POST", gettext_lazy("补卡")),
    ("v1/cards/{uid}/cancel/", "POST", gettext_lazy("注销")),
    ("v1/cards/{uid}/extend/", "POST", gettext_lazy("延期")),
    ("v1/cards/{uid}/grants/", "POST", gettext_lazy("临时卡授权")),
    ("v1/imports/", "POST", gettext_lazy("名单导入（预览）")),
    ("v1/explain/", "GET", gettext_lazy("为什么被拒绝？")),
    ("v1/dorms/{code}/", "GET", gettext_lazy("宿舍楼概况")),
    ("v1/privacy/requests/", "POST", gettext_lazy("个人数据查询申请")),
]


class StaffOrToken(BasePermission):
    """The schema: a token (the systems that call the API) or an operator's staff session (the
    docs page in a browser)."""

    def has_permission(self, request: Any, view: Any) -> bool:
        user = request.user
        if not (user and user.is_authenticated and user.is_active):
            return False
        return request.auth is not None or bool(user.is_staff)


schema_view = SpectacularAPIView.as_view(
    authentication_classes=[TokenAuthentication, SessionAuthentication], permission_classes=[StaffOrToken]
)
_swagger = SpectacularSwaggerView.as_view(
    url_name="api-schema", authentication_classes=[SessionAuthentication], permission_classes=[StaffOrToken]
)


@login_required
def docs(request: HttpRequest) -> HttpResponse:
    """Swagger UI, for a logged-in operator (security by default: the anonymous are sent to log
    in; an account without staff rights is refused)."""
    if not request.user.is_staff:
        raise PermissionDenied(_("API 文档只对操作员开放"))
    return _swagger(request)


@extend_schema(exclude=True)  # the index points at the schema; it is not an endpoint of it
@api_view(["GET"])
@authentication_classes([TokenAuthentication, SessionAuthentication])
@permission_classes([AllowAny])
def index(request: Request) -> Response:
    """What the API is and where to start: the docs, the schema, how to get a token. The list of
    endpoints only to whoever is logged in or sends a token."""
    body: dict[str, Any] = {
        "name": _("校园一卡通卡务接口"),
        "version": "v1",
        "docs": reverse("api-docs"),
        "schema": reverse("api-schema"),
        "authentication": _("请求头 Authorization: Token <key>；令牌由网信中心用 %(command)s 生成")
        % {"command": TOKEN_COMMAND},
    }
    if request.user.is_authenticated:  # a valid token or a session
        body["endpoints"] = [
            {"path": f"/api/{path}", "method": method, "summary": str(summary)} for path, method, summary in ENDPOINTS
        ]
    return Response(body)


def not_found(request: HttpRequest, rest: str = "") -> JsonResponse:
    """An unknown path under /api/: JSON, as every other API answer, with where to look."""
    return JsonResponse(
        {"detail": _("没有这个接口：%(path)s。接口列表见 /api/") % {"path": request.path}},
        status=404,
        json_dumps_params={"ensure_ascii": False},
    )
