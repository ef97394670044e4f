"""The door in front of every Dash page and its websocket: a logged-in Django session user
(from ``AuthMiddlewareStack``) holding a role that may see the page. Anonymous HTTP is
redirected to the login page; anonymous or unauthorised websockets are refused at the
handshake. The ASGI scope is kept in a ContextVar so Dash callbacks know who is watching.

An open websocket is re-checked every ``WS_RECHECK_S`` seconds: once its session has ended
(logout), the account was disabled, its password changed, its role no longer allows the page or
its scope changed (role, buildings, department — issue 20: a dorm manager moved from one
building to another; however the change was saved), the socket is closed (code 4401) — a desk
does not outlive the operator's right to see it, nor shows what it was granted before; the page
reconnects under the new scope.
Pages served here bypass Django's middleware, so the security headers are added here too."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from channels.db import database_sync_to_async
from django.conf import settings

from ops.accounts.permissions import dorm_scope, role_of
from ops.accounts.roles import Role
from ops.instruments import WEBSOCKET_CLIENTS

current_scope: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("dash_asgi_scope", default=None)

# What the guard's refusals and Dash's own 404s become (issue 19, item 6): the project's 403 and
# 404 pages, rendered by Django (its templates, the viewer's language, its headers), not a bare
# bilingual line or FastAPI's JSON. The marker tells ops.views.live_refused which one.
LIVE_REFUSAL = "campuscard_live_refusal"
FORBIDDEN, NOT_FOUND = "forbidden", "not_found"
_django: Any = None


def _django_app() -> Any:
    global _django
    if _django is None:
        from django.core.handlers.asgi import ASGIHandler

        _django = ASGIHandler()
    return _django


async def django_page(scope: dict[str, Any], receive: Any, send: Any, refusal: str) -> None:
    """Answer with Django's page for ``refusal`` (ops/urls.py routes ``live/`` to
    ``ops.views.live_refused``)."""
    await _django_app()({**scope, LIVE_REFUSAL: refusal}, receive, send)


class RoleGuard:
    def __init__(self, app: Any, *, allowed: Callable[[Any], bool], desk: str) -> None:
        self.app = app
        self.allowed = allowed
        self.desk = desk  # its websockets are counted under this name (/metrics, ops.instruments)

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
        role, buildings, department = await database_sync_to_async(_who)(user)
        scope = {
            **scope,
            "campuscard_role": role,
            "campuscard_buildings": buildings,
            "campuscard_department": department,
        }
        token = current_scope.set(scope)
        try:
            if scope["type"] == "websocket":
                await self._serve_websocket(scope, receive, send)
            else:
                await self._serve_http(scope, receive, send)
        finally:
            current_scope.reset(token)

    async def _serve_http(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """The Dash app's answer — but a 404 to a page request (GET/HEAD: a browser) becomes the
        project's 404 page; the request body the app read is handed on to Django again."""
        if scope.get("method") not in ("GET", "HEAD"):
            await self.app(scope, receive, _with_security_headers(send))
            return
        secured, read = _with_security_headers(send), []
        state = {"not_found": False}

        async def recording_receive() -> Any:
            message = await receive()
            read.append(message)
            return message

        async def watching_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start" and message["status"] == 404:
                state["not_found"] = True
            if not state["not_found"]:
                await secured(message)

        await self.app(scope, recording_receive, watching_send)
        if state["not_found"]:

            async def replay() -> Any:
                return read.pop(0) if read else await receive()

            await django_page(scope, replay, send, NOT_FOUND)

    async def _serve_websocket(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        revoked = asyncio.Event()
        clients = WEBSOCKET_CLIENTS.labels(desk=self.desk)  # counted from accept to the end
        state = {"accepted": False, "closed": False}
        from_client: asyncio.Future[Any] | None = None

        async def guarded_send(message: dict[str, Any]) -> None:
            if state["closed"]:
                return  # closed by the guard: the page's last words go nowhere
            if message["type"] == "websocket.accept" and not state["accepted"]:
                state["accepted"] = True
                clients.inc()
            elif message["type"] == "websocket.close":
                state["closed"] = True
            await send(message)

        async def guarded_receive() -> dict[str, Any]:
            nonlocal from_client
            if not revoked.is_set():
                if from_client is None:
                    from_client = asyncio.ensure_future(receive())
                waiting = asyncio.ensure_future(revoked.wait())
                await asyncio.wait({from_client, waiting}, return_when=asyncio.FIRST_COMPLETED)
                waiting.cancel()
                if from_client.done():
                    message, from_client = from_client.result(), None
                    return message
            return {"type": "websocket.disconnect", "code": REVOKED_CODE}

        async def watch() -> None:
            while True:
                await asyncio.sleep(settings.WS_RECHECK_S)
                if not await database_sync_to_async(_still_allowed)(scope, self.allowed):
                    break
            if state["accepted"] and not state["closed"]:
                state["closed"] = True
                with contextlib.suppress(Exception):
                    await send({"type": "websocket.close", "code": REVOKED_CODE})
            revoked.set()

        watcher = asyncio.ensure_future(watch())
        try:
            await self.app(scope, guarded_receive, guarded_send)
        finally:
            if state["accepted"]:
                clients.dec()
            watcher.cancel()
            if from_client is not None:
                from_client.cancel()

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
            headers = [(b"location", f"{settings.LOGIN_URL}?next={quote(target)}".encode()), (b"content-length", b"0")]
            await send({"type": "http.response.start", "status": 302, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        await django_page(scope, receive, send, FORBIDDEN)  # the project's 403 page (issue 19, item 6)


REVOKED_CODE = 4401
_SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


def _with_security_headers(send: Any) -> Any:
    """The headers Django's SecurityMiddleware and XFrameOptionsMiddleware give every other
    page (HSTS too in production), on the Dash pages' HTTP responses."""
    extra = list(_SECURITY_HEADERS)
    if getattr(settings, "SECURE_HSTS_SECONDS", 0):
        value = f"max-age={settings.SECURE_HSTS_SECONDS}"
        if settings.SECURE_HSTS_INCLUDE_SUBDOMAINS:
            value += "; includeSubDomains"
        if settings.SECURE_HSTS_PRELOAD:
            value += "; preload"
        extra.append((b"strict-transport-security", value.encode()))

    async def wrapped(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            present = {name.lower() for name, _ in message.get("headers", [])}
            message = {**message, "headers": [*message.get("headers", []), *(h for h in extra if h[0] not in present)]}
        await send(message)

    return wrapped


def _still_allowed(scope: dict[str, Any], allowed: Callable[[Any], bool]) -> bool:
    """The websocket's session still logs in a user allowed to see the page: re-read from
    the session store and the database (not the scope's copy), as a new request would."""
    from importlib import import_module

    from django.contrib.auth import get_user
    from django.http import HttpRequest

    session = scope.get("session")
    key = getattr(session, "session_key", None)
    if not key:
        return False
    store = import_module(settings.SESSION_ENGINE).SessionStore(key)
    request = HttpRequest()  # get_user reads only its session
    request.session = store
    user = get_user(request)  # checks the password hash and is_active
    scope_user = scope.get("user")
    if not (user.is_authenticated and user.pk == getattr(scope_user, "pk", None) and allowed(user)):
        return False
    # the grant the socket was opened under, still the operator's (issue 20, R-OPS-4, R-SEC-3):
    # a changed scope closes it as a logout does, whichever way the change was saved
    granted = (scope.get("campuscard_role"), scope.get("campuscard_buildings"), scope.get("campuscard_department"))
    return _who(user) == granted


def _who(user: Any) -> tuple[str | None, list[str] | None, int | None]:
    """The viewer's role, dorm scope and department, read once per connection (pages render
    from these) and again at every re-check."""

    role = role_of(user)
    operator = getattr(user, "operator", None)
    return (role.value if role else None), dorm_scope(user), getattr(operator, "department_id", None)


def role_in(scope: dict[str, Any] | None) -> Role | None:
    role = scope.get("campuscard_role") if scope else None
    return Role(role) if role else None


def language_of(scope: dict[str, Any] | None) -> str:
    """The operator's chosen UI language (Django's language cookie), else the default."""
    if scope:
        chosen = scope.get("cookies", {}).get(settings.LANGUAGE_COOKIE_NAME)
        if chosen in dict(settings.LANGUAGES):
            return chosen
    return settings.LANGUAGE_CODE
