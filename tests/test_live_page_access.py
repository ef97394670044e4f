"""Anonymous HTTP requests to the live page redirect to login; anonymous or foreign-origin
websocket connections are refused.

Everything runs in-process against the real ASGI application (``ops.asgi.application``) with
real operator accounts in the database and real Django sessions, the way a browser reaches it.
"""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from channels.testing import HttpCommunicator, WebsocketCommunicator
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client

from ops.accounts.roles import Role
from ops.accounts.services import create_or_update_operator
from ops.asgi import application
from ops.registry.models import Building

pytestmark = pytest.mark.django_db(transaction=True)

PAGE = "/live/gates/"
WS_PATH = PAGE + "_dash-ws-callback"
HOST = (b"host", b"127.0.0.1")
SAME_ORIGIN = (b"origin", b"http://127.0.0.1")
FOREIGN_ORIGIN = (b"origin", b"http://evil.example")
GUARD_REFUSAL = 4403  # RoleGuard closes before accept (the browser sees HTTP 403)


# -- helpers ---------------------------------------------------------------------------------


def _operator(role: Role, username: str | None = None, **scope):
    return create_or_update_operator(
        username=username or f"op-{role.value}", password="not-used-1234", role=role, **scope
    )


def _dorm_manager():
    dorm = Building.objects.create(code="D9", name="9号学生公寓", is_dorm=True)
    return _operator(Role.DORM_MANAGER, buildings=[dorm])


def _session_cookie(user) -> tuple[bytes, bytes]:
    """A real Django session for ``user``, as the cookie header a browser would send."""
    client = Client()
    client.force_login(user)
    session_id = client.cookies[settings.SESSION_COOKIE_NAME].value
    return (b"cookie", f"{settings.SESSION_COOKIE_NAME}={session_id}".encode())


def _http(method: str, path: str, headers=(), body: bytes = b"") -> dict:
    async def go():
        communicator = HttpCommunicator(application, method, path, body=body, headers=[HOST, *headers])
        return await communicator.get_response(timeout=20)

    return async_to_sync(go)()


def _header(response: dict, name: bytes) -> str:
    for key, value in response["headers"]:
        if key.lower() == name:
            return value.decode("latin-1")
    raise AssertionError(f"the response has no {name.decode()} header")


def _ws_connect(headers) -> tuple[bool, object]:
    """Open the live page's websocket; returns what ``connect`` says (and closes it again)."""

    async def go():
        communicator = WebsocketCommunicator(application, WS_PATH, headers=list(headers))
        connected, detail = await communicator.connect(timeout=10)
        if connected:
            await communicator.disconnect(timeout=10)
        else:
            await communicator.wait(timeout=5)
        return connected, detail

    return async_to_sync(go)()


# -- HTTP ------------------------------------------------------------------------------------


def test_an_anonymous_visit_to_the_live_page_redirects_to_login():
    response = _http("GET", PAGE)

    assert response["status"] == 302
    assert _header(response, b"location").startswith(f"/accounts/login/?next={PAGE}")
    assert response["body"] == b""  # nothing of the page leaks


def test_an_anonymous_dash_callback_post_is_redirected_not_answered():
    response = _http(
        "POST",
        PAGE + "_dash-update-component",
        headers=[(b"content-type", b"application/json")],
        body=b'{"output": "gates-total-allow.children", "inputs": []}',
    )

    assert response["status"] == 302
    assert _header(response, b"location").startswith(f"/accounts/login/?next={PAGE}_dash-update-component")


def test_an_anonymous_request_for_the_page_layout_is_redirected():
    """The layout (component tree) is data too: it must not be served without a session."""
    response = _http("GET", PAGE + "_dash-layout")

    assert response["status"] == 302
    assert _header(response, b"location").startswith("/accounts/login/?next=")


@pytest.mark.parametrize("role", [Role.SECURITY, Role.NIC])
def test_the_security_office_and_nic_see_the_live_gate_page(role):
    """R-OPS-2: the security office watches the gates; NIC runs everything."""
    response = _http("GET", PAGE, headers=[_session_cookie(_operator(role))])

    assert response["status"] == 200
    assert _header(response, b"content-type").startswith("text/html")
    assert b"<html" in response["body"].lower()
    assert b"_dash-config" in response["body"]  # the Dash page itself, not some other HTML


