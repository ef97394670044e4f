"""URL routes of the live pages, for ``ops/asgi.py``. Every page sits behind ``RoleGuard``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from channels.auth import AuthMiddlewareStack
from django.urls import re_path

from dashboard.guard import RoleGuard
from dashboard.pages import cards, devices, dorm, gates
from ops.accounts.permissions import (
    can_view_card_actions,
    can_view_devices,
    can_view_dorms,
    can_view_gates,
)

if TYPE_CHECKING:
    from channels.routing import URLRouter, _ExtendedURLPattern


def asgi_route(regex: str, app: Any) -> _ExtendedURLPattern:
    """``re_path`` to an ASGI app, as Channels' URLRouter takes it (django-stubs types the
    second argument of ``re_path`` as a Django view; channels-stubs calls such a route this)."""
    return cast("_ExtendedURLPattern", re_path(regex, app))


# (prefix, dash app, who may see it)
PAGES = [
    (gates.PREFIX, gates.app, can_view_gates),
    (cards.PREFIX, cards.app, can_view_card_actions),
    (devices.PREFIX, devices.app, can_view_devices),
    (dorm.PREFIX, dorm.app, can_view_dorms),
]

_guarded = [(prefix, RoleGuard(app.server, allowed=allowed)) for prefix, app, allowed in PAGES]

# re_path without "$": a prefix match; the path reaches Dash unchanged. HTTP routes carry their
# own session/auth middleware (Django's middleware does not run for them); the websocket routes
# get it, with the origin check, in ops/asgi.py.
http_routes: list[_ExtendedURLPattern | URLRouter] = [
    asgi_route(rf"^{prefix.lstrip('/')}", AuthMiddlewareStack(guard)) for prefix, guard in _guarded
]
websocket_routes: list[_ExtendedURLPattern | URLRouter] = [
    asgi_route(rf"^{prefix.lstrip('/')}_dash-ws-callback$", guard) for prefix, guard in _guarded
]
