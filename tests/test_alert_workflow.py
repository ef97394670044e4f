"""The alert workflow: raising (dedupe, re-fire, acknowledgement lapse, flapping), what operators
do with an alert (acknowledge with a comment, assign, resolve, open a repair ticket) and what the
clock does (escalate, settle flapping), with MTTA/MTTR.

Regulations: R-OPS-3 (NIC works faults to resolution), R-DEV-2 (silent devices), R-DEV-3 (repair
tickets: non-human free by the vendor, human at market price by the responsible person), R-SEC-1
(every operator action audited)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone

from ops.accounts.models import Operator
from ops.accounts.roles import Role
from ops.alerts import services
from ops.alerts.choices import CONDITION_KINDS, SECURITY_KINDS, AlertKind, AlertStatus, LogAction, RepairCause, Severity
from ops.alerts.models import Alert, AlertLog, RepairTicket
from ops.alerts.selectors import response_times
from ops.alerts.services import (
    FLAP_REFIRES,
    FLAP_WINDOW,
    AlertBuffer,
    AlertError,
    TicketRequest,
    acknowledge,
    assign,
    can_work,
    clear_condition,
    escalate_overdue,
    open_ticket,
    raise_alert,
    resolve,
    settle_flapping,
)
from ops.audit.models import AuditRecord
from ops.push import MESSAGE_TYPE, current_seq
from ops.registry.lifecycle import ledger
from ops.registry.lifecycle.choices import ChargeStatus, FeeKind
from ops.registry.lifecycle.models import FeeCharge
from ops.registry.lifecycle.services import settle_charge
from streams import names
from tests.live import Feed

pytestmark = pytest.mark.django_db


# -- helpers -----------------------------------------------------------------------------------


@dataclass
class Operators:
    nic: Any
    nic2: Any
    security: Any
    dorm: Any
    inactive_nic: Any
    nobody: Any  # an account without an operator profile


def _user(username: str, role: Role | None, *, active: bool = True) -> Any:
    user = get_user_model().objects.create_user(username=username, is_active=active)
    if role is not None:
        Operator.objects.create(user=user, role=role)
    return user


@pytest.fixture
def ops(db) -> Operators:
    return Operators(
        nic=_user("nic-wang", Role.NIC),
        nic2=_user("nic-li", Role.NIC),
        security=_user("sec-zhao", Role.SECURITY),
        dorm=_user("dorm-sun", Role.DORM_MANAGER),
        inactive_nic=_user("nic-gone", Role.NIC, active=False),
        nobody=_user("plain", None),
    )


def _raise(kind: AlertKind, subject: str, at, *, device=None, count: int = 1, detail: dict | None = None) -> Alert:
    raise_alert(kind=kind, subject=subject, at=at, device_id=device.pk if device else None, count=count, detail=detail)
    return Alert.objects.exclude(status=AlertStatus.RESOLVED).get(kind=kind, subject=subject)


def _silent(campus, at) -> Alert:
    """R-DEV-2: the gate stopped uploading (a condition alert, worked by NIC)."""
    return _raise(AlertKind.UPLOAD_STOPPED, campus.gate.code, at, device=campus.gate)


def _blacklist(campus, at) -> Alert:
    """A blacklisted card at the gate (momentary, worked by the security office)."""
    return _raise(AlertKind.BLACKLIST_HIT, campus.cards[0].uid, at, device=campus.gate)


def _actions(alert: Alert) -> list[str]:
    """The alert's timeline in the order it was written."""
    return list(AlertLog.objects.filter(alert=alert).order_by("id").values_list("action", flat=True))


def _state(alert_id: int) -> dict[str, Any]:
    """Everything a refused action must leave alone."""
    return {
        "alert": Alert.objects.filter(pk=alert_id).values().get(),
        "logs": list(AlertLog.objects.filter(alert_id=alert_id).values("id", "action")),
        "audit": list(AuditRecord.objects.values_list("id", flat=True)),
        "fees": list(FeeCharge.objects.values_list("id", flat=True)),
        "tickets": list(RepairTicket.objects.values_list("id", flat=True)),
    }


def _refused(capture, alert_id: int, call, match: str) -> None:
    """``call()`` raises AlertError (the expected one) and changes nothing, pushes nothing."""
    before = _state(alert_id)
    with capture() as callbacks, pytest.raises(AlertError, match=match):
        call()
    assert callbacks == [], "a refused action must not push anything"
    assert _state(alert_id) == before


def _ticket(cause: str, **kw: str) -> TicketRequest:
    return TicketRequest(cause=cause, description=kw.pop("description", "读卡器面板碎裂"), **kw)


# -- raising: dedupe, severity, buffer ---------------------------------------------------------


def test_every_kind_has_a_severity_and_alerts_get_it_and_the_building(campus):
    """Every kind can be raised (an unmapped kind would crash the processor's flush); a door's
    alert carries its building so a dorm desk can filter on it."""
    assert set(services.SEVERITY) == set(AlertKind)
    now = timezone.now()
    door = _raise(AlertKind.TAMPER, campus.dorm_door.code, now, device=campus.dorm_door)
    gap = _raise(AlertKind.SEQUENCE_GAP, campus.gate.code, now, device=campus.gate)
    assert (door.severity, door.building_id) == (Severity.CRITICAL, campus.dorm.pk)
    assert (gap.severity, gap.building_id) == (Severity.WARNING, None)
    assert door.status == AlertStatus.OPEN and door.opened_at == door.first_at == now
    assert _actions(door) == [LogAction.RAISED]


def test_a_repeat_of_an_unresolved_alert_counts_on_the_open_one(campus):
    """One open alert per (kind, subject): repeats bump its count and move last_at forward
    only, with the latest detail; they are not new RAISED entries."""
    t0 = timezone.now() - timedelta(minutes=5)
    first = _raise(AlertKind.REPLAY, campus.gate.code, t0, device=campus.gate, detail={"seq": 1})
    _raise(AlertKind.REPLAY, campus.gate.code, t0 + timedelta(minutes=2), count=3, detail={"seq": 7})
    _raise(AlertKind.REPLAY, campus.gate.code, t0 + timedelta(minutes=1))  # late, no detail
    [alert] = Alert.objects.filter(kind=AlertKind.REPLAY)
    assert alert.pk == first.pk and alert.count == 5
    assert alert.first_at == t0 and alert.last_at == t0 + timedelta(minutes=2)
    assert alert.detail == {"seq": 7}
    assert _actions(alert) == [LogAction.RAISED]
    # another subject is another alert
    _raise(AlertKind.REPLAY, campus.vehicle_gate.code, t0, device=campus.vehicle_gate)
    assert Alert.objects.filter(kind=AlertKind.REPLAY).count() == 2


