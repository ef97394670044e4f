"""Repair requests 报修 and the repair queue (issue 18, Build 1; R-ROLE-3, R-DEV-3, R-DEV-4).

A user department (the security office, Student Affairs' dorm managers, the Library, General
Affairs — and the Campus Management Office, whose operators hold the General Affairs role with
their own department) looks after the devices it owns (R-DEV-4) and reports their faults to NIC
(R-ROLE-3): what is wrong, optionally a photo. NIC triages those requests and the device alerts
(``services.open_ticket``) into one queue, and a ticket goes

    reported → accepted → with vendor (non-human fault, free)         → repaired → verified → closed
                        → charged (human fault: the responsible person
                          pays the market price, a fee owed until paid)

(R-DEV-3), or is rejected. :data:`TRANSITIONS` is the whole table: every path — the /repairs/
pages, the admin (read-only for the state), an alert's page — goes through :func:`transition`,
which refuses anything else with a Chinese message and changes nothing. Every step is one
atomic write: the ticket, its step log (who, when, from, to), the audit record, and a
notification to the owning department through the routing rules that name it (issue 16's
channels; sent by ``campuscard supervise``).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _
from PIL import Image

from ops.accounts.permissions import role_of
from ops.accounts.roles import REPAIR_REPORTERS, Role
from ops.alerts.choices import RepairCause, RepairState
from ops.alerts.models import Notification, RepairStep, RepairTicket, RoutingRule
from ops.audit.services import record
from ops.registry.lifecycle import photo_store
from ops.registry.lifecycle.choices import ChargeStatus, FeeKind
from ops.registry.lifecycle.models import FeeCharge
from ops.registry.models import Cardholder, Department, Device

NIC = "nic"  # only NIC makes this step
OWNER = "owner"  # the device's owning department (or NIC) makes it

# state → {next state: who may take the step}. Nothing else is allowed.
TRANSITIONS: dict[str, dict[str, str]] = {
    RepairState.REPORTED: {RepairState.ACCEPTED: NIC, RepairState.REJECTED: NIC},
    RepairState.ACCEPTED: {RepairState.WITH_VENDOR: NIC, RepairState.CHARGED: NIC, RepairState.REJECTED: NIC},
    RepairState.WITH_VENDOR: {RepairState.REPAIRED: NIC},
    RepairState.CHARGED: {RepairState.REPAIRED: NIC},
    RepairState.REPAIRED: {RepairState.VERIFIED: OWNER},
    RepairState.VERIFIED: {RepairState.CLOSED: NIC},
}
OPEN_STATES = frozenset(s for s in RepairState if s not in (RepairState.CLOSED, RepairState.REJECTED))
PHOTO_FORMATS = ("JPEG", "PNG")
PHOTO_MAX_PIXELS = 40_000_000  # a phone's photo is 12–50 MP; beyond that it is a decompression bomb


class RepairError(Exception):
    """A request the rules refuse; the message is for the operator (Chinese)."""


@dataclass(frozen=True)
class Decision:
    """What NIC decides when the cause is known (R-DEV-3): the vendor for a non-human fault, the
    responsible person's student/staff number and the market price for a human one."""

    vendor: str = ""
    responsible_number: str = ""
    price: str = ""


# -- who sees what -----------------------------------------------------------------------------


def is_nic(user: Any) -> bool:
    return role_of(user) == Role.NIC


def department_of(user: Any) -> Department | None:
    operator = getattr(user, "operator", None)
    return operator.department if operator is not None else None


def can_view(user: Any) -> bool:
    return is_nic(user) or role_of(user) in REPAIR_REPORTERS


def devices_for(user: Any) -> QuerySet[Device]:
    """The devices ``user`` answers for: NIC all, a department its own (R-DEV-4), else none."""
    devices = Device.objects.select_related("owner", "building")
    if is_nic(user):
        return devices
    department = department_of(user)
    if role_of(user) not in REPAIR_REPORTERS or department is None:
        return devices.none()
    return devices.filter(owner=department)


def tickets_for(user: Any) -> QuerySet[RepairTicket]:
    """The tickets ``user`` may see: NIC the whole queue; a department its devices' tickets and
    the ones it reported."""
    tickets = RepairTicket.objects.select_related(
        "device__owner", "reporter_department", "responsible", "fee", "opened_by", "alert"
    )
    if is_nic(user):
        return tickets
    department = department_of(user)
    if role_of(user) not in REPAIR_REPORTERS or department is None:
        return tickets.none()
    return tickets.filter(Q(device__owner=department) | Q(reporter_department=department))


def allowed_steps(ticket: RepairTicket, user: Any) -> list[str]:
    """The states ``user`` may move ``ticket`` to now (for the buttons; the service re-checks)."""
    return [to for to, who in TRANSITIONS.get(ticket.state, {}).items() if _may(who, ticket, user)]


def _may(who: str, ticket: RepairTicket, user: Any) -> bool:
    if is_nic(user):
        return True
    if who != OWNER or role_of(user) not in REPAIR_REPORTERS:
        return False
    department = department_of(user)
    return department is not None and department.pk == ticket.device.owner_id


