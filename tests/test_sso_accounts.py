"""The rules of campus sign-on accounts that need no sign-on server to show (issue 16; R-SEC-1,
R-SEC-3): a campus account never signs in with a local password, a disabled one is refused and
audited, the login page offers CAS only when it is on, the page to land on after CAS stays on this
site, and a sign-on configuration that cannot work stops start-up. The real servers and the
browser: tests/test_sso_browser.py."""

from __future__ import annotations

import os
import subprocess
import sys
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from ops.accounts.models import SignIn
from ops.accounts.permissions import role_of
from ops.accounts.services import sign_in_through_sso
from ops.audit.models import AuditRecord

pytestmark = pytest.mark.django_db
CAS = "http://cas.campus.invalid/cas/"


def test_a_campus_account_never_signs_in_with_a_local_password():
    user = sign_in_through_sso(source=SignIn.LDAP, username="zhaolei", full_name="赵磊")
    assert user is not None and role_of(user) is None
    user.set_password("set-by-hand-9931")  # say, by an admin who should not have
    user.save()
    response = Client().post("/accounts/login/", {"username": "zhaolei", "password": "set-by-hand-9931"})
    assert response.status_code == 200 and "用户名或密码不正确" in response.content.decode()


def test_a_disabled_campus_account_is_refused_and_audited():
    user = sign_in_through_sso(source=SignIn.CAS, username="Qian.Li")
    assert user is not None and user.get_username() == "qian.li"  # one spelling per person
    get_user_model().objects.filter(pk=user.pk).update(is_active=False)
    assert sign_in_through_sso(source=SignIn.CAS, username="qian.li") is None
    refused = AuditRecord.objects.get(action="auth.sso_refused", object_id="qian.li")
    assert refused.data == {"sign_in": "cas", "reason": "inactive"}


def test_the_name_and_email_follow_the_directory_and_grant_nothing():
    sign_in_through_sso(source=SignIn.LDAP, username="sunli", full_name="孙丽", email="old@campus.test")
    user = sign_in_through_sso(source=SignIn.LDAP, username="sunli", full_name="孙丽", email="new@campus.test")
    assert user is not None and user.email == "new@campus.test"
    assert not user.is_staff and not user.is_superuser and not user.groups.exists()
    assert AuditRecord.objects.filter(action="account.sso_created", object_id="sunli").count() == 1


def test_the_login_page_offers_cas_only_when_it_is_on(client, settings):
    settings.CAS_SERVER_URL = ""
    assert 'id="cas-login"' not in client.get("/accounts/login/").content.decode()
    assert client.get("/accounts/cas/login/").status_code == 404
    settings.CAS_SERVER_URL = CAS
    html = client.get("/accounts/login/?next=/live/gates/").content.decode()
    assert "统一身份认证登录" in html and 'href="/accounts/cas/login/?next=/live/gates/"' in html


@pytest.mark.parametrize("wanted", ["https://evil.example/", "//evil.example/x", "/live/gates/"])
def test_the_page_to_land_on_after_cas_stays_on_this_site(client, settings, wanted):
    settings.CAS_SERVER_URL = CAS
    response = client.get("/accounts/cas/login/", {"next": wanted})
    assert response.status_code == 302 and response["Location"].startswith(f"{CAS}login?")
    service = parse_qs(urlsplit(response["Location"]).query)["service"][0]
    landing = parse_qs(urlsplit(service).query)["next"][0]
    assert landing == (wanted if wanted.startswith("/live") else "/")


def _import_settings(tmp_path, **env: str) -> subprocess.CompletedProcess[str]:
    full = dict(os.environ, CAMPUSCARD_VAR_DIR=str(tmp_path), **env)
    return subprocess.run(
        [sys.executable, "-c", "import ops.settings"], env=full, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"LDAP_SERVER_URI": "ldap://127.0.0.1:1/"}, "LDAP_SERVER_URI needs LDAP_USER_DN_TEMPLATE or"),
        ({"CAS_VERSION": "1"}, "CAS_VERSION='1' must be 2 or 3"),
    ],
)
def test_a_sign_on_that_cannot_work_stops_start_up(tmp_path, env, message):
    result = _import_settings(tmp_path, **env)
    assert result.returncode != 0 and "ImproperlyConfigured" in result.stderr and message in result.stderr
