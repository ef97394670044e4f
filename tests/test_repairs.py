"""Repair requests 报修 and NIC's repair queue (issue 18, Build 1; R-ROLE-3, R-DEV-3, R-DEV-4):
the transition table and nothing else, who may take which step, a department sees and files only
for its own devices, a photo is checked, the charge of a human fault is a fee owed until paid,
every step is logged, audited and told to the owning department through its routing rules."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from itertools import product

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db.models import F
from django.test import Client
from django.utils import timezone

from ops.accounts.roles import Role
from ops.accounts.services import create_or_update_operator
from ops.alerts import repairs
from ops.alerts.choices import AlertKind, ChannelKind, NotificationStatus, RepairCause, RepairState, Severity
from ops.alerts.models import Alert, Notification, NotificationChannel, RepairStep, RepairTicket, RoutingRule
from ops.alerts.notifications import services as notifications
from ops.alerts.notifications.ratelimit import RateLimiter
from ops.alerts.services import TicketRequest, open_ticket
from ops.audit.models import AuditRecord
from ops.registry.lifecycle.choices import ChargeStatus, FeeKind
from ops.registry.lifecycle.models import FeeCharge
from ops.registry.lifecycle.photos import make_test_photo
from ops.registry.lifecycle.services import settle_charge
from ops.registry.models import Department
from streams.cards import DeviceKind
from tests.factories import make_device

PASSWORD = "repair-desk-pass-7"
S = RepairState


@pytest.fixture
def depts(campus):
    """The library with its gate, the security office (the campus's gates) and its operators."""
    lib = Department.objects.create(code="LIB", name="图书馆")
    gate = make_device("L-GATE", "图书馆入口闸机", DeviceKind.PEDESTRIAN_GATE, "图书馆入口", lib)
    users = {
        "lib": create_or_update_operator(username="lib1", password=PASSWORD, role=Role.LIBRARY, department=lib),
        "sec": create_or_update_operator(
            username="guard1", password=PASSWORD, role=Role.SECURITY, department=campus.dept
        ),
        "nic": create_or_update_operator(username="nic1", password=PASSWORD, role=Role.NIC),
        "fin": create_or_update_operator(username="fin1", password=PASSWORD, role=Role.FINANCE),
    }
    return {"lib_dept": lib, "gate": gate, "sec_dept": campus.dept, "sec_gate": campus.gate, **users}


def _client(user: User) -> Client:
    c = Client()
    c.force_login(user)
    return c


def _walk(ticket: RepairTicket, d, path: list[str]) -> RepairTicket:
    for to in path:
        by = d["lib"] if to == S.VERIFIED else d["nic"]
        decision = repairs.Decision(vendor="海康威视", responsible_number=d["holder"], price="350")
        ticket = repairs.transition(ticket.pk, to=to, by=by, comment="", decision=decision)
    return ticket


@pytest.fixture
def holder(campus):
    return campus.cards[0].holder


@pytest.mark.django_db
def test_the_transition_table_is_the_regulation(depts):
    """reported → accepted → with vendor | charged → repaired → verified → closed; rejected from
    reported or accepted. Nothing else."""
    assert {f: set(t) for f, t in repairs.TRANSITIONS.items()} == {
        S.REPORTED: {S.ACCEPTED, S.REJECTED},
        S.ACCEPTED: {S.WITH_VENDOR, S.CHARGED, S.REJECTED},
        S.WITH_VENDOR: {S.REPAIRED},
        S.CHARGED: {S.REPAIRED},
        S.REPAIRED: {S.VERIFIED},
        S.VERIFIED: {S.CLOSED},
    }
    assert repairs.TRANSITIONS[S.REPAIRED][S.VERIFIED] == repairs.OWNER  # the department verifies
    assert S.CLOSED not in repairs.TRANSITIONS and S.REJECTED not in repairs.TRANSITIONS  # final


@pytest.mark.django_db
def test_a_non_human_fault_goes_through_the_vendor_free_and_every_step_is_logged_and_audited(depts, holder):
    ticket = repairs.report(device=depts["gate"], by=depts["lib"], description="闸机刷卡无反应")
    assert ticket.state == S.REPORTED and ticket.reporter_department == depts["lib_dept"] and ticket.cause == ""
    d = {**depts, "holder": holder.number}
    ticket = _walk(ticket, d, [S.ACCEPTED, S.WITH_VENDOR, S.REPAIRED, S.VERIFIED, S.CLOSED])
    assert ticket.state == S.CLOSED and ticket.cause == RepairCause.NON_HUMAN and ticket.vendor == "海康威视"
    assert ticket.price == 0 and ticket.fee is None and ticket.closed_at is not None
    assert ticket.repaired_at is not None and repairs.time_to_repair(ticket) == ticket.repaired_at - ticket.opened_at
    steps = list(ticket.steps.values_list("from_state", "to_state", "actor__username"))
    assert steps == [
        ("", S.REPORTED, "lib1"),
        (S.REPORTED, S.ACCEPTED, "nic1"),
        (S.ACCEPTED, S.WITH_VENDOR, "nic1"),
        (S.WITH_VENDOR, S.REPAIRED, "nic1"),
        (S.REPAIRED, S.VERIFIED, "lib1"),
        (S.VERIFIED, S.CLOSED, "nic1"),
    ]
    audited = list(
        AuditRecord.objects.filter(object_type="repair_ticket", object_id=str(ticket.pk))
        .order_by("id")
        .values_list("action", "actor_name")
    )
    assert audited == [(f"repair.{to}", who) for _f, to, who in steps]


@pytest.mark.django_db
def test_a_human_fault_is_a_fee_owed_until_paid_and_the_ticket_closes_only_then(depts, holder):
    ticket = repairs.report(device=depts["gate"], by=depts["lib"], description="闸机挡板被踹坏")
    d = {**depts, "holder": holder.number}
    ticket = _walk(ticket, d, [S.ACCEPTED, S.CHARGED, S.REPAIRED, S.VERIFIED])
    assert ticket.fee_id is not None
    fee = FeeCharge.objects.get(pk=ticket.fee_id)
    assert (fee.kind, fee.amount, fee.status, fee.holder) == (
        FeeKind.DEVICE_DAMAGE,
        Decimal("350.00"),
        ChargeStatus.OWED,
        holder,
    )
    assert ticket.responsible == holder and ticket.price == Decimal("350.00")
    with pytest.raises(repairs.RepairError, match="尚未缴纳赔偿"):
        repairs.transition(ticket.pk, to=S.CLOSED, by=depts["nic"])
    assert RepairTicket.objects.get(pk=ticket.pk).state == S.VERIFIED
    settle_charge(charge=fee, to=ChargeStatus.PAID, operator=depts["fin"], window="财务处")
    assert repairs.transition(ticket.pk, to=S.CLOSED, by=depts["nic"]).state == S.CLOSED


@pytest.mark.django_db
def test_every_transition_outside_the_table_is_refused_and_changes_nothing(depts, holder):
    ticket = repairs.report(device=depts["gate"], by=depts["lib"], description="读卡器死机")
    refused = 0
    for current, to in product(S.values, S.values):
        if to in repairs.TRANSITIONS.get(current, {}):
            continue
        cause = "" if current in (S.REPORTED, S.ACCEPTED, S.REJECTED) else RepairCause.NON_HUMAN  # as the DB demands
        RepairTicket.objects.filter(pk=ticket.pk).update(state=current, cause=cause, price=0)
        steps, audits = RepairStep.objects.count(), AuditRecord.objects.count()
        with pytest.raises(repairs.RepairError, match="不能改为"):
            repairs.transition(ticket.pk, to=to, by=depts["nic"], comment="x")
        assert RepairTicket.objects.get(pk=ticket.pk).state == current
        assert (RepairStep.objects.count(), AuditRecord.objects.count()) == (steps, audits)
        refused += 1
    assert refused == len(S.values) ** 2 - sum(len(t) for t in repairs.TRANSITIONS.values())
    with pytest.raises(repairs.RepairError, match="未知的维修单状态"):
        repairs.transition(ticket.pk, to="fixed", by=depts["nic"])


@pytest.mark.django_db
def test_who_may_take_each_step(depts, holder):
    ticket = repairs.report(device=depts["gate"], by=depts["lib"], description="闸机不开")
    for step in (S.ACCEPTED, S.REJECTED):  # a department does not triage its own request
        with pytest.raises(repairs.RepairError, match="只有网信中心"):
            repairs.transition(ticket.pk, to=step, by=depts["lib"], comment="自己受理")
    with pytest.raises(repairs.RepairError, match="驳回报修须写明理由"):
        repairs.transition(ticket.pk, to=S.REJECTED, by=depts["nic"])
    repairs.transition(ticket.pk, to=S.ACCEPTED, by=depts["nic"])
    # a human fault needs a known person and a market price: refused, no fee made
    for decision, message in (
        (repairs.Decision(responsible_number="NOBODY", price="10"), "找不到此学工号"),
        (repairs.Decision(responsible_number=holder.number, price="abc"), "须为数字"),
        (repairs.Decision(responsible_number=holder.number, price="0"), "大于 0 元"),
        (repairs.Decision(responsible_number=holder.number, price="NaN"), "须为数字"),
    ):
        with pytest.raises(repairs.RepairError, match=message):
            repairs.transition(ticket.pk, to=S.CHARGED, by=depts["nic"], decision=decision)
    with pytest.raises(repairs.RepairError, match="请填写维修厂商"):
        repairs.transition(ticket.pk, to=S.WITH_VENDOR, by=depts["nic"], decision=repairs.Decision())
    assert FeeCharge.objects.count() == 0 and RepairTicket.objects.get(pk=ticket.pk).state == S.ACCEPTED
    repairs.transition(ticket.pk, to=S.WITH_VENDOR, by=depts["nic"], decision=repairs.Decision(vendor="厂商甲"))
    with pytest.raises(repairs.RepairError, match="只有网信中心"):
        repairs.transition(ticket.pk, to=S.REPAIRED, by=depts["lib"])
    repairs.transition(ticket.pk, to=S.REPAIRED, by=depts["nic"])
    # another department may not verify the library's device — it cannot even see the ticket
    with pytest.raises(repairs.RepairError, match="维修单不存在"):
        repairs.transition(ticket.pk, to=S.VERIFIED, by=depts["sec"])
    assert repairs.allowed_steps(RepairTicket.objects.get(pk=ticket.pk), depts["lib"]) == [S.VERIFIED]
    repairs.transition(ticket.pk, to=S.VERIFIED, by=depts["lib"])
    with pytest.raises(repairs.RepairError, match="只有网信中心"):
        repairs.transition(ticket.pk, to=S.CLOSED, by=depts["lib"])


@pytest.mark.django_db
def test_a_department_sees_and_files_only_for_its_own_devices(depts):
    lib, sec = _client(depts["lib"]), _client(depts["sec"])
    page = lib.get("/repairs/")
    assert page.status_code == 200 and page["Cache-Control"] == "private, no-store"
    assert [row["d"].code for row in page.context["devices"]] == ["L-GATE"]
    assert {row["d"].code for row in sec.get("/repairs/").context["devices"]} == {"G-E-01", "V-E-IN", "D1-01"}
    # filing for another department's gate: refused with a message, nothing made
    response = lib.post("/repairs/new", {"device": depts["sec_gate"].pk, "description": "东门坏了"}, follow=True)
    assert "只能为本部门的设备报修" in response.content.decode() and RepairTicket.objects.count() == 0
    with pytest.raises(repairs.RepairError, match="只能为本部门的设备报修"):
        repairs.report(device=depts["sec_gate"], by=depts["lib"], description="东门坏了")
    response = lib.post("/repairs/new", {"device": depts["gate"].pk, "description": "闸机不开"})
    ticket = RepairTicket.objects.get()
    assert response["Location"] == f"/repairs/{ticket.pk}/"
    # the security office neither sees it nor acts on it; NIC sees the whole queue
    assert sec.get(f"/repairs/{ticket.pk}/").status_code == 404
    assert sec.post(f"/repairs/{ticket.pk}/step", {"to": "accepted"}).status_code == 404
    assert [r["t"].pk for r in sec.get("/repairs/").context["rows"]] == []
    nic = _client(depts["nic"])
    assert [r["t"].pk for r in nic.get("/repairs/").context["rows"]] == [ticket.pk]
    assert "L-GATE" in nic.get(f"/repairs/{ticket.pk}/").content.decode()
    # a second request for a device with one open: follow that one
    with pytest.raises(repairs.RepairError, match="未关闭的维修单"):
        repairs.report(device=depts["gate"], by=depts["lib"], description="还是坏的")
    # roles without devices to look after do not open it
    assert _client(depts["fin"]).get("/repairs/").status_code == 403
    assert Client().get("/repairs/")["Location"].startswith("/accounts/login/")


@pytest.mark.django_db
def test_an_operator_without_a_department_files_nothing(depts):
    nobody = create_or_update_operator(username="lib2", password=PASSWORD, role=Role.LIBRARY)
    page = _client(nobody).get("/repairs/")
    assert page.status_code == 200 and page.context["devices"] == []
    assert "尚未设置所属部门" in page.content.decode()
    with pytest.raises(repairs.RepairError, match="只能为本部门的设备报修"):
        repairs.report(device=depts["gate"], by=nobody, description="坏了")


@pytest.mark.django_db
def test_a_photo_is_checked_stored_and_shown_only_to_whom_may_see_the_ticket(depts, settings):
    lib = _client(depts["lib"])
    png = make_test_photo(fmt="PNG", size=(64, 48), dpi=None)
    for upload, message in (
        (SimpleUploadedFile("x.jpg", b"not an image at all", "image/jpeg"), "须为 JPEG 或 PNG"),
        (SimpleUploadedFile("x.gif", b"GIF89a" + b"\0" * 100, "image/gif"), "须为 JPEG 或 PNG"),
    ):
        response = lib.post(
            "/repairs/new", {"device": depts["gate"].pk, "description": "闸机", "photo": upload}, follow=True
        )
        assert message in response.content.decode() and RepairTicket.objects.count() == 0
    settings.REPAIR_PHOTO_MAX_BYTES = 64 * 1024
    big = make_test_photo(fmt="PNG", size=(400, 400), dpi=None, noise=120)
    assert len(big) > 64 * 1024
    with pytest.raises(repairs.RepairError, match="照片不能超过"):
        repairs.report(
            device=depts["gate"], by=depts["lib"], description="闸机", photo=SimpleUploadedFile("b.png", big)
        )
    lib.post(
        "/repairs/new",
        {"device": depts["gate"].pk, "description": "闸机外壳裂开", "photo": SimpleUploadedFile("p.png", png)},
    )
    ticket = RepairTicket.objects.get()
    assert len(ticket.photo_sha256) == 64
    shown = lib.get(f"/repairs/{ticket.pk}/photo")
    assert shown.status_code == 200 and shown["Content-Type"] == "image/png"
    assert b"".join(shown.streaming_content) == png  # type: ignore[attr-defined]  # a FileResponse
    assert _client(depts["sec"]).get(f"/repairs/{ticket.pk}/photo").status_code == 404


@pytest.fixture
def library_rule(depts):
    """The library's routing rule: its mailbox, for the devices it owns (issue 16's channels)."""
    channel = NotificationChannel.objects.create(
        name="图书馆邮箱", kind=ChannelKind.EMAIL, address="library-office@example.edu.cn"
    )
    rule = RoutingRule.objects.create(name="图书馆设备")
    rule.owner_departments.set([depts["lib_dept"]])
    rule.channels.set([channel])
    other = NotificationChannel.objects.create(name="保卫处邮箱", kind=ChannelKind.EMAIL, address="sec@example.edu.cn")
    sec_rule = RoutingRule.objects.create(name="保卫处设备")
    sec_rule.owner_departments.set([depts["sec_dept"]])
    sec_rule.channels.set([other])
    return rule


@pytest.mark.django_db
def test_the_owning_department_is_told_each_step_through_its_channels(depts, holder, library_rule, redis_client):
    limiter = RateLimiter(redis_client)
    ticket = repairs.report(device=depts["gate"], by=depts["lib"], description="闸机刷卡无反应")
    d = {**depts, "holder": holder.number}
    path = [S.ACCEPTED, S.CHARGED, S.REPAIRED, S.VERIFIED]
    told = []
    for to in [None, *path]:
        if to is not None:
            ticket = _walk(ticket, d, [to])
        outcome = notifications.run(now=timezone.now() + timedelta(seconds=1), limiter=limiter)
        assert outcome["sent"] == 1, (to, outcome)
        message = mail.outbox[-1]
        assert message.to == ["library-office@example.edu.cn"]  # never the security office's box
        told.append(message)
    states = [S.REPORTED, *path]
    for message, state in zip(told, states, strict=True):
        assert f"维修单 #{ticket.pk} {S(state).label}" in message.subject and "L-GATE" in message.subject
        assert f"/repairs/{ticket.pk}/" in message.body
    assert "人为损坏，责任人 张三0 按市价赔偿 350.00 元" in told[2].body
    sent = Notification.objects.filter(repair_step__ticket=ticket)
    assert sent.count() == len(states) and set(sent.values_list("status", flat=True)) == {NotificationStatus.SENT}
    # a rule that opted out of repair steps says nothing
    RoutingRule.objects.filter(pk=library_rule.pk).update(repair_steps=False)
    assert ticket.fee is not None
    settle_charge(charge=ticket.fee, to=ChargeStatus.PAID, operator=depts["fin"], window="财务处")
    repairs.transition(ticket.pk, to=S.CLOSED, by=depts["nic"])
    assert notifications.run(now=timezone.now() + timedelta(seconds=1), limiter=limiter)["sent"] == 0
    assert len(mail.outbox) == len(states)


@pytest.mark.django_db
def test_an_alert_ticket_joins_the_same_queue(depts, holder):
    now = timezone.now()
    alert = Alert.objects.create(
        kind=AlertKind.DEVICE_FAULT, severity=Severity.WARNING, subject="L-GATE", device=depts["gate"],
        first_at=now, last_at=now, opened_at=now,
    )  # fmt: skip
    ticket = open_ticket(
        alert.pk,
        by=depts["nic"],
        request=TicketRequest(cause=RepairCause.NON_HUMAN, description="主板故障", vendor="厂商乙"),
    )
    assert ticket.state == S.WITH_VENDOR and ticket.accepted_at is not None
    assert list(ticket.steps.values_list("from_state", "to_state")) == [("", S.ACCEPTED), (S.ACCEPTED, S.WITH_VENDOR)]
    # one act, audited once (repair.open on the device, as before issue 18)
    assert not AuditRecord.objects.filter(object_type="repair_ticket").exists()
    assert AuditRecord.objects.filter(action="repair.open", object_id=str(depts["gate"].pk)).count() == 1
    lib = _client(depts["lib"])
    assert [r["t"].pk for r in lib.get("/repairs/").context["rows"]] == [ticket.pk]  # the library follows it
    assert lib.get(f"/repairs/{ticket.pk}/").status_code == 200


@pytest.mark.django_db
def test_the_admin_shows_tickets_read_only(depts):
    ticket = repairs.report(device=depts["gate"], by=depts["lib"], description="闸机不开")
    nic = _client(depts["nic"])
    page = nic.get(f"/admin/alerts/repairticket/{ticket.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'name="state"' not in html and f"/repairs/{ticket.pk}/" in html
    nic.post(f"/admin/alerts/repairticket/{ticket.pk}/change/", {"state": "closed", "description": "x"})
    assert RepairTicket.objects.get(pk=ticket.pk).state == S.REPORTED
    assert nic.get("/admin/alerts/repairticket/add/").status_code == 403
    assert _client(depts["lib"]).get("/admin/alerts/repairticket/").status_code in (302, 403)


@pytest.mark.django_db
def test_the_nic_desk_counts_open_tickets_and_the_time_to_repair(depts, holder):
    from ops.alerts.selectors import repair_times

    since = timezone.now() - timedelta(days=7)
    assert repair_times(since=since) == {"tickets_open": 0, "ticket_mttr_s": None, "repaired_count": 0}
    ticket = repairs.report(device=depts["gate"], by=depts["lib"], description="闸机不开")
    _walk(ticket, {**depts, "holder": holder.number}, [S.ACCEPTED, S.WITH_VENDOR, S.REPAIRED])
    # reported three hours before it was repaired
    RepairTicket.objects.filter(pk=ticket.pk).update(opened_at=F("repaired_at") - timedelta(hours=3))
    figures = repair_times(since=since)
    assert figures["tickets_open"] == 1 and figures["repaired_count"] == 1
    assert abs(figures["ticket_mttr_s"] - 3 * 3600) < 60
    page = _client(depts["nic"]).get("/repairs/?state=all")
    assert page.context["mttr"] == "3 小时 0 分" and page.context["rows"][0]["ttr"] == "3 小时 0 分"
    repairs.transition(ticket.pk, to=S.VERIFIED, by=depts["lib"])
    repairs.transition(ticket.pk, to=S.CLOSED, by=depts["nic"])
    assert repair_times(since=since)["tickets_open"] == 0
