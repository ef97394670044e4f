"""Card lifecycle services — every rule of the regulation's chapters 3–4 and Art. 13.

Each function is the one way to do its action: keyword-only arguments, one transaction, a
status-history row, an audit record, and an outbox message (a credential change for the
readers and a card action for the live feed) written in the same transaction. A broken rule
raises :class:`CardRuleError` with a message for the operator, and nothing is changed.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import Max, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from ops.accounts.permissions import role_of
from ops.accounts.roles import Role
from ops.audit import services as audit
from ops.masking import mask_name
from ops.registry import citizen_id
from ops.registry.choices import LIVE_CARD_STATUSES, HolderKind, HolderStatus
from ops.registry.lifecycle import photo_store, photos
from ops.registry.lifecycle.choices import REPLACEMENT_REASONS, Action, ChargeStatus, FeeKind
from ops.registry.lifecycle.errors import CardRuleError
from ops.registry.lifecycle.list_rights import list_may_act
from ops.registry.lifecycle.models import AccessGrant, CardAction, FeeCharge, FeePolicy
from ops.registry.lifecycle.outbox import announce
from ops.registry.lifecycle.reconciliation import checked_channel, checked_reference, ensure_open, own_reference
from ops.registry.models import Building, Card, Cardholder, Department, Device
from ops.spreadsheet import FORMULA_STARTS
from readers.decide import ALLOWED_TYPES
from streams.cards import CardStatus, CardType, DeviceKind

UID_RE = re.compile(r"^[0-9A-F]{8,20}$")
CARD_TYPE_FOR_KIND = {HolderKind.STUDENT: CardType.STUDENT, HolderKind.STAFF: CardType.STAFF}


# -- helpers -------------------------------------------------------------------------------------
def normalise_uid(uid: str) -> str:
    value = uid.strip().replace(" ", "").replace(":", "").upper()
    if not UID_RE.match(value):
        raise CardRuleError(_("卡号（UID）格式不正确：应为 8–20 位十六进制数字，读到的是“%(uid)s”") % {"uid": uid})
    return value


def _end_of_day(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time(23, 59, 59)))


def _require_basis(basis: str) -> str:
    basis = (basis or "").strip()
    if not basis:
        raise CardRuleError(_("必须填写办理依据（申请表编号、函件编号或名单）"))
    return basis


def _may_manage(operator: Any, card_type: str, owner: Department | None, by_list: str | None = None) -> None:
    """NIC runs every card; a temporary card is also managed by the department that approved
    it — "谁审批，谁管理，谁负责" (R-CARD-7). Nobody else changes cards (R-SEC-3) — except as
    the apply of a list the operator may import (``by_list``, issue 18 Build 7): Academic
    Affairs' withdrawals cancel (R-END-3) and its deferred-graduation list extends (R-CARD-6)."""
    if getattr(operator, "is_superuser", False):
        return
    if by_list is not None:
        if list_may_act(operator, by_list, card_type):
            return
    role = role_of(operator)
    if role == Role.NIC:
        return
    operator_dept = getattr(getattr(operator, "operator", None), "department_id", None)
    if card_type == CardType.TEMPORARY and owner is not None and operator_dept == owner.id:
        return
    raise CardRuleError(_("您没有办理此卡务的权限：校园卡由网信中心办理，临时卡也可由其审批部门办理"))


def may_manage(operator: Any, card: Card) -> bool:
    """Whether ``operator`` may act on ``card`` at all (the forms are not offered otherwise)."""
    try:
        _may_manage(operator, card.card_type, card.owner_department)
    except CardRuleError:
        return False
    return True


def may_issue(operator: Any) -> bool:
    """Whether ``operator`` may issue cards at all (the issuance form is not offered otherwise):
    NIC issues every card; an operator of a department issues the temporary cards it approves
    (R-CARD-7). Which card, for whom, is checked again by ``issue_card``."""
    if getattr(operator, "is_superuser", False) or role_of(operator) == Role.NIC:
        return True
    return getattr(getattr(operator, "operator", None), "department_id", None) is not None


# -- what a card's state allows (issue 19, item 7) -------------------------------------------------
# The one table of the card's state transitions: each action's rule answers why the card, as it
# stands (status, blacklist flag, type), refuses it — or None. Every service checks its action
# here under the card's row lock, and the desk offers only the actions whose rule passes.
def _status_of(card: Card) -> dict[str, Any]:
    return {"status": card.get_status_display()}


def _lose_rule(card: Card) -> str | None:
    if card.status != CardStatus.ACTIVE:
        return _("只有正常状态的卡可以挂失（此卡当前为“%(status)s”）") % _status_of(card)
    return None


def _find_rule(card: Card) -> str | None:
    if card.status != CardStatus.LOST:
        return _("只有已挂失的卡可以解挂（此卡当前为“%(status)s”）") % _status_of(card)
    return None


