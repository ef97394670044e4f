"""Issue 13, defect 5 (R-CARD-9, R-CARD-7, R-USE-2, R-END-4): who approved a card is a fact on
record — an operator account and/or a department, never a typed name — on every path (service,
admin, API, CLI, the batch print run); a replacement records its own approval, an extension of a
temporary card its owner department and letter; a temporary card is approved by the department
that owns it. Wrong input is refused with a clear message and nothing is written."""

from __future__ import annotations

import importlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import IntegrityError, transaction
from django.utils import timezone, translation
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from ops.accounts.roles import Role
from ops.accounts.services import create_or_update_operator
from ops.audit.models import AuditRecord
from ops.registry.choices import HolderKind
from ops.registry.lifecycle import services
from ops.registry.lifecycle.choices import Action
from ops.registry.lifecycle.errors import CardRuleError
from ops.registry.lifecycle.models import CardAction, FeeCharge, OutboxMessage
from ops.registry.models import Card, Cardholder, Department
from readers.sources.base import CardPresented
from streams.cards import CardType

pytestmark = pytest.mark.django_db


def _state():
    return (
        Card.objects.count(),
        CardAction.objects.count(),
        FeeCharge.objects.count(),
        OutboxMessage.objects.count(),
        AuditRecord.objects.filter(action__startswith="card.").count(),  # the CLI audits its proof
    )


@pytest.fixture
def nic(campus):
    return create_or_update_operator(username="nic", password="pw-nic-123", role=Role.NIC)


@pytest.fixture
def gao(campus):
    return Department.objects.create(code="GAO", name="总务处")


@pytest.fixture
def student(campus):
    return Cardholder.objects.create(kind=HolderKind.STUDENT, number="2026CS77777", name="周七", department=campus.dept)


@pytest.fixture
def contractor(campus):
    return Cardholder.objects.create(
        kind=HolderKind.CONTRACTOR, number="LCO07777", name="物业周", department=campus.dept
    )


def _audit(uid: str, action: str) -> dict:
    return AuditRecord.objects.filter(object_id=uid, action=f"card.{action}").latest("id").data


def _temporary(contractor, nic, gao, uid: str = "7E5A0001") -> Card:
    return services.issue_card(
        holder=contractor,
        uid=uid,
        operator=nic,
        approving_department=gao,
        basis="外包合同 2026-12",
        valid_until=timezone.now() + timedelta(days=30),
    )


# -- service ---------------------------------------------------------------------------------------
def test_an_issuance_needs_an_approver_on_record(campus, nic, student):
    """R-CARD-9: no approver, a typed name, an account or department not on record — refused,
    nothing written; an approver on record is kept on the card, its history and its audit."""
    stranger = get_user_model()(username="张三")  # never saved: not on record
    gone = create_or_update_operator(username="left", password="pw-left-123", role=Role.NIC)
    gone.is_active = False
    gone.save()
    before = _state()
    refusals: list[tuple[dict[str, Any], str]] = [
        ({}, "必须指定审批人"),
        ({"approved_by_operator": "教务处"}, "不是在册的有效操作员"),
        ({"approved_by_operator": stranger}, "不是在册的有效操作员"),
        ({"approved_by_operator": gone}, "不是在册的有效操作员"),
        ({"approving_department": Department(code="AAO", name="教务处")}, "不是在册的部门"),
    ]
    for approval, message in refusals:
        with translation.override("zh-hans"), pytest.raises(CardRuleError) as info:
            services.issue_card(holder=student, uid="7E5A0010", operator=nic, basis="新生名单2026", **approval)
        assert message in " ".join(info.value.messages), approval
    free_text: dict[str, Any] = {"approved_by": "教务处"}
    with pytest.raises(TypeError):  # the free-text keyword is gone
        services.issue_card(holder=student, uid="7E5A0010", operator=nic, basis="x", **free_text)
    with pytest.raises(CardRuleError, match="不是在册的操作员用户名或部门代码"):
        services.approver_on_record("教务处")
    assert _state() == before

    card = services.issue_card(
        holder=student, uid="7E5A0010", operator=nic, approved_by_operator=nic, basis="新生名单2026"
    )
    assert (card.approved_by_operator, card.approving_department, card.approval_note) == (nic, None, "")
    step = CardAction.objects.get(card=card, action=Action.ISSUE)
    assert step.approved_by_operator == nic and step.basis == "新生名单2026"
    assert _audit(card.uid, "issue")["approved_by_operator"] == "nic"
    assert card.approver_display() == "nic"


