"""URL routes of the live pages, for ``ops/asgi.py``. Every page sits behind ``RoleGuard``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from channels.auth import AuthMiddlewareStack
from django.urls import re_path

from dashboard import emergency_feed, revocation_feed
from dashboard.guard import RoleGuard
from dashboard.pages import cards, devices, dorm, gates, muster
from ops.accounts.permissions import (
    can_see_emergency,
    can_view_card_actions,
    can_view_devices,
    can_view_dorms,
    can_view_gates,
    can_view_musters,
)
from ops.registry.selectors import may_view_cards

if TYPE_CHECKING:
    from channels.routing import URLRouter, _ExtendedURLPattern


def asgi_route(regex: str, app: Any) -> _ExtendedURLPattern:
    """``re_path`` to an ASGI app, as Channels' URLRouter takes it (django-stubs types the
    second argument of ``re_path`` as a Django view; channels-stubs calls such a route this)."""
    return cast("_ExtendedURLPattern", re_path(regex, app))


def desk_of(prefix: str) -> str:
    """The desk's name in the figures of /metrics: ``/live/gates/`` → ``gates``."""
    return prefix.strip("/").rsplit("/", 1)[-1]


# (prefix, dash app, who may see it)
PAGES = [
    (gates.PREFIX, gates.app, can_view_gates),
    (cards.PREFIX, cards.app, can_view_card_actions),
    (devices.PREFIX, devices.app, can_view_devices),
    (dorm.PREFIX, dorm.app, can_view_dorms),
    (muster.PREFIX, muster.app, can_view_musters),
]

_guarded = [(prefix, RoleGuard(app.server, allowed=allowed, desk=desk_of(prefix))) for prefix, app, allowed in PAGES]

# re_path without "$": a prefix match; the path reaches Dash unchanged. HTTP routes carry their
# own session/auth middleware (Django's middleware does not run for them); the websocket routes
# get it, with the origin check, in ops/asgi.py.
http_routes: list[_ExtendedURLPattern | URLRouter] = [
    asgi_route(rf"^{prefix.lstrip('/')}", AuthMiddlewareStack(guard)) for prefix, guard in _guarded
]
websocket_routes: list[_ExtendedURLPattern | URLRouter] = [
    asgi_route(rf"^{prefix.lstrip('/')}_dash-ws-callback$", guard) for prefix, guard in _guarded
]
# the card page's live revocation panel (issue 17, Build 6): not a Dash page, the same guard
websocket_routes.append(
    asgi_route(
        revocation_feed.PATH,
        RoleGuard(revocation_feed.CardRevocationFeed.as_asgi(), allowed=may_view_cards, desk="card-revocations"),
    )
)
# the emergency banner on every desk (issue 17, Build 2): every operator with a role
websocket_routes.append(
    asgi_route(
        emergency_feed.PATH,
        RoleGuard(emergency_feed.EmergencyBanner.as_asgi(), allowed=can_see_emergency, desk="emergency-banner"),
    )
)
