"""Issue 13, defect 9 (R-CARD-7: temporary cards get "no library, no dorms unless the policy
grants it"): the department that manages a temporary card may grant it one dorm building or one
door, until a date within the card's validity — and only there, only until then. The decision
at the door (``readers.decide``), the signed feed the doors cache, the help desk's "why denied",
the service and every way in (admin, API) are held to it."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
from django.utils import timezone, translation
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from ops.accounts.roles import Role
from ops.accounts.services import create_or_update_operator
from ops.audit.models import AuditRecord
from ops.registry.choices import HolderKind
from ops.registry.explain import explain
from ops.registry.lifecycle import services
from ops.registry.lifecycle.choices import Action, Topic
from ops.registry.lifecycle.errors import CardRuleError
from ops.registry.lifecycle.models import AccessGrant, CardAction, OutboxMessage
from ops.registry.lifecycle.outbox import credential_payload
from ops.registry.models import Building, Card, Cardholder, Department, Device
from readers.agent.cache import credential_from_payload
from readers.decide import Credential, Door, Grant, decide
from streams.cards import CardStatus, CardType, DeviceKind
from streams.credentials import CardCredential
from streams.reasons import Reason
from tests.factories import make_device

pytestmark = pytest.mark.django_db


@pytest.fixture
def gao(campus):
    return Department.objects.create(code="GAO", name="总务处")


@pytest.fixture
def clerk(gao):
    """An operator of the department that manages the temporary card (R-CARD-7)."""
    return create_or_update_operator(username="gao-clerk", password="pw-gao-123", role=Role.GENERAL, department=gao)


@pytest.fixture
def temporary(campus, gao):
    nic = create_or_update_operator(username="nic", password="pw-nic-123", role=Role.NIC)
    holder = Cardholder.objects.create(
        kind=HolderKind.CONTRACTOR, number="LCO08888", name="维修王", department=campus.dept
    )
    return services.issue_card(
        holder=holder,
        uid="7E5B0001",
        operator=nic,
        approving_department=gao,
        basis="维修合同 2026-12",
        valid_until=timezone.now() + timedelta(days=30),
    )


@pytest.fixture
def other_dorm(campus):
    building = Building.objects.create(code="D2", name="2号学生公寓", is_dorm=True)
    make_device("D2-01", "2号学生公寓1号门", DeviceKind.DORM_DOOR, "2号学生公寓", campus.dept, building=building)
    return building


def _door(device) -> Door:
    return Door(device.code, DeviceKind(device.kind), building=device.building.code if device.building else None)


def _at_door(card: Card, door: Door, when=None) -> Reason:
    """What a door decides from the card as the feed sends it (parsed as the agent parses it)."""
    credential = credential_from_payload(credential_payload(Card.objects.get(pk=card.pk)))
    return decide(credential, door, when or timezone.now()).reason


# -- the door --------------------------------------------------------------------------------------
def test_the_door_lets_a_temporary_card_in_only_where_and_while_a_grant_says():
    now = timezone.now()
    card = Credential(
        "7E5B0009",
        CardType.TEMPORARY,
        CardStatus.ACTIVE,
        False,
        now - timedelta(days=1),
        now + timedelta(days=30),
        grants=(Grant("D1", now + timedelta(days=2)), Grant("L-01", now + timedelta(days=1))),
    )
    dorm, other = Door("D1-01", DeviceKind.DORM_DOOR, "D1"), Door("D2-01", DeviceKind.DORM_DOOR, "D2")
    library = Door("L-01", DeviceKind.LIBRARY_READER, "LIB")
    assert decide(card, dorm, now).reason == Reason.OK
    assert decide(card, library, now).reason == Reason.OK
    assert decide(card, other, now).reason == Reason.FUNCTION_NOT_ALLOWED  # another building
    assert decide(card, Door("L-02", DeviceKind.LIBRARY_READER, "LIB"), now).reason == Reason.FUNCTION_NOT_ALLOWED
    assert decide(card, dorm, now + timedelta(days=3)).reason == Reason.FUNCTION_NOT_ALLOWED  # the grant ended
    assert decide(card, library, now + timedelta(days=1)).reason == Reason.FUNCTION_NOT_ALLOWED
    # a grant never widens another card type (a student still enters only their own dorm)
    student = Credential(
        "7E5B0010", CardType.STUDENT, CardStatus.ACTIVE, False, now - timedelta(days=1), None, "D2", card.grants
    )
    assert decide(student, dorm, now).reason == Reason.FUNCTION_NOT_ALLOWED
    # and never outweighs a loss report
    lost = dataclasses.replace(card, status=CardStatus.LOST)
    assert decide(lost, dorm, now).reason == Reason.LOST


# -- the service and the feed ----------------------------------------------------------------------
def test_the_managing_department_grants_a_dorm_and_the_doors_follow(campus, temporary, clerk, gao, other_dorm):
    door = _door(campus.dorm_door)
    assert _at_door(temporary, door) == Reason.FUNCTION_NOT_ALLOWED
    assert "grants" not in credential_payload(temporary)  # no grant: the bytes of before (old agents)

    until = timezone.now() + timedelta(days=7)
    grant = services.grant_access(
        card=temporary, place=campus.dorm, until=until, operator=clerk, basis="总务函〔2026〕8号"
    )
    assert (grant.approving_department, grant.granted_by, grant.place_code) == (gao, clerk, "D1")
    assert _at_door(temporary, door) == Reason.OK
    assert _at_door(temporary, door, until + timedelta(seconds=1)) == Reason.FUNCTION_NOT_ALLOWED
    assert _at_door(temporary, _door(Device.objects.get(code="D2-01"))) == Reason.FUNCTION_NOT_ALLOWED  # not D2
    # the change went out to the doors in the same transaction, signed as the feed's one contract
    sent = OutboxMessage.objects.filter(topic=Topic.CREDENTIAL).latest("id").payload
    assert CardCredential.model_validate(sent).grants[0].place == "D1"
    step = CardAction.objects.get(card=temporary, action=Action.GRANT)
    assert step.approving_department == gao and step.operator == clerk and step.basis == "总务函〔2026〕8号"
    assert AuditRecord.objects.filter(object_id=temporary.uid, action="card.grant").exists()

    services.revoke_grant(grant=grant, operator=clerk, basis="维修提前结束")
    assert _at_door(temporary, door) == Reason.FUNCTION_NOT_ALLOWED
    assert "grants" not in OutboxMessage.objects.filter(topic=Topic.CREDENTIAL).latest("id").payload
    with pytest.raises(CardRuleError, match="已撤销"):
        services.revoke_grant(grant=grant, operator=clerk, basis="again")


def test_a_single_door_grant_opens_that_door_alone(campus, temporary, clerk, other_dorm):
    second = make_device(
        "D1-02", "1号学生公寓2号门", DeviceKind.DORM_DOOR, "1号学生公寓", campus.dept, building=campus.dorm
    )
    services.grant_access(
        card=temporary, place=campus.dorm_door, until=timezone.now() + timedelta(days=1), operator=clerk, basis="函"
    )
    assert _at_door(temporary, _door(campus.dorm_door)) == Reason.OK
    assert _at_door(temporary, _door(second)) == Reason.FUNCTION_NOT_ALLOWED


def test_what_may_not_be_granted_is_refused_and_changes_nothing(campus, temporary, clerk, gao):
    intruder_dept = Department.objects.create(code="LIB", name="图书馆")
    intruder = create_or_update_operator(
        username="lib-clerk", password="pw-lib-123", role=Role.LIBRARY, department=intruder_dept
    )
    student_card = campus.cards[0]
    later = timezone.now() + timedelta(days=7)
    before = (AccessGrant.objects.count(), OutboxMessage.objects.count(), CardAction.objects.count())
    refusals = [
        (dict(card=temporary, place=campus.dorm, until=later, operator=intruder, basis="函"), "没有办理此卡务的权限"),
        (dict(card=student_card, place=campus.dorm, until=later, operator=clerk, basis="函"), "只有临时卡需要单独授权"),
        (dict(card=temporary, place=campus.dorm, until=later, operator=clerk, basis=" "), "必须填写办理依据"),
        (
            dict(
                card=temporary,
                place=campus.dorm,
                until=later,
                operator=clerk,
                basis="函",
                approving_department=intruder_dept,
            ),
            "须由其管理部门",
        ),
        (
            dict(
                card=temporary, place=campus.dorm, until=timezone.now() + timedelta(days=60), operator=clerk, basis="函"
            ),
            "不能晚于卡的有效期",
        ),
        (
            dict(
                card=temporary, place=campus.dorm, until=timezone.now() - timedelta(days=1), operator=clerk, basis="函"
            ),
            "必须晚于当前时间",
        ),
        (dict(card=temporary, place=campus.gate, until=later, operator=clerk, basis="函"), "无需授权"),
    ]
    for kwargs, message in refusals:
        with translation.override("zh-hans"), pytest.raises(CardRuleError) as info:
            services.grant_access(**kwargs)
        assert message in " ".join(info.value.messages), kwargs
    services.report_loss(card=temporary, operator=clerk, basis="本人挂失")
    with pytest.raises(CardRuleError, match="不能授权"):
        services.grant_access(card=temporary, place=campus.dorm, until=later, operator=clerk, basis="函")
    assert (AccessGrant.objects.count(), CardAction.objects.filter(action=Action.GRANT).count()) == (before[0], 0)


def test_the_help_desk_explains_a_temporary_card_at_a_dorm(campus, temporary, clerk):
    with translation.override("zh-hans"):
        refused = explain(uid=temporary.uid, device_code=campus.dorm_door.code)
        assert not refused.allowed and "总务处" in refused.text and "授权" in refused.text
        services.grant_access(
            card=temporary, place=campus.dorm, until=timezone.now() + timedelta(days=2), operator=clerk, basis="函"
        )
        assert explain(uid=temporary.uid, device_code=campus.dorm_door.code).allowed


# -- the paths in ----------------------------------------------------------------------------------
def test_the_admin_grants_and_revokes_on_a_temporary_card_only(campus, client, temporary, clerk):
    client.post("/accounts/login/", {"username": "gao-clerk", "password": "pw-gao-123"})
    page = client.get(f"/admin/campus/card/{temporary.pk}/change/")
    if page.status_code == 200:  # a department operator may not have the card's change page: the action URL is the path
        assert 'id="do-grant"' in page.content.decode()
    url = f"/admin/campus/card/{temporary.pk}/grant/"
    until = (timezone.localdate() + timedelta(days=5)).isoformat()
    both = client.post(url, {"basis": "函", "building": campus.dorm.pk, "device": campus.dorm_door.pk, "until": until})
    assert both.status_code == 200 and "二者选一" in both.content.decode()
    too_late = (timezone.localdate() + timedelta(days=90)).isoformat()
    refused = client.post(url, {"basis": "函", "building": campus.dorm.pk, "until": too_late})
    assert refused.status_code == 200 and "不能晚于卡的有效期" in refused.content.decode()
    assert not AccessGrant.objects.exists()
    done = client.post(url, {"basis": "总务函〔2026〕9号", "building": campus.dorm.pk, "until": until})
    assert done.status_code == 302
    grant = AccessGrant.objects.get()
    assert grant.granted_by == clerk and _at_door(temporary, _door(campus.dorm_door)) == Reason.OK

    revoke = client.post(f"/admin/campus/card/{temporary.pk}/revoke_grant/", {"basis": "结束", "grant": grant.pk})
    assert revoke.status_code == 302
    assert _at_door(temporary, _door(campus.dorm_door)) == Reason.FUNCTION_NOT_ALLOWED
    # a student's card is offered no grant (and the service refuses one all the same)
    nic = create_or_update_operator(username="nic-admin", password="pw-nic-123", role=Role.NIC, is_superuser=True)
    client.force_login(nic)
    html = client.get(f"/admin/campus/card/{campus.cards[0].pk}/change/").content.decode()
    assert 'id="do-grant"' not in html and 'id="do-extend"' in html
    assert 'id="do-grant"' in client.get(f"/admin/campus/card/{temporary.pk}/change/").content.decode()


def test_the_api_grants_and_revokes(campus, temporary, clerk):
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=clerk).key}")
    until = (timezone.localdate() + timedelta(days=3)).isoformat()
    url = f"/api/v1/cards/{temporary.uid}/grants/"
    assert api.post(url, {"basis": "函", "until": until}, format="json").status_code == 400  # no place
    student = api.post(
        f"/api/v1/cards/{campus.cards[0].uid}/grants/", {"basis": "函", "building": "D1", "until": until}
    )
    assert student.status_code == 400 and "只有临时卡" in student.json()["detail"]
    made = api.post(url, {"basis": "总务函", "building": "D1", "until": until}, format="json")
    assert made.status_code == 201, made.content
    assert made.json()["place"] == "D1" and made.json()["approving_department"] == "GAO"
    assert _at_door(temporary, _door(campus.dorm_door)) == Reason.OK
    revoked = api.post(f"{url}{made.json()['id']}/revoke/", {"basis": "结束"}, format="json")
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    assert _at_door(temporary, _door(campus.dorm_door)) == Reason.FUNCTION_NOT_ALLOWED
