"""After login every operator lands where their work is: a desk for the roles that watch live
traffic, otherwise a workbench listing exactly the places and record lists the role may open."""

from __future__ import annotations

import pytest

from ops.accounts.roles import Role
from ops.accounts.services import create_or_update_operator

pytestmark = pytest.mark.django_db


def _login(client, role: Role | None, username: str):
    user = create_or_update_operator(username=username, password="pw-bench-1234", role=role or Role.HR)
    if role is None:  # an account whose role was taken away
        user.operator.delete()
    client.post("/accounts/login/", {"username": username, "password": "pw-bench-1234"})


@pytest.mark.parametrize(
    ("role", "desk"), [(Role.SECURITY, "/live/gates/"), (Role.NIC, "/live/devices/"), (Role.LIBRARY, "/library/")]
)
def test_desk_roles_land_on_their_desk(client, role, desk):
    _login(client, role, f"u-{role.value}")
    response = client.get("/")
    assert response.status_code == 302 and response["Location"] == desk


def test_hr_gets_a_workbench_of_its_own_records(client):
    _login(client, Role.HR, "hr1")
    html = client.get("/").content.decode()
    assert 'href="/admin/campus/cardholder/"' in html  # HR looks up staff
    assert 'href="/admin/cards/importbatch/"' in html  # and imports the staff list
    assert 'href="/privacy/requests/"' in html
    for foreign in (
        "/live/gates/",
        "/live/devices/",
        "/admin/campus/card/",
        "/admin/cards/feecharge/",
        "/admin/auth/user/",
    ):
        assert f'href="{foreign}"' not in html
    assert "建设中" not in html


def test_the_leader_sees_the_personal_data_requests_and_no_admin(client):
    _login(client, Role.LEADER, "leader1")
    html = client.get("/").content.decode()
    assert 'href="/privacy/requests/"' in html and 'href="/admin/"' not in html


def test_an_account_without_a_role_is_told_to_ask_nic(client):
    _login(client, None, "norole")
    html = client.get("/").content.decode()
    assert "尚未分配角色" in html and 'id="places"' not in html


# -- issue 19, item 11: the workbench shows the role's day and greets the operator by name ------------


def _figures(html: str) -> dict[str, str]:
    """data-figure key → the figure's value as shown."""
    import re

    return {
        m.group(1): re.sub(r"<[^>]+>", "", m.group(2)).strip()
        for m in re.finditer(r'data-figure="([a-z_]+)">\s*<div class="wb-value">(.*?)</div>', html, re.S)
    }


def test_the_workbench_greets_by_name_and_falls_back_to_the_username(client):
    from django.contrib.auth import get_user_model

    _login(client, Role.HR, "hr-named")
    html = client.get("/").content.decode()
    assert "欢迎，hr-named" in html  # no name on record: the username
    get_user_model().objects.filter(username="hr-named").update(first_name="陈人事")
    html = client.get("/").content.decode()
    assert "欢迎，陈人事" in html and "欢迎，hr-named" not in html


def test_the_leader_sees_todays_figures_and_what_awaits_approval(client, campus, django_assert_max_num_queries):
    import uuid
    from datetime import timedelta

    from django.utils import timezone

    from ops.alerts.models import Alert
    from ops.registry.lifecycle.services import report_loss
    from ops.registry.models import AccessEvent
    from streams.reasons import Decision, Reason

    nic = create_or_update_operator(username="nic-wb", password="pw-bench-1234", role=Role.NIC)
    report_loss(card=campus.cards[0], operator=nic, basis="本人挂失")
    report_loss(card=campus.cards[1], operator=nic, basis="本人挂失")
    now = timezone.now()
    gate = campus.gate
    for i, (decision, reason) in enumerate([(Decision.ALLOW, Reason.OK)] * 3 + [(Decision.DENY, Reason.LOST)] * 2):
        AccessEvent.objects.create(
            event_id=uuid.uuid4(),
            device=gate,
            card_uid=f"AA{i:06d}",
            occurred_at=now,
            direction="in",
            decision=decision,
            reason=reason,
        )
    AccessEvent.objects.create(  # yesterday's tap is not today's
        event_id=uuid.uuid4(),
        device=gate,
        card_uid="BB000001",
        occurred_at=now - timedelta(days=2),
        direction="in",
        decision="allow",
        reason="ok",
    )
    Alert.objects.create(kind="device_offline", severity="warning", subject="G-E-01", first_at=now, last_at=now)
    _login(client, Role.LEADER, "leader-wb")
    client.get("/")  # sessions, permissions cached
    with django_assert_max_num_queries(20):  # a fixed number, whatever the campus's size
        html = client.get("/").content.decode()
    figures = _figures(html)
    assert figures["taps_today"] == "5" and figures["denied_today"] == "2"
    assert figures["lost_today"] == "2" and figures["alerts_open"] == "1"
    assert figures["requests_filed"] == "0" and figures["emergency_pending"] == "0"
    assert "没有待审批的事项" in html


