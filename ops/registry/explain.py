""" "Why was this card denied here?" — the help desk runs the very ``decide()`` the readers run,
on the current data, and explains the answer in the operator's words: the card, and the door's
policy — the central rule that decided (schedule window and day type, curfew, vacation closure
and the stay list; issue 17) or the door's own configuration, and anti-passback: the card's last
passage in the door's zone as the server holds it — what the zone's readers were told — after
its last forgiveness (issue 17, Build 5)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from django.core.exceptions import PermissionDenied
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from ops.registry.calendar.choices import DAY_TYPES
from ops.registry.calendar.policy import door_policy
from ops.registry.choices import REASONS
from ops.registry.emergency.selectors import reader_state as emergency_state
from ops.registry.emergency.selectors import revision
from ops.registry.lifecycle.outbox import credential_payload
from ops.registry.models import Card, Device
from ops.registry.passback import selectors as passback
from ops.registry.selectors import may_view_cards, readable_cards, sees_every_card
from readers.agent.cache import credential_from_payload, policy_from_payload
from readers.agent.emergency import emergency_from_payload
from readers.decide import (
    ALLOWED_TYPES,
    CAMPUS_TZ,
    LATE_RETURN,
    PASSBACK,
    Credential,
    DaySpec,
    Door,
    EdgeState,
    Effective,
    Passback,
    Verdict,
    Window,
    decide,
    effective,
    last_reset,
    on_stay,
)
from streams.cards import CardType, DeviceKind
from streams.passback import KEEP
from streams.reasons import Decision, Direction, Reason

# issue 20, item 2: a token or an account without the card view right reads no card
NO_CARD_READ = gettext_lazy("您没有查看校园卡信息的权限")


@dataclass(frozen=True)
class Explanation:
    allowed: bool
    reason: str
    reason_label: str
    text: str
    facts: dict[str, str]
    rule: str = ""  # the central rule (or the door's own configuration) that decided, if any
    flags: tuple[str, ...] = field(default=())


def _door(device: Device) -> Door:
    """The door as its reader holds it: kind, building, anti-passback, and the building's curfew
    (what ``campuscard reader`` configures)."""
    building = device.building
    curfew = (
        (building.curfew_start, building.curfew_end)
        if building is not None and building.curfew_start and building.curfew_end
        else None
    )
    return Door(
        device.code,
        DeviceKind(device.kind),
        building=building.code if building is not None else None,
        area=device.passback_area or None,
        passback=cast(Passback, device.passback),
        curfew=curfew,
    )


def explain_for(*, user: Any, uid: str, device_code: str) -> Explanation:
    """为什么被拒绝 asked by an operator (the admin page and ``/api/v1/explain/``; issue 20,
    item 2): only about a card ``user`` may read (:func:`readable_cards`, the card admin's rule).
    A UID on no card is explained only to whoever sees every card: to anyone else a card they
    may not read and one that does not exist get the same answer."""
    if not may_view_cards(user):
        raise PermissionDenied(NO_CARD_READ)
    uid = uid.strip().upper()
    if not sees_every_card(user) and not readable_cards(user).filter(uid=uid).exists():
        raise LookupError(_("没有您可查看的卡号为 %(uid)s 的卡") % {"uid": uid})
    return explain(uid=uid, device_code=device_code)


def explain(*, uid: str, device_code: str, now: datetime | None = None) -> Explanation:
    now = now or timezone.now()
    device = Device.objects.select_related("building").filter(code=device_code).first()
    if device is None:
        raise LookupError(_("没有编号为 %(code)s 的设备") % {"code": device_code})
    door = _door(device)
    card = Card.objects.select_related("holder", "holder__dorm_building").filter(uid=uid.strip().upper()).first()
    # what the door holds: the feed's contracts as the server sends them, parsed as the agent does
    credential = credential_from_payload(credential_payload(card)) if card is not None else None
    policy = policy_from_payload(door_policy(now).wire())
    last = _last_passage(card, door, now)
    edge = EdgeState()  # the zone's state for this card, as its readers were told (issue 17, Build 5)
    if card is not None and last is not None:
        edge.record(Verdict(Decision.ALLOW, Reason.OK), card.uid, door, last.at, direction=last.direction)
    modes = emergency_from_payload(emergency_state(revision()[0]).wire())  # issue 17, Build 2
    verdict = decide(credential, door, now, edge, policy=policy, direction=Direction.IN, emergency=modes)
    state = effective(door, now.astimezone(CAMPUS_TZ), policy)
    facts = {_("设备"): f"{device.code} {device.name}（{device.get_kind_display()}）"}
    if card is not None:
        facts[_("卡")] = f"{card.uid}（{card.get_card_type_display()}，{card.get_status_display()}）"
        facts[_("有效期")] = f"{timezone.localtime(card.valid_from):%Y-%m-%d} — " + (
            f"{timezone.localtime(card.valid_until):%Y-%m-%d %H:%M}" if card.valid_until else _("长期")
        )
    facts.update(_policy_facts(state, door))
    if door.passback != "off" and card is not None:
        facts.update(_passback_facts(card, door, last))
    rule, text = _policy_text(verdict.reason, verdict.flags, state, credential, now)
    if verdict.reason == Reason.ANTI_PASSBACK or PASSBACK in verdict.flags:
        rule, text = _passback_text(verdict, door, last)
    if not text:
        text = _text(verdict.reason, card, door)
    return Explanation(
        verdict.reason == Reason.OK,
        verdict.reason.value,
        str(REASONS.label(verdict.reason)),
        text,
        facts,
        rule,
        verdict.flags,
    )


def _last_passage(card: Card | None, door: Door, now: datetime) -> passback.LastPassage | None:
    """The card's last passage in the door's zone that counts now: since the zone's daily reset
    and since its last forgiveness (None: none, or the door checks no anti-passback)."""
    zone = passback.zones().get(door.passback_area) if door.passback != "off" else None
    if card is None or zone is None:
        return None
    since = last_reset(now.astimezone(CAMPUS_TZ), door.passback_reset) if door.passback_reset else now - KEEP
    return passback.last_passage(card.uid, zone, since)


def _direction_word(direction: Direction) -> str:
    return _("进入") if direction == Direction.IN else _("离开")


def _passback_facts(card: Card, door: Door, last: passback.LastPassage | None) -> dict[str, str]:
    if last is None:
        seen = _("最近一次通行：今天（自每日重置起）在该区域没有计入的通行")
    else:
        seen = _("最近一次通行：%(at)s 在 %(device)s %(dir)s") % {
            "at": f"{timezone.localtime(last.at):%Y-%m-%d %H:%M:%S}",
            "device": last.device,
            "dir": _direction_word(last.direction),
        }
    facts = {
        _("防潜回"): _("%(mode)s，区域 %(area)s；%(seen)s（以服务器已收到的通行为准）")
        % {
            "mode": _("硬（拒绝）") if door.passback == "hard" else _("软（放行并标记）"),
            "area": door.passback_area,
            "seen": seen,
        }
    }
    forgiven = passback.last_forgiveness(door.passback_area, card.uid)
    if forgiven is not None:
        facts[_("最近豁免")] = _("%(at)s 由 %(by)s 豁免%(whom)s：%(reason)s") % {
            "at": f"{timezone.localtime(forgiven.at):%Y-%m-%d %H:%M:%S}",
            "by": forgiven.by.username,
            "whom": _("此人") if forgiven.holder_id else _("整个区域"),
            "reason": forgiven.reason,
        }
    return facts


def _passback_text(verdict: Verdict, door: Door, last: passback.LastPassage | None) -> tuple[str, str]:
    if last is None:
        return "", ""
    values = {
        "at": f"{timezone.localtime(last.at):%H:%M:%S}",
        "device": last.device,
        "dir": _direction_word(last.direction),
        "area": door.passback_area,
    }
    if verdict.reason == Reason.ANTI_PASSBACK:
        return _("防潜回"), _(
            "防潜回：此卡 %(at)s 已在 %(device)s %(dir)s防潜回区域“%(area)s”，其后没有反方向的通行记录，"
            "同方向再次通行被拒绝（同一区域的读卡器共享这一状态）。如确属误判（例如随他人出门未刷卡），"
            "保卫处可在“防潜回豁免”页面豁免此人或整个区域。"
        ) % values
    return _("防潜回"), _(
        "此卡可以通行，但此卡 %(at)s 已在 %(device)s %(dir)s防潜回区域“%(area)s”，本次将记为防潜回（软）。"
    ) % values


def _windows(windows: tuple[Window, ...]) -> str:
    return "、".join(f"{a:%H:%M}–{b:%H:%M}" for a, b in windows)


def _day(spec: DaySpec) -> str:
    label = DAY_TYPES.label(spec.day_type) if spec.day_type is not None else ""
    return f"{spec.day:%Y-%m-%d}（{label}）" if label else f"{spec.day:%Y-%m-%d}"


def _source(rule_name: str | None) -> str:
    return _("规则“%(rule)s”") % {"rule": rule_name} if rule_name else _("设备本地配置")


def _policy_facts(state: Effective, door: Door) -> dict[str, str]:
    today = state.today
    facts = {_("今天"): _day(today)}
    if today.schedule is not None:
        opened = _windows(today.schedule) if today.schedule else _("全天关闭")
        name = today.schedule_rule.name if today.schedule_rule else None
        facts[_("开放时段")] = f"{opened}（{_source(name)}）"
    if today.curfew is not None:
        start, end = today.curfew
        mode = _("闭门") if today.curfew_closes else _("晚归")
        name = today.dorm_rule.name if today.dorm_rule else None
        facts[_("晚归/闭门")] = f"{start:%H:%M}–{end:%H:%M} {mode}（{_source(name)}）"
    if today.vacation_closed and today.dorm_rule is not None:
        facts[_("假期闭楼")] = _("学生凭留校名单进入（规则“%(rule)s”）") % {"rule": today.dorm_rule.name}
    if door.passback != "off":
        facts[_("防潜回")] = _(
            "%(mode)s，区域 %(area)s：是否放行还取决于这张卡在该区域最近一次通行的方向（只有读卡器知道）"
        ) % {"mode": _("硬（拒绝）") if door.passback == "hard" else _("软（放行并标记）"), "area": door.passback_area}
    return facts


def _policy_text(
    reason: Reason, flags: tuple[str, ...], state: Effective, credential: Credential | None, now: datetime
) -> tuple[str, str]:
    """(the rule that decided, the sentence naming it) for the door-policy reasons; ("", "")
    for the others."""
    today = state.today
    if reason == Reason.VACATION_CLOSED and today.dorm_rule is not None:
        return today.dorm_rule.name, _(
            "%(day)s 按规则“%(rule)s”假期闭楼：学生只有在留校名单上（且留校期覆盖今天）才能进入本楼。"
            "此卡不在留校名单上，或留校期未覆盖今天；请联系学生工作处办理留校登记。"
        ) % {"day": _day(today), "rule": today.dorm_rule.name}
    if reason == Reason.OUTSIDE_SCHEDULE:
        name = today.schedule_rule.name if today.schedule_rule else ""
        opened = _windows(today.schedule) if today.schedule else _("全天关闭")
        return name or _("设备本地配置"), _(
            "%(day)s 该门按%(source)s的开放时段为 %(open)s，现在（%(now)s）不在其内。"
        ) % {
            "day": _day(today),
            "source": _source(name or None),
            "open": opened,
            "now": f"{state.clock:%H:%M}",
        }
    curfew = state.curfew_now
    if reason == Reason.CURFEW_CLOSED and curfew is not None and curfew.curfew is not None:
        rule = curfew.dorm_rule.name if curfew.dorm_rule else ""
        start, end = curfew.curfew
        return rule, _("按规则“%(rule)s”（%(day)s 起的夜间），%(start)s–%(end)s 宿舍闭门，学生不能进入。") % {
            "rule": rule,
            "day": _day(curfew),
            "start": f"{start:%H:%M}",
            "end": f"{end:%H:%M}",
        }
    if reason == Reason.OK and LATE_RETURN in flags and curfew is not None and curfew.curfew is not None:
        rule = curfew.dorm_rule.name if curfew.dorm_rule else ""
        start, end = curfew.curfew
        return rule or _("设备本地配置"), _(
            "此卡现在可以进入，但在%(source)s的晚归时段 %(start)s–%(end)s 内，记为晚归。"
        ) % {
            "source": _source(rule or None),
            "start": f"{start:%H:%M}",
            "end": f"{end:%H:%M}",
        }
    if reason == Reason.OK and today.vacation_closed and today.dorm_rule is not None:
        if credential is not None and credential.card_type == CardType.STUDENT and on_stay(credential, now):
            return today.dorm_rule.name, _("假期闭楼（规则“%(rule)s”），此卡在留校名单上，可以进入。") % {
                "rule": today.dorm_rule.name
            }
    return "", ""


def _text(reason: Reason, card: Card | None, door: Door) -> str:
    if reason == Reason.OK:
        return _("此卡现在可以在该设备通行。")
    if card is None:
        return _("系统中没有这张卡：可能是未登记的卡、外校卡或复制卡。")
    texts = {
        Reason.LOST: _("此卡已挂失。如已找回，请持身份证到网信中心办理解挂。"),
        Reason.CANCELLED: _("此卡已注销或已补卡作废，永久失效；请使用新卡。"),
        Reason.BLACKLISTED: _("此卡在黑名单中，请联系保卫处。"),
        Reason.LOCKDOWN: _("该处正处于紧急封闭状态（保卫处启动），只有保卫处人员可以通行；由保卫处结束后恢复正常。"),
        Reason.NOT_YET_VALID: _("此卡尚未到生效时间。"),
        Reason.EXPIRED: _("此卡已过有效期；临时卡延期须凭单位函件办理。"),
        Reason.FUNCTION_NOT_ALLOWED: _(
            "此类卡不能在这类设备使用（例如临时卡不能进图书馆或宿舍，宿舍门只对本楼住宿学生开放）。"
        ),
    }
    if reason == Reason.FUNCTION_NOT_ALLOWED and card.card_type == CardType.TEMPORARY:
        return _("临时卡不能进图书馆或宿舍，除非其管理部门“%(owner)s”授权此楼宇或此设备（且授权未到期）。") % {
            "owner": card.owner_department
        }
    allowed = ", ".join(sorted(t.value for t in ALLOWED_TYPES[door.kind]))
    return texts.get(
        reason,
        _("拒绝原因：%(reason)s（该设备允许：%(types)s）") % {"reason": REASONS.label(reason), "types": allowed},
    )