def test_a_repeat_after_resolution_opens_a_new_alert(campus, ops):
    t0 = timezone.now() - timedelta(minutes=5)
    old = _raise(AlertKind.REPLAY, campus.gate.code, t0, device=campus.gate)
    resolve(old.pk, by=ops.nic, resolution="设备固件已升级")
    new = _raise(AlertKind.REPLAY, campus.gate.code, t0 + timedelta(minutes=1))
    assert new.pk != old.pk and new.count == 1 and new.status == AlertStatus.OPEN
    old.refresh_from_db()
    assert old.count == 1 and old.status == AlertStatus.RESOLVED


def test_the_buffer_coalesces_a_storm_into_one_write_per_alert(campus):
    t0 = timezone.now() - timedelta(seconds=30)
    buffer = AlertBuffer()
    for i in range(50):
        buffer.add(
            kind=AlertKind.REPLAY,
            subject=campus.gate.code,
            device_id=campus.gate.pk,
            at=t0 + timedelta(milliseconds=i),
            detail={"seq": i},
        )
    buffer.add(
        kind=AlertKind.REPLAY, subject=campus.gate.code, device_id=campus.gate.pk, at=t0 - timedelta(seconds=5)
    )  # a late upload: counted, last_at stays
    buffer.add(kind=AlertKind.BAD_SIGNATURE, subject="G-E-01", at=t0, count=4)
    ids = buffer.flush()
    assert buffer.pending == {}
    replay = Alert.objects.get(kind=AlertKind.REPLAY)
    forged = Alert.objects.get(kind=AlertKind.BAD_SIGNATURE)
    assert sorted(ids) == sorted([replay.pk, forged.pk])
    assert (replay.count, replay.detail, replay.last_at) == (51, {"seq": 49}, t0 + timedelta(milliseconds=49))
    assert forged.count == 4
    assert AlertLog.objects.filter(action=LogAction.RAISED).count() == 2
    assert buffer.flush() == []  # nothing pending: nothing written
    buffer.add(kind=AlertKind.REPLAY, subject=campus.gate.code, at=t0 + timedelta(seconds=1), count=2)
    assert buffer.flush() == [replay.pk]
    replay.refresh_from_db()
    assert replay.count == 53


def test_a_coalesced_new_alert_starts_at_its_first_occurrence(campus):
    """A backlog uploaded after an outage can put occurrences hours apart into one flush:
    first_at (and the MTTR clock) must be the earliest, last_at the latest."""
    t0 = timezone.now() - timedelta(hours=3)
    buffer = AlertBuffer()
    buffer.add(kind=AlertKind.REPLAY, subject=campus.gate.code, at=t0)
    buffer.add(kind=AlertKind.REPLAY, subject=campus.gate.code, at=t0 + timedelta(hours=2))
    buffer.flush()
    alert = Alert.objects.get(kind=AlertKind.REPLAY)
    assert alert.last_at == t0 + timedelta(hours=2)
    assert alert.first_at == t0


def test_a_flush_that_loses_a_race_is_retried_without_duplicate_writes(
    campus, monkeypatch, django_capture_on_commit_callbacks
):
    """Another processor opening the same alert first makes the insert fail: the attempt is
    rolled back whole (rows and push) and retried."""
    real_write = services._write
    calls = []

    def racing_write(items):
        calls.append(1)
        out = real_write(items)
        if len(calls) == 1:
            raise IntegrityError("one_open_alert")
        return out

    monkeypatch.setattr(services, "_write", racing_write)
    with django_capture_on_commit_callbacks() as callbacks:
        raise_alert(kind=AlertKind.REPLAY, subject=campus.gate.code, at=timezone.now())
    assert len(calls) == 2
    [alert] = Alert.objects.filter(kind=AlertKind.REPLAY)
    assert alert.count == 1 and _actions(alert) == [LogAction.RAISED]
    assert len(_pushes(callbacks)) == 1  # (the other callback after the commit is its log line)


# -- conditions: clear, re-fire, lapse, flapping -------------------------------------------------


def test_a_condition_that_still_holds_does_not_lapse_the_acknowledgement(campus, ops):
    """R-DEV-2: the silence check repeats the alert every tick while the gate stays silent;
    that is not news and must not undo the acknowledgement."""
    t0 = timezone.now() - timedelta(minutes=5)
    alert = _silent(campus, t0)
    acknowledge(alert.pk, by=ops.nic, comment="已通知厂商")
    _silent(campus, t0 + timedelta(minutes=2))
    alert.refresh_from_db()
    assert alert.status == AlertStatus.ACKNOWLEDGED and alert.count == 2 and alert.lapses == 0
    assert alert.refires == [] and not alert.flapping
    assert _actions(alert) == [LogAction.RAISED, LogAction.ACKNOWLEDGED]


def test_clear_condition_marks_only_the_given_kinds_and_devices(campus, ops):
    now = timezone.now() - timedelta(minutes=10)
    gate = _silent(campus, now)
    fault = _raise(AlertKind.DEVICE_FAULT, campus.gate.code, now, device=campus.gate)
    other = _raise(AlertKind.UPLOAD_STOPPED, campus.vehicle_gate.code, now, device=campus.vehicle_gate)
    done = _raise(AlertKind.UPLOAD_STOPPED, campus.dorm_door.code, now, device=campus.dorm_door)
    resolve(done.pk, by=ops.nic, resolution="已恢复")
    at = now + timedelta(minutes=1)
    clear_condition(kinds=[AlertKind.UPLOAD_STOPPED], device_ids=[campus.gate.pk, campus.dorm_door.pk], at=at)
    for a in (gate, fault, other, done):
        a.refresh_from_db()
    assert gate.cleared_at == at and gate.status == AlertStatus.OPEN  # stays until resolved
    assert fault.cleared_at is None and other.cleared_at is None and done.cleared_at is None
    assert _actions(gate) == [LogAction.RAISED, LogAction.CLEARED]
    assert LogAction.CLEARED not in _actions(done)
    # clearing again (already clear) and clearing nobody write nothing
    logs = AlertLog.objects.count()
    clear_condition(kinds=[AlertKind.UPLOAD_STOPPED], device_ids=[campus.gate.pk], at=at + timedelta(minutes=1))
    clear_condition(kinds=[AlertKind.UPLOAD_STOPPED], device_ids=[], at=at)
    gate.refresh_from_db()
    assert gate.cleared_at == at and AlertLog.objects.count() == logs