def test_a_dorm_manager_is_forbidden_the_gate_page():
    """R-OPS-4 / R-SEC-3: a dorm manager's scope is their own buildings, not the campus gates."""
    response = _http("GET", PAGE, headers=[_session_cookie(_dorm_manager())])

    assert response["status"] == 403
    _assert_project_page(response, "forbidden", "您的角色不能打开这个值班台")


def test_a_dorm_manager_cannot_call_the_gate_page_callbacks_either():
    response = _http(
        "POST",
        PAGE + "_dash-update-component",
        headers=[_session_cookie(_dorm_manager()), (b"content-type", b"application/json")],
        body=b'{"output": "gates-total-allow.children", "inputs": []}',
    )

    assert response["status"] == 403


def test_a_logged_in_user_without_an_operator_role_is_forbidden():
    """R-SEC-3: permissions come from a role granted by NIC; an account alone grants nothing."""
    user = get_user_model().objects.create_user(username="no-role", password="not-used-1234")

    response = _http("GET", PAGE, headers=[_session_cookie(user)])

    assert response["status"] == 403
    _assert_project_page(response, "forbidden", "您的角色不能打开这个值班台")


def _assert_project_page(response: dict, ident: str, words: str) -> None:
    """Issue 19, item 6: the project's own page (its template, its header and language menu, in
    the operator's language: Chinese by default), not a bare bilingual line or a desk's JSON."""
    html = response["body"].decode()
    assert _header(response, b"content-type").startswith("text/html")
    assert f'id="{ident}"' in html and words in html, html[:2000]
    assert 'lang="zh-hans"' in html and 'name="language"' in html  # base.html, with the language menu
    assert "You are not allowed" not in html and "Not Found" not in html
    assert _header(response, b"x-frame-options") == "DENY"  # Django's middleware ran


def test_an_unknown_path_under_a_desk_is_the_projects_404_page_not_json():
    """Dash's own 404 is FastAPI's ``{"detail":"Not Found"}``: the guard hands it to Django."""
    response = _http("GET", PAGE + "no-such-page", headers=[_session_cookie(_operator(Role.SECURITY))])

    assert response["status"] == 404
    _assert_project_page(response, "not-found", "页面不存在")


def test_the_desks_refusal_follows_the_operators_language():
    english = (b"cookie", _session_cookie(_dorm_manager())[1] + b"; " + settings.LANGUAGE_COOKIE_NAME.encode() + b"=en")
    html = _http("GET", PAGE, headers=[english])["body"].decode()
    assert 'lang="en"' in html and "Your role may not open this desk" in html and "无权访问" not in html


# -- websocket -------------------------------------------------------------------------------


def test_an_anonymous_websocket_is_refused():
    # Same origin, so it is the login check (not the origin check) that refuses it.
    connected, code = _ws_connect([HOST, SAME_ORIGIN])

    assert connected is False
    assert code == GUARD_REFUSAL


def test_a_foreign_origin_websocket_is_refused_even_with_a_valid_session():
    """Cross-site websocket hijacking: another site's page riding on the operator's cookie."""
    cookie = _session_cookie(_operator(Role.SECURITY))

    connected, _ = _ws_connect([HOST, FOREIGN_ORIGIN, cookie])

    assert connected is False


def test_a_websocket_without_an_origin_is_refused():
    cookie = _session_cookie(_operator(Role.SECURITY))

    connected, _ = _ws_connect([HOST, cookie])

    assert connected is False


def test_a_dorm_managers_websocket_to_the_gate_page_is_refused():
    """R-OPS-4: the gate feed is not pushed to a dorm manager, even over a raw websocket."""
    connected, code = _ws_connect([HOST, SAME_ORIGIN, _session_cookie(_dorm_manager())])

    assert connected is False
    assert code == GUARD_REFUSAL


def test_a_security_officers_websocket_is_accepted_and_closes_cleanly():
    """R-OPS-2: the security office's page gets its live connection."""
    connected, _ = _ws_connect([HOST, SAME_ORIGIN, _session_cookie(_operator(Role.SECURITY))])

    assert connected is True
