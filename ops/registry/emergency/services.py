"""The rules of emergency modes (issue 17, Build 2; R-OPS-2, R-SEC-1).

- The security office starts a mode — lockdown (only security staff pass) or unlock-all (fire:
  doors released, everyone out) — for the whole campus, a building or a door group, with a reason
  and an explicit confirmation. One live mode of a kind per place (a database rule too).
- A campus-wide lockdown waits for a second security operator's approval
  (``EMERGENCY_CAMPUS_LOCKDOWN_APPROVAL``, on by default); the requester cannot approve their
  own. An unlock-all never waits: evacuation comes first.
- A mode is ended only by a person (the security office), with an optional note; a pending
  request can be withdrawn the same way. Nothing ends one by itself.
- Every change raises the :class:`EmergencyRevision`; the relay sends the modes in force to the
  readers as one signed state, ahead of any card change (``ops.pipeline.relay``); the desks'
  banners hear of it after the commit.
- Every step is audited with the reason as its basis; a refused attempt is audited too (a
  failed attempt at a lockdown is a security event), and changes nothing else.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from ops.accounts.permissions import can_lead_emergency
from ops.audit.services import record
from ops.push import push
from ops.registry.calendar.models import DoorGroup
from ops.registry.emergency.choices import (
    LIVE_GROUP,
    LIVE_STATUSES,
    OBJECT_TYPE,
    REASON_MAX,
    AuditAction,
    Kind,
    Scope,
    Status,
)
from ops.registry.emergency.models import EmergencyMode, EmergencyRevision
from ops.registry.models import Building

REASON_MIN = 2


class EmergencyError(ValidationError):
    """A step the rules refuse (bad input, wrong state); nothing has been changed."""

    def __str__(self) -> str:
        return " ".join(self.messages)


class EmergencyForbidden(PermissionDenied):
    """The operator's role may not take this step."""


def needs_approval(kind: str, scope: str) -> bool:
    return bool(settings.EMERGENCY_CAMPUS_LOCKDOWN_APPROVAL) and kind == Kind.LOCKDOWN and scope == Scope.CAMPUS


def announce(change: str, mode_id: int | None = None) -> None:
    """Tell every desk's banner, after the commit, that the modes changed (it reloads them)."""
    push(LIVE_GROUP, {"rows": [], "watermark": 0, "emergency": change, "mode": mode_id})


def bump() -> int:
    """The next revision (the caller's transaction; serialises every emergency change)."""
    row, _created = EmergencyRevision.objects.select_for_update().get_or_create(pk=1)
    row.revision += 1
    row.save(update_fields=["revision"])
    return row.revision


def _lock() -> None:
    EmergencyRevision.objects.select_for_update().get_or_create(pk=1)


def _audit(by: Any, action: str, mode: EmergencyMode | None, *, basis: str, **data: Any) -> None:
    record(
        actor=by,
        action=action,
        object_type=OBJECT_TYPE,
        object_id=mode.pk if mode is not None else "",
        basis=basis,
        data=data,
    )


def _refused(by: Any, step: str, message: str, **data: Any) -> None:
    """An attempt the rules refused, on record (its own transaction: the caller's rolls back)."""
    with transaction.atomic():
        _audit(by, AuditAction.REFUSED, None, basis=message, step=step, **data)


def _place(scope: str, target: str) -> tuple[Building | None, DoorGroup | None]:
    if scope == Scope.CAMPUS:
        return None, None
    if scope == Scope.BUILDING:
        building = Building.objects.filter(code=target).first()
        if building is None:
            raise EmergencyError(_("没有这栋楼宇"))
        return building, None
    if scope == Scope.GROUP:
        group = DoorGroup.objects.filter(code=target).first()
        if group is None:
            raise EmergencyError(_("没有这个门禁组"))
        return None, group
    raise EmergencyError(_("请选择范围：全校、楼宇或门禁组"))


def start_mode(
    *, kind: str, scope: str, target: str = "", reason: str, confirmed: bool, by: Any, at: datetime | None = None
) -> EmergencyMode:
    """Start (or, for a campus-wide lockdown needing approval, request) a mode. Refused
    (``EmergencyError``) without a reason, without the confirmation, for an unknown place, or
    when the place already has a live mode of that kind; (``EmergencyForbidden``) for anyone
    but the security office. A refusal is audited and changes nothing else."""
    details = {"kind": kind, "scope": scope, "target": target}
    try:
        return _start(kind=kind, scope=scope, target=target, reason=reason, confirmed=confirmed, by=by, at=at)
    except (EmergencyError, EmergencyForbidden) as exc:
        _refused(by, "start", str(exc) or _("无权操作"), **details)
        raise


def _validate(*, kind: str, scope: str, target: str, reason: str) -> tuple[Building | None, DoorGroup | None]:
    if kind not in Kind.values:
        raise EmergencyError(_("请选择模式：封闭或全部开门"))
    reason = (reason or "").strip()
    if len(reason) < REASON_MIN:
        raise EmergencyError(_("请填写启动紧急模式的原因"))
    if len(reason) > REASON_MAX:
        raise EmergencyError(_("原因过长（最多%(n)s字）") % {"n": REASON_MAX})
    building, group = _place(scope, (target or "").strip())
    live = EmergencyMode.objects.filter(kind=kind, scope=scope, building=building, group=group)
    if live.filter(status__in=LIVE_STATUSES).exists():
        raise EmergencyError(_("该范围已有同类紧急模式在进行或待批准"))
    return building, group