def test_a_refire_after_clearing_lapses_the_acknowledgement(campus, ops, settings):
    """R-OPS-3: the fault came back, so somebody has to look again: the alert is open once
    more, from the re-fire (its escalation starts over), and re-acknowledging measures from
    there."""
    settings.ALERT_ESCALATE_AFTER_S = {"critical": 60, "warning": 60, "info": 60}
    t0 = timezone.now() - timedelta(minutes=30)
    alert = _silent(campus, t0)
    assert escalate_overdue(now=timezone.now()) == 2  # overdue twice over: level 2
    acknowledge(alert.pk, by=ops.nic, comment="网线松动，已派人")
    clear_condition(kinds=[AlertKind.UPLOAD_STOPPED], device_ids=[campus.gate.pk], at=t0 + timedelta(minutes=20))
    refire_at = timezone.now() - timedelta(seconds=30)
    _silent(campus, refire_at)
    alert.refresh_from_db()
    assert alert.status == AlertStatus.OPEN and alert.opened_at == refire_at
    assert alert.escalation == 0 and alert.lapses == 1 and alert.count == 2
    assert alert.cleared_at is None and alert.refires == [refire_at.timestamp()]
    assert not alert.flapping
    assert _actions(alert)[-2:] == [LogAction.REFIRED, LogAction.LAPSED]
    acknowledge(alert.pk, by=ops.nic2, comment="再次掉线，现场检查")
    ack = AlertLog.objects.filter(alert=alert, action=LogAction.ACKNOWLEDGED).latest("id")
    assert ack.seconds == pytest.approx(30, abs=5)  # from the lapse, not from t0


def test_a_refire_of_an_unacknowledged_alert_is_logged_but_is_no_lapse(campus):
    t0 = timezone.now() - timedelta(minutes=30)
    alert = _silent(campus, t0)
    clear_condition(kinds=[AlertKind.UPLOAD_STOPPED], device_ids=[campus.gate.pk], at=t0 + timedelta(minutes=1))
    _silent(campus, t0 + timedelta(minutes=2))
    alert.refresh_from_db()
    assert alert.status == AlertStatus.OPEN and alert.lapses == 0 and alert.opened_at == t0
    assert _actions(alert) == [LogAction.RAISED, LogAction.CLEARED, LogAction.REFIRED]


def test_a_momentary_alert_repeated_after_its_acknowledgement_lapses(campus, ops):
    alert = _blacklist(campus, timezone.now() - timedelta(minutes=5))
    assert alert.kind not in CONDITION_KINDS
    acknowledge(alert.pk, by=ops.security, comment="已通知东门保安")
    alert.refresh_from_db()
    assert alert.acknowledged_at is not None
    # an occurrence from before the acknowledgement (uploaded late) is just counted
    _blacklist(campus, alert.acknowledged_at - timedelta(seconds=10))
    alert.refresh_from_db()
    assert alert.status == AlertStatus.ACKNOWLEDGED and alert.count == 2 and alert.lapses == 0
    assert alert.acknowledged_at is not None
    again = alert.acknowledged_at + timedelta(seconds=1)
    _blacklist(campus, again)
    alert.refresh_from_db()
    assert alert.status == AlertStatus.OPEN and alert.lapses == 1 and alert.opened_at == again
    assert alert.count == 3 and alert.refires == []
    assert _actions(alert)[-1] == LogAction.LAPSED
    assert LogAction.REFIRED not in _actions(alert)


def _bounce(campus, at) -> Alert:
    clear_condition(kinds=[AlertKind.UPLOAD_STOPPED], device_ids=[campus.gate.pk], at=at - timedelta(seconds=20))
    return _silent(campus, at)


def test_a_bouncing_device_is_flapping_and_stops_lapsing_until_it_settles(campus, ops):
    """FLAP_REFIRES re-fires within FLAP_WINDOW: flapping. Further re-fires are counted but do
    not lapse the acknowledgement; a whole quiet window later it is stable again, and the next
    re-fire lapses as usual."""
    base = timezone.now() - timedelta(minutes=1)
    alert = _silent(campus, base - timedelta(minutes=1))
    for i in range(1, FLAP_REFIRES):  # re-fires 1 and 2: each lapses, each re-acknowledged
        acknowledge(alert.pk, by=ops.nic, comment=f"第{i}次确认")
        _bounce(campus, base + timedelta(minutes=i))
        alert.refresh_from_db()
        assert alert.status == AlertStatus.OPEN and alert.lapses == i and not alert.flapping
    acknowledge(alert.pk, by=ops.nic, comment="又掉线了")
    last = base + timedelta(minutes=FLAP_REFIRES)
    _bounce(campus, last)  # the third re-fire within the window
    alert.refresh_from_db()
    assert alert.flapping and alert.status == AlertStatus.ACKNOWLEDGED
    assert alert.lapses == FLAP_REFIRES - 1 and len(alert.refires) == FLAP_REFIRES
    assert _actions(alert)[-2:] == [LogAction.REFIRED, LogAction.FLAPPING]
    last = last + timedelta(minutes=1)
    _bounce(campus, last)  # still bouncing: counted, no lapse, no second FLAPPING entry
    alert.refresh_from_db()
    assert alert.status == AlertStatus.ACKNOWLEDGED and alert.count == FLAP_REFIRES + 2
    assert _actions(alert).count(LogAction.FLAPPING) == 1
    assert _actions(alert)[-1] == LogAction.REFIRED
    # a flapping open alert does not escalate either (checked in the escalation test); settle:
    assert settle_flapping(now=last + FLAP_WINDOW - timedelta(seconds=1)) == 0
    alert.refresh_from_db()
    assert alert.flapping
    assert settle_flapping(now=last + FLAP_WINDOW) == 1
    alert.refresh_from_db()
    assert not alert.flapping and alert.refires == []
    assert _actions(alert)[-1] == LogAction.STABLE
    assert settle_flapping(now=last + FLAP_WINDOW * 2) == 0  # once
    _bounce(campus, last + FLAP_WINDOW * 2)
    alert.refresh_from_db()
    assert alert.status == AlertStatus.OPEN and alert.lapses == FLAP_REFIRES


def test_refires_spread_wider_than_the_window_are_no_flapping(campus):
    t0 = timezone.now() - timedelta(hours=2)
    alert = _silent(campus, t0)
    step = FLAP_WINDOW + timedelta(minutes=1)
    for i in range(1, FLAP_REFIRES + 2):
        _bounce(campus, t0 + step * i)
    alert.refresh_from_db()
    assert not alert.flapping and len(alert.refires) == 1
    assert _actions(alert).count(LogAction.REFIRED) == FLAP_REFIRES + 1