def _blacklist_rule(card: Card) -> str | None:
    return _("此卡已在黑名单中") if card.blacklisted else None


def _unblacklist_rule(card: Card) -> str | None:
    return None if card.blacklisted else _("此卡不在黑名单中")


def _cancel_rule(card: Card) -> str | None:
    if card.status not in LIVE_CARD_STATUSES:
        return _("此卡已“%(status)s”，无需注销") % _status_of(card)
    return None


def _extend_rule(card: Card) -> str | None:
    if card.status not in LIVE_CARD_STATUSES:
        return _("此卡已“%(status)s”，不能延期") % _status_of(card)
    if card.card_type == CardType.STAFF:
        return _("教工卡长期有效，无需延期")
    return None


def _replace_rule(card: Card) -> str | None:
    if card.status not in LIVE_CARD_STATUSES:
        return _("此卡已“%(status)s”，不能再补卡；请为持卡人办理新卡") % _status_of(card)
    return None


def _grant_rule(card: Card) -> str | None:
    if card.card_type != CardType.TEMPORARY:
        return _("只有临时卡需要单独授权：学生卡和教工卡按卡类和住宿楼宇通行")
    if card.status != CardStatus.ACTIVE or card.blacklisted:
        return _("此卡当前为“%(status)s”，不能授权") % _status_of(card)
    return None


def _revoke_grant_rule(card: Card) -> str | None:
    in_force = AccessGrant.objects.filter(card=card, revoked_at__isnull=True)
    if card.card_type != CardType.TEMPORARY or not in_force.exists():
        return _("此卡没有可撤销的授权")
    return None


STATE_RULES: dict[str, Callable[[Card], str | None]] = {
    Action.LOSE: _lose_rule,
    Action.FIND: _find_rule,
    Action.BLACKLIST: _blacklist_rule,
    Action.UNBLACKLIST: _unblacklist_rule,
    Action.CANCEL: _cancel_rule,
    Action.EXTEND: _extend_rule,
    Action.REPLACE: _replace_rule,
    Action.GRANT: _grant_rule,
    Action.REVOKE_GRANT: _revoke_grant_rule,
}


def state_refusal(card: Card, action: str) -> str | None:
    """Why ``card`` in its current state refuses ``action`` (a message for the operator), or None
    if the action is open to it. An action without a state rule is never open."""
    rule = STATE_RULES.get(action)
    if rule is None:
        return _("未知的卡务：%(action)s") % {"action": action}
    return rule(card)


def actions_allowed(card: Card) -> list[str]:
    """The actions ``card``'s state allows, in the table's order (what the desk offers)."""
    return [action for action, rule in STATE_RULES.items() if rule(card) is None]


def _check_state(card: Card, action: str) -> None:
    refusal = state_refusal(card, action)
    if refusal is not None:
        raise CardRuleError(refusal)


# -- approval (R-CARD-9: 谁审批，谁负责; R-CARD-7: 谁审批，谁管理) --------------------------------
Approval = tuple[Any | None, Department | None]
"""Who approved a step: (an operator on record or None, a department on record or None)."""


def _operator_on_record(user: Any) -> Any:
    """``user`` if it is an active operator account on record; a clear refusal otherwise."""
    if user is None:
        return None
    pk = getattr(user, "pk", None)
    on_record = (
        pk is not None
        and get_user_model()
        .objects.filter(pk=pk, is_active=True)
        .filter(Q(operator__isnull=False) | Q(is_superuser=True))
        .exists()
    )
    if not on_record:
        name = user.get_username() if hasattr(user, "get_username") else str(user)
        raise CardRuleError(_("审批人“%(name)s”不是在册的有效操作员") % {"name": name})
    return user


def _department_on_record(department: Any) -> Department | None:
    if department is None:
        return None
    if not (isinstance(department, Department) and Department.objects.filter(pk=department.pk).exists()):
        raise CardRuleError(_("审批部门“%(name)s”不是在册的部门") % {"name": department})
    return department


def department_on_record(code: str) -> Department:
    """The department with this code (what the API and the CLI are given), or a clear refusal."""
    department = Department.objects.filter(code=(code or "").strip()).first()
    if department is None:
        raise CardRuleError(_("没有代码为“%(code)s”的部门") % {"code": code})
    return department


def approver_on_record(reference: str) -> Approval:
    """The approver an API client or the CLI names (R-CARD-9): an operator's username or a
    department's code, on record — never a free-text name. Raises :class:`CardRuleError`."""
    reference = (reference or "").strip()
    if not reference:
        raise CardRuleError(_("必须指定审批人（在册操作员）或审批部门（谁审批，谁负责）"))
    department = Department.objects.filter(code=reference).first()
    user = get_user_model().objects.filter(username=reference, is_active=True).first()
    if department is not None and user is not None:
        raise CardRuleError(
            _("“%(ref)s”既是操作员用户名又是部门代码，无法确定审批人；请在管理后台选择") % {"ref": reference}
        )
    if department is not None:
        return None, department
    if user is not None:
        return _operator_on_record(user), None
    raise CardRuleError(
        _("“%(ref)s”不是在册的操作员用户名或部门代码：审批人须为在册的操作员或部门（谁审批，谁负责）")
        % {"ref": reference}
    )


