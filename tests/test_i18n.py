"""Simplified Chinese by default, English when the operator picks it."""

from __future__ import annotations

import pytest
from django.conf import settings

pytestmark = pytest.mark.django_db


def test_the_login_page_is_in_chinese_by_default(client):
    html = client.get("/accounts/login/").content.decode()
    assert "操作员登录" in html and 'lang="zh-hans"' in html


def test_the_operator_can_switch_to_english(client):
    response = client.post("/i18n/setlang/", {"language": "en", "next": "/accounts/login/"})
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "en"
    html = client.get("/accounts/login/").content.decode()
    assert "Operator login" in html and "操作员登录" not in html


def test_the_gate_page_layout_follows_the_language_cookie():
    from dashboard.guard import current_scope
    from dashboard.pages import gates

    for lang, expected in (("en", "Gate traffic — live"), ("zh-hans", "校门通行实时监控")):
        token = current_scope.set({"cookies": {settings.LANGUAGE_COOKIE_NAME: lang}})
        try:
            assert expected in str(gates.layout())
        finally:
            current_scope.reset(token)


def test_an_english_browser_still_gets_chinese_until_the_operator_chooses(client):
    html = client.get("/accounts/login/", HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9").content.decode()
    assert "操作员登录" in html