def test_the_refire_history_is_bounded(campus):
    t0 = timezone.now() - timedelta(hours=1)
    alert = _silent(campus, t0)
    for i in range(1, 20):
        _bounce(campus, t0 + timedelta(seconds=30 * i))
    alert.refresh_from_db()
    assert len(alert.refires) == FLAP_REFIRES * 2
    assert alert.refires[-1] == (t0 + timedelta(seconds=30 * 19)).timestamp()


def test_settle_flapping_leaves_resolved_alerts_alone(campus, ops):
    t0 = timezone.now() - timedelta(hours=1)
    alert = _silent(campus, t0)
    for i in range(1, FLAP_REFIRES + 1):
        _bounce(campus, t0 + timedelta(minutes=i))
    resolve(alert.pk, by=ops.nic, resolution="更换交换机端口")
    logs = AlertLog.objects.count()
    assert settle_flapping(now=timezone.now()) == 0
    assert AlertLog.objects.count() == logs


# -- who may work what ---------------------------------------------------------------------------


def test_nic_works_every_alert_and_security_only_card_misuse(ops):
    """R-OPS-3: NIC works faults to resolution (and everything else); the security office only
    card-misuse alerts; other roles, accounts without a role and disabled accounts nothing."""
    for kind in AlertKind:
        alert = Alert(kind=kind)
        assert can_work(ops.nic, alert)
        assert can_work(ops.security, alert) == (kind in SECURITY_KINDS)
        assert not can_work(ops.dorm, alert)
        assert not can_work(ops.nobody, alert)
        assert not can_work(ops.inactive_nic, alert)
    assert SECURITY_KINDS == {
        AlertKind.BLACKLIST_HIT,
        AlertKind.CLONE_SUSPECTED,
        AlertKind.OLD_CARD_USED,
        AlertKind.PASSBACK_VIOLATION,
    }


def test_a_role_that_may_not_work_an_alert_is_refused_and_nothing_changes(
    campus, ops, django_capture_on_commit_callbacks
):
    silent = _silent(campus, timezone.now() - timedelta(minutes=3))
    hit = _blacklist(campus, timezone.now() - timedelta(minutes=3))
    cap = django_capture_on_commit_callbacks
    for user in (ops.security, ops.dorm, ops.nobody, ops.inactive_nic):
        _refused(cap, silent.pk, lambda u=user: acknowledge(silent.pk, by=u, comment="看到了"), "无权")
        _refused(cap, silent.pk, lambda u=user: assign(silent.pk, by=u, assignee_id=ops.nic.pk), "无权")
        _refused(cap, silent.pk, lambda u=user: resolve(silent.pk, by=u, resolution="好了"), "无权")
        _refused(
            cap,
            silent.pk,
            lambda u=user: open_ticket(silent.pk, by=u, request=_ticket(RepairCause.NON_HUMAN, vendor="海康")),
            "无权",
        )
    for user in (ops.dorm, ops.nobody):
        _refused(cap, hit.pk, lambda u=user: acknowledge(hit.pk, by=u, comment="看到了"), "无权")
    acknowledge(hit.pk, by=ops.security, comment="保安已到场")  # this one is theirs


def test_an_unknown_alert_is_refused(ops):
    with pytest.raises(AlertError, match="不存在"):
        acknowledge(987654, by=ops.nic, comment="看到了")


# -- acknowledge / assign / resolve ------------------------------------------------------------


def test_acknowledging_needs_a_comment_and_is_logged_and_audited(campus, ops):
    """R-OPS-3, R-SEC-1: an acknowledgement says what was seen and what happens next; it is on
    the alert's timeline (with the time it took) and in the audit trail."""
    alert = _silent(campus, timezone.now() - timedelta(seconds=120))
    for blank in ("", "   \n\t"):
        with pytest.raises(AlertError, match="说明"):
            acknowledge(alert.pk, by=ops.nic, comment=blank)
    assert AlertLog.objects.filter(alert=alert).count() == 1 and not AuditRecord.objects.exists()
    comment = "  " + "查" * 250 + "  "
    acknowledge(alert.pk, by=ops.nic, comment=comment)
    alert.refresh_from_db()
    assert alert.status == AlertStatus.ACKNOWLEDGED and alert.acknowledged_by == ops.nic
    assert alert.ack_comment == "查" * 200
    assert alert.acknowledged_at is not None
    assert timezone.now() - alert.acknowledged_at < timedelta(seconds=10)
    log = AlertLog.objects.get(alert=alert, action=LogAction.ACKNOWLEDGED)
    assert log.actor == ops.nic and log.comment == "查" * 200
    assert log.seconds == pytest.approx(120, abs=5)
    [audit] = AuditRecord.objects.all()
    assert (audit.actor, audit.actor_name, audit.action, audit.object_type, audit.object_id) == (
        ops.nic,
        "nic-wang",
        "alert.acknowledged",
        "alert",
        str(alert.pk),
    )
    assert audit.data == {"kind": AlertKind.UPLOAD_STOPPED, "subject": campus.gate.code, "comment": "查" * 200}


def test_an_acknowledged_alert_cannot_be_acknowledged_again(campus, ops, django_capture_on_commit_callbacks):
    alert = _silent(campus, timezone.now())
    acknowledge(alert.pk, by=ops.nic, comment="处理中")
    _refused(
        django_capture_on_commit_callbacks,
        alert.pk,
        lambda: acknowledge(alert.pk, by=ops.nic2, comment="我也看到了"),
        "已被确认",
    )


def test_assigning_to_someone_who_may_work_it(campus, ops, django_capture_on_commit_callbacks):
    alert = _silent(campus, timezone.now())
    cap = django_capture_on_commit_callbacks
    for who in (ops.security, ops.dorm, ops.nobody, ops.inactive_nic):
        _refused(cap, alert.pk, lambda w=who: assign(alert.pk, by=ops.nic, assignee_id=w.pk), "只能指派")
    _refused(cap, alert.pk, lambda: assign(alert.pk, by=ops.nic, assignee_id=10**9), "只能指派")
    assign(alert.pk, by=ops.nic, assignee_id=ops.nic2.pk)
    alert.refresh_from_db()
    assert alert.assignee == ops.nic2 and alert.status == AlertStatus.OPEN  # not an ack
    log = AlertLog.objects.get(alert=alert, action=LogAction.ASSIGNED)
    assert (log.actor, log.comment) == (ops.nic, "nic-li")
    audit = AuditRecord.objects.get(action="alert.assigned")
    assert audit.actor == ops.nic and audit.object_id == str(alert.pk)
    assert audit.data["assignee"] == "nic-li"
    # security may hand its alert to NIC (who works everything)
    hit = _blacklist(campus, timezone.now())
    assign(hit.pk, by=ops.security, assignee_id=ops.nic.pk)
    hit.refresh_from_db()
    assert hit.assignee == ops.nic


