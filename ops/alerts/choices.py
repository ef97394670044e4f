"""Alerts' vocabularies: kinds (and which are conditions, which the security office works),
severities, statuses, timeline actions, repair causes."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class AlertKind(models.TextChoices):
    UNKNOWN_DEVICE = "unknown_device", _("未登记设备")
    BAD_SIGNATURE = "bad_signature", _("签名无效（伪造报文）")
    REPLAY = "replay", _("重放报文")
    SEQUENCE_GAP = "sequence_gap", _("报文序号缺失")
    DUPLICATE_DEVICE = "duplicate_device", _("同一设备号在两处同时上传")
    UPLOAD_STOPPED = "upload_stopped", _("设备停止上传")
    TAMPER = "tamper", _("设备被拆/被撬")
    DEVICE_FAULT = "device_fault", _("设备故障")
    CLONE_SUSPECTED = "clone_suspected", _("疑似克隆卡")
    OLD_CARD_USED = "old_card_used", _("已补卡的旧卡仍在使用")
    BLACKLIST_HIT = "blacklist_hit", _("黑名单卡刷卡")
    CREDENTIAL_LAG = "credential_lag", _("设备未及时收到凭证变更（如挂失）")
    PASSBACK_VIOLATION = "passback_violation", _("防潜回违规")
    FORGED_CREDENTIAL = "forged_credential", _("读卡器拒收伪造的凭证数据")


# Kinds that describe a condition which holds until it clears (a device silent, in fault, behind
# on credentials). The others are momentary: each occurrence is a new event.
CONDITION_KINDS = frozenset(
    {AlertKind.UPLOAD_STOPPED, AlertKind.DEVICE_FAULT, AlertKind.TAMPER, AlertKind.CREDENTIAL_LAG}
)


# What the security office works (R-OPS-2, R-SEC-5); the rest is NIC's (R-OPS-3).
SECURITY_KINDS = frozenset(
    {AlertKind.BLACKLIST_HIT, AlertKind.CLONE_SUSPECTED, AlertKind.OLD_CARD_USED, AlertKind.PASSBACK_VIOLATION}
)


class Severity(models.TextChoices):
    INFO = "info", _("提示")
    WARNING = "warning", _("警告")
    CRITICAL = "critical", _("严重")


class AlertStatus(models.TextChoices):
    OPEN = "open", _("未处理")
    ACKNOWLEDGED = "acknowledged", _("已确认")
    RESOLVED = "resolved", _("已解决")


class LogAction(models.TextChoices):
    RAISED = "raised", _("产生")
    CLEARED = "cleared", _("条件消除")
    REFIRED = "refired", _("复发")
    LAPSED = "lapsed", _("确认失效（复发）")
    FLAPPING = "flapping", _("判定为抖动，抑制通知")
    STABLE = "stable", _("恢复稳定")
    ESCALATED = "escalated", _("超时未确认，已升级")
    ACKNOWLEDGED = "acknowledged", _("确认")
    ASSIGNED = "assigned", _("指派")
    TICKET = "ticket", _("开维修单")
    RESOLVED = "resolved", _("解决")


class RepairCause(models.TextChoices):
    """R-DEV-3: non-human faults are repaired by the vendor for free; human damage is paid by the
    responsible person at the market price."""

    NON_HUMAN = "non_human", _("非人为（厂商免费维修）")
    HUMAN = "human", _("人为损坏（责任人按市价赔偿）")
