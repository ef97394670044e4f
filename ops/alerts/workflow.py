"""What operators do with alerts (R-OPS-3, R-DEV-3): acknowledge with a comment, assign, resolve,
open a repair ticket; and what the clock does: escalate alerts nobody acknowledged, end a
device's flapping once it stays put. Every operator action is atomic, logged on the alert's
timeline, audited, and pushed to the desks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Avg, Count
from django.utils import timezone
from django.utils.translation import gettext as _

from ops.accounts.permissions import role_of
from ops.accounts.roles import Role
from ops.alerts.models import (
    SECURITY_KINDS,
    Alert,
    AlertLog,
    AlertStatus,
    LogAction,
    RepairCause,
    RepairTicket,
)
from ops.alerts.services import FLAP_WINDOW, notify
from ops.audit.services import record
from ops.registry.lifecycle.models import FeeCharge, FeeKind
from ops.registry.models import Cardholder


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
    if request.cause == RepairCause.NON_HUMAN:
        vendor = request.vendor.strip()
        if not vendor:
            raise AlertError(_("非人为故障由厂商免费维修：请填写维修厂商"))
        ticket.vendor, ticket.price = vendor[:100], Decimal("0")
    else:
        holder = Cardholder.objects.filter(number=request.responsible_number.strip()).first()
        if holder is None:
            raise AlertError(_("人为损坏须填写责任人的学工号（系统中找不到此学工号）"))
        try:
            price = Decimal(request.price.strip())
            if not price.is_finite():  # "NaN", "Infinity" parse as decimals
                raise InvalidOperation
            price = price.quantize(Decimal("0.01"))
        except (InvalidOperation, ValueError):
            raise AlertError(_("赔偿金额须为数字（元）")) from None
        if price <= 0 or price > Decimal("100000"):
            raise AlertError(_("赔偿金额须按市价填写，大于 0 元"))
        ticket.responsible, ticket.price = holder, price
        ticket.fee = FeeCharge.objects.create(
            holder=holder, card=None, kind=FeeKind.DEVICE_DAMAGE, amount=price, operator=by, window="NIC"
        )
    ticket.save()
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
                due = Alert.objects.select_for_update().filter(
                    status=AlertStatus.OPEN,
                    flapping=False,
                    severity=severity,
                    escalation=level,
                    opened_at__lte=now - after * (level + 1),
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


def response_times(*, since: datetime) -> dict[str, Any]:
    """Mean time to acknowledge (from opening, or from the lapse that reopened it) and to
    repair (first occurrence → resolved), over the actions taken since ``since``."""
    out: dict[str, Any] = {}
    for name, action in (("ack", LogAction.ACKNOWLEDGED), ("repair", LogAction.RESOLVED)):
        agg = AlertLog.objects.filter(action=action, at__gte=since, seconds__isnull=False).aggregate(
            mean=Avg("seconds"), n=Count("id")
        )
        out[f"mtt{name[0]}_s"] = agg["mean"]
        out[f"{name}_count"] = agg["n"]
    return out
