"""Alerts' writes.

What operators do with alerts (R-OPS-3, R-DEV-3): acknowledge with a comment, assign, resolve,
open a repair ticket; and what the clock does: escalate alerts nobody acknowledged, end a
device's flapping once it stays put. Every operator action is atomic, logged on the alert's
timeline, audited, and pushed to the desks.

Raising alerts: deduplicated (a repeat of an unresolved alert bumps its count), with the
lifecycle rules of R-OPS-3 applied as repeats arrive:

- a *condition* alert (device silent, in fault, behind on credentials) whose condition had
  cleared and comes back *re-fires*; a re-fire of an acknowledged alert makes the
  acknowledgement *lapse* (back to open, so somebody looks again);
- a *momentary* alert (a blacklist hit, a clone) repeated after its acknowledgement lapses too;
- a device that bounces — ``FLAP_REFIRES`` re-fires within ``FLAP_WINDOW`` — is *flapping*: its
  re-fires are still counted but no longer lapse the acknowledgement or pop on the desk, until
  it stays put for a whole window.

Every change is pushed to the live desks (ids only; pages refetch the rows) after the commit.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NotRequired, TypedDict, Unpack

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from ops.accounts.permissions import role_of
from ops.accounts.roles import Role
from ops.alerts import repairs
from ops.alerts.choices import (
    CONDITION_KINDS,
    SECURITY_KINDS,
    SELF_RESOLVING_KINDS,
    AlertKind,
    AlertStatus,
    LogAction,
    RepairCause,
    RepairState,
    Severity,
)
from ops.alerts.models import Alert, AlertLog, RepairTicket
from ops.audit.services import record
from ops.masking import mask_uid
from ops.push import push
from ops.registry.models import Device
from streams import names

SEVERITY = {
    AlertKind.UNKNOWN_DEVICE: Severity.CRITICAL,
    AlertKind.BAD_SIGNATURE: Severity.CRITICAL,
    AlertKind.REPLAY: Severity.CRITICAL,
    AlertKind.SEQUENCE_GAP: Severity.WARNING,
    AlertKind.DUPLICATE_DEVICE: Severity.CRITICAL,
    AlertKind.UPLOAD_STOPPED: Severity.WARNING,
    AlertKind.TAMPER: Severity.CRITICAL,
    AlertKind.DEVICE_FAULT: Severity.WARNING,
    AlertKind.CLONE_SUSPECTED: Severity.CRITICAL,
    AlertKind.OLD_CARD_USED: Severity.CRITICAL,
    AlertKind.BLACKLIST_HIT: Severity.CRITICAL,
    AlertKind.CREDENTIAL_LAG: Severity.CRITICAL,
    AlertKind.PASSBACK_VIOLATION: Severity.WARNING,
    AlertKind.FORGED_CREDENTIAL: Severity.CRITICAL,
    AlertKind.JOB_FAILED: Severity.WARNING,
    AlertKind.JOB_MISSED: Severity.WARNING,
    AlertKind.JULY_RUN_DUE: Severity.INFO,
    AlertKind.TEMP_CARD_EXPIRING: Severity.INFO,
    AlertKind.DOOR_FORCED: Severity.CRITICAL,
    AlertKind.DOOR_HELD_OPEN: Severity.WARNING,
    AlertKind.REVOCATION_MISSING: Severity.CRITICAL,  # R-USE-1: the card must stop everywhere
    AlertKind.CLOCK_SKEW: Severity.WARNING,  # its taps are refused until its clock is set right
    AlertKind.DEVICE_MOVED: Severity.CRITICAL,  # R-DEV-1: moved or reconnected without NIC's approval
}
FLAP_REFIRES = 3
FLAP_WINDOW = timedelta(minutes=10)
# A cleared condition alert closes itself once it has stayed clear this long (issue 19): as long as
# the flapping window, so a device that bounces is still seen flapping on one alert.
RESOLVE_CLEARED_AFTER = FLAP_WINDOW
log = logging.getLogger(__name__)


def notify(alert_ids: Iterable[int]) -> None:
    """Tell the desks these alerts changed (after the commit)."""
    ids = sorted(set(alert_ids))
    if ids:
        push(names.GROUP_ALERTS, {"ids": ids})


class Occurrence(TypedDict):
    """One occurrence of an alert, as raised: ``kind`` and ``subject`` (a device code or a card
    UID) name the alert; ``count`` occurrences at ``at``."""

    kind: AlertKind
    subject: str
    at: datetime
    device_id: NotRequired[int | None]
    detail: NotRequired[dict[str, Any] | None]
    count: NotRequired[int]
    department_id: NotRequired[int | None]  # the department it is about, if no device says


def raise_alert(**occurrence: Unpack[Occurrence]) -> None:
    """Open an alert, or count a repeat of the open one for the same kind and subject."""
    buffer = AlertBuffer()
    buffer.add(**occurrence)
    buffer.flush()


class AlertBuffer:
    """Alerts raised on the processor's hot path, coalesced: a storm of the same alert (an
    attacker replaying thousands of messages, a card tapped everywhere) costs one database
    write per alert per flush, not one per event. ``flush()`` runs several times a second."""

    def __init__(self) -> None:
        self.pending: dict[tuple[str, str], dict[str, Any]] = {}

    def add(self, **occurrence: Unpack[Occurrence]) -> None:
        kind, subject, at = AlertKind(occurrence["kind"]), occurrence["subject"], occurrence["at"]
        device_id, detail = occurrence.get("device_id"), occurrence.get("detail")
        count = occurrence.get("count", 1)
        key = (kind.value, subject)
        item = self.pending.get(key)
        if item is None:
            self.pending[key] = {
                "kind": kind,
                "subject": subject,
                "at": at,
                "first": at,
                "device_id": device_id,
                "detail": detail or {},
                "count": count,
                "department_id": occurrence.get("department_id"),
            }
        else:
            item["count"] += count
            item["at"] = max(item["at"], at)
            item["first"] = min(item["first"], at)  # a backlog can arrive out of order
            item["detail"] = detail or item["detail"]

    def flush(self) -> list[int]:
        """Write everything pending; returns the ids of the alerts it touched."""
        items, self.pending = self.pending, {}
        if not items:
            return []
        for _attempt in range(3):
            try:
                with transaction.atomic():
                    changed = _write(items)
                    notify(changed)
                    return changed
            except IntegrityError:  # another processor opened one of them first: count on it
                continue
        raise RuntimeError("could not record alerts")  # pragma: no cover - three races in a row


def _write(items: dict[tuple[str, str], dict[str, Any]]) -> list[int]:
    kinds = {k for k, _s in items}
    subjects = {s for _k, s in items}
    existing = {
        (a.kind, a.subject): a
        for a in Alert.objects.select_for_update()
        .filter(kind__in=kinds, subject__in=subjects)
        .exclude(status=AlertStatus.RESOLVED)
    }
    repeats: list[tuple[int, dict[str, Any]]] = []
    new: list[Alert] = []
    changed: list[int] = []
    for key, item in items.items():
        alert = existing.get(key)
        if alert is None:
            new.append(
                Alert(
                    kind=item["kind"],
                    severity=SEVERITY[item["kind"]],
                    subject=item["subject"],
                    device_id=item["device_id"],
                    department_id=item["department_id"],
                    first_at=item["first"],
                    last_at=item["at"],
                    opened_at=item["first"],
                    count=item["count"],
                    detail=item["detail"],
                )
            )
            continue
        changed.append(alert.pk)
        if not _transition(alert, item):
            repeats.append((alert.pk, item))
    _count_repeats(repeats)
    if new:
        _attach_buildings(new)
        Alert.objects.bulk_create(new, batch_size=500)
        AlertLog.objects.bulk_create([AlertLog(alert=a, at=a.first_at, action=LogAction.RAISED) for a in new if a.pk])
        changed += [a.pk for a in new if a.pk]
        transaction.on_commit(lambda: _log_raised(new))
    return changed


def _log_raised(alerts: list[Alert]) -> None:
    """One log line per alert opened (issue 16, Build 5), with the reader event that raised it
    when there is one; a card is named masked, as on the desks."""
    for a in alerts:
        subject = mask_uid(a.subject) if a.kind in SECURITY_KINDS else a.subject
        fields = {"event": "alert.raised", "alert_id": a.pk, "kind": a.kind, "severity": a.severity, "subject": subject}
        if a.detail.get("event_id"):
            fields["event_id"] = a.detail["event_id"]
        log.info("alert %s raised: %s %s", a.pk, a.kind, subject, extra=fields)


def _count_repeats(repeats: list[tuple[int, dict[str, Any]]]) -> None:
    """Repeats of open alerts, one statement for the whole flush: count += repeats, last seen =
    the latest, detail = the newest when the repeat carries one. One ORM UPDATE per alert was
    most of the processor's time in an alert storm, and Django compiling a CASE per alert
    nearly as much: this is one SQL text, executed over all rows in one round trip."""
    if not repeats:
        return
    field = Alert._meta.get_field("detail")
    q = connection.ops.quote_name
    latest = "GREATEST" if connection.vendor == "postgresql" else "MAX"  # SQLite's MAX(a, b) is scalar
    sql = (
        f"UPDATE {q(Alert._meta.db_table)} SET {q('count')} = {q('count')} + %s, "  # noqa: S608 (names from the model)
        f"{q('last_at')} = {latest}({q('last_at')}, %s), {q('detail')} = COALESCE(%s, {q('detail')}) WHERE id = %s"
    )
    rows = [
        (
            item["count"],
            connection.ops.adapt_datetimefield_value(item["at"]),
            field.get_db_prep_save(item["detail"], connection) if item["detail"] else None,
            pk,
        )
        for pk, item in repeats
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)


def _attach_buildings(alerts: list[Alert]) -> None:
    ids = {a.device_id for a in alerts if a.device_id}
    buildings = dict(Device.objects.filter(id__in=ids).values_list("id", "building_id"))
    for a in alerts:
        a.building_id = buildings.get(a.device_id) if a.device_id is not None else None


def _transition(alert: Alert, item: dict[str, Any]) -> bool:
    """Apply re-fire / lapse / flapping to an alert that repeats. True if it saved the alert."""
    at: datetime = item["at"]
    refire = alert.kind in CONDITION_KINDS and alert.cleared_at is not None
    momentary_after_ack = (
        alert.kind not in CONDITION_KINDS
        and alert.status == AlertStatus.ACKNOWLEDGED
        and alert.acknowledged_at is not None
        and at > alert.acknowledged_at
    )
    if not (refire or momentary_after_ack):
        return False
    log: list[AlertLog] = []
    if refire:
        alert.cleared_at = None
        recent = [t for t in alert.refires if t > (at - FLAP_WINDOW).timestamp()]
        alert.refires = [*recent, at.timestamp()][-FLAP_REFIRES * 2 :]
        log.append(AlertLog(alert=alert, at=at, action=LogAction.REFIRED))
        if not alert.flapping and len(alert.refires) >= FLAP_REFIRES:
            alert.flapping = True
            log.append(AlertLog(alert=alert, at=at, action=LogAction.FLAPPING))
    if alert.status == AlertStatus.ACKNOWLEDGED and not alert.flapping:
        alert.status, alert.opened_at, alert.escalation = AlertStatus.OPEN, at, 0
        alert.lapses += 1
        log.append(AlertLog(alert=alert, at=at, action=LogAction.LAPSED))
    alert.count += item["count"]
    alert.last_at = max(alert.last_at, at)
    alert.detail = item["detail"] or alert.detail
    alert.save()
    AlertLog.objects.bulk_create(log)
    return True


def clear_condition(*, kinds: Iterable[AlertKind], device_ids: Iterable[int], at: datetime) -> None:
    """The condition behind these devices' alerts no longer holds (heard from again, fault
    cleared, credentials caught up). The desk shows them recovered; ``resolve_cleared`` closes
    them once they stayed clear (issue 19)."""
    device_ids = list(device_ids)
    if not device_ids:
        return
    with transaction.atomic():
        alerts = list(
            Alert.objects.select_for_update()
            .filter(kind__in=list(kinds), device_id__in=device_ids, cleared_at__isnull=True)
            .exclude(status=AlertStatus.RESOLVED)
        )
        if not alerts:
            return
        Alert.objects.filter(pk__in=[a.pk for a in alerts]).update(cleared_at=at)
        AlertLog.objects.bulk_create([AlertLog(alert=a, at=at, action=LogAction.CLEARED) for a in alerts])
        notify(a.pk for a in alerts)


def clear_subjects(*, kinds: Iterable[AlertKind], subjects: Iterable[str], at: datetime) -> None:
    """As ``clear_condition``, for alerts named by their subject rather than a device (a
    scheduled job that succeeded again, issue 16 Build 4)."""
    subjects = list(subjects)
    with transaction.atomic():
        alerts = list(
            Alert.objects.select_for_update()
            .filter(kind__in=list(kinds), subject__in=subjects, cleared_at__isnull=True)
            .exclude(status=AlertStatus.RESOLVED)
        )
        if not alerts:
            return
        Alert.objects.filter(pk__in=[a.pk for a in alerts]).update(cleared_at=at)
        AlertLog.objects.bulk_create([AlertLog(alert=a, at=at, action=LogAction.CLEARED) for a in alerts])
        notify(a.pk for a in alerts)


# -- what operators do, and what the clock does ---------------------------------------------
class AlertError(Exception):
    """A request the rules refuse; the message is for the operator, in their language."""


def can_work(user: Any, alert: Alert) -> bool:
    """NIC works every alert; the security office works card-misuse alerts (R-OPS-2, R-OPS-3)."""
    role = role_of(user)
    return role == Role.NIC or (role == Role.SECURITY and alert.kind in SECURITY_KINDS)


def _locked(alert_id: int, user: Any) -> Alert:
    alert = Alert.objects.select_for_update().filter(pk=alert_id).first()
    if alert is None:
        raise AlertError(_("告警不存在"))
    if not can_work(user, alert):
        raise AlertError(_("无权处理此类告警"))
    if alert.status == AlertStatus.RESOLVED:
        raise AlertError(_("告警已解决，不能再处理"))
    return alert


def _done(
    alert: Alert, user: Any, action: LogAction, comment: str = "", seconds: float | None = None, **data: Any
) -> None:
    AlertLog.objects.create(alert=alert, at=timezone.now(), action=action, actor=user, comment=comment, seconds=seconds)
    record(
        actor=user,
        action=f"alert.{action.value}",
        object_type="alert",
        object_id=alert.pk,
        data={"kind": alert.kind, "subject": alert.subject, "comment": comment, **data},
    )
    notify([alert.pk])


@transaction.atomic
def acknowledge(alert_id: int, *, by: Any, comment: str) -> Alert:
    comment = comment.strip()
    if not comment:
        raise AlertError(_("确认告警必须填写说明（看到了什么、打算怎么处理）"))
    alert = _locked(alert_id, by)
    if alert.status == AlertStatus.ACKNOWLEDGED:
        raise AlertError(_("告警已被确认"))
    now = timezone.now()
    alert.status, alert.acknowledged_at, alert.acknowledged_by = AlertStatus.ACKNOWLEDGED, now, by
    alert.ack_comment = comment[:200]
    alert.save()
    seconds = (now - (alert.opened_at or alert.first_at)).total_seconds()
    _done(alert, by, LogAction.ACKNOWLEDGED, comment[:200], seconds=max(seconds, 0.0))
    return alert


@transaction.atomic
def assign(alert_id: int, *, by: Any, assignee_id: int) -> Alert:
    alert = _locked(alert_id, by)
    assignee = get_user_model().objects.filter(pk=assignee_id, is_active=True).first()
    if assignee is None or not can_work(assignee, alert):
        raise AlertError(_("只能指派给有权处理此告警的操作员"))
    alert.assignee = assignee
    alert.save(update_fields=["assignee"])
    _done(alert, by, LogAction.ASSIGNED, assignee.get_username(), assignee=assignee.get_username())
    return alert


@transaction.atomic
def resolve(alert_id: int, *, by: Any, resolution: str) -> Alert:
    resolution = resolution.strip()
    if not resolution:
        raise AlertError(_("解决告警必须填写处理结果"))
    alert = _locked(alert_id, by)
    _close(alert, by, resolution)
    return alert


def _close(alert: Alert, by: Any, resolution: str) -> None:
    now = timezone.now()
    alert.status, alert.resolved_at, alert.resolved_by = AlertStatus.RESOLVED, now, by
    alert.resolution = resolution[:200]
    if alert.acknowledged_at is None:
        alert.acknowledged_at, alert.acknowledged_by = now, by
    alert.save()
    _done(alert, by, LogAction.RESOLVED, resolution[:200], seconds=(now - alert.first_at).total_seconds())


@dataclass(frozen=True)
class TicketRequest:
    cause: str
    description: str
    vendor: str = ""
    responsible_number: str = ""
    price: str = ""


@transaction.atomic
def open_ticket(alert_id: int, *, by: Any, request: TicketRequest) -> RepairTicket:
    """R-DEV-3: a repair ticket for the alert's device. Non-human: the vendor repairs it free of
    charge. Human: the responsible person pays the market price — a line in the fee ledger.
    The alert is resolved by the ticket."""

    alert = _locked(alert_id, by)
    if role_of(by) != Role.NIC:
        raise AlertError(_("维修单由网信中心开具"))
    if alert.device_id is None:
        raise AlertError(_("此告警没有对应设备，不能开维修单"))
    description = request.description.strip()
    if not description:
        raise AlertError(_("请填写故障描述"))
    if request.cause not in RepairCause.values:
        raise AlertError(_("请选择故障原因：人为或非人为"))
    ticket = RepairTicket(
        device_id=alert.device_id,
        alert=alert,
        cause=request.cause,
        description=description[:200],
        opened_by=by,
        opened_at=timezone.now(),
    )
    decision = repairs.Decision(
        vendor=request.vendor, responsible_number=request.responsible_number, price=request.price
    )
    try:  # R-DEV-3, decided in one place for a ticket from an alert and for a department's request
        repairs.decide(ticket, cause=request.cause, decision=decision, by=by)
    except repairs.RepairError as exc:
        raise AlertError(str(exc)) from None
    ticket.state = RepairState.WITH_VENDOR if ticket.cause == RepairCause.NON_HUMAN else RepairState.CHARGED
    ticket.accepted_at = ticket.opened_at
    ticket.save()
    repairs.opened_from_alert(ticket, by=by)  # issue 18, Build 1: in the repair queue, its steps told
    AlertLog.objects.create(
        alert=alert,
        at=ticket.opened_at,
        action=LogAction.TICKET,
        actor=by,
        comment=f"{ticket.get_cause_display()} · {description[:120]}",
    )
    record(
        actor=by,
        action="repair.open",
        object_type="device",
        object_id=alert.device_id,
        data={
            "ticket": ticket.pk,
            "cause": ticket.cause,
            "price": str(ticket.price),
            "vendor": ticket.vendor,
            "responsible": ticket.responsible.number if ticket.responsible else "",
        },
    )
    _close(alert, by, _("已开维修单 #%(n)s") % {"n": ticket.pk})
    return ticket


# -- the clock ---------------------------------------------------------------------------------


def escalate_after() -> dict[str, timedelta]:
    seconds: dict[str, int] = settings.ALERT_ESCALATE_AFTER_S
    return {severity: timedelta(seconds=s) for severity, s in seconds.items()}


MAX_ESCALATION = 2


def escalate_overdue(*, now: datetime) -> int:
    """An alert left open past its severity's limit goes up a level (and again after twice the
    limit). Flapping alerts are suppressed: they do not escalate."""
    changed = []
    with transaction.atomic():
        for severity, after in escalate_after().items():
            for level in range(MAX_ESCALATION):
                due = (
                    Alert.objects.select_for_update()
                    .filter(
                        status=AlertStatus.OPEN,
                        flapping=False,
                        severity=severity,
                        escalation=level,
                        opened_at__lte=now - after * (level + 1),
                    )
                    # a condition that cleared and closes itself is nobody's to chase (issue 19)
                    .exclude(kind__in=sorted(SELF_RESOLVING_KINDS), cleared_at__isnull=False)
                )
                for alert in due:
                    alert.escalation, alert.escalated_at = level + 1, now
                    alert.save(update_fields=["escalation", "escalated_at"])
                    AlertLog.objects.create(alert=alert, at=now, action=LogAction.ESCALATED, comment=str(level + 1))
                    changed.append(alert.pk)
        notify(changed)
    return len(changed)


def settle_flapping(*, now: datetime) -> int:
    """A flapping alert that has not re-fired for a whole window is stable again."""
    changed = []
    with transaction.atomic():
        for alert in Alert.objects.select_for_update().filter(flapping=True).exclude(status=AlertStatus.RESOLVED):
            if not alert.refires or max(alert.refires) <= (now - FLAP_WINDOW).timestamp():
                alert.flapping, alert.refires = False, []
                alert.save(update_fields=["flapping", "refires"])
                AlertLog.objects.create(alert=alert, at=now, action=LogAction.STABLE)
                changed.append(alert.pk)
        notify(changed)
    return len(changed)


def resolve_cleared(*, now: datetime) -> int:
    """Issue 19 (R-OPS-3): a condition alert whose condition cleared ``RESOLVE_CLEARED_AFTER`` ago
    and has not come back is resolved by the system — a device heard from again, a fault gone, a
    reader caught up on its credentials — as Alertmanager resolves an alert whose rule no longer
    holds. On its timeline and in the audit trail as the system's; no response time is counted
    (nobody worked it). Tamper and forced-door alerts wait for a person (``SELF_RESOLVING_KINDS``)."""
    closed: list[int] = []
    with transaction.atomic():
        due = (
            Alert.objects.select_for_update()
            .filter(kind__in=sorted(SELF_RESOLVING_KINDS), cleared_at__lte=now - RESOLVE_CLEARED_AFTER)
            .exclude(status=AlertStatus.RESOLVED)
        )
        for alert in due:
            assert alert.cleared_at is not None  # the filter: cleared
            minutes = int((now - alert.cleared_at).total_seconds() // 60)
            text = _("条件已消除 %(m)s 分钟未复发，系统自动关闭") % {"m": minutes}
            alert.status, alert.resolved_at, alert.resolution = AlertStatus.RESOLVED, now, text[:200]
            alert.flapping, alert.refires = False, []
            alert.save(update_fields=["status", "resolved_at", "resolution", "flapping", "refires"])
            AlertLog.objects.create(alert=alert, at=now, action=LogAction.RESOLVED, comment=text[:200])
            record(
                actor=None,
                action="alert.auto_resolved",
                object_type="alert",
                object_id=alert.pk,
                data={"kind": alert.kind, "subject": alert.subject, "cleared_at": alert.cleared_at.isoformat()},
            )
            closed.append(alert.pk)
        notify(closed)
    return len(closed)