def test_hr_sees_its_last_staff_imports_not_academic_affairs_student_lists(client):
    from django.utils import timezone

    from ops.registry.lifecycle.models import ImportBatch

    _login(client, Role.HR, "hr-wb")
    assert _figures(client.get("/").content.decode())["last_import"] == "尚未导入"
    applied = timezone.localtime().replace(hour=0, minute=5, second=0, microsecond=0)
    ImportBatch.objects.create(
        kind="staff", filename="教职工名单-11月.xlsx", sha256="c" * 64, rows=9, status="applied", applied_at=applied
    )
    for n in range(11):  # more previews since than the panel lists: the last import is still known
        ImportBatch.objects.create(kind="staff", filename=f"教职工名单-12月-{n}.xlsx", sha256="a" * 64, rows=12)
    ImportBatch.objects.create(kind="student", filename="新生名单.xlsx", sha256="b" * 64, rows=40)
    html = client.get("/").content.decode()
    assert "教职工名单-12月-10.xlsx" in html and "新生名单.xlsx" not in html
    figures = _figures(html)
    assert figures["imports_waiting"] == "11" and figures["imports_applied_today"] == "1"
    assert figures["last_import"] == applied.strftime("%Y-%m-%d %H:%M")
    _login(client, Role.ACADEMIC, "aao-wb")
    html = client.get("/").content.decode()
    assert "新生名单.xlsx" in html and "教职工名单" not in html


def test_finance_sees_todays_payments_and_the_days_not_closed(client, campus):
    from datetime import timedelta
    from decimal import Decimal

    from django.utils import timezone

    from ops.registry.lifecycle.models import FeeCharge

    holder = campus.cards[0].holder
    now = timezone.now()
    for at in (now, now, now - timedelta(days=2)):
        FeeCharge.objects.create(
            holder=holder,
            kind="loss",
            amount=Decimal("20.00"),
            status="paid",
            paid_at=at,
            channel="cash",
            reference=f"R{FeeCharge.objects.count()}",
        )
    _login(client, Role.FINANCE, "fin-wb")
    figures = _figures(client.get("/").content.decode())
    assert figures["payments_today"] == "2" and figures["payments_today_total"] == "40.00"
    assert figures["open_days"] == "1"  # the day before yesterday, never closed
    assert figures["last_closed"] == "尚未结账"


def test_general_affairs_lands_on_its_temporary_cards_ending_soon(client, campus):
    from datetime import timedelta

    from django.utils import timezone

    from ops.registry.models import Card, Cardholder, Department

    _login(client, Role.GENERAL, "gao-wb")
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.get(username="gao-wb")
    mine = Department.objects.create(code="GAOX", name="总务处X")
    user.operator.department = mine
    user.operator.save()
    other = Department.objects.exclude(pk=mine.pk).first()
    assert other is not None
    now = timezone.now()
    for i, (dept, ends) in enumerate([(mine, 2), (mine, 30), (other, 2)]):
        holder = Cardholder.objects.create(kind="short_term", number=f"TMP{i:05d}", name=f"施工{i}号", department=dept)
        Card.objects.create(
            uid=f"7E000{i:03d}",
            holder=holder,
            card_type="temporary",
            status="active",
            owner_department=dept,
            approving_department=dept,
            valid_from=now - timedelta(days=1),
            valid_until=now + timedelta(days=ends),
        )
    response = client.get("/")
    assert response.status_code == 200  # General Affairs' landing is its workbench now
    html = response.content.decode()
    figures = _figures(html)
    assert figures["temporary_active"] == "2" and figures["temporary_ending_soon"] == "1"
    assert "7E****00" in html and "7E****02" not in html  # masked; another department's card not shown
    assert 'href="/live/cards/"' in html


def test_general_affairs_follows_its_repair_tickets_on_its_workbench(client):
    """Issue 18, Build 1: the department's open tickets and those waiting for it to verify, on
    its landing page; another department's ticket is not counted."""
    from django.contrib.auth import get_user_model

    from ops.alerts import repairs
    from ops.alerts.choices import RepairState
    from ops.registry.models import Department
    from streams.cards import DeviceKind
    from tests.factories import make_device

    _login(client, Role.GENERAL, "gao-rep")
    user = get_user_model().objects.get(username="gao-rep")
    mine = Department.objects.create(code="GAOR", name="总务处R")
    other = Department.objects.create(code="SECR", name="保卫处R")
    user.operator.department = mine
    user.operator.save()
    ours = make_device("G-R-01", "后勤门禁", DeviceKind.PEDESTRIAN_GATE, "后勤楼", mine)
    theirs = make_device("G-R-02", "保卫门禁", DeviceKind.PEDESTRIAN_GATE, "东门", other)
    repairs.report(device=ours, by=user, description="读卡无反应")
    second = make_device("G-R-03", "后勤二号门", DeviceKind.PEDESTRIAN_GATE, "后勤楼", mine)
    done = repairs.report(device=second, by=user, description="门锁不吸合")
    nic = create_or_update_operator(username="nic-rep", password="pw-bench-1234", role=Role.NIC)
    for step in (RepairState.ACCEPTED, RepairState.WITH_VENDOR, RepairState.REPAIRED):
        repairs.transition(done, to=step, by=nic, decision=repairs.Decision(vendor="门禁厂商"))
    repairs.report(device=theirs, by=nic, description="外壳破损")

    figures = _figures(client.get("/").content.decode())
    assert figures["repairs_open"] == "2" and figures["repairs_to_verify"] == "1"
