"""The door in front of every Dash page and its websocket: a logged-in Django session user
(from ``AuthMiddlewareStack``) holding a role that may see the page. Anonymous HTTP is
redirected to the login page; anonymous or unauthorised websockets are refused at the
handshake. The ASGI scope is kept in a ContextVar so Dash callbacks know who is watching."""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from channels.db import database_sync_to_async
from django.conf import settings

current_scope: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "dash_asgi_scope", default=None
)

FORBIDDEN_HTML = (
    "<!doctype html><meta charset=utf-8><title>403</title>"
    "<p style='font-family:sans-serif'>无权访问此页面（403）。请联系网信中心开通权限。"
    "<br>You are not allowed to see this page. <a href='/'>首页 / Home</a></p>"
).encode()


class RoleGuard:
    def __init__(self, app: Any, *, allowed: Callable[[Any], bool]) -> None:
        self.app = app
        self.allowed = allowed

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        user = scope.get("user")
        if user is None or not user.is_authenticated:
            await self._refuse(scope, receive, send, login=True)
            return
        if not await database_sync_to_async(self.allowed)(user):
            await self._refuse(scope, receive, send, login=False)
            return
        role, buildings = await database_sync_to_async(_who)(user)
        scope = {**scope, "campuscard_role": role, "campuscard_buildings": buildings}
        token = current_scope.set(scope)
        try:
            await self.app(scope, receive, send)
        finally:
            current_scope.reset(token)

    @staticmethod
    async def _refuse(scope: dict[str, Any], receive: Any, send: Any, *, login: bool) -> None:
        if scope["type"] == "websocket":
            message = await receive()
            if message["type"] == "websocket.connect":
                await send({"type": "websocket.close", "code": 4403})  # before accept → HTTP 403
            return
        if login:
            qs = scope.get("query_string", b"").decode("latin-1")
            target = scope["path"] + ("?" + qs if qs else "")
            headers = [(b"location", f"{settings.LOGIN_URL}?next={quote(target)}".encode()),
                       (b"content-length", b"0")]
            await send({"type": "http.response.start", "status": 302, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        await send({"type": "http.response.start", "status": 403,
                    "headers": [(b"content-type", b"text/html; charset=utf-8"),
                                (b"content-length", str(len(FORBIDDEN_HTML)).encode())]})
        await send({"type": "http.response.body", "body": FORBIDDEN_HTML})


def _who(user: Any) -> tuple[str | None, list[str] | None]:
    """The viewer's role and dorm scope, read once per connection (pages render from these)."""
    from ops.accounts.permissions import dorm_scope, role_of

    role = role_of(user)
    return (role.value if role else None), dorm_scope(user)


def role_in(scope: dict[str, Any] | None) -> str | None:
    return scope.get("campuscard_role") if scope else None


def language_of(scope: dict[str, Any] | None) -> str:
    """The operator's chosen UI language (Django's language cookie), else the default."""
    if scope:
        chosen = scope.get("cookies", {}).get(settings.LANGUAGE_COOKIE_NAME)
        if chosen in dict(settings.LANGUAGES):
            return chosen
    return settings.LANGUAGE_CODE