def test_resolving_needs_a_result_and_closes_the_alert(campus, ops):
    """R-OPS-3: worked to resolution; resolving an unacknowledged alert acknowledges it too
    (by the same person), and the repair time runs from the first occurrence."""
    first = timezone.now() - timedelta(minutes=10)
    alert = _silent(campus, first)
    with pytest.raises(AlertError, match="处理结果"):
        resolve(alert.pk, by=ops.nic, resolution="  ")
    assert Alert.objects.get(pk=alert.pk).status == AlertStatus.OPEN
    resolve(alert.pk, by=ops.nic, resolution=" 交换机端口故障，已更换 ")
    alert.refresh_from_db()
    assert alert.status == AlertStatus.RESOLVED and alert.resolved_by == ops.nic
    assert alert.resolution == "交换机端口故障，已更换"
    assert alert.acknowledged_by == ops.nic and alert.acknowledged_at == alert.resolved_at
    log = AlertLog.objects.get(alert=alert, action=LogAction.RESOLVED)
    assert log.actor == ops.nic and log.seconds == pytest.approx(600, abs=5)
    assert AuditRecord.objects.get().action == "alert.resolved"
    # an earlier acknowledgement is kept as it was
    other = _blacklist(campus, first)
    acknowledge(other.pk, by=ops.security, comment="已处理")
    acked_at = Alert.objects.get(pk=other.pk).acknowledged_at
    resolve(other.pk, by=ops.nic, resolution="卡已没收")
    other.refresh_from_db()
    assert (other.acknowledged_by, other.acknowledged_at) == (ops.security, acked_at)
    assert other.resolved_by == ops.nic


def test_after_a_lapse_mtta_runs_from_the_lapse_and_mttr_from_the_first_occurrence(campus, ops):
    """R-OPS-3: a lapse restarts the acknowledgement clock, not the repair clock."""
    alert = _blacklist(campus, timezone.now() - timedelta(seconds=600))
    acknowledge(alert.pk, by=ops.security, comment="已通知保安")
    alert.refresh_from_db()
    assert alert.acknowledged_at is not None
    _blacklist(campus, alert.acknowledged_at + timedelta(milliseconds=1))  # lapses
    alert.refresh_from_db()
    assert alert.opened_at is not None
    assert alert.status == AlertStatus.OPEN and alert.opened_at > alert.first_at
    acknowledge(alert.pk, by=ops.security, comment="再次出现，已拦截")
    resolve(alert.pk, by=ops.security, resolution="卡已没收")
    first_ack, second_ack = AlertLog.objects.filter(alert=alert, action=LogAction.ACKNOWLEDGED).order_by("id")
    assert first_ack.seconds == pytest.approx(600, abs=5)
    assert second_ack.seconds == pytest.approx(0, abs=5)
    repaired = AlertLog.objects.get(alert=alert, action=LogAction.RESOLVED)
    assert repaired.seconds == pytest.approx(600, abs=5)


def test_a_resolved_alert_cannot_be_worked_again(campus, ops, django_capture_on_commit_callbacks):
    alert = _silent(campus, timezone.now())
    resolve(alert.pk, by=ops.nic, resolution="已恢复")
    cap = django_capture_on_commit_callbacks
    _refused(cap, alert.pk, lambda: acknowledge(alert.pk, by=ops.nic, comment="看到了"), "已解决")
    _refused(cap, alert.pk, lambda: assign(alert.pk, by=ops.nic, assignee_id=ops.nic2.pk), "已解决")
    _refused(cap, alert.pk, lambda: resolve(alert.pk, by=ops.nic2, resolution="再解决"), "已解决")
    _refused(
        cap,
        alert.pk,
        lambda: open_ticket(alert.pk, by=ops.nic, request=_ticket(RepairCause.NON_HUMAN, vendor="海康")),
        "已解决",
    )


# -- repair tickets (R-DEV-3) -------------------------------------------------------------------


def test_a_non_human_fault_is_repaired_free_by_the_vendor(campus, ops):
    """R-DEV-3: non-human — the vendor repairs it free of charge: price 0, no fee, no
    responsible person (even if a price or person was typed in); the ticket resolves the alert."""
    alert = _raise(AlertKind.DEVICE_FAULT, campus.gate.code, timezone.now() - timedelta(minutes=5), device=campus.gate)
    ticket = open_ticket(
        alert.pk,
        by=ops.nic,
        request=_ticket(
            RepairCause.NON_HUMAN,
            vendor="  海康威视  ",
            price="300",
            responsible_number=campus.cards[0].holder.number,
            description=" 读头无响应 ",
        ),
    )
    ticket.refresh_from_db()
    assert (ticket.device, ticket.alert_id, ticket.cause) == (campus.gate, alert.pk, RepairCause.NON_HUMAN)
    assert ticket.vendor == "海康威视" and ticket.price == Decimal("0")
    assert ticket.fee is None and ticket.responsible is None
    assert ticket.description == "读头无响应" and ticket.opened_by == ops.nic
    assert not FeeCharge.objects.exists()
    alert.refresh_from_db()
    assert alert.status == AlertStatus.RESOLVED and alert.resolved_by == ops.nic
    assert str(ticket.pk) in alert.resolution
    assert _actions(alert) == [LogAction.RAISED, LogAction.TICKET, LogAction.RESOLVED]
    tlog = AlertLog.objects.get(alert=alert, action=LogAction.TICKET)
    assert tlog.actor == ops.nic and "读头无响应" in tlog.comment
    repair, resolved = AuditRecord.objects.order_by("id")
    assert (repair.action, repair.object_type, repair.object_id, repair.actor) == (
        "repair.open",
        "device",
        str(campus.gate.pk),
        ops.nic,
    )
    assert repair.data == {
        "ticket": ticket.pk,
        "cause": "non_human",
        "price": "0",
        "vendor": "海康威视",
        "responsible": "",
    }
    assert (resolved.action, resolved.object_id) == ("alert.resolved", str(alert.pk))