def time_to_repair(ticket: RepairTicket, *, now: Any = None) -> timedelta | None:
    """From the report to the repair; for a ticket still open, the time so far."""
    if ticket.state == RepairState.REJECTED:
        return None
    end = ticket.repaired_at or (now or timezone.now())
    return end - ticket.opened_at


# -- filing a request --------------------------------------------------------------------------


def check_photo(upload: Any) -> bytes:
    """A fault photo: JPEG or PNG, at most ``REPAIR_PHOTO_MAX_BYTES``; anything else refused."""
    limit = settings.REPAIR_PHOTO_MAX_BYTES
    size = getattr(upload, "size", None)
    if size is not None and size > limit:
        raise RepairError(_("照片不能超过 %(mb)s MB") % {"mb": limit // (1024 * 1024)})
    data = upload.read(limit + 1) if hasattr(upload, "read") else bytes(upload)
    if len(data) > limit:
        raise RepairError(_("照片不能超过 %(mb)s MB") % {"mb": limit // (1024 * 1024)})
    try:
        with Image.open(io.BytesIO(data), formats=PHOTO_FORMATS) as im:
            if im.size[0] * im.size[1] > PHOTO_MAX_PIXELS:
                raise RepairError(_("照片尺寸过大"))
            im.verify()
    except RepairError:
        raise
    except (OSError, ValueError, SyntaxError, EOFError, IndexError, TypeError, Image.DecompressionBombError):
        raise RepairError(_("照片须为 JPEG 或 PNG 图片")) from None
    return data


@transaction.atomic
def report(*, device: Device | int, by: Any, description: str, photo: Any = None) -> RepairTicket:
    """A department reports a fault of its own device (R-ROLE-3); NIC may report for any."""
    device_id = device.pk if isinstance(device, Device) else device
    target = devices_for(by).filter(pk=device_id).first()
    if target is None:
        raise RepairError(_("只能为本部门的设备报修"))
    description = (description or "").strip()
    if not description:
        raise RepairError(_("请填写故障描述"))
    if len(description) > 200:
        raise RepairError(_("故障描述不能超过 200 字"))
    open_one = RepairTicket.objects.filter(device=target, state__in=OPEN_STATES).first()
    if open_one is not None and not is_nic(by):
        raise RepairError(_("此设备已有未关闭的维修单 #%(n)s，请跟进该单") % {"n": open_one.pk})
    sha = photo_store.save(check_photo(photo)) if photo else ""
    now = timezone.now()
    department = department_of(by)  # NIC's own, when NIC files it for a department
    ticket = RepairTicket.objects.create(
        device=target,
        description=description,
        opened_by=by,
        opened_at=now,
        state=RepairState.REPORTED,
        reporter_department=department,
        photo_sha256=sha,
    )
    _step(ticket, by, "", RepairState.REPORTED, description[:200], now=now)
    return ticket


# -- the transitions ---------------------------------------------------------------------------


@transaction.atomic
def transition(
    ticket: RepairTicket | int, *, to: str, by: Any, comment: str = "", decision: Decision | None = None
) -> RepairTicket:
    """Move a ticket one step along :data:`TRANSITIONS` — the only way its state changes."""
    pk = ticket.pk if isinstance(ticket, RepairTicket) else ticket
    locked = RepairTicket.objects.select_for_update(of=("self",)).filter(pk=pk).select_related("device", "fee").first()
    if locked is None or not tickets_for(by).filter(pk=pk).exists():
        raise RepairError(_("维修单不存在"))
    if to not in RepairState.values:
        raise RepairError(_("未知的维修单状态"))
    current, target = RepairState(locked.state), RepairState(to)
    who = TRANSITIONS.get(current, {}).get(target)
    if who is None:
        raise RepairError(_("维修单“%(from)s”时不能改为“%(to)s”") % {"from": current.label, "to": target.label})
    if not _may(who, locked, by):
        raise RepairError(
            _("只有网信中心可以把维修单改为“%(to)s”") % {"to": target.label}
            if who == NIC
            else _("只有设备所属部门或网信中心可以验收")
        )
    comment = (comment or "").strip()[:200]
    now = timezone.now()
    if target == RepairState.ACCEPTED:
        locked.accepted_at = now
    elif target in (RepairState.WITH_VENDOR, RepairState.CHARGED):
        cause = RepairCause.NON_HUMAN if target == RepairState.WITH_VENDOR else RepairCause.HUMAN
        decide(locked, cause=cause, decision=decision or Decision(), by=by)
        comment = comment or _cause_note(locked)
    elif target == RepairState.REJECTED and not comment:
        raise RepairError(_("驳回报修须写明理由"))
    elif target == RepairState.REPAIRED:
        locked.repaired_at = now
    elif target == RepairState.CLOSED:
        if locked.fee is not None and locked.fee.status == ChargeStatus.OWED:
            raise RepairError(_("责任人尚未缴纳赔偿（%(amount)s 元），不能关闭") % {"amount": locked.fee.amount})
        locked.closed_at = now
    if target == RepairState.REJECTED:
        locked.closed_at = now
    locked.state = target
    locked.save()
    _step(locked, by, current, target, comment, now=now)
    return locked


def decide(ticket: RepairTicket, *, cause: str, decision: Decision, by: Any) -> None:
    """Set the cause (R-DEV-3): the vendor repairs a non-human fault free; a human one is
    charged to the responsible person at the market price — a fee owed until it is paid at
    the window (``settle_charge``). Refuses a missing vendor, an unknown person, a bad price."""
    if cause not in RepairCause.values:
        raise RepairError(_("请选择故障原因：人为或非人为"))
    if cause == RepairCause.NON_HUMAN:
        vendor = decision.vendor.strip()
        if not vendor:
            raise RepairError(_("非人为故障由厂商免费维修：请填写维修厂商"))
        ticket.cause, ticket.vendor, ticket.price = cause, vendor[:100], Decimal("0")
        return
    holder = Cardholder.objects.filter(number=decision.responsible_number.strip()).first()
    if holder is None:
        raise RepairError(_("人为损坏须填写责任人的学工号（系统中找不到此学工号）"))
    try:
        price = Decimal(decision.price.strip())
        if not price.is_finite():  # "NaN", "Infinity" parse as decimals
            raise InvalidOperation
        price = price.quantize(Decimal("0.01"))
    except (InvalidOperation, ValueError):
        raise RepairError(_("赔偿金额须为数字（元）")) from None
    if price <= 0 or price > Decimal("100000"):
        raise RepairError(_("赔偿金额须按市价填写，大于 0 元"))
    ticket.cause, ticket.responsible, ticket.price = cause, holder, price
    ticket.fee = FeeCharge.objects.create(  # owed until paid (issue 13, defect 6)
        holder=holder,
        card=None,
        kind=FeeKind.DEVICE_DAMAGE,
        amount=price,
        operator=by,
        window="NIC",
        status=ChargeStatus.OWED,
    )


def _cause_note(ticket: RepairTicket) -> str:
    if ticket.cause == RepairCause.NON_HUMAN:
        return _("非人为故障，厂商 %(vendor)s 免费维修") % {"vendor": ticket.vendor}
    return _("人为损坏，责任人 %(name)s 按市价赔偿 %(price)s 元") % {
        "name": ticket.responsible.name if ticket.responsible else "",
        "price": ticket.price,
    }


def opened_from_alert(ticket: RepairTicket, *, by: Any) -> None:
    """A ticket NIC opened from an alert (``services.open_ticket``), its cause already decided:
    in the queue as accepted, then with the vendor or charged — logged and told like any step;
    audited once, as the one act it is (``repair.open``, by ``open_ticket``)."""
    opened = _("由告警 #%(n)s 开单") % {"n": ticket.alert_id}
    _step(ticket, by, "", RepairState.ACCEPTED, opened, now=ticket.opened_at, audit=False)
    _step(
        ticket,
        by,
        RepairState.ACCEPTED,
        RepairState(ticket.state),
        _cause_note(ticket),
        now=ticket.opened_at,
        audit=False,
    )


# -- the step log, the audit and the department's notification ---------------------------------


def _step(
    ticket: RepairTicket, by: Any, old: str, new: str, comment: str, *, now: Any, audit: bool = True
) -> RepairStep:
    step = RepairStep.objects.create(ticket=ticket, at=now, actor=by, from_state=old, to_state=new, comment=comment)
    if audit:
        _audit(ticket, by, old, new, comment)
    tell_department(step, now=now)
    return step


def _audit(ticket: RepairTicket, by: Any, old: str, new: str, comment: str) -> None:
    record(
        actor=by,
        action=f"repair.{new}",
        object_type="repair_ticket",
        object_id=ticket.pk,
        data={
            "device": ticket.device.code,
            "from": old,
            "to": new,
            "comment": comment,
            "cause": ticket.cause,
            "price": str(ticket.price),
            "fee": ticket.fee_id,
            "department": ticket.device.owner.code,
        },
    )


def department_rules(department_id: int) -> QuerySet[RoutingRule]:
    """The routing rules that speak for a department (they name it among the owning
    departments, and take repair steps): its channels are how it is told (issue 16)."""
    return RoutingRule.objects.filter(
        enabled=True, repair_steps=True, level=0, owner_departments__id=department_id
    ).distinct()


def tell_department(step: RepairStep, *, now: Any) -> int:
    """Queue one message per channel of the owning department's rules; ``campuscard supervise``
    sends it (rate limit, retries, delivery log) like an alert's notification."""
    ticket = step.ticket
    made = 0
    for rule in department_rules(ticket.device.owner_id).prefetch_related("channels"):
        for channel in rule.channels.all():
            if not channel.enabled:
                continue
            Notification.objects.create(
                rule=rule,
                channel=channel,
                rule_name=rule.name,
                channel_name=channel.name,
                level=0,
                group_key=f"repair:{ticket.pk}:{step.to_state}"[:200],
                opened_at=now,
                due_at=now,
                next_at=now,
                repair_step=step,
            )
            made += 1
    return made
