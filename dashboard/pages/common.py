"""Pieces every live page shares: the assets folder and the navigation bar (per role)."""

from __future__ import annotations

from pathlib import Path

from dash import html
from django.utils.translation import gettext as _

from dashboard.guard import current_scope, role_in
from ops.accounts.roles import (
    CARD_ACTION_VIEWERS,
    DEVICE_VIEWERS,
    DORM_VIEWERS,
    GATE_VIEWERS,
    Role,
)

ASSETS = Path(__file__).resolve().parent.parent / "assets"


def nav_bar(title: str) -> html.Header:
    role = role_in(current_scope.get())
    links = [("/live/gates/", _("校门值班台"), GATE_VIEWERS),
             ("/live/devices/", _("设备值班台"), DEVICE_VIEWERS),
             ("/live/dorm/", _("宿舍门禁"), DORM_VIEWERS),
             ("/live/cards/", _("卡务动态"), CARD_ACTION_VIEWERS),
             ("/privacy/requests/", _("个人数据查询"), frozenset(Role)),
             ("/admin/", _("管理后台"), frozenset({Role.NIC}))]
    return html.Header(className="nav", children=[
        html.Strong(_("校园一卡通运营平台"), className="brand"),
        html.Span(title, className="nav-title"),
        html.Span(className="spacer"),
        *[html.A(label, href=href) for href, label, who in links if role in who],
        html.A(_("退出"), href="/accounts/logout/confirm/"),
    ])
