"""Campus single sign-on in a real browser (issue 16; R-SEC-1, R-SEC-3): a person signs in through
a real CAS server (django-cas-server, its own process) and through a real LDAP directory (Debian's
slapd) on the login form; the first time, they get an operator account with no rights and land on
a page saying NIC must grant a role, while desks, records and the admin stay shut; a directory
entry never takes over a local account (NIC's break-glass admin signs in locally as before); and
every way of logging out — the product's logout button, or logging out of the campus CAS portal
(single logout) — ends the session and closes that session's open live-desk websocket.

Real daphne on the test's PostgreSQL, real slapd and CAS server on free ports in temp dirs."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from django.contrib.auth import get_user_model

from dashboard.guard import REVOKED_CODE
from ops.accounts.models import SignIn
from ops.accounts.roles import Role
from ops.accounts.services import create_or_update_operator
from ops.audit.models import AuditRecord
from tests.browser import chromium, free_port, stop, wait_http
from tests.browser import outside_the_browser_loop as db
from tests.sso_servers import Person, cas_server, directory, ldap_settings

pytestmark = [pytest.mark.browser]

LOCAL_PASSWORD = "break-glass-pass-7"
# in the directory: a newcomer, and an entry named like NIC's local break-glass account
WANG = Person("wangfang", "ldap-pass-wang-1", "王芳", "wangfang@campus.test")
IMPOSTOR = Person("nic-duty", "ldap-pass-nic-1", "冒名者", "nic@campus.test")
# at the CAS server (which calls every one of its users staff and superuser: that must grant nothing)
LI = Person("li.lei", "cas-pass-li-1", "李雷", "lilei@campus.test")
AWAITING = "网信中心"  # the page a role-less account lands on names who grants roles


@pytest.fixture(scope="module")
def sso(tmp_path_factory) -> Iterator[dict[str, str]]:
    """The campus's LDAP directory and CAS server, for the whole file."""
    tmp = tmp_path_factory.mktemp("sso")
    try:
        with directory(tmp / "slapd", [WANG, IMPOSTOR]) as ldap_uri, cas_server(tmp / "cas", [LI]) as cas_url:
            yield {"CAS_SERVER_URL": cas_url, **ldap_settings(ldap_uri)}
    except RuntimeError as exc:  # a missing or broken slapd/CAS server fails the run, never skips it
        pytest.fail(str(exc))


@pytest.fixture
def web(sso, subprocess_env, redis_client) -> Iterator[str]:
    """Real daphne with CAS and LDAP on; websockets re-checked every second."""
    port = free_port()
    env = {**subprocess_env, **sso, "WS_RECHECK_S": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "ops.asgi:application"], env=env
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", proc=proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(proc, signal.SIGTERM)


def _sign_in_through_cas(page, web: str, cas: str, username: str, password: str) -> None:
    page.goto(f"{web}/")
    page.wait_for_url(f"{web}/accounts/login/?next=/")
    assert page.inner_text("#cas-login") == "统一身份认证登录"
    page.click("#cas-login")
    page.wait_for_url(f"{cas}login?**")  # the CAS server's own page
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("#login_form button[type=submit]")
    page.wait_for_url(f"{web}/")