def test_human_damage_is_charged_to_the_responsible_person_at_market_price(campus, ops):
    """R-DEV-3: human damage — the person named by 学工号 pays the market price, a
    DEVICE_DAMAGE line in Finance's fee ledger, linked from the ticket."""
    holder = campus.cards[3].holder
    alert = _raise(
        AlertKind.TAMPER, campus.dorm_door.code, timezone.now() - timedelta(minutes=2), device=campus.dorm_door
    )
    ticket = open_ticket(
        alert.pk,
        by=ops.nic,
        request=_ticket(
            RepairCause.HUMAN, responsible_number=f"  {holder.number} ", price=" 120.5 ", vendor="不该记下"
        ),
    )
    ticket.refresh_from_db()
    assert ticket.responsible == holder and ticket.price == Decimal("120.50")
    assert ticket.vendor == ""
    [fee] = FeeCharge.objects.all()
    assert ticket.fee == fee
    assert (fee.holder, fee.card, fee.kind, fee.amount, fee.operator, fee.window) == (
        holder,
        None,
        FeeKind.DEVICE_DAMAGE,
        Decimal("120.50"),
        ops.nic,
        "NIC",
    )
    # owed, not money in the till: the ledger counts it once it is paid (issue 13, defect 6)
    assert fee.status == ChargeStatus.OWED and fee.paid_at is None
    today = timezone.localdate()
    assert ledger.ledger(start=today, end=today).count == 0
    settle_charge(charge=fee, to=ChargeStatus.PAID, operator=ops.nic, window="财务处")
    book = ledger.ledger(start=today, end=today)
    assert book.count == 1 and book.total == Decimal("120.50")
    [item] = book.items
    assert item[4] == str(FeeKind.DEVICE_DAMAGE.label) and item[5] == holder.number
    assert item[7] == ""  # no card
    repair = AuditRecord.objects.get(action="repair.open")
    assert repair.data == {
        "ticket": ticket.pk,
        "cause": "human",
        "price": "120.50",
        "vendor": "",
        "responsible": holder.number,
    }
    alert.refresh_from_db()
    assert alert.status == AlertStatus.RESOLVED
    assert AuditRecord.objects.filter(action="alert.resolved", object_id=str(alert.pk)).exists()


@pytest.mark.parametrize(
    ("request_kw", "match"),
    [
        ({"cause": "non_human", "vendor": "海康", "description": "   "}, "故障描述"),
        ({"cause": "accident", "vendor": "海康"}, "故障原因"),
        ({"cause": "", "vendor": "海康"}, "故障原因"),
        ({"cause": "non_human"}, "厂商"),
        ({"cause": "non_human", "vendor": "   "}, "厂商"),
        ({"cause": "human", "price": "200"}, "学工号"),
        ({"cause": "human", "responsible_number": "NOSUCH001", "price": "200"}, "学工号"),
        ({"cause": "human", "responsible_number": "@holder", "price": "0"}, "市价"),
        ({"cause": "human", "responsible_number": "@holder", "price": "-5"}, "市价"),
        ({"cause": "human", "responsible_number": "@holder", "price": "0.004"}, "市价"),
        ({"cause": "human", "responsible_number": "@holder", "price": "100000.01"}, "市价"),
        ({"cause": "human", "responsible_number": "@holder", "price": ""}, "数字"),
        ({"cause": "human", "responsible_number": "@holder", "price": "两百"}, "数字"),
        ({"cause": "human", "responsible_number": "@holder", "price": "Infinity"}, "数字"),
        ({"cause": "human", "responsible_number": "@holder", "price": "1e30"}, "数字"),
    ],
)
def test_a_refused_ticket_changes_nothing(campus, ops, django_capture_on_commit_callbacks, request_kw, match):
    """R-DEV-3: no free human damage, no unpaid-for person, no vendor-less free repair; a
    refusal leaves no ticket, no fee line, no log, no audit, the alert open."""
    kw = dict(request_kw)
    if kw.get("responsible_number") == "@holder":
        kw["responsible_number"] = campus.cards[0].holder.number
    description = kw.pop("description", "面板损坏")
    alert = _raise(AlertKind.TAMPER, campus.gate.code, timezone.now(), device=campus.gate)
    _refused(
        django_capture_on_commit_callbacks,
        alert.pk,
        lambda: open_ticket(alert.pk, by=ops.nic, request=TicketRequest(description=description, **kw)),
        match,
    )
    assert Alert.objects.get(pk=alert.pk).status == AlertStatus.OPEN


def test_a_not_a_number_price_is_refused_as_an_alert_error(campus, ops):
    alert = _raise(AlertKind.TAMPER, campus.gate.code, timezone.now(), device=campus.gate)
    with pytest.raises(AlertError, match="数字"):
        open_ticket(
            alert.pk,
            by=ops.nic,
            request=_ticket(RepairCause.HUMAN, responsible_number=campus.cards[0].holder.number, price="NaN"),
        )


def test_only_nic_opens_tickets_and_only_for_a_device(campus, ops, django_capture_on_commit_callbacks):
    """R-DEV-3: tickets are NIC's; an alert about no registered device has nothing to repair."""
    cap = django_capture_on_commit_callbacks
    hit = _blacklist(campus, timezone.now())  # security works it, and it names the gate
    _refused(
        cap,
        hit.pk,
        lambda: open_ticket(hit.pk, by=ops.security, request=_ticket(RepairCause.NON_HUMAN, vendor="海康")),
        "网信中心",
    )
    rogue = _raise(AlertKind.UNKNOWN_DEVICE, "ROGUE-99", timezone.now())
    assert rogue.device_id is None
    _refused(
        cap,
        rogue.pk,
        lambda: open_ticket(rogue.pk, by=ops.nic, request=_ticket(RepairCause.NON_HUMAN, vendor="海康")),
        "没有对应设备",
    )


def test_a_ticket_and_its_fee_roll_back_with_a_failed_audit(campus, ops, monkeypatch):
    """R-SEC-1: the action and its audit commit or roll back together — no fee line without an
    audited ticket."""
    alert = _raise(AlertKind.TAMPER, campus.gate.code, timezone.now(), device=campus.gate)
    before = _state(alert.pk)

    def broken(**kw):
        raise RuntimeError("audit store down")

    monkeypatch.setattr(services, "record", broken)
    with pytest.raises(RuntimeError):
        open_ticket(
            alert.pk,
            by=ops.nic,
            request=_ticket(RepairCause.HUMAN, responsible_number=campus.cards[0].holder.number, price="80"),
        )
    assert _state(alert.pk) == before


