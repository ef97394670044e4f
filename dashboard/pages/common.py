"""Pieces every live page shares: the assets folder and the navigation bar (per role)."""

from __future__ import annotations

from pathlib import Path

from dash import html
from django.utils.translation import gettext as _

from dashboard.guard import current_scope, role_in
from ops.accounts.roles import places_for

ASSETS = Path(__file__).resolve().parent.parent / "assets"


def nav_bar(title: str) -> html.Header:
    role = role_in(current_scope.get())
    return html.Header(
        className="nav",
        children=[
            html.Strong(_("校园一卡通运营平台"), className="brand"),
            html.Span(title, className="nav-title"),
            html.Span(className="spacer"),
            *[html.A(label, href=href) for href, label in places_for(role)],
            html.A(_("退出"), href="/accounts/logout/confirm/"),
        ],
    )
