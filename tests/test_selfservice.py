"""Cardholder self-service (issue 18, Build 6; R-USE-1, R-SEC-1, R-SEC-3): a cardholder signs in
at /me/ with number + the last six ID characters + the password NIC set at the desk, reports
their own card lost (on record as their own act), sees their own passages (audited); they are
locked out like operators and kept out of the admin and the desks. Real PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import pytest
from axes.models import AccessAttempt
from django.test import Client
from django.utils import timezone

from ops.accounts.roles import Role
from ops.accounts.services import create_or_update_operator
from ops.audit import chain
from ops.audit.models import AuditRecord
from ops.registry import citizen_id
from ops.registry.lifecycle.choices import Action, Topic
from ops.registry.lifecycle.models import CardAction, OutboxMessage
from ops.registry.models import AccessEvent
from ops.selfservice import services
from ops.selfservice.models import HolderPassword
from streams.cards import CardStatus

pytestmark = pytest.mark.django_db
PASSWORD = "Qiuyu-lake-2026"
CITIZEN_ID = citizen_id.make("110105", date(2006, 3, 14), 27)


@pytest.fixture
def holder_card(campus, settings):
    card = campus.cards[3]
    holder = card.holder
    holder.citizen_id = CITIZEN_ID
    holder.save(update_fields=["citizen_id"])
    nic = create_or_update_operator(username="nic-desk", password="pw-nic-desk-1", role=Role.NIC)
    services.set_password(holder=holder, raw_password=PASSWORD, operator=nic)
    return card


def sign_in(client: Client, number: str, digits: str = CITIZEN_ID[-6:], password: str = PASSWORD):
    return client.post("/me/login/", {"number": number, "id_digits": digits, "password": password})


def test_the_holder_signs_in_and_reports_their_own_card_lost(holder_card):
    client, holder = Client(), holder_card.holder
    assert client.get("/me/")["Location"] == "/me/login/"
    response = sign_in(client, holder.number, CITIZEN_ID[-6:].lower())  # an x typed small is the same
    assert response.status_code == 302 and response["Location"] == "/me/"
    page = client.get("/me/").content.decode()
    assert "正常" in page and 'id="me-report-loss"' in page and "网信中心" in page and "身份证" in page
    assert client.get("/me/loss/").status_code == 200
    assert holder_card.status == CardStatus.ACTIVE
    response = client.post("/me/loss/")
    assert response.status_code == 302 and response["Location"] == "/me/?done=lost"
    holder_card.refresh_from_db()
    assert holder_card.status == CardStatus.LOST
    # the holder's own act: no operator, named as the cardholder, in the intact chain
    rec = AuditRecord.objects.get(action="card.lose", object_id=holder_card.uid)
    assert rec.actor_id is None and rec.actor_name == f"cardholder:{holder.number}"
    assert rec.data["self_service"] is True and rec.basis == services.LOSS_BASIS
    step = CardAction.objects.get(card=holder_card, action=Action.LOSE)
    assert step.operator is None and step.to_status == CardStatus.LOST
    # the credential change for the readers went out in the same transaction (R-USE-1)
    feed = OutboxMessage.objects.filter(topic=Topic.CREDENTIAL).order_by("-id").first()
    assert feed is not None and feed.payload["uid"] == holder_card.uid and feed.payload["status"] == "lost"
    assert chain.verify().ok
    page = client.get("/me/?done=lost").content.decode()
    assert "挂失成功" in page, page
    assert 'id="me-report-loss"' not in page and 'id="me-card-status" class="status status-lost">挂失<' in page
    # a second report: a clear refusal, nothing changes
    before = AuditRecord.objects.count()
    response = client.post("/me/loss/")
    assert response.status_code == 400 and "只有正常状态的卡可以挂失" in response.content.decode()
    assert AuditRecord.objects.count() == before


def test_wrong_credentials_are_refused_alike_and_audited(holder_card):
    client, number = Client(), holder_card.holder.number
    for digits, password, who in (
        ("000000", PASSWORD, number),
        (CITIZEN_ID[-6:], "wrong-password-1", number),
        (CITIZEN_ID[-6:], PASSWORD, "2025CS99999"),  # no such holder: the same answer
    ):
        response = sign_in(client, who, digits, password)
        assert response.status_code == 400
        assert "学工号、身份证号后六位或密码不正确" in response.content.decode()
        assert client.get("/me/").status_code == 302
    failed = AuditRecord.objects.filter(action="auth.login_failed").values_list("object_id", flat=True)
    assert sorted(failed) == sorted([f"cardholder:{number}"] * 2 + ["cardholder:2025CS99999"])
    response = client.post("/me/login/", {"number": number, "id_digits": "12", "password": PASSWORD})
    assert response.status_code == 400 and "后 6 位" in response.content.decode()


def test_the_holder_is_locked_out_like_an_operator(holder_card, settings):
    settings.AXES_FAILURE_LIMIT = 3
    client, number = Client(), holder_card.holder.number
    for _ in range(2):
        assert sign_in(client, number, password="wrong-password-1").status_code == 400
    response = sign_in(client, number, password="wrong-password-1")
    assert response.status_code == 429 and "锁定" in response.content.decode()
    # now even the right password is refused, and nothing is signed in
    response = sign_in(client, number)
    assert response.status_code == 429 and client.get("/me/").status_code == 302
    assert AccessAttempt.objects.filter(username=f"cardholder:{number}").exists()
    assert AuditRecord.objects.filter(action="auth.locked_out", object_id=f"cardholder:{number}").exists()
    # NIC unlocks it as any account (the admin deletes the attempt)
    AccessAttempt.objects.filter(username=f"cardholder:{number}").delete()
    assert sign_in(client, number).status_code == 302


def test_own_passages_of_30_days_only_and_the_viewing_is_audited(holder_card, campus):
    holder, other = holder_card.holder, campus.cards[5]
    now = timezone.now()

    def tap(card, when, device):
        return AccessEvent.objects.create(
            event_id=uuid.uuid4(),
            device=device,
            card=card,
            card_uid=card.uid,
            holder=card.holder,
            occurred_at=when,
            direction="in",
            decision="allow",
            reason="ok",
        )

    tap(holder_card, now - timedelta(days=2), campus.gate)
    tap(holder_card, now - timedelta(days=31), campus.dorm_door)  # older than 30 days
    tap(other, now - timedelta(days=1), campus.vehicle_gate)  # someone else's
    client = Client()
    sign_in(client, holder.number)
    page = client.get("/me/passages/").content.decode()
    assert page.count('class="me-passage"') == 1 and campus.gate.name in page
    assert campus.dorm_door.name not in page and campus.vehicle_gate.name not in page
    rec = AuditRecord.objects.get(action="selfservice.view_passages")
    assert rec.actor_id is None and rec.actor_name == f"cardholder:{holder.number}" and rec.data["shown"] == 1


def test_a_holder_session_opens_no_operator_page_and_an_operator_none_of_the_holders(holder_card):
    client = Client()
    sign_in(client, holder_card.holder.number)
    for path in ("/admin/", "/admin/campus/cardholder/", "/privacy/requests/", "/library/", "/muster/", "/api/docs/"):
        assert client.get(path).status_code in (302, 401, 403), path
    operator = Client()
    operator.force_login(create_or_update_operator(username="nic-2", password="pw-nic-2-xyz", role=Role.NIC))
    assert operator.get("/me/")["Location"] == "/me/login/"
    assert operator.get("/me/passages/")["Location"] == "/me/login/"


def test_a_password_reset_at_the_desk_ends_the_holders_sessions(holder_card):
    client, holder = Client(), holder_card.holder
    sign_in(client, holder.number)
    assert client.get("/me/").status_code == 200
    nic = create_or_update_operator(username="nic-3", password="pw-nic-3-xyz", role=Role.NIC)
    services.set_password(holder=holder, raw_password="New-lake-pass-9", operator=nic)
    assert client.get("/me/").status_code == 302


def test_only_nic_sets_a_password_and_a_weak_one_is_refused(holder_card, campus):
    holder = campus.cards[6].holder
    general = create_or_update_operator(username="gen-1", password="pw-gen-1-xyz", role=Role.GENERAL)
    with pytest.raises(services.SelfServiceError, match="只有网信中心"):
        services.set_password(holder=holder, raw_password=PASSWORD, operator=general)
    nic = create_or_update_operator(username="nic-4", password="pw-nic-4-xyz", role=Role.NIC)
    with pytest.raises(services.SelfServiceError, match="至少 8 位"):
        services.set_password(holder=holder, raw_password="short", operator=nic)
    with pytest.raises(services.SelfServiceError, match="学工号"):
        services.set_password(holder=holder, raw_password=f"x{holder.number}y", operator=nic)
    assert not HolderPassword.objects.filter(holder=holder).exists()


def test_nic_sets_the_password_in_the_admin_audited_and_hashed(holder_card, campus):
    holder = campus.cards[7].holder
    nic = create_or_update_operator(username="nic-5", password="pw-nic-5-xyz", role=Role.NIC)
    client = Client()
    client.force_login(nic)
    url = "/admin/selfservice/holderpassword/add/"
    response = client.post(url, {"holder": holder.pk, "new_password": "Lake-view-77x", "repeat_password": "other"})
    assert response.status_code == 200 and "两次输入的密码不一致" in response.content.decode()
    assert not HolderPassword.objects.filter(holder=holder).exists()
    response = client.post(
        url, {"holder": holder.pk, "new_password": "Lake-view-77x", "repeat_password": "Lake-view-77x"}
    )
    assert response.status_code == 302
    row = HolderPassword.objects.get(holder=holder)
    assert row.set_by == nic and "Lake-view-77x" not in row.password
    rec = AuditRecord.objects.get(action="selfservice.password_set", object_id=holder.number)
    assert rec.actor_name == "nic-5" and "Lake-view-77x" not in str(rec.data)
    general = create_or_update_operator(username="gen-2", password="pw-gen-2-xyz", role=Role.GENERAL)
    client.force_login(general)
    assert client.get(url).status_code == 403