@pytest.mark.parametrize(
    ("fields", "ok"),
    [
        ({"cause": "human", "price": Decimal("50"), "responsible": True}, True),
        ({"cause": "non_human", "price": Decimal("0"), "vendor": "海康"}, True),
        ({"cause": "human", "price": Decimal("50"), "responsible": False}, False),
        ({"cause": "human", "price": Decimal("0"), "responsible": True}, False),
        ({"cause": "non_human", "price": Decimal("10"), "vendor": "海康"}, False),
        ({"cause": "other", "price": Decimal("0")}, False),
    ],
)
def test_the_database_enforces_the_repair_cause_rules(campus, ops, fields, ok):
    """R-DEV-3, as a CheckConstraint (repair_cause_rules): whatever writes a ticket, a human one
    has a responsible person and a positive price, a non-human one costs nothing."""
    fields = dict(fields)
    responsible = campus.cards[0].holder if fields.pop("responsible", False) else None
    ticket = RepairTicket(
        device=campus.gate,
        description="测试",
        opened_by=ops.nic,
        opened_at=timezone.now(),
        responsible=responsible,
        **fields,
    )
    if ok:
        ticket.save()
        assert RepairTicket.objects.filter(pk=ticket.pk).exists()
    else:
        with pytest.raises(IntegrityError, match="repair_cause_rules"), transaction.atomic():
            ticket.save()
        assert not RepairTicket.objects.exists()


# -- every operator action: timeline + audit -----------------------------------------------------


def test_every_operator_action_is_on_the_timeline_and_in_the_audit_trail(campus, ops):
    """R-SEC-1 and R-OPS-3: acknowledge → assign → ticket (resolves) — each one an AlertLog
    row with its actor and an AuditRecord naming the operator."""
    alert = _raise(
        AlertKind.DEVICE_FAULT,
        campus.vehicle_gate.code,
        timezone.now() - timedelta(minutes=1),
        device=campus.vehicle_gate,
    )
    acknowledge(alert.pk, by=ops.nic, comment="道闸抬杆故障")
    assign(alert.pk, by=ops.nic, assignee_id=ops.nic2.pk)
    open_ticket(alert.pk, by=ops.nic2, request=_ticket(RepairCause.NON_HUMAN, vendor="捷顺"))
    logs = list(AlertLog.objects.filter(alert=alert).order_by("id").values_list("action", "actor__username"))
    assert logs == [
        (LogAction.RAISED, None),
        (LogAction.ACKNOWLEDGED, "nic-wang"),
        (LogAction.ASSIGNED, "nic-wang"),
        (LogAction.TICKET, "nic-li"),
        (LogAction.RESOLVED, "nic-li"),
    ]
    audit = list(AuditRecord.objects.order_by("id").values_list("action", "actor_name"))
    assert audit == [
        ("alert.acknowledged", "nic-wang"),
        ("alert.assigned", "nic-wang"),
        ("repair.open", "nic-li"),
        ("alert.resolved", "nic-li"),
    ]


# -- the clock -----------------------------------------------------------------------------------


def test_unacknowledged_alerts_escalate_per_severity_up_to_two_levels(campus, ops, settings):
    """R-OPS-3: left open past its severity's ALERT_ESCALATE_AFTER_S, an alert goes up a level,
    and again after twice the limit; acknowledged, resolved and flapping alerts do not."""
    settings.ALERT_ESCALATE_AFTER_S = {"critical": 60, "warning": 120, "info": 600}
    now = timezone.now()
    critical = _raise(AlertKind.TAMPER, campus.gate.code, now - timedelta(seconds=90), device=campus.gate)
    warning = _raise(AlertKind.UPLOAD_STOPPED, campus.gate.code, now - timedelta(seconds=90), device=campus.gate)
    acked = _raise(AlertKind.REPLAY, campus.gate.code, now - timedelta(hours=1))
    acknowledge(acked.pk, by=ops.nic, comment="已知")
    done = _raise(AlertKind.BAD_SIGNATURE, campus.gate.code, now - timedelta(hours=1))
    resolve(done.pk, by=ops.nic, resolution="已处理")
    flapping = _raise(
        AlertKind.DEVICE_FAULT, campus.vehicle_gate.code, now - timedelta(hours=1), device=campus.vehicle_gate
    )
    Alert.objects.filter(pk=flapping.pk).update(flapping=True)

    def level(a: Alert) -> int:
        return Alert.objects.get(pk=a.pk).escalation

    assert escalate_overdue(now=now) == 1
    assert [level(a) for a in (critical, warning, acked, done, flapping)] == [1, 0, 0, 0, 0]
    assert Alert.objects.get(pk=critical.pk).escalated_at == now
    log = AlertLog.objects.get(alert=critical, action=LogAction.ESCALATED)
    assert (log.at, log.comment, log.actor) == (now, "1", None)
    assert escalate_overdue(now=now) == 0  # nothing new: no repeat entries
    later = now + timedelta(seconds=31)  # critical 121 s ≥ 2×60, warning 121 s ≥ 120
    assert escalate_overdue(now=later) == 2
    assert [level(critical), level(warning)] == [2, 1]
    assert escalate_overdue(now=now + timedelta(days=1)) == 1  # warning to 2; critical stays
    assert [level(critical), level(warning)] == [2, 2]
    assert AlertLog.objects.filter(alert=critical, action=LogAction.ESCALATED).count() == 2
    assert level(flapping) == 0 and level(acked) == 0


def test_the_escalation_limit_comes_from_settings(campus, settings):
    now = timezone.now()
    alert = _raise(AlertKind.TAMPER, campus.gate.code, now - timedelta(seconds=90), device=campus.gate)
    settings.ALERT_ESCALATE_AFTER_S = {"critical": 300, "warning": 900, "info": 3600}
    assert escalate_overdue(now=now) == 0
    settings.ALERT_ESCALATE_AFTER_S = {"critical": 80, "warning": 900, "info": 3600}
    assert escalate_overdue(now=now) == 1
    alert.refresh_from_db()
    assert alert.escalation == 1


def test_response_times_are_the_mean_time_to_acknowledge_and_to_repair(campus, ops):
    """R-OPS-3: MTTA from opening (or the lapse) to acknowledgement, MTTR from the first
    occurrence to resolution, over actions since ``since``."""
    now = timezone.now()
    assert response_times(since=now - timedelta(days=1)) == {
        "mtta_s": None,
        "ack_count": 0,
        "mttr_s": None,
        "repair_count": 0,
    }
    a = _raise(AlertKind.REPLAY, "G-E-01", now - timedelta(seconds=60))
    b = _raise(AlertKind.TAMPER, "G-E-01", now - timedelta(seconds=180), device=campus.gate)
    c = _raise(AlertKind.BAD_SIGNATURE, "G-E-01", now - timedelta(seconds=600), device=campus.gate)
    acknowledge(a.pk, by=ops.nic, comment="看到")
    acknowledge(b.pk, by=ops.nic, comment="看到")
    resolve(b.pk, by=ops.nic, resolution="修好")  # 180 s
    open_ticket(c.pk, by=ops.nic, request=_ticket(RepairCause.NON_HUMAN, vendor="厂商"))  # 600 s
    # an old acknowledgement outside the period, and one without a duration, do not count
    AlertLog.objects.create(alert=a, at=now - timedelta(days=3), action=LogAction.ACKNOWLEDGED, seconds=99999)
    AlertLog.objects.create(alert=a, at=now, action=LogAction.ACKNOWLEDGED, seconds=None)
    out = response_times(since=now - timedelta(days=1))
    assert out["ack_count"] == 2 and out["mtta_s"] == pytest.approx(120, abs=5)
    assert out["repair_count"] == 2 and out["mttr_s"] == pytest.approx(390, abs=5)
    assert response_times(since=now + timedelta(hours=1))["ack_count"] == 0


