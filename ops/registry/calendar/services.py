"""Writing the academic calendar, door groups, central door rules and the vacation stay list
(issue 17). Each change is one transaction that is audited and reaches the doors in it: the
calendar, the groups and the rules as a new door policy on the credential feed
(:func:`ops.registry.calendar.policy.queue_policy`), the stay list with the student's cards
(a credential change each). A broken rule raises :class:`DoorRuleError` (a ``ValidationError``
in the operator's language); nothing has changed.

Who: the calendar, the door groups and opening hours are NIC's; dorm rules (curfews, vacation
closure) and the stay list are Student Affairs' — dorm managers, each within the buildings
assigned to them — and NIC's."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from ops.accounts.permissions import role_of
from ops.accounts.roles import Role
from ops.audit import services as audit
from ops.registry.calendar import calendar_file, policy
from ops.registry.calendar.choices import DAY_TYPES, RuleKind
from ops.registry.calendar.models import CalendarDay, DoorGroup, DoorRule, VacationStay
from ops.registry.choices import LIVE_CARD_STATUSES, HolderKind
from ops.registry.lifecycle.outbox import announce
from ops.registry.models import Building, Card, Cardholder, Device
from streams.calendar import DayType
from streams.cards import DeviceKind


class DoorRuleError(ValidationError):
    """A calendar or door rule refused; nothing has changed."""


class CalendarImportError(DoorRuleError):
    """A calendar file with problems: each names its row (``problems``); nothing imported."""

    def __init__(self, problems: list[calendar_file.Problem]) -> None:
        super().__init__([str(p) for p in problems])
        self.problems = problems


@dataclass(frozen=True)
class ImportResult:
    dates: int
    created: int
    changed: int
    unchanged: int
    first: date | None
    last: date | None


# -- who -----------------------------------------------------------------------------------------
def is_nic(operator: Any) -> bool:
    return bool(getattr(operator, "is_superuser", False)) or role_of(operator) == Role.NIC


def manages_dorms(operator: Any) -> bool:
    return is_nic(operator) or role_of(operator) == Role.DORM_MANAGER


def buildings_of(operator: Any) -> set[str] | None:
    """Building codes a dorm manager keeps; None: every building (NIC)."""
    if is_nic(operator):
        return None
    if role_of(operator) == Role.DORM_MANAGER:
        return set(operator.operator.buildings.values_list("code", flat=True))
    return set()


def _require_nic(operator: Any, what: str) -> None:
    if not is_nic(operator):
        raise DoorRuleError(_("只有网信中心可以修改%(what)s") % {"what": what})


def _require_basis(basis: str) -> str:
    basis = (basis or "").strip()
    if not basis:
        raise DoorRuleError(_("必须填写依据（文件编号、通知或名单）"))
    return basis


def group_places(group: DoorGroup) -> set[str]:
    """Every building a group reaches: its buildings and its devices' buildings (a device with
    no building is "" — only NIC may act on it)."""
    places = set(group.buildings.values_list("code", flat=True))
    places |= {code or "" for code in group.devices.values_list("building__code", flat=True)}
    return places


def may_edit_rule(operator: Any, rule: DoorRule) -> bool:
    """NIC: every rule. A dorm manager: dorm rules on groups within their buildings."""
    if is_nic(operator):
        return True
    scope = buildings_of(operator)
    if rule.kind != RuleKind.DORM or scope is None or not scope or rule.group_id is None:
        return False
    return group_places(rule.group) <= scope


# -- the calendar --------------------------------------------------------------------------------
def _day_row(day: CalendarDay | None) -> dict[str, str] | None:
    return None if day is None else {"day_type": day.day_type, "note": day.note}


@transaction.atomic
def import_calendar(*, data: bytes, filename: str, operator: Any, basis: str) -> ImportResult:
    """A calendar file (ICS or CSV, :mod:`calendar_file`): all of it or nothing. The dates it
    names get its types (other dates are left as they are)."""
    _require_nic(operator, _("校历"))
    basis = _require_basis(basis)
    entries, problems = calendar_file.parse(data, filename)
    if problems:
        raise CalendarImportError(problems)
    if not entries:
        raise CalendarImportError([calendar_file.Problem(1, _("文件中没有任何日期"))])
    policy.lock()
    existing = {d.date: d for d in CalendarDay.objects.select_for_update().filter(date__in=[e.day for e in entries])}
    created = changed = unchanged = 0
    new_rows, changed_rows = [], []
    for entry in entries:
        day = existing.get(entry.day)
        if day is None:
            new_rows.append(CalendarDay(date=entry.day, day_type=entry.day_type, note=entry.note))
            created += 1
        elif day.day_type != entry.day_type or day.note != entry.note:
            day.day_type, day.note = entry.day_type, entry.note
            changed_rows.append(day)
            changed += 1
        else:
            unchanged += 1
    CalendarDay.objects.bulk_create(new_rows)
    CalendarDay.objects.bulk_update(changed_rows, ["day_type", "note", "updated_at"])
    days = sorted(e.day for e in entries)
    result = ImportResult(len(entries), created, changed, unchanged, days[0], days[-1])
    audit.record(
        actor=operator,
        action="calendar.import",
        object_type="calendar",
        object_id=filename[:100],
        basis=basis,
        data={
            "dates": result.dates,
            "created": created,
            "changed": changed,
            "unchanged": unchanged,
            "from": days[0].isoformat(),
            "to": days[-1].isoformat(),
        },
    )
    if created or changed:
        policy.queue_policy()
    return result


@transaction.atomic
def set_day(*, day: date, day_type: str, note: str = "", operator: Any, basis: str = "admin") -> CalendarDay:
    """One date's type (the admin's edit)."""
    _require_nic(operator, _("校历"))
    try:
        kind = DayType(day_type)
    except ValueError:
        raise DoorRuleError(_("日类型“%(text)s”无法识别") % {"text": day_type}) from None
    policy.lock()
    before = CalendarDay.objects.select_for_update().filter(date=day).first()
    row, _created = CalendarDay.objects.update_or_create(date=day, defaults={"day_type": kind, "note": note})
    audit.record(
        actor=operator,
        action="calendar.set_day",
        object_type="calendar_day",
        object_id=day.isoformat(),
        basis=basis,
        data={"before": _day_row(before), "after": _day_row(row)},
    )
    policy.queue_policy()
    return row


@transaction.atomic
def remove_day(*, day: CalendarDay, operator: Any, basis: str = "admin") -> None:
    """A date back to its default type (teaching day, or weekend)."""
    _require_nic(operator, _("校历"))
    policy.lock()
    audit.record(
        actor=operator,
        action="calendar.remove_day",
        object_type="calendar_day",
        object_id=day.date.isoformat(),
        basis=basis,
        data={"before": _day_row(day)},
    )
    day.delete()
    policy.queue_policy()


# -- door groups ---------------------------------------------------------------------------------
def _group_row(group: DoorGroup) -> dict[str, Any]:
    return {
        "code": group.code,
        "name": group.name,
        "devices": sorted(group.devices.values_list("code", flat=True)),
        "buildings": sorted(group.buildings.values_list("code", flat=True)),
    }


@transaction.atomic
def save_door_group(
    *, group: DoorGroup, devices: Iterable[Device], buildings: Iterable[Building], operator: Any, basis: str = "admin"
) -> DoorGroup:
    """Create or change a door group (NIC): its devices and whole buildings."""
    _require_nic(operator, _("门禁组"))
    policy.lock()
    before = _group_row(DoorGroup.objects.get(pk=group.pk)) if group.pk else None
    group.full_clean(exclude=["devices", "buildings"])
    group.save()
    group.devices.set(list(devices))
    group.buildings.set(list(buildings))
    audit.record(
        actor=operator,
        action="door_group.save",
        object_type="door_group",
        object_id=group.code,
        basis=basis,
        data={"before": before, "after": _group_row(group)},
    )
    policy.queue_policy()
    return group


@transaction.atomic
def delete_door_group(*, group: DoorGroup, operator: Any, basis: str = "admin") -> None:
    _require_nic(operator, _("门禁组"))
    if group.rules.exists():
        raise DoorRuleError(_("门禁组“%(group)s”仍有门禁规则，请先删除这些规则") % {"group": group})
    policy.lock()
    audit.record(
        actor=operator,
        action="door_group.delete",
        object_type="door_group",
        object_id=group.code,
        basis=basis,
        data={"before": _group_row(group)},
    )
    group.delete()
    policy.queue_policy()


# -- door rules ----------------------------------------------------------------------------------
def rule_row(rule: DoorRule) -> dict[str, Any]:
    return {
        "name": rule.name,
        "kind": rule.kind,
        "group": rule.group.code if rule.group_id else None,
        "day_types": list(rule.day_types),
        "weekdays": list(rule.weekdays),
        "schedule": rule.schedule,
        "closed_all_day": rule.closed_all_day,
        "curfew": [f"{t:%H:%M}" for t in rule.curfew] if rule.curfew else None,
        "curfew_closes": rule.curfew_closes,
        "vacation_closed": rule.vacation_closed,
    }


def check_rule(rule: DoorRule) -> None:
    day_types = list(dict.fromkeys(rule.day_types or []))
    if not day_types:
        raise DoorRuleError(_("至少选择一种日类型"))
    bad = [t for t in day_types if t not in set(DayType)]
    if bad:
        raise DoorRuleError(_("日类型“%(text)s”无法识别") % {"text": bad[0]})
    weekdays = sorted({int(w) for w in (rule.weekdays or [])})
    if any(not 1 <= w <= 7 for w in weekdays):
        raise DoorRuleError(_("星期应为 1（周一）到 7（周日）"))
    rule.day_types, rule.weekdays = day_types, weekdays
    if (rule.curfew_start is None) != (rule.curfew_end is None):
        raise DoorRuleError(_("晚归/闭门时段需要同时填写开始和结束时间"))
    if rule.curfew_start is not None and rule.curfew_start == rule.curfew_end:
        raise DoorRuleError(_("晚归/闭门时段的开始和结束不能相同"))
    if rule.kind == RuleKind.SCHEDULE:
        if rule.curfew_start is not None or rule.curfew_closes or rule.vacation_closed:
            raise DoorRuleError(_("开放时段规则不设晚归/闭门或假期闭楼：这些由学生工作处在宿舍作息规则中设定"))
        try:
            windows = policy.parse_windows(rule.schedule)
        except ValueError as exc:
            raise DoorRuleError(
                _("开放时段“%(text)s”无法识别（应为 HH:MM-HH:MM，多个用逗号分隔）") % {"text": exc}
            ) from None
        if rule.closed_all_day and windows:
            raise DoorRuleError(_("全天关闭时不能再填开放时段"))
        if not rule.closed_all_day and not windows:
            raise DoorRuleError(_("请填写开放时段，或勾选全天关闭"))
        if len(windows) > 8:
            raise DoorRuleError(_("开放时段最多 8 段"))
    elif rule.kind == RuleKind.DORM:
        if rule.schedule.strip() or rule.closed_all_day:
            raise DoorRuleError(_("宿舍作息规则不设开放时段：开放时段由网信中心设定"))
        if rule.curfew_start is None and not rule.vacation_closed:
            raise DoorRuleError(_("宿舍作息规则须设晚归/闭门时段或假期闭楼"))
        if rule.curfew_closes and rule.curfew_start is None:
            raise DoorRuleError(_("闭门需要晚归/闭门时段"))
        kinds = set(rule.group.devices.values_list("kind", flat=True))
        if kinds - {DeviceKind.DORM_DOOR} or (not kinds and not rule.group.buildings.exists()):
            raise DoorRuleError(_("宿舍作息规则只能用于宿舍门禁：门禁组中有其他类型的设备或没有任何门"))
    else:
        raise DoorRuleError(_("请选择规则类别"))


@transaction.atomic
def save_door_rule(*, rule: DoorRule, operator: Any, basis: str = "admin") -> DoorRule:
    """Create or change a rule: opening hours by NIC, dorm rules by NIC or a dorm manager of every
    building the group reaches. Audited with before and after; the doors get the new policy."""
    before_rule = DoorRule.objects.select_related("group").filter(pk=rule.pk).first() if rule.pk else None
    for subject in filter(None, (before_rule, rule)):
        if not may_edit_rule(operator, subject):
            raise DoorRuleError(
                _("开放时段由网信中心设定；宿舍作息规则由学生工作处（宿管，仅限其负责的楼宇）或网信中心设定")
            )
    check_rule(rule)
    policy.lock()
    rule.updated_by = operator if getattr(operator, "pk", None) else None
    rule.save()
    audit.record(
        actor=operator,
        action="door_rule.save",
        object_type="door_rule",
        object_id=rule.pk,
        basis=basis,
        data={"before": rule_row(before_rule) if before_rule else None, "after": rule_row(rule)},
    )
    policy.queue_policy()
    return rule


@transaction.atomic
def delete_door_rule(*, rule: DoorRule, operator: Any, basis: str = "admin") -> None:
    if not may_edit_rule(operator, rule):
        raise DoorRuleError(_("您不能删除此门禁规则"))
    policy.lock()
    audit.record(
        actor=operator,
        action="door_rule.delete",
        object_type="door_rule",
        object_id=rule.pk,
        basis=basis,
        data={"before": rule_row(rule)},
    )
    rule.delete()
    policy.queue_policy()


def refresh_policy_horizon(*, now: datetime | None = None) -> bool:
    """The doors hold the calendar for :data:`policy.HORIZON_DAYS`; once less than
    :data:`policy.REFRESH_WHEN_LEFT_DAYS` of it is left, a fresh policy goes out (the
    supervisor's timed job). Returns whether one did."""
    left = policy.horizon_left(now)
    if left is not None and left >= policy.REFRESH_WHEN_LEFT_DAYS:
        return False
    if left is None and not policy.in_use():
        return False
    with transaction.atomic():
        policy.lock()
        policy.queue_policy(now)
    return True


# -- the vacation stay list ----------------------------------------------------------------------
def may_keep_stays(operator: Any, holder: Cardholder) -> bool:
    scope = buildings_of(operator)
    if scope is None:
        return True
    return holder.dorm_building is not None and holder.dorm_building.code in scope


def _announce_cards(holder: Cardholder, operator: Any) -> list[str]:
    cards = list(
        Card.objects.select_related("holder", "holder__dorm_building").filter(
            holder=holder, status__in=LIVE_CARD_STATUSES
        )
    )
    for card in cards:
        announce(card, "stay_change", operator, live=False)
    return [card.uid for card in cards]


@transaction.atomic
def add_stay(*, holder: Cardholder, start: date, end: date, operator: Any, basis: str) -> VacationStay:
    """Put a student on the vacation stay list (留校名单) from ``start`` to ``end`` (both
    included): their own dorm stays open to them while a vacation closes it to students."""
    basis = _require_basis(basis)
    holder = Cardholder.objects.select_for_update(of=("self",)).select_related("dorm_building").get(pk=holder.pk)
    if holder.kind != HolderKind.STUDENT:
        raise DoorRuleError(_("留校名单只登记学生"))
    if holder.dorm_building is None:
        raise DoorRuleError(_("%(holder)s 没有登记住宿楼宇：请先在持卡人记录中填写宿舍楼") % {"holder": holder.number})
    if not manages_dorms(operator) or not may_keep_stays(operator, holder):
        raise DoorRuleError(_("留校名单由学生工作处（宿管，仅限其负责楼宇的住宿学生）或网信中心登记"))
    if end < start:
        raise DoorRuleError(_("留校结束日期不能早于开始日期"))
    if end < timezone.localdate():
        raise DoorRuleError(_("留校结束日期已过"))
    live = VacationStay.objects.filter(holder=holder, revoked_at__isnull=True, end__gte=timezone.localdate())
    if live.count() >= 8:
        raise DoorRuleError(_("此学生已有 8 条未结束的留校登记，请先撤销不再需要的"))
    stay = VacationStay.objects.create(
        holder=holder,
        start=start,
        end=end,
        basis=basis,
        created_by=operator if getattr(operator, "pk", None) else None,
    )
    cards = _announce_cards(holder, operator)
    audit.record(
        actor=operator,
        action="stay.add",
        object_type="cardholder",
        object_id=holder.number,
        basis=basis,
        data={"stay": stay.pk, "from": start.isoformat(), "to": end.isoformat(), "cards": cards},
    )
    return stay


@transaction.atomic
def revoke_stay(*, stay: VacationStay, operator: Any, basis: str) -> VacationStay:
    basis = _require_basis(basis)
    stay = VacationStay.objects.select_for_update(of=("self",)).select_related("holder__dorm_building").get(pk=stay.pk)
    if not manages_dorms(operator) or not may_keep_stays(operator, stay.holder):
        raise DoorRuleError(_("留校名单由学生工作处（宿管，仅限其负责楼宇的住宿学生）或网信中心登记"))
    if stay.revoked_at is not None:
        raise DoorRuleError(_("此留校登记已撤销"))
    stay.revoked_at = timezone.now()
    stay.revoked_by = operator if getattr(operator, "pk", None) else None
    stay.save(update_fields=["revoked_at", "revoked_by"])
    cards = _announce_cards(stay.holder, operator)
    audit.record(
        actor=operator,
        action="stay.revoke",
        object_type="cardholder",
        object_id=stay.holder.number,
        basis=basis,
        data={"stay": stay.pk, "cards": cards},
    )
    return stay


def day_type_label(value: str) -> str:
    return DAY_TYPES.label(value)
