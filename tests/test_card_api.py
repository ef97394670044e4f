"""The card API for HR / Academic Affairs systems: token-authenticated, the same services as
the admin, clear 400s that change nothing, an OpenAPI schema."""

from __future__ import annotations

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from ops.accounts.roles import Role
from ops.accounts.services import create_or_update_operator
from ops.registry.choices import HolderKind
from ops.registry.lifecycle.models import CardAction, FeeCharge
from ops.registry.models import Card, Cardholder

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(campus):
    user = create_or_update_operator(username="nic-api", password="pw-nic-api-1", role=Role.NIC)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


def test_without_a_token_the_api_refuses(campus):
    assert APIClient().post("/api/v1/cards/A0000000/loss/", {"basis": "x"}).status_code == 401


def test_issue_lose_find_replace_cancel_through_the_api(api, campus):
    holder = Cardholder.objects.create(
        kind=HolderKind.STUDENT, number="2026CS99999", name="李四", department=campus.dept
    )
    r = api.post(
        "/api/v1/cards/",
        {"holder_number": "2026CS99999", "uid": "04a1b2c3d4", "approved_by": "SEC", "basis": "新生名单2026"},
        format="json",
    )
    assert r.status_code == 201, r.content
    assert r.json()["uid"] == "04A1B2C3D4" and r.json()["holder_name"] == "李*"
    assert api.post("/api/v1/cards/04A1B2C3D4/loss/", {"basis": "挂失"}).json()["status"] == "lost"
    assert api.post("/api/v1/cards/04A1B2C3D4/found/", {"basis": "找回"}).json()["status"] == "active"
    r = api.post("/api/v1/cards/04A1B2C3D4/replace/", {"new_uid": "04A1B2C3D5", "reason": "damage", "basis": "损坏"})
    assert r.status_code == 201 and r.json()["issue_no"] == 2
    assert FeeCharge.objects.get(card__uid="04A1B2C3D5").window == "API"
    r = api.post("/api/v1/cards/04A1B2C3D5/cancel/", {"basis": "退学", "holder_status": "withdrawn"})
    assert r.json()["status"] == "cancelled"
    assert Cardholder.objects.get(pk=holder.pk).status == "withdrawn"
    assert CardAction.objects.filter(holder=holder).count() == 6  # replace: old + new card


def test_a_broken_rule_is_a_400_with_the_reason_and_changes_nothing(api, campus):
    card = campus.cards[0]
    before = (Card.objects.count(), CardAction.objects.count(), FeeCharge.objects.count())
    r = api.post(
        f"/api/v1/cards/{card.uid}/replace/",
        {"new_uid": "0BADF00D", "reason": "loss", "basis": "补卡", "fee": "999.00"},
    )
    assert r.status_code == 400 and "超过物价部门核定的上限" in r.json()["detail"]
    r = api.post(
        "/api/v1/cards/", {"holder_number": card.holder.number, "uid": "0BADF00E", "approved_by": "SEC", "basis": "y"}
    )
    assert r.status_code == 400 and "一人一卡" in r.json()["detail"]
    assert (Card.objects.count(), CardAction.objects.count(), FeeCharge.objects.count()) == before


def test_the_api_has_an_openapi_schema(api):
    r = api.get("/api/schema/?format=json")
    assert r.status_code == 200
    paths = r.json()["paths"]
    for p in (
        "/api/v1/cards/",
        "/api/v1/cards/{uid}/loss/",
        "/api/v1/cards/{uid}/replace/",
        "/api/v1/cards/{uid}/cancel/",
        "/api/v1/cards/{uid}/extend/",
        "/api/v1/imports/",
        "/api/v1/imports/{id}/apply/",
    ):
        assert p in paths


def test_a_list_is_previewed_then_applied_through_the_api(api, campus):
    from datetime import date

    from ops.registry import citizen_id

    lines = ["学号,姓名,学系,班级,身份证号"]
    for i in range(5):
        cid = citizen_id.make("440507", date(2007, 5, 1 + i), i)
        lines.append(f"2026SC{i:05d},新生{i},{campus.dept.name},2601班,{cid if i != 2 else '123'}")
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("名单.csv", "\n".join(lines).encode("utf-8-sig"))
    r = api.post("/api/v1/imports/", {"kind": "student", "file": upload}, format="multipart")
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["create"] == 4 and body["rejected"] == 1
    assert body["rejected_rows"][0]["row"] == 4 and "18" in body["rejected_rows"][0]["message"]
    assert not Cardholder.objects.filter(number__startswith="2026SC").exists()
    r = api.post(f"/api/v1/imports/{body['id']}/apply/")
    assert r.status_code == 200 and r.json()["status"] == "applied"
    assert Cardholder.objects.filter(number__startswith="2026SC").count() == 4
    again = api.post(f"/api/v1/imports/{body['id']}/apply/")
    assert again.status_code == 400 and "已经导入过" in again.json()["detail"]


def test_only_the_list_owners_import_or_read_lists():
    """R-CARD-4/5, R-SEC-3: HR imports staff lists, Academic Affairs student lists, NIC both;
    nobody else imports a list or reads one (lists hold citizen IDs)."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from ops.registry.lifecycle import importing

    def api_as(role: Role) -> APIClient:
        user = create_or_update_operator(username=f"api-{role.value}", password="pw-x-12345", role=role)
        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
        return api

    nic = create_or_update_operator(username="nic-lists", password="pw-x-12345", role=Role.NIC)
    batch = importing.preview_import(
        kind="student", filename="名单.csv", operator=nic, data="学号,姓名,学系,班级,身份证号\n".encode()
    )
    for role, status in (
        (Role.LIBRARY, 403),
        (Role.SECURITY, 403),
        (Role.HR, 403),
        (Role.ACADEMIC, 200),
        (Role.NIC, 200),
    ):
        response = api_as(role).get(f"/api/v1/imports/{batch.pk}/")
        assert response.status_code == status, (role, response.content)
    refused = api_as(Role.FINANCE).get(f"/api/v1/imports/{batch.pk}/")
    assert "教务处" in refused.json()["detail"]
    upload = SimpleUploadedFile("名单.csv", "学号,姓名,学系,班级,身份证号\n".encode())
    assert (
        api_as(Role.GENERAL)
        .post("/api/v1/imports/", {"kind": "student", "file": upload}, format="multipart")
        .status_code
        == 403
    )
