""" "Why was this card denied here?" — the server runs the same decide() on current data and
explains the answer (admin page and API), for the help desk."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from ops.accounts.roles import Role
from ops.accounts.services import create_or_update_operator
from ops.registry.explain import explain
from ops.registry.lifecycle import services

pytestmark = pytest.mark.django_db


def test_each_reason_is_explained(campus):
    nic = create_or_update_operator(username="nic", password="pw-nic-123", role=Role.NIC)
    card = campus.cards[0]
    assert explain(uid=card.uid, device_code="G-E-01").allowed
    assert explain(uid=card.uid, device_code="V-E-IN").reason == "function_not_allowed"
    assert explain(uid="DEADBEEF", device_code="G-E-01").reason == "unknown_card"
    services.report_loss(card=card, operator=nic, basis="挂失")
    lost = explain(uid=card.uid.lower(), device_code="G-E-01")
    assert lost.reason == "lost" and "解挂" in lost.text
    other = campus.cards[1]
    other.valid_until = timezone.now() - timedelta(days=1)
    other.save()
    assert explain(uid=other.uid, device_code="D1-01").reason == "expired"
    with pytest.raises(LookupError):
        explain(uid=card.uid, device_code="NOPE")


def test_the_help_desk_page_and_the_api(campus, client):
    user = create_or_update_operator(username="nic", password="pw-nic-123", role=Role.NIC, is_superuser=True)
    client.post("/accounts/login/", {"username": "nic", "password": "pw-nic-123"})
    html = client.get(f"/admin/campus/card/explain/?uid={campus.cards[0].uid}&device=V-E-IN").content.decode()
    assert "无此功能权限" in html
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    body = api.get(f"/api/v1/explain/?uid={campus.cards[0].uid}&device=G-E-01").json()
    assert body["allowed"] is True and body["reason"] == "ok"
    assert api.get("/api/v1/explain/?uid=X").status_code == 400