def _issue_approval(
    card_type: str, approved_by_operator: Any, approving_department: Any, owner_department: Any
) -> tuple[Any | None, Department | None, Department | None]:
    """(approving operator, approving department, owner department) of an issuance, checked: at
    least one approver on record (R-CARD-9); a temporary card is approved by the department that
    then owns it, and an operator named as its approver belongs to that department (R-CARD-7)."""
    approved_by_operator = _operator_on_record(approved_by_operator)
    approving_department = _department_on_record(approving_department)
    owner_department = _department_on_record(owner_department)
    if card_type != CardType.TEMPORARY:
        owner_department = None
    else:
        if (
            owner_department is not None
            and approving_department is not None
            and owner_department != approving_department
        ):
            raise CardRuleError(
                _("临时卡谁审批，谁管理：审批部门“%(approving)s”与管理部门“%(owner)s”必须是同一部门")
                % {"approving": approving_department, "owner": owner_department}
            )
        owner_department = approving_department = owner_department or approving_department
        if owner_department is None:
            raise CardRuleError(_("临时卡必须由管理部门审批并盖章，请选择审批（管理）部门"))
        approver_dept = getattr(getattr(approved_by_operator, "operator", None), "department_id", None)
        if approved_by_operator is not None and approver_dept != owner_department.pk:
            raise CardRuleError(
                _("临时卡由管理部门审批：审批人“%(name)s”不属于管理部门“%(department)s”")
                % {"name": approved_by_operator.get_username(), "department": owner_department}
            )
    if approved_by_operator is None and approving_department is None:
        raise CardRuleError(_("必须指定审批人（在册操作员）或审批部门（谁审批，谁负责）"))
    return approved_by_operator, approving_department, owner_department


def _approval_data(approval: Approval | None) -> dict[str, Any]:
    """The approver as the audit record carries it: the username and the department code."""
    if approval is None:
        return {}
    user, department = approval
    return {
        "approved_by_operator": user.get_username() if user is not None else None,
        "approving_department": department.code if department is not None else None,
    }


def _ensure_uid_free(uid: str) -> None:
    other = Card.objects.select_related("holder").filter(uid=uid).first()
    if other is not None:
        raise CardRuleError(
            _("该卡（UID %(uid)s）已绑定给 %(number)s %(name)s，不能重复绑定")
            % {"uid": uid, "number": other.holder.number, "name": mask_name(other.holder.name)}
        )


def _live_card(holder: Cardholder) -> Card | None:
    return holder.cards.filter(status__in=LIVE_CARD_STATUSES).first()


def _log(
    card: Card,
    action: str,
    from_status: str,
    operator: Any,
    basis: str,
    data: dict[str, Any] | None = None,
    *,
    live: bool = True,
    approval: Approval | None = None,
) -> None:
    """The status history row and the audit record of one step; ``approval``: who approved it
    (R-CARD-9), kept on both."""
    approver, approving_department = approval or (None, None)
    CardAction.objects.create(
        card=card,
        holder=card.holder,
        action=action,
        from_status=from_status,
        to_status=card.status,
        operator=operator if getattr(operator, "pk", None) else None,
        basis=basis,
        approved_by_operator=approver,
        approving_department=approving_department,
    )
    audit.record(
        actor=operator,
        action=f"card.{action}",
        object_type="card",
        object_id=card.uid,
        basis=basis,
        data={
            "holder": card.holder.number,
            "from": from_status,
            "to": card.status,
            **_approval_data(approval),
            **(data or {}),
        },
    )
    announce(card, action, operator, live=live)


def _lock(card: Card) -> Card:
    """Re-read the card under a row lock: two desks acting on one card act one after another."""
    return (
        Card.objects.select_for_update(of=("self",)).select_related("holder", "holder__dorm_building").get(pk=card.pk)
    )