def test_a_temporary_card_is_approved_by_the_department_that_owns_it(campus, nic, gao, contractor):
    """R-CARD-7 谁审批，谁管理: an approving department other than the owner is refused (also by
    the database); the approving department alone makes it the owner."""
    clerk = create_or_update_operator(username="sec", password="pw-sec-1234", role=Role.GENERAL, department=campus.dept)
    until = timezone.now() + timedelta(days=30)
    before = _state()
    with pytest.raises(CardRuleError, match="必须是同一部门"):
        services.issue_card(
            holder=contractor,
            uid="7E5A0002",
            operator=nic,
            approving_department=campus.dept,
            owner_department=gao,
            basis="申请表",
            valid_until=until,
        )
    with pytest.raises(CardRuleError, match="不属于管理部门"):
        services.issue_card(
            holder=contractor,
            uid="7E5A0002",
            operator=nic,
            approved_by_operator=clerk,
            owner_department=gao,
            basis="申请表",
            valid_until=until,
        )
    with pytest.raises(CardRuleError, match="临时卡必须由管理部门审批"):
        services.issue_card(
            holder=contractor, uid="7E5A0002", operator=nic, approved_by_operator=nic, basis="申请表", valid_until=until
        )
    assert _state() == before

    card = _temporary(contractor, nic, gao, "7E5A0002")
    assert card.owner_department == gao and card.approving_department == gao
    with pytest.raises(IntegrityError), transaction.atomic():
        Card.objects.filter(pk=card.pk).update(approving_department=campus.dept)


def test_a_replacement_records_its_own_approval_not_the_original_one(campus, nic, gao, contractor, student):
    """R-USE-2, R-CARD-9: the operator who performs the replacement approves it, on its own basis."""
    card = services.issue_card(
        holder=student, uid="7E5A0003", operator=nic, approving_department=campus.dept, basis="新生名单2026"
    )
    desk = create_or_update_operator(username="nic-desk", password="pw-desk-123", role=Role.NIC)
    new = services.replace_card(card=card, new_uid="7E5A0004", operator=desk, reason="loss", basis="补卡申请 2026-88")
    assert new.approved_by_operator == desk and new.approving_department is None
    assert new.basis == "补卡申请 2026-88" and new.approval_note == ""
    step = CardAction.objects.get(card=new)
    assert step.approved_by_operator == desk and step.basis == "补卡申请 2026-88"
    assert _audit(new.uid, Action.REPLACE)["approved_by_operator"] == "nic-desk"

    temporary = _temporary(contractor, nic, gao, "7E5A0005")
    clerk = create_or_update_operator(username="gao", password="pw-gao-1234", role=Role.GENERAL, department=gao)
    renewed = services.replace_card(card=temporary, new_uid="7E5A0006", operator=clerk, reason="damage", basis="损坏")
    assert (renewed.approved_by_operator, renewed.approving_department, renewed.owner_department) == (clerk, gao, gao)


def test_an_extension_records_the_owner_department_and_its_letter(campus, nic, gao, contractor):
    """R-CARD-7, R-END-4: a temporary card is extended on its owner department's letter."""
    card = _temporary(contractor, nic, gao)
    assert card.valid_until is not None
    new_until = card.valid_until + timedelta(days=90)
    before = _state()
    with pytest.raises(CardRuleError, match="函件"):
        services.extend_validity(card=card, new_until=new_until, operator=nic, basis="总务函〔2026〕31号")
    with pytest.raises(CardRuleError, match="不能审批"):
        services.extend_validity(
            card=card, new_until=new_until, operator=nic, basis="总务函〔2026〕31号", approving_department=campus.dept
        )
    assert _state() == before

    services.extend_validity(
        card=card, new_until=new_until, operator=nic, basis="总务函〔2026〕31号", approving_department=gao
    )
    step = CardAction.objects.get(card=card, action=Action.EXTEND)
    assert step.approving_department == gao and step.basis == "总务函〔2026〕31号"
    assert _audit(card.uid, Action.EXTEND)["approving_department"] == "GAO"
    assert Card.objects.get(pk=card.pk).valid_until == new_until


