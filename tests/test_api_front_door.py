"""Issue 19, item 12 (and item 6's ``/api/``): the API answers at its root with an index, in
JSON, as does an unknown path under it; ``/api/docs/`` is Swagger UI for a logged-in operator,
its files served from here (no CDN); the schema is for a token or an operator's session and names
the real command that makes a token. (The browser side: tests/test_untranslated_sweep.py.)"""

from __future__ import annotations

import json
import re

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from rest_framework.authtoken.models import Token

from ops.accounts.management.commands import api_token
from ops.accounts.roles import Role
from ops.accounts.services import create_or_update_operator

pytestmark = pytest.mark.django_db


@pytest.fixture
def hr():
    return create_or_update_operator(username="api-hr", password="not-used-12345", role=Role.HR)


def test_the_api_root_is_an_index_not_an_html_404(client, hr):
    anonymous = client.get("/api/")
    assert anonymous.status_code == 200 and anonymous["Content-Type"].startswith("application/json")
    body = anonymous.json()
    assert body["docs"] == "/api/docs/" and body["schema"] == "/api/schema/"
    assert "campuscard api_token" in body["authentication"]
    assert "endpoints" not in body  # the list only to whoever is logged in or sends a token

    token = Token.objects.create(user=hr).key
    listed = client.get("/api/", HTTP_AUTHORIZATION=f"Token {token}").json()
    paths = {e["path"] for e in listed["endpoints"]}
    assert {"/api/v1/cards/", "/api/v1/explain/", "/api/v1/imports/"} <= paths
    forged = client.get("/api/", HTTP_AUTHORIZATION="Token not-a-token")
    assert forged.status_code == 401 and "endpoints" not in forged.json()  # a wrong token is told so


def test_every_path_in_the_index_is_a_real_route():
    """The index does not drift from the URLconf: each listed path resolves to an API view."""
    from django.urls import resolve

    from ops.api import index

    for path, _method, _summary in index.ENDPOINTS:
        match = resolve("/api/" + path.replace("{uid}", "A0000001").replace("{code}", "D1"))
        assert match.func is not index.not_found, path


def test_an_unknown_api_path_answers_in_json_in_the_operators_language(client):
    response = client.get("/api/v9/nothing/")
    assert response.status_code == 404 and response["Content-Type"].startswith("application/json")
    assert "没有这个接口" in response.json()["detail"]
    client.cookies["django_language"] = "en"
    assert "No such endpoint" in client.get("/api/v9/nothing/").json()["detail"]


def test_the_docs_are_for_a_logged_in_operator_and_use_no_cdn(client, hr):
    anonymous = client.get("/api/docs/")
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/accounts/login/?next=/api/docs/")

    no_staff = get_user_model().objects.create_user(username="not-staff", password="not-used-12345")
    other = Client()
    other.force_login(no_staff)
    refused = other.get("/api/docs/")
    assert refused.status_code == 403 and "API 文档只对操作员开放" in refused.content.decode()

    client.force_login(hr)
    page = client.get("/api/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert any(a.endswith("swagger-ui-bundle.js") for a in assets), assets
    assert all(a.startswith("/static/") for a in assets), assets  # nothing from another host
    assert "/api/schema/" in html
    bundle = next(a for a in assets if a.endswith("swagger-ui-bundle.js"))
    assert client.get(bundle).status_code == 200  # served by us (whitenoise), not a CDN


def test_the_schema_is_for_a_token_or_an_operators_session_and_names_the_real_command(client, hr):
    assert client.get("/api/schema/").status_code in (401, 403)
    token = Token.objects.create(user=hr).key
    by_token = client.get("/api/schema/?format=json", HTTP_AUTHORIZATION=f"Token {token}")
    assert by_token.status_code == 200
    client.force_login(hr)
    schema = json.loads(client.get("/api/schema/?format=json").content)
    description = schema["info"]["description"]
    assert "campuscard api_token" in description and "api-token" not in description
    assert api_token.__name__.endswith(".api_token")  # the command the description names exists
