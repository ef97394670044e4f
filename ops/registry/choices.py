"""The registry's vocabularies: its own as TextChoices, and labels for those it shares with the
edge (defined in ``streams``). Labels are Simplified Chinese, translatable."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Generic, TypeVar

from django.core.exceptions import ImproperlyConfigured
from django.db import models
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from streams.cards import CardStatus, CardType, DeviceKind
from streams.reasons import Decision, Direction, Reason

E = TypeVar("E", bound=StrEnum)


class Labels(Generic[E]):
    """The labels of a vocabulary defined in ``streams``: Django ``choices`` for model fields
    and forms, and the label of a value. Every member needs a label (checked at import)."""

    def __init__(self, vocabulary: type[E], labels: Mapping[E, str | Promise]) -> None:
        missing = [m.value for m in vocabulary if m not in labels]
        if missing:
            raise ImproperlyConfigured(f"{vocabulary.__name__}: no label for {missing}")
        self.vocabulary = vocabulary
        self._labels = dict(labels)

    @property
    def choices(self) -> list[tuple[str, str | Promise]]:
        return [(m.value, self._labels[m]) for m in self.vocabulary]

    def label(self, value: str) -> str:
        """The label of ``value`` in the current language (ValueError if it is not a member)."""
        return str(self._labels[self.vocabulary(value)])


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


# The vocabularies the edge shares with the centre are defined once, in ``streams`` (values
# and member names); here they only get their labels for forms, the admin and the pages.
CARD_TYPES = Labels(
    CardType,
    {
        CardType.STAFF: _("教工卡"),  # R-CARD-1: three card types
        CardType.STUDENT: _("学生卡"),
        CardType.TEMPORARY: _("临时卡"),
    },
)
CARD_STATUSES = Labels(
    CardStatus,
    {
        CardStatus.ACTIVE: _("正常"),
        CardStatus.LOST: _("挂失"),
        CardStatus.REPLACED: _("已补卡作废"),
        CardStatus.CANCELLED: _("已注销"),
    },
)

# A "live" card is one that may still work (active) or come back (lost, then found).
# R-CARD-3: at most one live card per person — enforced by a partial unique index.
LIVE_CARD_STATUSES = (CardStatus.ACTIVE, CardStatus.LOST)

DEVICE_KINDS = Labels(
    DeviceKind,
    {
        DeviceKind.PEDESTRIAN_GATE: _("人行道闸"),
        DeviceKind.VEHICLE_GATE: _("车辆道闸"),
        DeviceKind.DORM_DOOR: _("宿舍门禁"),
        DeviceKind.LIBRARY_READER: _("图书馆读卡器"),
        DeviceKind.DESK_READER: _("桌面读卡器"),
    },
)


class DeviceState(models.TextChoices):
    UNKNOWN = "unknown", _("未上线")
    ONLINE = "online", _("在线")
    FAULT = "fault", _("故障")
    SILENT = "silent", _("静默")


class DeviceApproval(models.TextChoices):
    """Where a device stands with NIC's approval (R-DEV-1, issue 18 Build 2): only an approved
    device holds a key and is trusted; a removed one has its key withdrawn."""

    APPROVED = "approved", _("已批准")
    PENDING = "pending", _("待批准安装")
    REMOVED = "removed", _("已批准拆除")


REASONS = Labels(
    Reason,
    {
        Reason.OK: _("通过"),
        Reason.UNKNOWN_CARD: _("未知卡"),
        Reason.LOST: _("已挂失"),
        Reason.CANCELLED: _("已注销"),
        Reason.EXPIRED: _("已过期"),
        Reason.NOT_YET_VALID: _("未到生效期"),
        Reason.BLACKLISTED: _("黑名单"),
        Reason.FUNCTION_NOT_ALLOWED: _("无此功能权限"),
        Reason.ANTI_PASSBACK: _("防潜回"),
        Reason.OUTSIDE_SCHEDULE: _("不在允许时段"),
        Reason.CURFEW_CLOSED: _("宿舍已闭门"),
        Reason.VACATION_CLOSED: _("假期闭楼"),
        Reason.LOCKDOWN: _("紧急封闭"),  # issue 17, Build 2
    },
)
DECISIONS = Labels(Decision, {Decision.ALLOW: _("允许"), Decision.DENY: _("拒绝")})
DIRECTIONS = Labels(Direction, {Direction.IN: _("进"), Direction.OUT: _("出"), Direction.NONE: _("—")})
