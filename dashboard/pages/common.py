"""Pieces every live page shares: its Dash app, the navigation bar (per role), panel headings with
the connection status, feed tables and tiles."""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from dash import Dash, html
from django.utils import translation
from django.utils.translation import gettext as _

from dashboard.guard import current_scope, language_of, role_in
from ops.accounts.roles import CARD_READERS, WHY_DENIED_URL, places_for

ASSETS = Path(__file__).resolve().parent.parent / "assets"


def viewer_language() -> AbstractContextManager[None]:
    """Render in the language of the viewer whose websocket or request this is."""
    return translation.override(language_of(current_scope.get()))


def page(title: str, *content: Any) -> html.Div:
    """A live page: the navigation bar with the page's title, then its content."""
    return html.Div(className="page", children=[nav_bar(title), *content])


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


def may_explain() -> bool:
    """Whether this desk's viewer may open 为什么被拒绝？ (the card view right, by role; the page
    checks again): their denied rows link to it (issue 19, item 5)."""
    return role_in(current_scope.get()) in CARD_READERS


def why_denied_url(event_id: str) -> str:
    """为什么被拒绝？ for one tap: the page finds its card and door (no UID in the desk's page)."""
    return f"{WHY_DENIED_URL}?event={event_id}"


def live_app(module: str, *, prefix: str, title: str) -> Dash:
    """A live page's Dash app: websocket callbacks on the FastAPI backend, mounted at ``prefix``
    (Channels' URLRouter does not strip the prefix), never timed out (a desk is open all day)."""
    return Dash(
        module,
        backend="fastapi",
        websocket_callbacks=True,
        url_base_pathname=prefix,
        websocket_inactivity_timeout=0,
        assets_folder=str(ASSETS),
        title=title,
        update_title="",  # the tab title stays as it is while a callback runs ("" or None: same)
    )


def status_head(title: str, status_id: str, *, class_name: str = "panel-head") -> html.Div:
    """A panel's heading with the page's connection status beside it."""
    return html.Div(
        className=class_name, children=[html.H3(title), html.Span(_("连接中…"), id=status_id, className="status")]
    )


def feed_table(headers: list[str], body: html.Tbody) -> html.Table:
    """A table of the latest rows under fixed headers."""
    return html.Table(className="feed", children=[html.Thead(html.Tr([html.Th(h) for h in headers])), body])


def panel(title: Any, *content: Any, class_name: str = "panel") -> html.Div:
    """A panel under its heading (a title, or a ``status_head``)."""
    head = html.H3(title) if isinstance(title, str) else title
    return html.Div(className=class_name, children=[head, *content])


def tile(
    label: str, value: Any, *, value_id: str | None = None, class_name: str = "tile", value_class: str = "tile-value"
) -> html.Div:
    """A figure with its label (``value_id``: pushes update the value in place)."""
    value_div = (
        html.Div(value, className=value_class)
        if value_id is None
        else html.Div(value, className=value_class, id=value_id)
    )
    return html.Div(className=class_name, children=[html.Div(label, className="tile-label"), value_div])


def grid(*panels: Any) -> html.Div:
    """Panels side by side."""
    return html.Div(className="grid", children=list(panels))
