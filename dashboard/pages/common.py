"""Pieces every live page shares: the assets folder and the navigation bar."""

from __future__ import annotations

from pathlib import Path

from dash import html
from django.utils.translation import gettext as _

ASSETS = Path(__file__).resolve().parent.parent / "assets"


def nav_bar(title: str) -> html.Header:
    return html.Header(className="nav", children=[
        html.Strong(_("校园一卡通运营平台"), className="brand"),
        html.Span(title, className="nav-title"),
        html.Span(className="spacer"),
        html.A(_("首页"), href="/"),
        html.A(_("校门通行"), href="/live/gates/"),
        html.A(_("卡务动态"), href="/live/cards/"),
        html.A(_("管理后台"), href="/admin/"),
        html.A(_("退出"), href="/accounts/logout/confirm/"),
    ])