# -- issuance ------------------------------------------------------------------------------------
@transaction.atomic
def issue_card(
    *,
    holder: Cardholder,
    uid: str,
    operator: Any,
    basis: str,
    approved_by_operator: Any = None,
    approving_department: Department | None = None,
    card_type: str | None = None,
    valid_until: datetime | None = None,
    owner_department: Department | None = None,
) -> Card:
    """Bind a new card to a holder (R-CARD-4/5/7/9). The first card of every type is free
    (R-FEE-1); a person has at most one live card (R-CARD-3).

    Who approved it is on record (R-CARD-9): ``approved_by_operator`` (an operator account)
    and/or ``approving_department``, at least one, besides the ``basis``. A temporary card's
    approving department is its owner (R-CARD-7): give either ``owner_department`` or
    ``approving_department`` (or both, the same)."""
    uid = normalise_uid(uid)
    basis = _require_basis(basis)
    card_type = card_type or CARD_TYPE_FOR_KIND.get(HolderKind(holder.kind), CardType.TEMPORARY)
    if card_type == CardType.STUDENT and holder.kind != HolderKind.STUDENT:
        raise CardRuleError(_("学生卡只能发给学生"))
    if card_type == CardType.STAFF and holder.kind != HolderKind.STAFF:
        raise CardRuleError(_("教工卡只能发给教职工"))
    approved_by_operator, approving_department, owner_department = _issue_approval(
        card_type, approved_by_operator, approving_department, owner_department
    )
    now = timezone.now()
    if card_type == CardType.TEMPORARY:
        if valid_until is None:
            raise CardRuleError(_("临时卡必须填写约定的有效期"))
    elif card_type == CardType.STUDENT and valid_until is None and holder.study_end:
        valid_until = _end_of_day(holder.study_end)  # R-END-3: ends with study
    if valid_until is not None and valid_until <= now:
        raise CardRuleError(_("有效期必须晚于当前时间"))
    _may_manage(operator, card_type, owner_department)
    Cardholder.objects.select_for_update().get(pk=holder.pk)  # one issuance per person at a time
    if holder.status != HolderStatus.ACTIVE:
        raise CardRuleError(
            _("%(number)s 的状态为“%(status)s”，不能发卡")
            % {"number": holder.number, "status": holder.get_status_display()}
        )
    existing = _live_card(holder)
    if existing is not None:
        raise CardRuleError(
            _("%(number)s 已有一张可用的卡（UID %(uid)s）。一人一卡：遗失或损坏请办理补卡")
            % {"number": holder.number, "uid": existing.uid}
        )
    _ensure_uid_free(uid)
    previous = holder.cards.filter(card_type=card_type).aggregate(m=Max("issue_no"))["m"] or 0
    try:
        card = Card.objects.create(
            uid=uid,
            holder=holder,
            card_type=card_type,
            status=CardStatus.ACTIVE,
            issue_no=previous + 1,
            valid_from=now,
            valid_until=valid_until,
            approved_by_operator=approved_by_operator,
            approving_department=approving_department,
            basis=basis,
            owner_department=owner_department,
        )
    except IntegrityError as exc:  # a concurrent desk bound the same UID or person first
        raise CardRuleError(_("发卡冲突：该卡或该持卡人刚刚在另一处办理，请刷新后重试")) from exc
    _log(card, Action.ISSUE, "", operator, basis, approval=(approved_by_operator, approving_department))
    return card


# -- loss and found (R-USE-1) ----------------------------------------------------------------------
@transaction.atomic
def report_loss(*, card: Card, operator: Any, basis: str) -> Card:
    """挂失: the card stops working everywhere at once (the credential change goes out now)."""
    return _flip(
        card,
        operator=operator,
        basis=basis,
        old=CardStatus.ACTIVE,
        new=CardStatus.LOST,
        action=Action.LOSE,
    )


@transaction.atomic
def report_own_loss(*, card: Card, holder: Cardholder, actor: Any, basis: str) -> Card:
    """挂失 by the cardholder themself (issue 18, Build 6; R-USE-1): the same step as the desk's
    — the credential change goes out now — but only on the holder's own card, and on record as
    the holder's act (``actor``: :class:`ops.selfservice.services.HolderActor`, no operator)."""
    card = _lock(card)
    if card.holder_id != holder.pk:
        raise CardRuleError(_("只能挂失本人的卡"))
    _check_state(card, Action.LOSE)
    card.status = CardStatus.LOST
    card.save(update_fields=["status", "updated_at"])
    _log(card, Action.LOSE, CardStatus.ACTIVE, actor, _require_basis(basis), {"self_service": True})
    return card


@transaction.atomic
def report_found(*, card: Card, operator: Any, basis: str) -> Card:
    """解挂: a lost card that turned up works again (unless it was replaced meanwhile)."""
    return _flip(
        card,
        operator=operator,
        basis=basis,
        old=CardStatus.LOST,
        new=CardStatus.ACTIVE,
        action=Action.FIND,
    )


def _flip(card: Card, *, operator: Any, basis: str, old: CardStatus, new: CardStatus, action: Action) -> Card:
    """Move a card from ``old`` to ``new`` status (inside the caller's transaction); whether its
    state allows it is the action's rule in ``STATE_RULES``."""
    card = _lock(card)
    basis = _require_basis(basis)
    _may_manage(operator, card.card_type, card.owner_department)
    _check_state(card, action)
    card.status = new
    card.save(update_fields=["status", "updated_at"])
    _log(card, action, old, operator, basis)
    return card