def check_start(*, kind: str, scope: str, target: str, reason: str) -> str:
    """What the rules would refuse in this start (the confirmation step shows nothing it would
    refuse): the message, or "" (nothing is written)."""
    try:
        _validate(kind=kind, scope=scope, target=target, reason=reason)
    except EmergencyError as exc:
        return str(exc)
    return ""


@transaction.atomic
def _start(
    *, kind: str, scope: str, target: str, reason: str, confirmed: bool, by: Any, at: datetime | None
) -> EmergencyMode:
    if not can_lead_emergency(by):
        raise EmergencyForbidden(_("只有保卫处可以启动紧急模式"))
    if not confirmed:
        raise EmergencyError(_("请确认启动紧急模式"))
    _lock()  # every emergency change in one line, so "one live mode per place" is checked once
    building, group = _validate(kind=kind, scope=scope, target=target, reason=reason)
    reason, target = reason.strip(), (target or "").strip()
    now = at or timezone.now()
    pending = needs_approval(kind, scope)
    try:
        with transaction.atomic():
            mode = EmergencyMode.objects.create(
                kind=kind,
                scope=scope,
                building=building,
                group=group,
                status=Status.PENDING if pending else Status.ACTIVE,
                reason=reason,
                requested_by=by,
                requested_at=now,
                started_at=None if pending else now,
            )
    except IntegrityError:
        raise EmergencyError(_("该范围已有同类紧急模式在进行或待批准")) from None
    data = {"kind": kind, "scope": scope, "target": target, "place": mode.place_label()}
    if pending:
        _audit(by, AuditAction.REQUEST, mode, basis=reason, **data)
    else:
        _audit(by, AuditAction.START, mode, basis=reason, revision=bump(), **data)
    transaction.on_commit(lambda: announce("started" if not pending else "requested", mode.pk))
    return mode


def _live_mode(mode_id: int) -> EmergencyMode:
    mode = EmergencyMode.objects.select_for_update().filter(pk=mode_id).first()
    if mode is None:
        raise EmergencyError(_("没有这个紧急模式"))
    return mode


def approve_mode(mode_id: int, *, by: Any) -> EmergencyMode:
    """A second security operator approves a pending campus-wide lockdown: it is in force."""
    try:
        return _approve(mode_id, by=by)
    except (EmergencyError, EmergencyForbidden) as exc:
        _refused(by, "approve", str(exc) or _("无权操作"), mode_id=mode_id)
        raise


@transaction.atomic
def _approve(mode_id: int, *, by: Any) -> EmergencyMode:
    if not can_lead_emergency(by):
        raise EmergencyForbidden(_("只有保卫处可以批准紧急模式"))
    _lock()
    mode = _live_mode(mode_id)
    if mode.status != Status.PENDING:
        raise EmergencyError(_("这个紧急模式不在待批准状态"))
    if mode.requested_by_id == by.pk:
        raise EmergencyError(_("全校封闭须由另一名操作员批准，发起人不能自己批准"))
    now = timezone.now()
    mode.status, mode.approved_by, mode.started_at = Status.ACTIVE, by, now
    mode.save(update_fields=["status", "approved_by", "started_at"])
    _audit(
        by,
        AuditAction.APPROVE,
        mode,
        basis=mode.reason,
        kind=mode.kind,
        scope=mode.scope,
        requested_by=mode.requested_by.get_username(),
        revision=bump(),
    )
    transaction.on_commit(lambda: announce("started", mode.pk))
    return mode


def end_mode(mode_id: int, *, by: Any, note: str = "") -> EmergencyMode:
    """End a mode in force (the doors go back to normal), or withdraw a pending request."""
    try:
        return _end(mode_id, by=by, note=note)
    except (EmergencyError, EmergencyForbidden) as exc:
        _refused(by, "end", str(exc) or _("无权操作"), mode_id=mode_id)
        raise


@transaction.atomic
def _end(mode_id: int, *, by: Any, note: str) -> EmergencyMode:
    if not can_lead_emergency(by):
        raise EmergencyForbidden(_("只有保卫处可以结束紧急模式"))
    note = (note or "").strip()
    if len(note) > REASON_MAX:
        raise EmergencyError(_("说明过长（最多%(n)s字）") % {"n": REASON_MAX})
    _lock()
    mode = _live_mode(mode_id)
    if not mode.live:
        raise EmergencyError(_("这个紧急模式已经结束"))
    was_active = mode.status == Status.ACTIVE
    now = timezone.now()
    mode.status = Status.ENDED if was_active else Status.WITHDRAWN
    mode.ended_by, mode.ended_at, mode.end_note = by, max(now, mode.requested_at), note
    mode.save(update_fields=["status", "ended_by", "ended_at", "end_note"])
    data: dict[str, Any] = {"kind": mode.kind, "scope": mode.scope, "note": note}
    if was_active:
        data["revision"] = bump()
        data["lasted_s"] = round((now - (mode.started_at or now)).total_seconds(), 1)
    _audit(by, AuditAction.END if was_active else AuditAction.WITHDRAW, mode, basis=mode.reason, **data)
    transaction.on_commit(lambda: announce("ended", mode.pk))
    return mode
