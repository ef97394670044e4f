"""Admin edits never bypass the credential path (issue 13, defect 4; R-USE-1, R-OPS-4): a change a
reader decides from — a holder's dorm building — goes out to every door as a credential change,
audited; a holder's status and kind, and every field of a card, are not edited in the admin's
forms at all (they change only through the card services, which emit the change)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from ops.accounts.roles import Role
from ops.accounts.services import create_or_update_operator
from ops.audit.models import AuditRecord
from ops.registry.lifecycle.choices import Topic
from ops.registry.lifecycle.models import OutboxMessage
from ops.registry.models import Building, Card

pytestmark = pytest.mark.django_db


@pytest.fixture
def nic(client):
    user = create_or_update_operator(username="nic", password="pw-nic-123", role=Role.NIC, is_superuser=True)
    client.post("/accounts/login/", {"username": "nic", "password": "pw-nic-123"})
    return user


def _holder_form(holder, **changes):
    data = {
        "kind": holder.kind,
        "number": holder.number,
        "name": holder.name,
        "department": holder.department_id,
        "dorm_building": holder.dorm_building_id or "",
        "status": holder.status,
        "class_name": holder.class_name,
        "cards-TOTAL_FORMS": "0",
        "cards-INITIAL_FORMS": "0",
    }
    data.update(changes)
    return data


def test_a_new_dorm_building_in_the_admin_reaches_every_door(client, nic, campus):
    card = campus.cards[0]
    holder = card.holder
    d2 = Building.objects.create(code="D2", name="2号学生公寓", is_dorm=True)
    before = OutboxMessage.objects.filter(topic=Topic.CREDENTIAL).count()
    url = reverse("admin:campus_cardholder_change", args=[holder.pk])
    response = client.post(url, _holder_form(holder, dorm_building=d2.pk))
    assert response.status_code == 302, response.content.decode()[:3000]
    holder.refresh_from_db()
    assert holder.dorm_building == d2
    sent = OutboxMessage.objects.filter(topic=Topic.CREDENTIAL).order_by("id")[before:]
    assert [m.payload["uid"] for m in sent] == [card.uid]
    assert sent[0].payload["dorm_building"] == "D2"  # the door of D1 will refuse the card, D2's admit it
    record = AuditRecord.objects.get(action="holder.dorm_change")
    assert record.object_id == holder.number and record.data["dorm_building"] == "D2"


def test_a_holders_status_and_kind_are_not_edited_in_the_admin(client, nic, campus):
    holder = campus.cards[0].holder
    url = reverse("admin:campus_cardholder_change", args=[holder.pk])
    client.post(url, _holder_form(holder, status="graduated", kind="staff"))
    holder.refresh_from_db()
    assert holder.status == "active" and holder.kind == "student"
    assert Card.objects.get(pk=campus.cards[0].pk).status == "active"


def test_a_card_is_not_edited_nor_added_in_the_admin(client, nic, campus):
    card = campus.cards[0]
    url = reverse("admin:campus_card_change", args=[card.pk])
    page = client.get(url).content.decode()
    assert 'name="status"' not in page and 'name="blacklisted"' not in page  # shown, not editable
    client.post(url, {"uid": card.uid, "status": "lost", "blacklisted": "on", "holder": card.holder_id})
    card.refresh_from_db()
    assert card.status == "active" and not card.blacklisted
    assert client.get(reverse("admin:campus_card_add")).status_code == 403
