"""Issue 20, item 2: the card API reads only what the card admin shows the same operator.

The security trial read any card — status, blacklisting, validity, holder number, masked name —
at ``/api/v1/cards/<uid>/`` and ``/api/v1/explain/`` with the tokens of hr, finance, library, a
dorm manager and a leader. The API now asks the admin's own question (``readable_cards``): the
card view permission, then NIC every card and a department the temporary cards it manages."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from ops.accounts.roles import Role
from ops.accounts.services import create_or_update_operator
from ops.registry.choices import HolderKind
from ops.registry.lifecycle import services
from ops.registry.models import Card, Cardholder, Department

pytestmark = pytest.mark.django_db


def _api(username: str, role: Role, **kwargs) -> APIClient:
    user = create_or_update_operator(username=username, password=f"pw-{username}-1", role=role, **kwargs)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return api


@pytest.fixture
def gao(campus) -> Department:
    return Department.objects.create(code="GAO", name="总务处")


@pytest.fixture
def temporary(campus, gao) -> Card:
    nic = create_or_update_operator(username="nic", password="pw-nic-123", role=Role.NIC)
    holder = Cardholder.objects.create(
        kind=HolderKind.CONTRACTOR, number="T2026GAO01", name="维修王", department=campus.dept
    )
    return services.issue_card(
        holder=holder,
        uid="7E5A00AA",
        operator=nic,
        approving_department=gao,
        basis="维修合同 2026-12",
        valid_until=timezone.now() + timedelta(days=30),
    )


@pytest.mark.parametrize(
    "role", [Role.HR, Role.FINANCE, Role.LIBRARY, Role.DORM_MANAGER, Role.LEADER, Role.ACADEMIC, Role.SECURITY]
)
def test_a_token_without_the_card_view_right_reads_no_card(campus, role):
    api = _api(f"trial-{role.value}", role, buildings=[campus.dorm] if role == Role.DORM_MANAGER else ())
    uid = campus.cards[0].uid
    detail = api.get(f"/api/v1/cards/{uid}/")
    assert detail.status_code == 403, detail.content
    assert "没有查看校园卡信息的权限" in detail.json()["detail"]
    assert "status" not in detail.json() and campus.cards[0].holder.number not in detail.content.decode()
    why = api.get(f"/api/v1/explain/?uid={uid}&device=G-E-01")
    assert why.status_code == 403 and "allowed" not in why.json()
    # the same answer whether the card exists or not
    assert api.get("/api/v1/cards/DEADBEEF/").json() == detail.json()


def test_a_department_reads_only_the_temporary_cards_it_manages(campus, gao, temporary):
    api = _api("clerk", Role.GENERAL, department=gao)
    student = campus.cards[0].uid
    r = api.get(f"/api/v1/cards/{student}/")
    assert r.status_code == 404 and "status" not in r.json()
    assert api.get("/api/v1/cards/DEADBEEF/").json() == r.json()  # hidden = absent
    own = api.get(f"/api/v1/cards/{temporary.uid}/")
    assert own.status_code == 200 and own.json()["holder_number"] == "T2026GAO01"
    why = api.get(f"/api/v1/explain/?uid={student}&device=G-E-01")
    assert why.status_code == 404 and "allowed" not in why.json()
    unknown = api.get("/api/v1/explain/?uid=DEADBEEF&device=G-E-01")
    assert unknown.status_code == 404 and "allowed" not in unknown.json()
    assert api.get(f"/api/v1/explain/?uid={temporary.uid}&device=G-E-01").status_code == 200


def test_nic_reads_every_card_and_explains_unknown_ones(campus):
    api = _api("nic-api", Role.NIC)
    assert api.get(f"/api/v1/cards/{campus.cards[3].uid}/").json()["status"] == "active"
    assert api.get("/api/v1/explain/?uid=DEADBEEF&device=G-E-01").json()["reason"] == "unknown_card"


def test_the_refusal_is_in_the_operators_language(campus):
    api = _api("trial-hr", Role.HR)
    api.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    r = api.get(f"/api/v1/cards/{campus.cards[0].uid}/")
    assert r.status_code == 403 and "not allowed to read campus card" in r.json()["detail"]


def test_the_admins_why_denied_page_is_scoped_the_same_way(campus, gao, temporary):
    hr = create_or_update_operator(username="trial-hr", password="pw-trial-hr-1", role=Role.HR)
    client = Client()
    client.force_login(hr)
    page = client.get(f"/admin/campus/card/explain/?uid={campus.cards[0].uid}&device=G-E-01")
    assert page.status_code == 403
    clerk = create_or_update_operator(username="clerk", password="pw-clerk-1", role=Role.GENERAL, department=gao)
    client.force_login(clerk)
    html = client.get(f"/admin/campus/card/explain/?uid={campus.cards[0].uid}&device=G-E-01").content.decode()
    assert "没有您可查看的卡号为" in html and "无此功能权限" not in html
    html = client.get(f"/admin/campus/card/explain/?uid={temporary.uid}&device=G-E-01").content.decode()
    assert "没有您可查看的卡号为" not in html