# -- replacement and re-issue (R-USE-2, R-USE-3, R-FEE-2) -------------------------------------------
IDENTITY_FIELDS = ("name", "citizen_id", "department", "class_name", "title")


def replacement_reason(reason: str) -> FeeKind:
    """The fee kind of a replacement's ``reason`` (the desk, the API and the CLI), or a refusal."""
    if reason not in REPLACEMENT_REASONS:
        raise CardRuleError(
            _("补卡原因应为：%(choices)s") % {"choices": "、".join(str(FeeKind(k).label) for k in REPLACEMENT_REASONS)}
        )
    return FeeKind(reason)


@transaction.atomic
def replace_card(
    *,
    card: Card,
    new_uid: str,
    operator: Any,
    reason: str,
    basis: str,
    window: str = "",
    fee: Decimal | None = None,
    identity_changes: Mapping[str, Any] | None = None,
    channel: str = "",
    reference: str = "",
) -> Card:
    """补卡 / 换卡: the old card is dead forever, the new one gets the next issue number, the
    fee is charged to the holder (non-refundable, never above the configured cap).

    The replacement is its own issuance with its own approval (R-CARD-9, R-USE-2): approved by
    the operator who performs it — on record, and allowed to manage the card — on ``basis``;
    a temporary card's replacement also by its owner department (R-CARD-7). The original
    card's approver is not copied."""
    card = _lock(card)
    basis = _require_basis(basis)
    new_uid = normalise_uid(new_uid)
    kind = replacement_reason(reason)
    _may_manage(operator, card.card_type, card.owner_department)
    approval: Approval = (
        _operator_on_record(operator),
        card.owner_department if card.card_type == CardType.TEMPORARY else None,
    )
    _check_state(card, Action.REPLACE)
    policy = FeePolicy.current()
    window = checked_window(window)
    # R-FEE-3 (issue 18, Build 3): the payment's channel and reference; a closed day is locked
    channel, reference = checked_channel(channel), checked_reference(reference)
    ensure_open(timezone.now(), window)
    amount = policy.replacement_fee if fee is None else Decimal(fee)
    if amount < 0:
        raise CardRuleError(_("收费金额不能为负数"))
    if amount > policy.cap:
        raise CardRuleError(_("收费 %(fee)s 元超过物价部门核定的上限 %(cap)s 元") % {"fee": amount, "cap": policy.cap})
    if kind == FeeKind.IDENTITY_CHANGE and not identity_changes:
        raise CardRuleError(_("信息变更换卡须填写变更后的身份信息"))
    _ensure_uid_free(new_uid)
    holder = card.holder
    if identity_changes:
        _apply_identity_changes(holder, identity_changes)
    old_status = card.status
    card.status = CardStatus.REPLACED
    card.save(update_fields=["status", "updated_at"])
    _log(card, Action.REPLACE, old_status, operator, basis, {"new_uid": new_uid}, live=False, approval=approval)
    new = Card.objects.create(
        uid=new_uid,
        holder=holder,
        card_type=card.card_type,
        status=CardStatus.ACTIVE,
        blacklisted=card.blacklisted,
        issue_no=card.issue_no + 1,
        valid_from=timezone.now(),
        valid_until=card.valid_until,
        approved_by_operator=approval[0],
        approving_department=approval[1],
        basis=basis,
        owner_department=card.owner_department,
        replaces=card,
    )
    charge = FeeCharge.objects.create(  # paid at the window as the card is made (R-FEE-2)
        channel=channel,
        reference=reference,
        holder=holder,
        card=new,
        kind=kind,
        amount=amount,
        operator=operator if getattr(operator, "pk", None) else None,
        window=window,
        status=ChargeStatus.PAID,
        paid_at=timezone.now(),
        settled_by=operator if getattr(operator, "pk", None) else None,
    )
    if not reference:
        charge.reference = own_reference(charge)
        charge.save(update_fields=["reference"])
    action = Action.REISSUE if kind == FeeKind.IDENTITY_CHANGE else Action.REPLACE
    _log(
        new,
        action,
        "",
        operator,
        basis,
        {"old_uid": card.uid, "fee": str(amount), "window": window, "channel": channel, "reference": charge.reference},
        approval=approval,
    )
    return new


def _apply_identity_changes(holder: Cardholder, changes: Mapping[str, Any]) -> None:
    unknown = set(changes) - set(IDENTITY_FIELDS)
    if unknown:
        raise CardRuleError(_("不能变更这些字段：%(fields)s") % {"fields": ", ".join(sorted(unknown))})
    if "citizen_id" in changes and (reason := citizen_id.problem(str(changes["citizen_id"]))):
        raise CardRuleError(reason)
    for name, value in changes.items():
        setattr(holder, name, value)
    holder.save()


