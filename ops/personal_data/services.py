"""The rules of personal-data queries (R-SEC-2, R-SEC-1).

- Any operator files a request: a purpose, the persons (by student/staff number) and the written
  basis (a PDF or a scan).
- The responsible leader (``Role.LEADER``) approves or rejects it — never their own request, and
  a leader who belongs to a department only approves requests from that department.
- NIC (``Role.NIC``) reviews an approved request — never their own — which opens a grant for a
  limited time (``PERSONAL_DATA_GRANT_HOURS``, 24 h by default, at most 7 days); NIC may also
  refuse at review, and revoke a request or a grant at any time.
- A grant lets its requester, and nobody else, see the unmasked data of the persons named in
  it, until ``valid_until``. Expiry is a comparison with the clock: nothing has to run for it
  to take effect; the status is marked ``expired`` (and audited) the next time anybody looks.
- Every step is audited with the request as its basis; so is every view and every refusal.

Every write is atomic; a refused input raises before anything has changed.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from ops.accounts.permissions import role_of
from ops.accounts.roles import Role
from ops.audit.services import record
from ops.personal_data import basis_store
from ops.personal_data.choices import RequestStatus
from ops.personal_data.models import PersonalDataRequest
from ops.registry import selectors as registry_selectors
from ops.registry.choices import DECISIONS, DIRECTIONS, REASONS
from ops.registry.models import Cardholder

MAX_PERSONS = 200
MAX_HOURS = 7 * 24
OBJECT_TYPE = "personal_data_request"
SHOWN_FIELDS = ("name", "number", "citizen_id", "phone", "class_name", "title")


class GrantError(ValidationError):
    """A request the rules refuse (bad input, wrong state); nothing has been changed. A Django
    ValidationError, so the API answers 400 with its message (ops.api.errors)."""

    def __str__(self) -> str:
        return " ".join(self.messages)


class GrantForbidden(PermissionDenied):
    """The operator's role may not take this step."""


class PersonalDataRefused(GrantForbidden):
    """No active grant covers this person for this operator. The refusal has been audited."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class PersonalData:
    """A cardholder's data, unmasked, as shown under a grant."""

    holder_id: int
    number: str
    name: str
    kind: str
    department: str
    citizen_id: str
    phone: str
    class_name: str
    title: str
    request_id: int
    valid_until: datetime

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["valid_until"] = self.valid_until.isoformat()
        return out


def default_hours() -> int:
    return max(1, min(int(getattr(settings, "PERSONAL_DATA_GRANT_HOURS", 24)), MAX_HOURS))


def parse_numbers(text: str | list[str] | tuple[str, ...]) -> list[str]:
    """Student/staff numbers from a text box (one per line, or separated by commas, spaces,
    semicolons or 、), without repeats, in the order given."""
    parts = text if isinstance(text, list | tuple) else re.split(r"[\s,，;；、]+", text or "")
    seen: dict[str, None] = {}
    for part in parts:
        part = str(part).strip()
        if part:
            seen.setdefault(part, None)
    return list(seen)


def _audit(by: Any, action: str, req: PersonalDataRequest, **data: Any) -> None:
    record(
        actor=by,
        action=f"personal_data.{action}",
        object_type=OBJECT_TYPE,
        object_id=req.pk,
        basis=req.basis_ref,
        data=data,
    )


# -- who may do what ---------------------------------------------------------------------------


def _department_id(user: Any) -> int | None:
    operator = getattr(user, "operator", None)
    return operator.department_id if operator is not None else None


def leader_covers(user: Any, req: PersonalDataRequest) -> bool:
    """The responsible leader: a leader without a department answers for every department."""
    if role_of(user) != Role.LEADER or user.pk == req.requester_id:
        return False
    department = _department_id(user)
    return department is None or department == _department_id(req.requester)


def can_approve(user: Any, req: PersonalDataRequest) -> bool:
    return req.status == RequestStatus.FILED and leader_covers(user, req)


def can_review(user: Any, req: PersonalDataRequest) -> bool:
    return req.status == RequestStatus.APPROVED and role_of(user) == Role.NIC and user.pk != req.requester_id


def can_revoke(user: Any, req: PersonalDataRequest) -> bool:
    open_states = (RequestStatus.FILED, RequestStatus.APPROVED, RequestStatus.REVIEWED)
    return role_of(user) == Role.NIC and req.status in open_states and req.shown_status() != RequestStatus.EXPIRED