# -- admin -----------------------------------------------------------------------------------------
def test_the_admin_issuance_form_offers_approvers_on_record_and_refuses_a_typed_name(campus, client, student):
    create_or_update_operator(username="nic", password="pw-nic-123", role=Role.NIC, is_superuser=True)
    client.post("/accounts/login/", {"username": "nic", "password": "pw-nic-123"})
    url = f"/admin/campus/cardholder/{student.pk}/issue/"
    html = client.get(url).content.decode()
    assert '<select name="approved_by_operator"' in html and '<select name="approving_department"' in html
    assert ">nic<" in html and f'value="{campus.dept.pk}"' in html
    assert 'name="approved_by"' not in html  # no free-text approver any more

    before = _state()
    typed = client.post(url, {"uid": "7E5A0007", "basis": "新生名单2026", "approved_by_operator": "张三"})
    assert typed.status_code == 200 and "errorlist" in typed.content.decode()
    old_form = client.post(url, {"uid": "7E5A0007", "basis": "新生名单2026", "approved_by": "教务处"})
    assert old_form.status_code == 200 and "必须指定审批人" in old_form.content.decode()
    assert _state() == before

    done = client.post(url, {"uid": "7E5A0007", "basis": "新生名单2026", "approving_department": campus.dept.pk})
    assert done.status_code == 302
    assert Card.objects.get(uid="7E5A0007").approving_department == campus.dept


# -- API -------------------------------------------------------------------------------------------
def test_the_api_takes_an_approver_on_record_and_refuses_an_unknown_one(campus, gao, student, contractor):
    user = create_or_update_operator(username="nic-api", password="pw-nic-api-1", role=Role.NIC)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    issue = {"holder_number": student.number, "uid": "7E5A0008", "basis": "新生名单2026"}

    before = _state()
    r = api.post("/api/v1/cards/", {**issue, "approved_by": "教务处"}, format="json")
    assert r.status_code == 400 and "不是在册的操作员用户名或部门代码" in r.json()["detail"]
    r = api.post("/api/v1/cards/", issue, format="json")
    assert r.status_code == 400 and "必须指定审批人" in r.json()["detail"]
    api.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    r = api.post("/api/v1/cards/", {**issue, "approved_by": "教务处"}, format="json")
    assert r.status_code == 400 and "not an operator username or a department code on record" in r.json()["detail"]
    del api.cookies[settings.LANGUAGE_COOKIE_NAME]
    assert _state() == before

    assert api.post("/api/v1/cards/", {**issue, "approved_by": "nic-api"}, format="json").status_code == 201
    assert Card.objects.get(uid="7E5A0008").approved_by_operator == user
    r = api.post(
        "/api/v1/cards/",
        {
            "holder_number": contractor.number,
            "uid": "7E5A0009",
            "basis": "外包合同",
            "approved_by": "GAO",
            "valid_until": str(timezone.localdate() + timedelta(days=30)),
        },
        format="json",
    )
    assert r.status_code == 201, r.content
    temporary = Card.objects.get(uid="7E5A0009")
    assert (
        temporary.card_type == CardType.TEMPORARY
        and temporary.owner_department == gao == temporary.approving_department
    )

    until = str(timezone.localdate() + timedelta(days=120))
    r = api.post(
        "/api/v1/cards/7E5A0009/extend/", {"new_until": until, "basis": "总务函", "approving_department": "SEC"}
    )
    assert r.status_code == 400 and "不能审批" in r.json()["detail"]
    r = api.post(
        "/api/v1/cards/7E5A0009/extend/", {"new_until": until, "basis": "总务函", "approving_department": "GAO"}
    )
    assert r.status_code == 200, r.content
    assert CardAction.objects.get(card=temporary, action=Action.EXTEND).approving_department == gao


