""" "Why was this card denied here?" — the help desk runs the very ``decide()`` the readers run,
on the current data, and explains the answer in the operator's words."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone
from django.utils.translation import gettext as _

from ops.registry.choices import REASONS
from ops.registry.lifecycle.outbox import credential_payload
from ops.registry.models import Card, Device
from readers.agent.cache import credential_from_payload
from readers.decide import ALLOWED_TYPES, Door, decide
from streams.cards import CardType, DeviceKind
from streams.reasons import Reason


@dataclass(frozen=True)
class Explanation:
    allowed: bool
    reason: str
    reason_label: str
    text: str
    facts: dict[str, str]


def explain(*, uid: str, device_code: str, now: datetime | None = None) -> Explanation:
    now = now or timezone.now()
    device = Device.objects.select_related("building").filter(code=device_code).first()
    if device is None:
        raise LookupError(_("没有编号为 %(code)s 的设备") % {"code": device_code})
    door = Door(device.code, DeviceKind(device.kind), building=device.building.code if device.building else None)
    card = Card.objects.select_related("holder", "holder__dorm_building").filter(uid=uid.strip().upper()).first()
    # what the door holds: the feed's contract as the server sends it, parsed as the agent does
    credential = credential_from_payload(credential_payload(card)) if card is not None else None
    verdict = decide(credential, door, now)
    facts = {_("设备"): f"{device.code} {device.name}（{device.get_kind_display()}）"}
    if card is not None:
        facts[_("卡")] = f"{card.uid}（{card.get_card_type_display()}，{card.get_status_display()}）"
        facts[_("有效期")] = f"{timezone.localtime(card.valid_from):%Y-%m-%d} — " + (
            f"{timezone.localtime(card.valid_until):%Y-%m-%d %H:%M}" if card.valid_until else _("长期")
        )
    return Explanation(
        verdict.reason == Reason.OK,
        verdict.reason.value,
        str(REASONS.label(verdict.reason)),
        _text(verdict.reason, card, door),
        facts,
    )


def _text(reason: Reason, card: Card | None, door: Door) -> str:
    if reason == Reason.OK:
        return _("此卡现在可以在该设备通行。")
    if card is None:
        return _("系统中没有这张卡：可能是未登记的卡、外校卡或复制卡。")
    texts = {
        Reason.LOST: _("此卡已挂失。如已找回，请持身份证到网信中心办理解挂。"),
        Reason.CANCELLED: _("此卡已注销或已补卡作废，永久失效；请使用新卡。"),
        Reason.BLACKLISTED: _("此卡在黑名单中，请联系保卫处。"),
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