def can_see(user: Any, req: PersonalDataRequest) -> bool:
    """The requester, the leaders and NIC see a request (and its basis file)."""
    role = role_of(user)
    return role is not None and (user.pk == req.requester_id or role in (Role.LEADER, Role.NIC))


def _check_leader(user: Any, req: PersonalDataRequest) -> None:
    if role_of(user) != Role.LEADER:
        raise GrantForbidden(_("只有分管领导可以审批个人数据查询申请"))
    if user.pk == req.requester_id:
        raise GrantForbidden(_("不能审批自己提交的申请"))
    if not leader_covers(user, req):
        raise GrantForbidden(_("只能审批本人分管部门的申请"))


def _check_reviewer(user: Any, req: PersonalDataRequest) -> None:
    if role_of(user) != Role.NIC:
        raise GrantForbidden(_("只有网信中心可以复核个人数据查询申请"))
    if user.pk == req.requester_id:
        raise GrantForbidden(_("不能复核自己提交的申请"))


def _locked(request_id: int) -> PersonalDataRequest:
    req = (
        PersonalDataRequest.objects.select_for_update(of=("self",))
        .select_related("requester__operator")
        .filter(pk=request_id)
        .first()
    )
    if req is None:
        raise GrantError(_("申请不存在"))
    return req


# -- the steps ---------------------------------------------------------------------------------


def file_request(
    *, by: Any, purpose: str, numbers: str | list[str], basis_name: str, basis_data: bytes
) -> PersonalDataRequest:
    """File a request. Everything is checked before the basis file is stored."""
    if role_of(by) is None:
        raise GrantForbidden(_("只有操作员可以提交个人数据查询申请"))
    purpose = (purpose or "").strip()
    if not purpose:
        raise GrantError(_("请填写查询目的（管理、审计或监督的具体事由）"))
    if len(purpose) > 500:
        raise GrantError(_("查询目的不能超过 500 字"))
    wanted = parse_numbers(numbers)
    if not wanted:
        raise GrantError(_("请填写要查询的人员学工号"))
    if len(wanted) > MAX_PERSONS:
        raise GrantError(_("一次申请最多 %(n)d 人") % {"n": MAX_PERSONS})
    holders = list(Cardholder.objects.filter(number__in=wanted))
    missing = sorted(set(wanted) - {h.number for h in holders})
    if missing:
        raise GrantError(
            _("系统中找不到这些学工号：%(numbers)s")
            % {"numbers": "、".join(missing[:10]) + ("…" if len(missing) > 10 else "")}
        )
    try:
        stored = basis_store.save(basis_name, basis_data)
    except basis_store.BasisFileError as exc:
        raise GrantError(str(exc)) from None
    with transaction.atomic():
        req = PersonalDataRequest.objects.create(
            requester=by,
            purpose=purpose,
            basis_name=stored.name,
            basis_sha256=stored.sha256,
            basis_type=stored.content_type,
            basis_size=stored.size,
        )
        req.cardholders.set(holders)
        _audit(
            by,
            "file",
            req,
            purpose=purpose,
            numbers=sorted(h.number for h in holders),
            basis_file=stored.name,
            basis_sha256=stored.sha256,
        )
    return req


@transaction.atomic
def approve(request_id: int, *, by: Any, comment: str = "") -> PersonalDataRequest:
    req = _locked(request_id)
    _check_leader(by, req)
    if req.status != RequestStatus.FILED:
        raise GrantError(_("只能审批待审批的申请（当前：%(s)s）") % {"s": req.shown_status_label()})
    comment = (comment or "").strip()[:200]
    req.status, req.approver, req.approved_at = RequestStatus.APPROVED, by, timezone.now()
    req.approver_comment = comment
    req.save()
    _audit(by, "approve", req, comment=comment)
    return req


@transaction.atomic
def reject(request_id: int, *, by: Any, comment: str) -> PersonalDataRequest:
    """The leader rejects a filed request; NIC may refuse an approved one at review."""
    comment = (comment or "").strip()[:200]
    req = _locked(request_id)
    if req.status == RequestStatus.FILED:
        _check_leader(by, req)
        stage = "approval"
    elif req.status == RequestStatus.APPROVED:
        _check_reviewer(by, req)
        stage = "review"
    else:
        raise GrantError(_("此申请已处理，不能再驳回（当前：%(s)s）") % {"s": req.shown_status_label()})
    if not comment:
        raise GrantError(_("驳回须填写理由"))
    now = timezone.now()
    if stage == "approval":
        req.approver, req.approved_at, req.approver_comment = by, now, comment
    else:
        req.reviewer, req.reviewed_at, req.reviewer_comment = by, now, comment
    req.status = RequestStatus.REJECTED
    req.save()
    _audit(by, "reject", req, stage=stage, comment=comment)
    return req


