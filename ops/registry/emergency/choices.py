"""Emergency modes' vocabularies (issue 17, Build 2), with their labels."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

OBJECT_TYPE = "emergency_mode"
LIVE_GROUP = "live.emergency"  # every desk's banner listens here (dashboard.emergency_feed)
REASON_MAX = 200


class Kind(models.TextChoices):
    LOCKDOWN = "lockdown", _("封闭（仅保卫人员通行）")
    UNLOCK_ALL = "unlock_all", _("全部开门（疏散）")


class Scope(models.TextChoices):
    CAMPUS = "campus", _("全校")
    BUILDING = "building", _("楼宇")
    GROUP = "group", _("门禁组")


class Status(models.TextChoices):
    PENDING = "pending", _("待第二人批准")
    ACTIVE = "active", _("生效中")
    ENDED = "ended", _("已结束")
    WITHDRAWN = "withdrawn", _("已撤回")


LIVE_STATUSES = (Status.PENDING, Status.ACTIVE)


class AuditAction(models.TextChoices):
    REQUEST = "emergency.request", _("申请紧急模式（待批准）")
    START = "emergency.start", _("启动紧急模式")
    APPROVE = "emergency.approve", _("批准紧急模式")
    END = "emergency.end", _("结束紧急模式")
    WITHDRAW = "emergency.withdraw", _("撤回紧急模式申请")
    REFUSED = "emergency.refused", _("紧急模式操作被拒绝")
    PUBLISH = "emergency.publish", _("紧急模式下发读卡器")