def _sign_in_on_the_form(page, web: str, username: str, password: str) -> None:
    page.goto(f"{web}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("#login-submit")


def _audit(action: str, object_id: str) -> list[AuditRecord]:
    return list(AuditRecord.objects.filter(action=action, object_id=object_id).order_by("id"))


def _shut_out(page, web: str) -> None:
    """A role-less account: no desk, no personal-data requests, no admin."""
    assert page.goto(f"{web}/live/gates/").status == 403
    assert page.goto(f"{web}/live/devices/").status == 403
    assert page.goto(f"{web}/privacy/requests/").status == 403
    page.goto(f"{web}/admin/")
    assert page.url.startswith(f"{web}/accounts/login/"), page.url  # not staff: the admin is not theirs


def test_a_first_time_cas_user_gets_no_rights_and_is_told_nic_must_grant_a_role(web, sso):
    cas = sso["CAS_SERVER_URL"]
    with chromium() as browser:
        page = browser.new_page()
        _sign_in_through_cas(page, web, cas, LI.uid, LI.password)
        waiting = page.inner_text("#awaiting-role")
        assert "尚未分配角色" in waiting and AWAITING in waiting and "统一身份认证（CAS）" in waiting
        _shut_out(page, web)

        # in English too
        page.goto(f"{web}/")
        with page.expect_navigation():
            page.select_option("select[name=language]", "en")
        assert "NIC must grant" in page.inner_text("#awaiting-role")

    user = get_user_model().objects.get(username="li.lei")
    assert (user.first_name, user.email) == ("李雷", "lilei@campus.test")  # from the CAS attributes
    # the CAS server said staff and superuser: nothing of it reaches the product (R-SEC-3)
    assert not user.is_staff and not user.is_superuser and not user.has_usable_password()
    assert user.operator.role == "" and user.operator.sign_in == SignIn.CAS
    assert not user.groups.exists() and not user.user_permissions.exists()
    (created,) = _audit("account.sso_created", "li.lei")
    assert created.data == {"sign_in": "cas", "role": None, "is_staff": False, "is_superuser": False}
    assert _audit("auth.login", "li.lei")


def test_ldap_sign_in_on_the_login_form_and_a_local_account_is_never_taken_over(web):
    create_or_update_operator(username="nic-duty", password=LOCAL_PASSWORD, role=Role.NIC, full_name="值班管理员")
    with chromium() as browser:
        # a newcomer from the directory: an account with no rights, told to ask NIC
        page = browser.new_page()
        page.goto(f"{web}/accounts/login/")
        assert page.is_visible("#ldap-hint")
        _sign_in_on_the_form(page, web, "WangFang", WANG.password)  # the directory does not mind case
        page.wait_for_url(f"{web}/")
        assert AWAITING in page.inner_text("#awaiting-role")
        _shut_out(page, web)

        # a directory entry named like the local break-glass admin, with the directory's password:
        # refused, audited, and the local account is untouched
        impostor = browser.new_context().new_page()
        _sign_in_on_the_form(impostor, web, IMPOSTOR.uid, IMPOSTOR.password)
        assert "用户名或密码不正确" in impostor.inner_text(".errorlist")
        assert impostor.url.startswith(f"{web}/accounts/login/")

        # NIC's break-glass admin signs in with the local password, as before
        nic = browser.new_context().new_page()
        _sign_in_on_the_form(nic, web, "nic-duty", LOCAL_PASSWORD)
        nic.wait_for_url(f"{web}/live/devices/")

    wang = get_user_model().objects.select_related("operator").get(username="wangfang")
    assert (wang.first_name, wang.email) == ("王芳", "wangfang@campus.test")
    assert wang.operator.role == "" and wang.operator.sign_in == SignIn.LDAP and not wang.is_staff
    assert len(_audit("account.sso_created", "wangfang")) == 1
    (refused,) = _audit("auth.sso_refused", "nic-duty")
    assert refused.data == {"sign_in": "ldap", "reason": "local_account"}
    local = get_user_model().objects.select_related("operator").get(username="nic-duty")
    assert local.first_name == "值班管理员" and local.operator.sign_in == SignIn.LOCAL


def _grant_in_the_admin(page, web: str, username: str, role: Role) -> None:
    """NIC grants the role on the account's admin page (the Operator inline); audited."""
    user_id = db(lambda: get_user_model().objects.get(username=username).pk)
    page.goto(f"{web}/admin/auth/user/{user_id}/change/")
    page.select_option("#id_operator-0-role", role.value)
    page.click("input[name=_save]")
    page.wait_for_url(f"{web}/admin/auth/user/")


def _open_desk(page, web: str) -> None:
    """The security desk, live; and beside its own socket (in dash-renderer's shared worker, out
    of Playwright's sight) one more websocket of this session to it, opened by the page, whose
    close code the page keeps."""
    page.goto(f"{web}/live/gates/")
    page.wait_for_selector("#gates-status.live", timeout=20_000)
    page.evaluate(
        """(url) => new Promise((opened, refused) => {
            const ws = new WebSocket(url);
            window.deskSocket = {state: "connecting"};
            ws.onopen = () => { window.deskSocket.state = "open"; opened(); };
            ws.onerror = () => refused(new Error("the desk's websocket was refused"));
            ws.onclose = (e) => { window.deskSocket = {state: "closed", code: e.code}; };
        })""",
        web.replace("http", "ws") + "/live/gates/_dash-ws-callback",
    )


def _closed_within(page, seconds: float) -> float:
    """Seconds until the session's websocket is closed by the server's guard (4401: revoked)."""
    started = time.monotonic()
    page.wait_for_function("window.deskSocket.state === 'closed'", timeout=seconds * 1000)
    assert page.evaluate("window.deskSocket.code") == REVOKED_CODE
    return time.monotonic() - started


def test_every_sso_logout_ends_the_session_and_closes_its_websockets(web, sso):
    cas = sso["CAS_SERVER_URL"]
    create_or_update_operator(username="nic-duty", password=LOCAL_PASSWORD, role=Role.NIC)
    with chromium() as browser:
        # both people sign in once (no rights yet), then NIC grants them the security desk
        li = browser.new_context()
        _sign_in_through_cas(li.new_page(), web, cas, LI.uid, LI.password)
        wang = browser.new_context()
        wang_page = wang.new_page()
        _sign_in_on_the_form(wang_page, web, WANG.uid, WANG.password)
        wang_page.wait_for_url(f"{web}/")
        nic = browser.new_context().new_page()
        _sign_in_on_the_form(nic, web, "nic-duty", LOCAL_PASSWORD)
        nic.wait_for_url(f"{web}/live/devices/")
        _grant_in_the_admin(nic, web, "li.lei", Role.SECURITY)
        _grant_in_the_admin(nic, web, "wangfang", Role.SECURITY)

        # 1. CAS: the product's logout button — the session ends, the desk in the other tab
        # closes, and the campus CAS session ends too (the CAS server asks for the password again)
        desk = li.new_page()
        _open_desk(desk, web)
        other = li.new_page()
        other.goto(f"{web}/accounts/logout/confirm/")
        other.click("#logout-submit")
        other.wait_for_url(f"{web}/accounts/login/")
        closed_after_logout = _closed_within(desk, 6)
        other.click("#cas-login")
        other.wait_for_url(f"{cas}login?**")
        assert other.is_visible("#login_form #id_password")

        # 2. CAS single logout: logging out of the campus CAS portal ends this session too
        other.fill("#id_username", LI.uid)
        other.fill("#id_password", LI.password)
        other.click("#login_form button[type=submit]")
        other.wait_for_url(f"{web}/live/gates/")  # a desk now: NIC granted the role
        _open_desk(desk, web)
        other.goto(f"{cas}logout")
        closed_after_slo = _closed_within(desk, 6)
        other.goto(f"{web}/live/gates/")
        other.wait_for_url(f"{web}/accounts/login/?next=/live/gates/")

        # 3. LDAP: the logout button
        desk = wang.new_page()
        _open_desk(desk, web)
        wang_page.goto(f"{web}/accounts/logout/confirm/")
        wang_page.click("#logout-submit")
        wang_page.wait_for_url(f"{web}/accounts/login/")
        closed_after_ldap_logout = _closed_within(desk, 6)

    print(
        f"websocket closed {closed_after_logout:.1f}s after the CAS logout, {closed_after_slo:.1f}s after the "
        f"single logout, {closed_after_ldap_logout:.1f}s after the LDAP logout"
    )
    grants = AuditRecord.objects.filter(action="permission.change").order_by("id")
    assert [(r.actor_name, r.object_id, r.data["role"]) for r in grants] == [
        ("nic-duty", "li.lei", {"from": "", "to": "security"}),
        ("nic-duty", "wangfang", {"from": "", "to": "security"}),
    ]
    logouts = AuditRecord.objects.filter(action="auth.logout", object_id="li.lei").order_by("id")
    assert [r.data.get("via") for r in logouts] == [None, "cas_single_logout"]  # each way out is on the record