@transaction.atomic
def review(request_id: int, *, by: Any, hours: int | str | None = None, comment: str = "") -> PersonalDataRequest:
    """NIC's review of an approved request: opens the grant for ``hours`` (default setting)."""
    req = _locked(request_id)
    _check_reviewer(by, req)
    if req.status == RequestStatus.FILED:
        raise GrantError(_("须先经分管领导审批，网信中心才能复核"))
    if req.status != RequestStatus.APPROVED:
        raise GrantError(_("此申请不在待复核状态（当前：%(s)s）") % {"s": req.shown_status_label()})
    if hours in (None, ""):
        hours = default_hours()
    try:
        hours = int(hours)
    except (TypeError, ValueError):
        raise GrantError(_("授权时长须为整数小时")) from None
    if not 1 <= hours <= MAX_HOURS:
        raise GrantError(_("授权时长须在 1 到 %(max)d 小时之间（最长 7 天）") % {"max": MAX_HOURS})
    now = timezone.now()
    req.status, req.reviewer, req.reviewed_at = RequestStatus.REVIEWED, by, now
    req.reviewer_comment = (comment or "").strip()[:200]
    req.valid_until = now + timedelta(hours=hours)
    req.save()
    _audit(
        by,
        "review",
        req,
        hours=hours,
        valid_until=req.valid_until.isoformat(),
        comment=req.reviewer_comment,
        holders=req.cardholders.count(),
    )
    return req


@transaction.atomic
def revoke(request_id: int, *, by: Any, reason: str) -> PersonalDataRequest:
    """NIC withdraws a request or ends a grant early."""
    req = _locked(request_id)
    if role_of(by) != Role.NIC:
        raise GrantForbidden(_("只有网信中心可以撤销授权"))
    if not can_revoke(by, req):
        raise GrantError(_("此申请已结束，不能撤销（当前：%(s)s）") % {"s": req.shown_status_label()})
    reason = (reason or "").strip()[:200]
    if not reason:
        raise GrantError(_("撤销须填写原因"))
    previous = req.status
    req.status, req.revoked_by, req.revoked_at = RequestStatus.REVOKED, by, timezone.now()
    req.revoke_reason = reason
    req.save()
    _audit(by, "revoke", req, previous=previous, reason=reason)
    return req


def expire_due(now: datetime | None = None) -> int:
    """Mark grants past their end as expired, one audit record each. Only bookkeeping: a grant
    past its end is already refused whether or not this has run."""
    now = now or timezone.now()
    with transaction.atomic():
        due = list(
            PersonalDataRequest.objects.select_for_update(skip_locked=True).filter(
                status=RequestStatus.REVIEWED, valid_until__lte=now
            )
        )
        for req in due:
            assert req.valid_until is not None  # the filter: it ended at or before now
            req.status = RequestStatus.EXPIRED
            req.save(update_fields=["status", "updated_at"])
            _audit(None, "expire", req, valid_until=req.valid_until.isoformat())
    return len(due)


# -- looking at the data -----------------------------------------------------------------------


def _holder_id(cardholder: Cardholder | int | str) -> int | None:
    try:
        return int(cardholder.pk if isinstance(cardholder, Cardholder) else cardholder)
    except (TypeError, ValueError):
        return None


def active_grant(user: Any, cardholder: Cardholder | int) -> PersonalDataRequest | None:
    """The grant under which ``user`` may see ``cardholder`` now, if any: reviewed, before its
    end, filed by this user, and naming this person."""
    holder_id = _holder_id(cardholder)
    if holder_id is None or role_of(user) is None:
        return None
    return (
        PersonalDataRequest.objects.filter(
            requester=user, status=RequestStatus.REVIEWED, valid_until__gt=timezone.now(), cardholders=holder_id
        )
        .order_by("-valid_until")
        .first()
    )