# -- a holder's record (the admin's form) -------------------------------------------------------
# What a reader decides from, of the holder's record: a change to it must reach every door
READER_FIELDS = ("dorm_building",)


@transaction.atomic
def save_holder(*, holder: Cardholder, changed: Iterable[str], operator: Any, basis: str = "admin") -> Cardholder:
    """Save a holder's record edited in the admin (issue 13, defect 4): a change a reader decides
    from (its dorm building, R-USE-*) goes out to every door as a credential change for each of
    the holder's live cards, in the same transaction; the change is audited. The holder's
    status and kind are not edited here: they change with the card services (the July run,
    departures), which cancel the cards with them."""
    changed = set(changed)
    holder.save()
    if changed & set(READER_FIELDS):
        cards = list(
            Card.objects.select_related("holder", "holder__dorm_building").filter(
                holder=holder, status__in=LIVE_CARD_STATUSES
            )
        )
        for card in cards:
            announce(card, "holder_change", operator, live=False)
        building = holder.dorm_building
        audit.record(
            actor=operator,
            action="holder.dorm_change",
            object_type="cardholder",
            object_id=holder.number,
            basis=basis,
            data={"dorm_building": building.code if building else None, "cards": [c.uid for c in cards]},
        )
    return holder


# -- a holder's photo (R-CARD-8; issue 19, item 8; issue 18, Build 7) -----------------------------
PHOTO_SOURCES = ("upload", "camera")


def may_change_photo(operator: Any) -> bool:
    """Who may set a holder's photo: whoever may edit the holder's record (NIC's desk)."""
    return bool(getattr(operator, "is_active", False) and operator.has_perm("campus.change_cardholder"))


