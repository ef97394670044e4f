"""Lists beyond enrolment (issue 18, Build 7; R-CARD-4/5/6, R-END-2/3): the lists that follow a
cardholder after enrolment, through the enrolment import's one pipeline (read → normalise →
preview → apply exactly the preview, :mod:`ops.registry.lifecycle.importing`).

Each kind is a row spec — its columns, how a row is checked against the holder on record
(``plan``: the problems, or the target values and what would change, old → new) and how a
row is applied (``apply``: through the lifecycle services, recomputing what still differs, so
that applying twice changes nothing the second time):

* ``leavers`` — 离校/退学/离职: the holder's status; every live card cancelled through
  :func:`services.cancel_card` (R-END-3); a retiree keeps the card (R-END-2).
* ``deferral`` — 延期毕业 (R-CARD-6): the student's end of study and the live student card's
  validity, through :func:`services.extend_validity`.
* ``dorm`` — 宿舍分配 from Student Affairs: building, room, bed; a change of building goes to the
  readers through :func:`services.save_holder`.
* ``staff_change`` — 人事变动 from HR (R-CARD-4): department and title.

Nothing here creates a cardholder: a number not on record is a rejected row.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from ops.accounts.permissions import dorm_scope, role_of
from ops.registry.choices import LIVE_CARD_STATUSES, HolderKind, HolderStatus
from ops.registry.lifecycle import services, tabular
from ops.registry.lifecycle.errors import CardRuleError
from ops.registry.lifecycle.list_rights import HOLDER_SCOPE
from ops.registry.models import Building, Card, Cardholder, Department
from streams.cards import CardType

NAME = {"name": ("姓名",)}  # optional in every list; when given it must match the record

LEAVE_TYPES: dict[str, str] = {
    "退学": HolderStatus.WITHDRAWN,
    "离校": HolderStatus.LEFT,
    "转学": HolderStatus.LEFT,
    "离职": HolderStatus.LEFT,
    "调离": HolderStatus.LEFT,
    "退休": HolderStatus.RETIRED,
}


@dataclass
class Context:
    """What every row of one list is checked against (loaded once per list)."""

    kind: str
    operator: Any
    today: date
    headers: dict[str, str]  # field → header as written in the file
    holder_kinds: frozenset[str] | None
    departments: dict[str, Department] = field(default_factory=dict)
    buildings: dict[str, Building] = field(default_factory=dict)  # by code and by name
    scope: list[str] | None = None  # dorm buildings the operator may assign (None: all)
    live_cards: dict[int, list[Card]] = field(default_factory=lambda: defaultdict(list))
    beds: dict[tuple[int, str, str], str] = field(default_factory=dict)  # place → holder number
    listed: set[str] = field(default_factory=set)  # numbers in the list
    seen_beds: dict[tuple[int, str, str], int] = field(default_factory=dict)  # place → row


Problem = tuple[str, str, str]  # (field, value, message)
Diff = dict[str, tuple[Any, Any]]  # field → (old, new), as shown


@dataclass(frozen=True)
class ListKind:
    key: str
    title: str | Promise  # for the basis: "<title> <file>（导入批次 n）"
    columns: dict[str, tuple[str, ...]]
    plan: Callable[[Context, dict[str, str], Cardholder], tuple[list[Problem], dict[str, Any], Diff]]
    apply: Callable[[Context, Cardholder, dict[str, Any], str], Diff]
    optional: dict[str, tuple[str, ...]] = field(default_factory=lambda: dict(NAME))
    load: Callable[[Context, list[dict[str, str]]], None] = lambda _ctx, _records: None


# ---------------------------------------------------------------- leavers (R-END-2, R-END-3)


def _plan_leaver(ctx: Context, record: dict[str, str], holder: Cardholder):
    text = record["reason"].strip()
    status = LEAVE_TYPES.get(text)
    if status is None:
        message = _("“离校类型”应为 %(types)s 之一，读到“%(value)s”") % {"types": "、".join(LEAVE_TYPES), "value": text}
        return [("reason", text, message)], {}, {}
    if holder.kind == HolderKind.STUDENT and status == HolderStatus.RETIRED:
        return [("reason", text, _("学生不能登记为“退休”"))], {}, {}
    if holder.kind != HolderKind.STUDENT and status == HolderStatus.WITHDRAWN:
        return [("reason", text, _("只有学生可以登记为“退学”"))], {}, {}
    if holder.status not in (HolderStatus.ACTIVE, status):
        message = _("%(number)s 已是“%(now)s”，不能再登记为“%(new)s”") % {
            "number": holder.number,
            "now": holder.get_status_display(),
            "new": HolderStatus(status).label,
        }
        return [("reason", text, message)], {}, {}
    diff: Diff = {}
    if holder.status != status:
        diff["status"] = (holder.get_status_display(), str(HolderStatus(status).label))
    cards = ctx.live_cards.get(holder.pk, [])
    if status != HolderStatus.RETIRED and cards:
        diff["cards"] = (
            _("%(n)d 张有效卡") % {"n": len(cards)},
            _("注销"),
        )
    return [], {"status": str(status)}, diff


def _apply_leaver(ctx: Context, holder: Cardholder, target: dict[str, Any], basis: str) -> Diff:
    status = target["status"]
    old_label = holder.get_status_display()
    diff: Diff = {}
    cards = list(holder.cards.filter(status__in=LIVE_CARD_STATUSES))
    if status != HolderStatus.RETIRED and cards:  # R-END-2: a retiree keeps the card
        for card in cards:  # the lifecycle's own step: history, audit, readers (R-END-3)
            services.cancel_card(card=card, operator=ctx.operator, basis=basis, holder_status=status, by_list=ctx.kind)
        diff["cards"] = (_("%(n)d 张有效卡") % {"n": len(cards)}, _("注销"))
        holder.refresh_from_db()
    if holder.status != status:
        holder.status = status
        holder.save(update_fields=["status", "updated_at"])
    if old_label != holder.get_status_display():
        diff["status"] = (old_label, holder.get_status_display())
    return diff


# ---------------------------------------------------------------- deferral (R-CARD-6)


def _plan_deferral(ctx: Context, record: dict[str, str], holder: Cardholder):
    text = record["study_end"]
    if holder.kind != HolderKind.STUDENT or holder.status != HolderStatus.ACTIVE:
        message = _("%(number)s 不是在校学生，不能延期毕业") % {"number": holder.number}
        return [("number", holder.number, message)], {}, {}
    found = tabular.study_end({"study_end": text}, ctx.today)
    if isinstance(found, str):
        return [("study_end", text, found)], {}, {}
    end = found[0]
    if end <= ctx.today:
        return [("study_end", text, _("延期毕业日期 %(date)s 已经过去") % {"date": end.isoformat()})], {}, {}
    if holder.study_end is not None and end < holder.study_end:
        message = _("延期毕业日期 %(date)s 早于当前的预计毕业日期 %(now)s") % {
            "date": end.isoformat(),
            "now": holder.study_end.isoformat(),
        }
        return [("study_end", text, message)], {}, {}
    diff: Diff = {}
    if holder.study_end != end:
        diff["study_end"] = (holder.study_end.isoformat() if holder.study_end else "", end.isoformat())
    until = services._end_of_day(end)
    short = [
        c.valid_until
        for c in ctx.live_cards.get(holder.pk, [])
        if c.card_type == CardType.STUDENT and c.valid_until is not None and c.valid_until < until
    ]
    if short:
        diff["valid_until"] = (timezone.localtime(short[0]).date().isoformat(), end.isoformat())
    return [], {"study_end": end.isoformat()}, diff


def _apply_deferral(ctx: Context, holder: Cardholder, target: dict[str, Any], basis: str) -> Diff:
    end = date.fromisoformat(target["study_end"])
    until = services._end_of_day(end)
    old_end = holder.study_end
    diff: Diff = {}
    for card in holder.cards.filter(status__in=LIVE_CARD_STATUSES, card_type=CardType.STUDENT):
        if card.valid_until is not None and card.valid_until < until:
            old = timezone.localtime(card.valid_until).date().isoformat()
            services.extend_validity(card=card, new_until=until, operator=ctx.operator, basis=basis, by_list=ctx.kind)
            diff["valid_until"] = (old, end.isoformat())
    holder.refresh_from_db()
    if holder.study_end != end:
        holder.study_end = end
        holder.save(update_fields=["study_end", "updated_at"])
    if old_end != end:
        diff["study_end"] = (old_end.isoformat() if old_end else "", end.isoformat())
    return diff


# ---------------------------------------------------------------- dorm assignments


def _load_dorm(ctx: Context, records: list[dict[str, str]]) -> None:
    for building in Building.objects.filter(is_dorm=True):
        ctx.buildings.setdefault(building.code, building)
        ctx.buildings.setdefault(building.name, building)
    ctx.scope = dorm_scope(ctx.operator)
    occupied = Cardholder.objects.filter(
        status=HolderStatus.ACTIVE, dorm_building__isnull=False, dorm_building__is_dorm=True
    ).exclude(dorm_bed="")
    for building_id, room, bed, number in occupied.values_list("dorm_building_id", "dorm_room", "dorm_bed", "number"):
        ctx.beds[(building_id, room, bed)] = number


def _building_label(building: Building | None) -> str:
    return f"{building.name}（{building.code}）" if building is not None else ""


def _plan_dorm(ctx: Context, record: dict[str, str], holder: Cardholder):
    text = record["building"]
    if holder.status != HolderStatus.ACTIVE:
        message = _("%(number)s 已是“%(status)s”，不能分配宿舍") % {
            "number": holder.number,
            "status": holder.get_status_display(),
        }
        return [("number", holder.number, message)], {}, {}
    building = ctx.buildings.get(text)
    if building is None:
        return [("building", text, _("系统中没有宿舍楼“%(name)s”（可写楼宇代码或名称）") % {"name": text})], {}, {}
    if ctx.scope is not None and building.code not in ctx.scope:
        message = _("您只能分配自己负责的宿舍楼，“%(name)s”不在其中") % {"name": building.name}
        return [("building", text, message)], {}, {}
    room, bed = record["room"], record["bed"]
    place = (building.id, room, bed)
    if place in ctx.seen_beds:
        message = _("%(name)s %(room)s 室 %(bed)s 床与第 %(row)d 行重复") % {
            "name": building.name,
            "room": room,
            "bed": bed,
            "row": ctx.seen_beds[place],
        }
        return [("bed", bed, message)], {}, {}
    ctx.seen_beds[place] = int(record["row"])
    occupant = ctx.beds.get(place)
    if occupant is not None and occupant != holder.number and occupant not in ctx.listed:
        message = _("%(name)s %(room)s 室 %(bed)s 床已住着 %(number)s；请先在名单中为其调整床位") % {
            "name": building.name,
            "room": room,
            "bed": bed,
            "number": occupant,
        }
        return [("bed", bed, message)], {}, {}
    diff: Diff = {}
    if holder.dorm_building_id != building.id:
        diff["dorm_building"] = (_building_label(holder.dorm_building), _building_label(building))
    if holder.dorm_room != room:
        diff["dorm_room"] = (holder.dorm_room, room)
    if holder.dorm_bed != bed:
        diff["dorm_bed"] = (holder.dorm_bed, bed)
    return [], {"building": building.code, "room": room, "bed": bed}, diff


def _apply_dorm(ctx: Context, holder: Cardholder, target: dict[str, Any], basis: str) -> Diff:
    building = Building.objects.get(code=target["building"])
    if ctx.scope is not None and building.code not in ctx.scope:  # the one applying may differ
        raise CardRuleError(_("您只能分配自己负责的宿舍楼，“%(name)s”不在其中") % {"name": building.name})
    room, bed = target["room"], target["bed"]
    taken = (
        Cardholder.objects.filter(status=HolderStatus.ACTIVE, dorm_building=building, dorm_room=room, dorm_bed=bed)
        .exclude(pk=holder.pk)
        .values_list("number", flat=True)
        .first()
    )
    if taken is not None:
        raise CardRuleError(
            _("%(name)s %(room)s 室 %(bed)s 床已住着 %(number)s，本名单未导入")
            % {"name": building.name, "room": room, "bed": bed, "number": taken}
        )
    diff: Diff = {}
    if holder.dorm_building_id != building.id:
        diff["dorm_building"] = (_building_label(holder.dorm_building), _building_label(building))
        holder.dorm_building = building
    if holder.dorm_room != room:
        diff["dorm_room"] = (holder.dorm_room, room)
        holder.dorm_room = room
    if holder.dorm_bed != bed:
        diff["dorm_bed"] = (holder.dorm_bed, bed)
        holder.dorm_bed = bed
    if diff:  # a new building reaches every door of the old and the new one (R-USE-*)
        services.save_holder(holder=holder, changed=set(diff), operator=ctx.operator, basis=basis)
    return diff


# ---------------------------------------------------------------- staff changes (R-CARD-4)


def _load_departments(ctx: Context, _records: list[dict[str, str]]) -> None:
    ctx.departments = {d.name: d for d in Department.objects.all()}


def _plan_staff_change(ctx: Context, record: dict[str, str], holder: Cardholder):
    if holder.kind != HolderKind.STAFF or holder.status != HolderStatus.ACTIVE:
        return [("number", holder.number, _("%(number)s 不是在职教职工") % {"number": holder.number})], {}, {}
    department = ctx.departments.get(record["department"])
    if department is None:
        message = _("系统中没有名为“%(name)s”的部门/学系，请先由网信中心添加") % {"name": record["department"]}
        return [("department", record["department"], message)], {}, {}
    diff: Diff = {}
    if holder.department_id != department.id:
        diff["department"] = (holder.department.name, department.name)
    if holder.title != record["title"]:
        diff["title"] = (holder.title, record["title"])
    return [], {"department": department.code, "title": record["title"]}, diff


def _apply_staff_change(ctx: Context, holder: Cardholder, target: dict[str, Any], basis: str) -> Diff:
    department = Department.objects.get(code=target["department"])
    diff: Diff = {}
    if holder.department_id != department.id:
        diff["department"] = (holder.department.name, department.name)
        holder.department = department
    if holder.title != target["title"]:
        diff["title"] = (holder.title, target["title"])
        holder.title = target["title"]
    if diff:
        holder.save(update_fields=["department", "title", "updated_at"])
    return diff


NUMBER = ("学号", "工号", "学工号", "学号/工号")
KINDS: dict[str, ListKind] = {
    "leavers": ListKind(
        key="leavers",
        title=gettext_lazy("离校名单"),
        columns={"number": NUMBER, "reason": ("离校类型", "类型", "离校原因", "变动类型")},
        plan=_plan_leaver,
        apply=_apply_leaver,
    ),
    "deferral": ListKind(
        key="deferral",
        title=gettext_lazy("延期毕业名单"),
        columns={"number": ("学号",), "study_end": ("延期毕业日期", "新毕业日期", "预计毕业日期", "毕业日期")},
        plan=_plan_deferral,
        apply=_apply_deferral,
    ),
    "dorm": ListKind(
        key="dorm",
        title=gettext_lazy("宿舍分配名单"),
        columns={
            "number": NUMBER,
            "building": ("宿舍楼", "楼栋", "宿舍楼栋", "楼宇"),
            "room": ("房间", "房间号", "宿舍号"),
            "bed": ("床位", "床位号", "床号"),
        },
        plan=_plan_dorm,
        apply=_apply_dorm,
        load=_load_dorm,
    ),
    "staff_change": ListKind(
        key="staff_change",
        title=gettext_lazy("教职工变动名单"),
        columns={
            "number": ("工号", "职工号", "教工号"),
            "department": ("部门", "单位", "所在部门", "所在单位"),
            "title": ("职务/职称", "职务", "职称", "职务职称"),
        },
        plan=_plan_staff_change,
        apply=_apply_staff_change,
        load=_load_departments,
    ),
}

# How a changed field is named on the preview (old → new)
FIELD_LABELS: dict[str, str | Promise] = {
    "status": gettext_lazy("在校状态"),
    "cards": gettext_lazy("校园卡"),
    "study_end": gettext_lazy("预计毕业日期"),
    "valid_until": gettext_lazy("卡有效期至"),
    "dorm_building": gettext_lazy("宿舍楼"),
    "dorm_room": gettext_lazy("房间"),
    "dorm_bed": gettext_lazy("床位"),
    "department": gettext_lazy("部门/学系"),
    "title": gettext_lazy("职务/职称"),
    "name": gettext_lazy("姓名"),
    "class_name": gettext_lazy("班级"),
    "citizen_id": gettext_lazy("身份证号"),
    "photo_sha256": gettext_lazy("照片"),
}


def context(kind: str, operator: Any, headers: dict[str, str], records: list[dict[str, str]]) -> Context:
    role = role_of(operator)
    ctx = Context(
        kind=kind,
        operator=operator,
        today=timezone.localdate(),
        headers=headers,
        holder_kinds=HOLDER_SCOPE.get(role) if role is not None else None,
        listed={r["number"] for r in records},
    )
    KINDS[kind].load(ctx, records)
    return ctx


def load_live_cards(ctx: Context, holder_ids: list[int]) -> None:
    for card in Card.objects.filter(holder_id__in=holder_ids, status__in=LIVE_CARD_STATUSES).order_by("id"):
        ctx.live_cards[card.holder_id].append(card)


def plan_row(ctx: Context, record: dict[str, str], holder: Cardholder | None) -> tuple[list[Problem], dict, Diff]:
    """The common checks of a row (the holder on record, whose list it may be, the name), then
    the kind's own."""
    number = record["number"]
    if holder is None:
        return [("number", number, _("系统中没有学号/工号为 %(number)s 的持卡人") % {"number": number})], {}, {}
    if ctx.holder_kinds is not None and holder.kind not in ctx.holder_kinds:
        message = _("%(number)s 是%(kind)s，您的名单只能包含%(allowed)s") % {
            "number": number,
            "kind": holder.get_kind_display(),
            "allowed": "、".join(str(HolderKind(k).label) for k in sorted(ctx.holder_kinds)),
        }
        return [("number", number, message)], {}, {}
    name = (record.get("name") or "").strip()
    if name and name != holder.name:
        return [("name", name, _("姓名与学号/工号 %(number)s 的记录不符") % {"number": number})], {}, {}
    return KINDS[ctx.kind].plan(ctx, record, holder)