def _refusal(user: Any, holder_id: int | None) -> tuple[str, str, PersonalDataRequest | None]:
    """Why there is no grant — reason code, message, and the request it concerns if any."""
    mine = PersonalDataRequest.objects.none()
    if holder_id is not None and getattr(user, "pk", None):
        mine = PersonalDataRequest.objects.filter(requester=user, cardholders=holder_id)
    latest = mine.order_by("-id").first()
    if latest is not None:
        shown = latest.shown_status()
        if shown == RequestStatus.EXPIRED:
            return "expired", _("您对此人的查询授权已过期；如仍需查看，请重新提交申请。"), latest
        if shown in (RequestStatus.FILED, RequestStatus.APPROVED):
            return "pending", _("您的查询申请尚未完成分管领导审批和网信中心复核，暂不能查看。"), latest
        if shown == RequestStatus.REVOKED:
            return "revoked", _("您对此人的查询授权已被网信中心撤销。"), latest
        if shown == RequestStatus.REJECTED:
            return "rejected", _("您对此人的查询申请未获通过。"), latest
    reason = "no_grant"
    if getattr(user, "pk", None) and active_grants_of(user).exists():
        reason = "not_in_scope"  # a grant exists, but not for this person
    return reason, _("没有有效的查询授权：查看个人数据须先提交书面申请，经分管领导审批、网信中心复核。"), None


def active_grants_of(user: Any) -> QuerySet[PersonalDataRequest]:
    return PersonalDataRequest.objects.filter(
        requester=user, status=RequestStatus.REVIEWED, valid_until__gt=timezone.now()
    )


def _granted(user: Any, holder_id: int | None) -> tuple[PersonalDataRequest, Cardholder] | None:
    """The active grant and the person it covers, or None (call inside the view's transaction)."""
    grant = active_grant(user, holder_id) if holder_id is not None else None
    if grant is None or holder_id is None:
        return None
    holder = Cardholder.objects.select_related("department").filter(pk=holder_id).first()
    return (grant, holder) if holder is not None else None


def _refused(user: Any, holder_id: int | None) -> PersonalDataRefused:
    """Audit a refusal and return the error to raise — raise it after the transaction, so the
    refusal's audit record is committed, not rolled back."""
    reason, message, concerning = _refusal(user, holder_id)
    record(
        actor=user if getattr(user, "pk", None) else None,
        action="personal_data.refused",
        object_type="cardholder",
        object_id=holder_id if holder_id is not None else "?",
        basis=concerning.basis_ref if concerning else "",
        data={"reason": reason, "request": concerning.pk if concerning else None},
    )
    return PersonalDataRefused(message, reason)


def view_personal_data(user: Any, cardholder: Cardholder | int) -> PersonalData:
    """The unmasked data of ``cardholder`` under an active grant (audited as a view), or
    ``PersonalDataRefused`` (audited as a refusal: the refusal is committed, not rolled back)."""
    expire_due()
    holder_id = _holder_id(cardholder)
    with transaction.atomic():
        found = _granted(user, holder_id)
        if found is not None:
            grant, holder = found
            assert grant.valid_until is not None  # an active grant runs until then
            record(
                actor=user,
                action="personal_data.view",
                object_type="cardholder",
                object_id=holder.pk,
                basis=grant.basis_ref,
                data={"request": grant.pk, "number": holder.number, "fields": list(SHOWN_FIELDS)},
            )
            return PersonalData(
                holder_id=holder.pk,
                number=holder.number,
                name=holder.name,
                kind=str(holder.get_kind_display()),
                department=holder.department.name,
                citizen_id=holder.citizen_id,
                phone=holder.phone,
                class_name=holder.class_name,
                title=holder.title,
                request_id=grant.pk,
                valid_until=grant.valid_until,
            )
        refusal = _refused(user, holder_id)
    raise refusal


MONTH_RE = re.compile(r"^(\d{4})-(\d{2})$")


def month_range(month: str | None) -> tuple[str, datetime, datetime]:
    """``YYYY-MM`` (the campus's time zone; empty = this month) → (month, start, end).
    A malformed month is a ``GrantError`` raised before anything is read or audited."""
    local = timezone.localtime()
    text = (month or "").strip() or f"{local.year:04d}-{local.month:02d}"
    match = MONTH_RE.match(text)
    if match is None or not 1 <= int(match.group(2)) <= 12 or int(match.group(1)) < 2000:
        raise GrantError(_("月份格式应为 YYYY-MM，例如 2026-09。"))
    year, mon = int(match.group(1)), int(match.group(2))
    zone = timezone.get_current_timezone()
    start = datetime(year, mon, 1, tzinfo=zone)
    end = datetime(year + (mon == 12), mon % 12 + 1, 1, tzinfo=zone)
    return text, start, end


