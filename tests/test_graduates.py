"""The July run (R-END-1, R-CARD-6): dry-run report = what apply does; deferred students are
extended; unknown numbers on the list are reported, not applied; bad lists are refused."""

from __future__ import annotations

import json
from datetime import date, timedelta
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.utils import timezone
from rest_framework.authtoken.models import Token

from ops.accounts.roles import Role
from ops.accounts.services import create_or_update_operator
from ops.audit.models import AuditRecord
from ops.registry.choices import HolderKind
from ops.registry.lifecycle import graduation
from ops.registry.lifecycle.errors import CardRuleError
from ops.registry.models import Card, Cardholder
from streams.cards import CardStatus, CardType

pytestmark = [pytest.mark.django_db, pytest.mark.pipeline]


def _prove(monkeypatch, username: str) -> None:
    """The CLI acts as an operator only with their API token (issue 13, defect 7)."""
    token, _ = Token.objects.get_or_create(user=get_user_model().objects.get(username=username))
    monkeypatch.setenv("CAMPUSCARD_TOKEN", token.key)


@pytest.fixture
def cohort(campus, monkeypatch):
    create_or_update_operator(username="nic", password="pw-nic-123", role=Role.NIC)
    _prove(monkeypatch, "nic")
    start = timezone.now() - timedelta(days=1000)
    for i in range(5):
        h = Cardholder.objects.create(
            kind=HolderKind.STUDENT,
            number=f"2022CS{i:05d}",
            name=f"毕业{i}",
            department=campus.dept,
            study_end=date(2026, 7, 1),
        )
        Card.objects.create(uid=f"D00D{i:04X}", holder=h, card_type=CardType.STUDENT, valid_from=start)
    staff = Cardholder.objects.create(
        kind=HolderKind.STAFF, number="T000001", name="老师", department=campus.dept, status="retired"
    )
    Card.objects.create(uid="5AFF0001", holder=staff, card_type=CardType.STAFF, valid_from=start)


def _run(*args):
    out = StringIO()
    call_command(
        "graduates",
        "--cutoff",
        "2026-07-31",
        "--operator",
        "nic",
        "--basis",
        "2026届毕业名单",
        "--json",
        *args,
        stdout=out,
    )
    return json.loads(out.getvalue())


def test_dry_run_changes_nothing_and_apply_does_exactly_what_it_said(cohort, tmp_path):
    deferred = tmp_path / "deferred.csv"
    deferred.write_text("学号,延期至\n2022CS00003,2027-07-01\n2099XX00001,2027-07-01\n", encoding="utf-8-sig")
    dry = _run("--deferred", str(deferred))
    assert Card.objects.filter(status=CardStatus.CANCELLED).count() == 0
    assert dry["graduate"] == 4 and dry["extend"] == 1
    assert dry["unknown_deferred"] == ["2099XX00001"]
    applied = _run("--deferred", str(deferred), "--apply")
    assert applied == dry
    assert Card.objects.filter(status=CardStatus.CANCELLED).count() == 4
    deferred_card = Card.objects.get(holder__number="2022CS00003")
    assert deferred_card.status == "active"
    assert timezone.localtime(deferred_card.valid_until).date() == date(2027, 7, 1)
    assert Card.objects.get(uid="5AFF0001").status == "active"  # R-END-2: retired staff keep it
    assert AuditRecord.objects.filter(action="holder.graduated").count() == 4
    assert _run("--apply")["graduate"] == 0  # running it again changes nothing


def test_a_malformed_deferred_list_is_refused(cohort, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("学号,延期至\n2022CS00001,明年七月\n", encoding="utf-8")
    with pytest.raises(CommandError, match="第 2 行"):
        _run("--deferred", str(bad), "--apply")
    assert Card.objects.filter(status=CardStatus.CANCELLED).count() == 0


@pytest.mark.parametrize("role", [Role.FINANCE, Role.SECURITY, Role.DORM_MANAGER, Role.GENERAL])
def test_only_nic_runs_the_july_run_by_the_service_and_the_cli(cohort, role, monkeypatch):
    """Issue 13, defect 2 (R-END-1): only NIC runs it — the service refuses anyone else, so the CLI
    (and any later path) cannot skip it; nothing changes."""
    create_or_update_operator(username="other", password="pw-other-123", role=role)
    other = get_user_model().objects.get(username="other")
    _prove(monkeypatch, "other")  # proven: refused for the role, not for the proof
    plan = graduation.plan_graduation(cutoff=date(2026, 7, 31), deferred={})
    with pytest.raises(CardRuleError, match="R-END-1"):
        graduation.run_graduation(plan=plan, operator=other, basis="2026届毕业名单")
    with pytest.raises(CommandError, match="只有网信中心"):
        call_command(
            "graduates", "--cutoff", "2026-07-31", "--operator", "other", "--basis", "2026届毕业名单", "--apply"
        )
    assert Card.objects.filter(status=CardStatus.CANCELLED).count() == 0
    assert not AuditRecord.objects.filter(action="holder.graduated").exists()


def _apply_as(name: str):
    return call_command(
        "graduates", "--cutoff", "2026-07-31", "--operator", name, "--basis", "2026届毕业名单", "--apply"
    )


def test_the_cli_acts_as_an_operator_only_when_proven(cohort, monkeypatch):
    """Issue 13, defect 7 (R-SEC-1): naming an operator proves nothing; their API token does."""
    monkeypatch.delenv("CAMPUSCARD_TOKEN")
    with pytest.raises(CommandError, match="未提供 API 令牌"):  # named, not proven (no terminal here)
        _apply_as("nic")
    create_or_update_operator(username="other", password="pw-other-123", role=Role.FINANCE)
    _prove(monkeypatch, "other")
    with pytest.raises(CommandError, match="API 令牌不属于此操作员"):  # someone else's token
        _apply_as("nic")
    monkeypatch.setenv("CAMPUSCARD_TOKEN", "0" * 40)
    with pytest.raises(CommandError, match="API 令牌不属于此操作员"):
        _apply_as("nic")
    assert Card.objects.filter(status=CardStatus.CANCELLED).count() == 0
    assert AuditRecord.objects.filter(action="cli.refused").count() == 3
    _prove(monkeypatch, "nic")
    _apply_as("nic")
    assert Card.objects.filter(status=CardStatus.CANCELLED).count() == 5
    proof = AuditRecord.objects.get(action="cli.authenticated")
    assert proof.actor_name == "nic" and proof.data == {"command": "graduates", "by": "token"}