def set_holder_photo(*, holder: Cardholder, data: bytes, operator: Any, source: str = "upload") -> Cardholder:
    """A photo taken at the desk (a file, or a frame from its webcam: ``source``) becomes the
    holder's photo — if it meets the photo standard (R-CARD-8, the check the list imports use);
    otherwise :class:`CardRuleError` with every reason, and nothing is changed.

    The file is stored first (content-addressed, written atomically), then the holder's digest
    and the audit record in one transaction: the digest never names a file that is not there,
    and a file this call stored for nothing is removed again."""
    if not may_change_photo(operator):
        raise CardRuleError(_("您没有更改持卡人照片的权限"))
    if source not in PHOTO_SOURCES:
        raise CardRuleError(_("照片来源不正确"))
    if not data:
        raise CardRuleError(_("请选择照片文件，或用摄像头拍照"))
    if len(data) > photos.MAX_PHOTO_BYTES:
        raise CardRuleError(_("照片文件过大（超过 %(mb)d MB）") % {"mb": photos.MAX_PHOTO_BYTES // (1024 * 1024)})
    problems = photos.check_photo(data)
    if problems:
        raise CardRuleError([_("照片不符合标准，未保存：") + p.message for p in problems])
    sha = hashlib.sha256(data).hexdigest()
    stored_before = photo_store.path_for(sha) is not None
    photo_store.save(data)
    try:
        with transaction.atomic():
            locked = Cardholder.objects.select_for_update().get(pk=holder.pk)
            previous = locked.photo_sha256
            locked.photo_sha256 = sha
            locked.save(update_fields=["photo_sha256", "updated_at"])
            audit.record(
                actor=operator,
                action="holder.photo",
                object_type="cardholder",
                object_id=locked.number,
                basis=source,
                data={"sha256": sha, "previous": previous or None, "source": source, "bytes": len(data)},
            )
    except BaseException:
        if not stored_before:
            photo_store.discard(sha)
        raise
    holder.photo_sha256 = sha
    return locked


# -- charges (R-FEE-2, R-FEE-3, R-DEV-3) ------------------------------------------------------------
def may_settle(operator: Any) -> bool:
    """Finance takes payments and decides waivers; NIC too (it opens the damage charges)."""
    return getattr(operator, "is_superuser", False) or role_of(operator) in (Role.FINANCE, Role.NIC)


def checked_window(window: str) -> str:
    """A fee window's name as typed at a desk (一号窗口, API): text, never a formula — the
    ledger's CSV/XLSX go to Finance's desk (issue 20, item 3; the exports neutralise it too)."""
    window = window.strip()
    if window.startswith(FORMULA_STARTS):
        raise CardRuleError(_("收费窗口名称不能以 =、+、-、@ 开头"))
    return window


@transaction.atomic
def settle_charge(
    *,
    charge: FeeCharge,
    to: str,
    operator: Any,
    window: str = "",
    reason: str = "",
    channel: str = "",
    reference: str = "",
) -> FeeCharge:
    """An owed charge is paid (at ``window``), waived or voided (with ``reason``) — once; a paid
    charge is never refunded (R-FEE-2). Audited. Issue 13, defect 6: the ledger counts the
    payment on the day it is made, not the day the repair ticket opened."""
    if not may_settle(operator):
        raise CardRuleError(_("只有计划财务处或网信中心可以登记缴费、减免或作废收费"))
    charge = FeeCharge.objects.select_for_update().get(pk=charge.pk)
    if charge.status != ChargeStatus.OWED:
        raise CardRuleError(
            _("这笔收费已“%(status)s”，不能再更改（已缴费用不退）") % {"status": charge.get_status_display()}
        )
    window = checked_window(window)
    target = ChargeStatus(to)
    if target == ChargeStatus.OWED:
        raise CardRuleError(_("请选择：已缴、减免或作废"))
    reason = reason.strip()
    if target in (ChargeStatus.WAIVED, ChargeStatus.VOID) and not reason:
        raise CardRuleError(_("减免或作废须写明理由"))
    charge.status, charge.settled_by, charge.settled_reason = target, operator, reason[:200]
    if target == ChargeStatus.PAID:
        charge.paid_at, charge.window = timezone.now(), (window.strip() or charge.window)[:40]
        # R-FEE-3 (issue 18, Build 3): channel and reference; a closed day takes no payment
        charge.channel, charge.reference = checked_channel(channel), checked_reference(reference)
        ensure_open(charge.paid_at, charge.window)
        charge.reference = charge.reference or own_reference(charge)
    charge.save(update_fields=["status", "settled_by", "settled_reason", "paid_at", "window", "channel", "reference"])
    audit.record(
        actor=operator,
        action=f"fee.{target.value}",
        object_type="fee_charge",
        object_id=charge.pk,
        basis=reason,
        data={
            "amount": str(charge.amount),
            "kind": charge.kind,
            "holder": charge.holder.number,
            "window": charge.window,
            "channel": charge.channel,
            "reference": charge.reference,
        },
    )
    return charge


# -- blacklist ---------------------------------------------------------------------------------------
@transaction.atomic
def set_blacklist(*, card: Card, blacklisted: bool, operator: Any, basis: str) -> Card:
    card = _lock(card)
    basis = _require_basis(basis)
    _may_manage(operator, card.card_type, card.owner_department)
    _check_state(card, Action.BLACKLIST if blacklisted else Action.UNBLACKLIST)
    card.blacklisted = blacklisted
    card.save(update_fields=["blacklisted", "updated_at"])
    _log(card, Action.BLACKLIST if blacklisted else Action.UNBLACKLIST, card.status, operator, basis)
    return card


# -- validity (R-CARD-6, R-CARD-7, R-END-*) ------------------------------------------------------------
@transaction.atomic
def extend_validity(
    *,
    card: Card,
    new_until: datetime,
    operator: Any,
    basis: str,
    approving_department: Department | None = None,
    by_list: str | None = None,
) -> Card:
    """延期: temporary cards only with the unit's letter and the new end date (R-CARD-7):
    ``approving_department`` is the card's owner department and ``basis`` its letter's
    reference, both recorded with the step; students on the deferred-graduation list
    (R-CARD-6). Staff cards are long-term."""
    card = _lock(card)
    basis = _require_basis(basis)
    _may_manage(operator, card.card_type, card.owner_department, by_list)
    _check_state(card, Action.EXTEND)
    approving_department = _department_on_record(approving_department)
    if card.card_type == CardType.TEMPORARY:
        if approving_department is None:
            raise CardRuleError(
                _("临时卡延期须凭管理部门“%(owner)s”的函件：请选择审批部门并填写函件编号")
                % {"owner": card.owner_department}
            )
        if approving_department.pk != card.owner_department_id:
            raise CardRuleError(
                _("临时卡延期须由其管理部门“%(owner)s”审批，“%(department)s”不能审批")
                % {"owner": card.owner_department, "department": approving_department}
            )
    if new_until <= timezone.now() or (card.valid_until and new_until <= card.valid_until):
        raise CardRuleError(_("新的有效期必须晚于当前有效期"))
    old = card.valid_until
    card.valid_until = new_until
    card.save(update_fields=["valid_until", "updated_at"])
    if card.card_type == CardType.STUDENT:
        card.holder.study_end = timezone.localtime(new_until).date()
        card.holder.save(update_fields=["study_end", "updated_at"])
    _log(
        card,
        Action.EXTEND,
        card.status,
        operator,
        basis,
        {"from": old.isoformat() if old else None, "to": new_until.isoformat()},
        approval=(None, approving_department) if approving_department is not None else None,
    )
    return card


@transaction.atomic
def cancel_card(
    *, card: Card, operator: Any, basis: str, holder_status: str | None = None, by_list: str | None = None
) -> Card:
    """注销: the card is dead forever. ``holder_status`` records why the person left
    (withdrawal cancels at once, R-END-3). Retired staff keep their card (R-END-2). ``by_list``:
    the kind of list whose apply this is (a leavers' list, issue 18 Build 7)."""
    card = _lock(card)
    basis = _require_basis(basis)
    _may_manage(operator, card.card_type, card.owner_department, by_list)
    _check_state(card, Action.CANCEL)
    if holder_status == HolderStatus.RETIRED:
        raise CardRuleError(_("退休教职工继续使用校园卡，不注销（第十三条）"))
    old = card.status
    card.status = CardStatus.CANCELLED
    card.save(update_fields=["status", "updated_at"])
    if holder_status:
        card.holder.status = HolderStatus(holder_status)
        card.holder.save(update_fields=["status", "updated_at"])
    _log(card, Action.CANCEL, old, operator, basis, {"holder_status": holder_status})
    return card


# -- grants (R-CARD-7: "no library, no dorms unless the policy grants it") -------------------------
MAX_GRANTS = 32  # grants in force per card: the credential contract's bound


@transaction.atomic
def grant_access(
    *,
    card: Card,
    place: Building | Device,
    until: datetime,
    operator: Any,
    basis: str,
    approving_department: Department | None = None,
) -> AccessGrant:
    """A temporary card may open one dorm building (every door of it) or one door its type may
    not, until ``until`` — granted by the department that manages the card ("谁审批，谁管理，谁负
    责"), on a basis (its letter), within the card's validity. The readers get it with the card."""
    card = _lock(card)
    basis = _require_basis(basis)
    if card.card_type != CardType.TEMPORARY:  # before the right to manage it: the same answer to all
        _check_state(card, Action.GRANT)
    _may_manage(operator, card.card_type, card.owner_department)
    _check_state(card, Action.GRANT)
    department = _department_on_record(approving_department) or card.owner_department
    if department is None or department.pk != card.owner_department_id:
        raise CardRuleError(_("临时卡的通行授权须由其管理部门“%(owner)s”审批") % {"owner": card.owner_department})
    if isinstance(place, Device):
        if CardType.TEMPORARY in ALLOWED_TYPES[DeviceKind(place.kind)]:
            raise CardRuleError(
                _("临时卡本就可以使用“%(device)s”，无需授权") % {"device": f"{place.code} {place.name}"}
            )
        building, device = None, place
    elif isinstance(place, Building):
        building, device = place, None
    else:
        raise CardRuleError(_("请选择授权的楼宇或设备"))
    if until <= timezone.now():
        raise CardRuleError(_("授权截止时间必须晚于当前时间"))
    if card.valid_until is not None and until > card.valid_until:
        raise CardRuleError(
            _("授权截止时间不能晚于卡的有效期（%(until)s）")
            % {"until": f"{timezone.localtime(card.valid_until):%Y-%m-%d %H:%M}"}
        )
    in_force = AccessGrant.objects.filter(card=card, revoked_at__isnull=True, valid_until__gt=timezone.now())
    if in_force.count() >= MAX_GRANTS:
        raise CardRuleError(_("此卡的有效授权已达 %(n)s 项，请先撤销不再需要的授权") % {"n": MAX_GRANTS})
    grant = AccessGrant.objects.create(
        card=card,
        building=building,
        device=device,
        valid_until=until,
        approving_department=department,
        basis=basis,
        granted_by=operator if getattr(operator, "pk", None) else None,
    )
    _log(
        card,
        Action.GRANT,
        card.status,
        operator,
        basis,
        {"grant": grant.pk, "place": grant.place_code, "until": until.isoformat()},
        approval=(None, department),
    )
    return grant


@transaction.atomic
def revoke_grant(*, grant: AccessGrant, operator: Any, basis: str) -> AccessGrant:
    """End a grant now (the readers refuse the card there from the next change on)."""
    card = _lock(grant.card)
    basis = _require_basis(basis)
    _may_manage(operator, card.card_type, card.owner_department)
    grant = AccessGrant.objects.select_for_update().get(pk=grant.pk)
    if grant.revoked_at is not None:
        raise CardRuleError(_("该授权已撤销"))
    _check_state(card, Action.REVOKE_GRANT)
    grant.revoked_at = timezone.now()
    grant.revoked_by = operator if getattr(operator, "pk", None) else None
    grant.save(update_fields=["revoked_at", "revoked_by"])
    _log(card, Action.REVOKE_GRANT, card.status, operator, basis, {"grant": grant.pk, "place": grant.place_code})
    return grant


__all__ = [
    "grant_access",
    "revoke_grant",
    "issue_card",
    "report_loss",
    "report_found",
    "replace_card",
    "set_blacklist",
    "extend_validity",
    "cancel_card",
    "normalise_uid",
    "approver_on_record",
    "department_on_record",
    "CardRuleError",
]