# -- pushes to the live desks ------------------------------------------------------------------


def _pushes(callbacks) -> list:
    """The callbacks run after a commit that push to the desks (``ops.push.push``)."""
    return [c for c in callbacks if c.__qualname__.startswith("push.")]


def _pushed(feed: Feed, n: int) -> list[tuple[int, list[int]]]:
    messages = feed.take(n)
    for m in messages:
        assert m["type"] == MESSAGE_TYPE and m["group"] == names.GROUP_ALERTS
    return [(m["seq"], m["ids"]) for m in messages]


def test_operator_actions_are_pushed_after_the_commit_with_increasing_seq(
    campus, ops, redis_client, django_capture_on_commit_callbacks
):
    """The desks get the changed ids (they refetch the rows), numbered so a page can see a gap;
    never before the transaction commits."""
    assert names.GROUP_ALERTS == "live.alerts"
    feed = Feed(names.GROUP_ALERTS)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        alert = _silent(campus, timezone.now() - timedelta(minutes=1))
        acknowledge(alert.pk, by=ops.nic, comment="处理中")
        assign(alert.pk, by=ops.nic, assignee_id=ops.nic2.pk)
        resolve(alert.pk, by=ops.nic2, resolution="已恢复")
        assert current_seq(redis_client, names.GROUP_ALERTS) == 0  # not yet committed
    assert len(_pushes(callbacks)) == 4  # one push per transaction (the others: their log lines)
    assert _pushed(feed, 4) == [(1, [alert.pk]), (2, [alert.pk]), (3, [alert.pk]), (4, [alert.pk])]
    assert current_seq(redis_client, names.GROUP_ALERTS) == 4


def test_the_clock_and_the_processor_push_the_ids_they_changed(
    campus, ops, redis_client, settings, django_capture_on_commit_callbacks
):
    settings.ALERT_ESCALATE_AFTER_S = {"critical": 60, "warning": 60, "info": 60}
    feed = Feed(names.GROUP_ALERTS)
    t0 = timezone.now() - timedelta(minutes=5)
    with django_capture_on_commit_callbacks(execute=True):
        buffer = AlertBuffer()
        buffer.add(kind=AlertKind.UPLOAD_STOPPED, subject=campus.gate.code, device_id=campus.gate.pk, at=t0)
        buffer.add(
            kind=AlertKind.UPLOAD_STOPPED, subject=campus.vehicle_gate.code, device_id=campus.vehicle_gate.pk, at=t0
        )
        ids = sorted(buffer.flush())
        clear_condition(kinds=[AlertKind.UPLOAD_STOPPED], device_ids=[campus.gate.pk], at=t0 + timedelta(minutes=1))
        escalate_overdue(now=t0 + timedelta(seconds=90))  # the silent one to level 1 (the gate recovered, issue 19)
        escalate_overdue(now=t0 + timedelta(seconds=90))  # nothing: no push
        clear_condition(
            kinds=[AlertKind.UPLOAD_STOPPED], device_ids=[campus.gate.pk], at=t0 + timedelta(minutes=2)
        )  # already clear: no push
    gate = Alert.objects.get(subject=campus.gate.code)
    assert len(ids) == 2 and gate.pk in ids
    silent = Alert.objects.get(subject=campus.vehicle_gate.code)
    assert _pushed(feed, 3) == [(1, ids), (2, [gate.pk]), (3, [silent.pk])]
    assert current_seq(redis_client, names.GROUP_ALERTS) == 3


def test_a_refused_action_pushes_nothing(campus, ops, redis_client, django_capture_on_commit_callbacks):
    alert = _silent(campus, timezone.now())
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        for call in (
            lambda: acknowledge(alert.pk, by=ops.nic, comment=" "),
            lambda: acknowledge(alert.pk, by=ops.security, comment="看到"),
            lambda: open_ticket(alert.pk, by=ops.nic, request=_ticket(RepairCause.HUMAN, price="0")),
        ):
            with pytest.raises(AlertError):
                call()
    assert callbacks == []
    assert current_seq(redis_client, names.GROUP_ALERTS) == 0


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_action_is_never_pushed_and_a_committed_one_is(campus, ops, redis_client):
    """With real commits: an action inside a transaction that rolls back leaves no trace on the
    desks; the same action committed is pushed once, with the next seq."""
    feed = Feed(names.GROUP_ALERTS)
    alert = _silent(campus, timezone.now() - timedelta(minutes=1))  # committed: seq 1

    class Rollback(Exception):
        pass

    with pytest.raises(Rollback), transaction.atomic():
        acknowledge(alert.pk, by=ops.nic, comment="处理中")
        raise Rollback
    assert Alert.objects.get(pk=alert.pk).status == AlertStatus.OPEN
    assert not AuditRecord.objects.exists()
    assert current_seq(redis_client, names.GROUP_ALERTS) == 1
    acknowledge(alert.pk, by=ops.nic, comment="处理中")
    assert _pushed(feed, 2) == [(1, [alert.pk]), (2, [alert.pk])]
    assert current_seq(redis_client, names.GROUP_ALERTS) == 2


def test_the_alert_page_shows_a_refusal_as_a_message_and_changes_nothing(campus, ops, client):
    """A step posted from the alert's page: a refusal by the rules comes back on the page in
    Chinese and changes nothing; an accepted step says 已保存."""
    alert = _silent(campus, timezone.now() - timedelta(seconds=60))
    client.force_login(ops.nic)
    before = _state(alert.pk)
    page = client.post(f"/alerts/{alert.pk}/acknowledge", {"comment": "  "}, follow=True)
    assert page.status_code == 200 and "说明" in page.content.decode()
    assert "已保存" not in page.content.decode()
    assert _state(alert.pk) == before
    page = client.post(f"/alerts/{alert.pk}/acknowledge", {"comment": "已派人查看"}, follow=True)
    assert "已保存" in page.content.decode()
    alert.refresh_from_db()
    assert alert.status == AlertStatus.ACKNOWLEDGED