@dataclass(frozen=True)
class Passages:
    holder_id: int
    number: str
    name: str
    month: str
    rows: list[dict[str, Any]]
    truncated: bool
    request_id: int
    valid_until: datetime

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["valid_until"] = self.valid_until.isoformat()
        out["rows"] = [{**r, "at": r["at"].isoformat()} for r in self.rows]
        return out


def view_passages(user: Any, cardholder: Cardholder | int, month: str | None = None) -> Passages:
    """One person's passages (every tap: where, when, which way, let in or not) for a month,
    under an active grant naming that person (R-SEC-2: where somebody went is personal data as
    much as their phone number). Audited as ``personal_data.passages`` with the month and the
    number of rows; without a grant, ``PersonalDataRefused``, audited like any refusal."""
    month, start, end = month_range(month)
    expire_due()
    holder_id = _holder_id(cardholder)
    with transaction.atomic():
        found = _granted(user, holder_id)
        if found is not None:
            grant, holder = found
            assert grant.valid_until is not None  # an active grant runs until then
            rows, more = registry_selectors.holder_passages(holder.pk, start, end)
            rows = [
                {
                    **r,
                    "direction_label": DIRECTIONS.label(r["direction"]),
                    "decision_label": DECISIONS.label(r["decision"]),
                    "reason_label": REASONS.label(r["reason"]),
                }
                for r in rows
            ]
            record(
                actor=user,
                action="personal_data.passages",
                object_type="cardholder",
                object_id=holder.pk,
                basis=grant.basis_ref,
                data={"request": grant.pk, "number": holder.number, "month": month, "rows": len(rows)},
            )
            return Passages(
                holder_id=holder.pk,
                number=holder.number,
                name=holder.name,
                month=month,
                rows=rows,
                truncated=more,
                request_id=grant.pk,
                valid_until=grant.valid_until,
            )
        refusal = _refused(user, holder_id)
    raise refusal


def open_basis(user: Any, request_id: int) -> tuple[PersonalDataRequest, Any]:
    """The basis file of a request, for those who handle it (audited: it is a personal
    document too). Returns the request and the file's path."""
    req = PersonalDataRequest.objects.filter(pk=request_id).first()
    if req is None or not can_see(user, req):
        raise GrantForbidden(_("无权查看此申请"))
    path = basis_store.path_for(req.basis_sha256, req.basis_type)
    if path is None:
        raise GrantError(_("书面依据文件缺失，请联系网信中心"))
    _audit(user, "basis_view", req, sha256=req.basis_sha256)
    return req, path


# -- what each operator's list shows -----------------------------------------------------------


def requests_of(user: Any) -> QuerySet[PersonalDataRequest]:
    return PersonalDataRequest.objects.filter(requester=user).prefetch_related("cardholders")


def pending_approvals(user: Any) -> list[PersonalDataRequest]:
    if role_of(user) != Role.LEADER:
        return []
    filed = (
        PersonalDataRequest.objects.filter(status=RequestStatus.FILED)
        .exclude(requester=user)
        .select_related("requester__operator")
        .prefetch_related("cardholders")
        .order_by("id")
    )
    return [r for r in filed if leader_covers(user, r)]


def pending_reviews(user: Any) -> QuerySet[PersonalDataRequest]:
    if role_of(user) != Role.NIC:
        return PersonalDataRequest.objects.none()
    return (
        PersonalDataRequest.objects.filter(status=RequestStatus.APPROVED)
        .exclude(requester=user)
        .select_related("requester", "approver")
        .prefetch_related("cardholders")
        .order_by("id")
    )


def active_grants(user: Any) -> QuerySet[PersonalDataRequest]:
    """Every grant in force, for NIC (who may revoke them)."""
    if role_of(user) != Role.NIC:
        return PersonalDataRequest.objects.none()
    return (
        PersonalDataRequest.objects.filter(Q(status=RequestStatus.REVIEWED) & Q(valid_until__gt=timezone.now()))
        .select_related("requester")
        .prefetch_related("cardholders")
        .order_by("valid_until")
    )