# -- CLI -------------------------------------------------------------------------------------------
def test_enroll_takes_an_approver_on_record_and_refuses_a_typed_name_before_reading(campus, nic, student, monkeypatch):
    """The desk's `campuscard enroll` (the PC/SC read replaced: tests/test_enroll_pcsc.py drives
    the real stack): an approver not on record is refused before the card is asked for."""
    from readers.sources import pcsc

    monkeypatch.setenv("CAMPUSCARD_TOKEN", Token.objects.create(user=nic).key)
    reads: list[float] = []

    def card_on_reader(timeout_s: float, reader: str | None = None) -> CardPresented:
        reads.append(timeout_s)
        return CardPresented(reader="desk", uid="04A1B2C3D4E5F6", at=datetime.now(UTC))

    monkeypatch.setattr(pcsc, "read_one_uid", card_on_reader)
    args = ["--holder", student.number, "--operator", "nic", "--basis", "新生名单2026", "--timeout", "1"]
    before = _state()
    with translation.override("zh-hans"), pytest.raises(CommandError, match="不是在册的操作员用户名或部门代码"):
        call_command("enroll", *args, "--approved-by", "教务处")
    assert reads == [] and _state() == before

    call_command("enroll", *args, "--approved-by", campus.dept.code)
    card = Card.objects.get(holder=student)
    assert card.uid == "04A1B2C3D4E5F6" and card.approving_department == campus.dept and reads == [1.0]


# -- the batch print run and the records before this change ---------------------------------------
def test_the_batch_print_run_records_its_approvers_on_record():
    """批量制卡 (the demo campus's cards): each card approved by a department on record — a
    temporary card by the department that owns it — and no free-text approver."""
    from ops.demo.seed import seed_demo_campus

    seed_demo_campus(holders=80)
    cards = Card.objects.select_related("approving_department")
    assert cards.exists() and not cards.filter(approving_department__isnull=True).exists()
    assert not cards.exclude(approval_note="").exists()
    for card in cards.filter(card_type=CardType.TEMPORARY):
        assert card.approving_department_id == card.owner_department_id
    pairs = set(cards.exclude(card_type=CardType.TEMPORARY).values_list("card_type", "approving_department__code"))
    assert pairs == {(CardType.STUDENT, "AAO"), (CardType.STAFF, "HR")}


def test_the_migration_matches_the_old_text_to_the_records_and_keeps_the_rest_as_a_note(campus, gao, nic):
    """What cards kept as free text before: a department's name or code, or an operator's
    username, becomes that record; anything else stays, labelled, in ``approval_note``."""
    migration = importlib.import_module("ops.registry.migrations.0011_card_approver_from_legacy_text")
    start = timezone.now() - timedelta(days=10)
    holders = [
        Cardholder.objects.create(kind=HolderKind.STAFF, number=f"T9{i:05d}", name=f"旧{i}", department=campus.dept)
        for i in range(4)
    ]
    texts = ["保卫处", "GAO", "nic", "王处长"]
    for i, (holder, text) in enumerate(zip(holders, texts, strict=True)):
        Card.objects.create(
            uid=f"0D0{i:05X}", holder=holder, card_type=CardType.STAFF, valid_from=start, approval_note=text
        )
    contractor = Cardholder.objects.create(kind=HolderKind.CONTRACTOR, number="LCO09999", name="旧临", department=gao)
    Card.objects.create(
        uid="0D0FFFFF",
        holder=contractor,
        card_type=CardType.TEMPORARY,
        owner_department=gao,
        approving_department=gao,
        valid_from=start,
        valid_until=timezone.now() + timedelta(days=10),
        approval_note="总务处",
    )
    migration.forwards(apps, None)
    got = {
        c.approval_note or c.uid: (c.approving_department_id, c.approved_by_operator_id)
        for c in Card.objects.filter(uid__startswith="0D0")
    }
    assert got == {
        "0D000000": (campus.dept.pk, None),
        "0D000001": (gao.pk, None),
        "0D000002": (None, nic.pk),
        "王处长": (None, None),
        "0D0FFFFF": (gao.pk, None),
    }
    assert Card.objects.get(approval_note="王处长").approver_display() == "（旧记录，未核实）王处长"
