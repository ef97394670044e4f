"""Statuses and kinds as TextChoices (labels in Simplified Chinese, translatable)."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from streams import cards
from streams.reasons import Decision, Direction, Reason


class HolderKind(models.TextChoices):
    """R-ROLE-1: who may hold a card."""

    STUDENT = "student", _("学生")
    STAFF = "staff", _("教职工")
    EXTERNAL = "external", _("外聘人员")
    SHORT_TERM = "short_term", _("短期服务人员")
    CONTRACTOR = "contractor", _("物业外包人员")
    MERCHANT = "merchant", _("商户")


class HolderStatus(models.TextChoices):
    ACTIVE = "active", _("在校/在职")
    GRADUATED = "graduated", _("已毕业")
    WITHDRAWN = "withdrawn", _("已退学")
    RETIRED = "retired", _("已退休")  # R-END-2: retired staff keep their card
    LEFT = "left", _("已离校/离职")


class CardType(models.TextChoices):
    """R-CARD-1: three card types."""

    STAFF = cards.CardType.STAFF, _("教工卡")
    STUDENT = cards.CardType.STUDENT, _("学生卡")
    TEMPORARY = cards.CardType.TEMPORARY, _("临时卡")


class CardStatus(models.TextChoices):
    ACTIVE = cards.CardStatus.ACTIVE, _("正常")
    LOST = cards.CardStatus.LOST, _("挂失")
    REPLACED = cards.CardStatus.REPLACED, _("已补卡作废")
    CANCELLED = cards.CardStatus.CANCELLED, _("已注销")


# A "live" card is one that may still work (active) or come back (lost, then found).
# R-CARD-3: at most one live card per person — enforced by a partial unique index.
LIVE_CARD_STATUSES = (CardStatus.ACTIVE, CardStatus.LOST)


class DeviceKind(models.TextChoices):
    PEDESTRIAN_GATE = cards.DeviceKind.PEDESTRIAN_GATE, _("人行道闸")
    VEHICLE_GATE = cards.DeviceKind.VEHICLE_GATE, _("车辆道闸")
    DORM_DOOR = cards.DeviceKind.DORM_DOOR, _("宿舍门禁")
    LIBRARY_READER = cards.DeviceKind.LIBRARY_READER, _("图书馆读卡器")
    DESK_READER = cards.DeviceKind.DESK_READER, _("桌面读卡器")


GATE_KINDS = (DeviceKind.PEDESTRIAN_GATE, DeviceKind.VEHICLE_GATE)


class DeviceState(models.TextChoices):
    UNKNOWN = "unknown", _("未上线")
    ONLINE = "online", _("在线")
    FAULT = "fault", _("故障")
    SILENT = "silent", _("静默")


class ReasonChoice(models.TextChoices):
    OK = Reason.OK, _("通过")
    UNKNOWN_CARD = Reason.UNKNOWN_CARD, _("未知卡")
    LOST = Reason.LOST, _("已挂失")
    CANCELLED = Reason.CANCELLED, _("已注销")
    EXPIRED = Reason.EXPIRED, _("已过期")
    NOT_YET_VALID = Reason.NOT_YET_VALID, _("未到生效期")
    BLACKLISTED = Reason.BLACKLISTED, _("黑名单")
    FUNCTION_NOT_ALLOWED = Reason.FUNCTION_NOT_ALLOWED, _("无此功能权限")
    ANTI_PASSBACK = Reason.ANTI_PASSBACK, _("防潜回")
    OUTSIDE_SCHEDULE = Reason.OUTSIDE_SCHEDULE, _("不在允许时段")


class DecisionChoice(models.TextChoices):
    ALLOW = Decision.ALLOW, _("允许")
    DENY = Decision.DENY, _("拒绝")


class DirectionChoice(models.TextChoices):
    IN = Direction.IN, _("进")
    OUT = Direction.OUT, _("出")
    NONE = Direction.NONE, _("—")
