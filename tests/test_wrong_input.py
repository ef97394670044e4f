"""Acceptance (issue 3, point 6): wrong input gets a clear message — Chinese in the zh-hans
UI, English in the English UI — and leaves the database unchanged."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone, translation

from ops.accounts.roles import Role
from ops.accounts.services import create_or_update_operator
from ops.audit.models import AuditRecord
from ops.registry.choices import HolderKind
from ops.registry.lifecycle import services
from ops.registry.lifecycle.errors import CardRuleError
from ops.registry.lifecycle.models import CardAction, FeeCharge, OutboxMessage
from ops.registry.models import Card, Cardholder, Department

pytestmark = pytest.mark.django_db


def _state():
    return (
        Card.objects.count(),
        Cardholder.objects.values_list("name", "citizen_id").count(),
        CardAction.objects.count(),
        FeeCharge.objects.count(),
        OutboxMessage.objects.count(),
        AuditRecord.objects.count(),
        list(Card.objects.values_list("status", flat=True)),
    )


@pytest.fixture
def nic(campus):
    return create_or_update_operator(username="nic", password="pw-nic-123", role=Role.NIC)


@pytest.fixture
def contractor(campus):
    return Cardholder.objects.create(
        kind=HolderKind.CONTRACTOR, number="LCO00001", name="物业张", department=campus.dept
    )


CASES = {
    "temporary card without approval": (
        lambda c, nic, holder: services.issue_card(
            holder=holder,
            uid="7E570001",
            operator=nic,
            approved_by_operator=nic,
            basis="申请表",
            valid_until=timezone.now() + timedelta(days=30),
        ),
        "临时卡必须由管理部门审批",
    ),
    "temporary card without end date": (
        lambda c, nic, holder: services.issue_card(
            holder=holder,
            uid="7E570002",
            operator=nic,
            basis="申请表",
            owner_department=Department.objects.get(code="SEC"),
        ),
        "临时卡必须填写约定的有效期",
    ),
    "issuance without approver": (
        lambda c, nic, holder: services.issue_card(
            holder=c.cards[0].holder, uid="7E570003", operator=nic, basis="申请表", card_type="student"
        ),
        "必须指定审批人",
    ),
    "fee above the cap": (
        lambda c, nic, holder: services.replace_card(
            card=c.cards[0], new_uid="7E570004", operator=nic, reason="loss", basis="补卡", fee=Decimal("99.00")
        ),
        "超过物价部门核定的上限",
    ),
    "bad citizen ID check digit on re-issue": (
        lambda c, nic, holder: services.replace_card(
            card=c.cards[0],
            new_uid="7E570005",
            operator=nic,
            reason="identity_change",
            basis="户籍变更",
            identity_changes={"citizen_id": "440507199001011230"},
        ),
        "身份证号校验位错误",
    ),
    "a card UID already bound": (
        lambda c, nic, holder: services.replace_card(
            card=c.cards[0], new_uid=c.cards[1].uid, operator=nic, reason="damage", basis="补卡"
        ),
        "已绑定给",
    ),
    "a second card for one person": (
        lambda c, nic, holder: services.issue_card(
            holder=c.cards[0].holder, uid="7E570006", operator=nic, approving_department=c.dept, basis="申请表"
        ),
        "一人一卡",
    ),
    "no basis": (
        lambda c, nic, holder: services.report_loss(card=c.cards[0], operator=nic, basis=""),
        "必须填写办理依据",
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_wrong_input_is_explained_and_changes_nothing(campus, nic, contractor, case):
    call, message = CASES[case]
    before = _state()
    with translation.override("zh-hans"), pytest.raises(CardRuleError) as info:
        call(campus, nic, contractor)
    assert message in " ".join(info.value.messages)
    assert _state() == before


def test_the_message_follows_the_operator_language(campus, nic):
    with translation.override("en"), pytest.raises(CardRuleError) as info:
        services.replace_card(
            card=campus.cards[0],
            new_uid="7E570009",
            operator=nic,
            reason="loss",
            basis="replacement",
            fee=Decimal("99.00"),
        )
    text = " ".join(info.value.messages)
    assert "cap" in text and "上限" not in text


def _gao_temporary_card(contractor: Cardholder, uid: str) -> tuple[Department, Card]:
    """The General Affairs Office, and a temporary card NIC issued to its contractor (R-CARD-7)."""
    gao = Department.objects.create(code="GAO", name="总务处")
    nic = create_or_update_operator(username="nic2", password="pw-nic-1234", role=Role.NIC)
    card = services.issue_card(
        holder=contractor,
        uid=uid,
        operator=nic,
        approving_department=gao,
        basis="外包合同 2026-12",
        owner_department=gao,
        valid_until=timezone.now() + timedelta(days=60),
    )
    return gao, card


def test_a_department_may_manage_only_its_own_temporary_cards(campus, contractor):
    gao, card = _gao_temporary_card(contractor, "7E57000A")
    gao_clerk = create_or_update_operator(username="gao", password="pw-gao-1234", role=Role.GENERAL, department=gao)
    hr_clerk = create_or_update_operator(username="hr", password="pw-hr-12345", role=Role.HR, department=campus.dept)
    services.report_loss(card=card, operator=gao_clerk, basis="外包公司报失")  # R-CARD-7
    with pytest.raises(CardRuleError, match="没有办理此卡务的权限"):
        services.report_found(card=card, operator=hr_clerk, basis="x")
    with pytest.raises(CardRuleError, match="没有办理此卡务的权限"):
        services.report_loss(card=campus.cards[0], operator=gao_clerk, basis="x")


def test_the_admin_shows_a_department_only_its_own_temporary_cards(campus, contractor, client):
    gao, temp = _gao_temporary_card(contractor, "7E57000B")
    create_or_update_operator(username="gao2", password="pw-gao-12345", role=Role.GENERAL, department=gao)
    client.post("/accounts/login/", {"username": "gao2", "password": "pw-gao-12345"})
    html = client.get("/admin/campus/card/").content.decode()
    assert temp.uid in html and campus.cards[0].uid not in html
    assert client.get(f"/admin/campus/card/{campus.cards[0].pk}/change/").status_code in (302, 404)


def test_one_live_card_per_person_is_held_by_the_database(campus):
    from django.db import IntegrityError, transaction

    holder = campus.cards[0].holder
    with pytest.raises(IntegrityError), transaction.atomic():
        Card.objects.create(uid="7E57000C", holder=holder, card_type="student", valid_from=timezone.now())
