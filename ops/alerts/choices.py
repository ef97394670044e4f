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
    # the supervisor's scheduled work (issue 16, Build 4): backups, audit purge, reminders
    JOB_FAILED = "job_failed", _("定时任务失败")
    JOB_MISSED = "job_missed", _("定时任务逾期未成功运行")
    JULY_RUN_DUE = "july_run_due", _("七月毕业生注销即将到期")
    TEMP_CARD_EXPIRING = "temp_card_expiring", _("临时卡即将到期")
    # issue 17: the agent's door inputs (Build 4) and the revocation tracker (Build 6, R-USE-1)
    DOOR_FORCED = "door_forced", _("门被强行打开")
    DOOR_HELD_OPEN = "door_held_open", _("门开启超时未关")
    REVOCATION_MISSING = "revocation_missing", _("读卡器未收到挂失/注销")
    # issue 20: a signed message dated beyond the allowed clock skew (refused, not stored)
    CLOCK_SKEW = "clock_skew", _("设备时钟偏差过大（报文被拒收）")
    # issue 18, Build 2 (R-DEV-1, R-DEV-2): a heartbeat from another address or site than approved
    DEVICE_MOVED = "device_moved", _("设备未经批准移位")


# Kinds that describe a condition which holds until it clears (a device silent, in fault, behind
# on credentials). The others are momentary: each occurrence is a new event.
CONDITION_KINDS = frozenset(
    {
        AlertKind.UPLOAD_STOPPED,
        AlertKind.DEVICE_FAULT,
        AlertKind.TAMPER,
        AlertKind.CREDENTIAL_LAG,
        AlertKind.JOB_FAILED,  # until the job succeeds again
        AlertKind.JOB_MISSED,
        AlertKind.DOOR_FORCED,  # until the door is closed again
        AlertKind.DOOR_HELD_OPEN,
        AlertKind.REVOCATION_MISSING,  # until the reader reports the revocation's version
        AlertKind.DEVICE_MOVED,  # until it reports from its approved place again (or a move is approved)
    }
)

# Condition alerts the system closes itself once their condition has cleared and stayed clear
# (issue 19: a desk whose recovered alerts never close grows without end). Not a tamper switch
# or a forced door: somebody was at the device, a person looks (R-DEV-3: who pays for it).
SELF_RESOLVING_KINDS = CONDITION_KINDS - {AlertKind.TAMPER, AlertKind.DOOR_FORCED, AlertKind.DEVICE_MOVED}

# What a department is told about its own cards (R-CARD-7: the approving department manages its
# temporary cards), by the notification rules that name it; not on NIC's device desk.
DEPARTMENT_KINDS = frozenset({AlertKind.TEMP_CARD_EXPIRING})


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


class RepairState(models.TextChoices):
    """A repair ticket's life (issue 18, Build 1; R-DEV-3, R-DEV-4): a department reports a fault
    of its device (or NIC opens the ticket from an alert), NIC accepts it and decides the cause —
    the vendor repairs a non-human fault free, the responsible person pays a human one at the
    market price — then it is repaired, verified and closed. The transitions: ``ops.alerts.repairs``."""

    REPORTED = "reported", _("已报修")
    ACCEPTED = "accepted", _("已受理")
    WITH_VENDOR = "with_vendor", _("厂商维修中")
    CHARGED = "charged", _("责任人赔偿")
    REPAIRED = "repaired", _("已修复")
    VERIFIED = "verified", _("已验收")
    CLOSED = "closed", _("已关闭")
    REJECTED = "rejected", _("已驳回")


# -- notifications (issue 16) ------------------------------------------------------------------


class ChannelKind(models.TextChoices):
    """Where a notification goes. The robots' documented formats are in docs/notifications.md."""

    EMAIL = "email", _("电子邮件（SMTP）")
    WECOM = "wecom", _("企业微信群机器人")
    DINGTALK = "dingtalk", _("钉钉群机器人（加签）")
    WEBHOOK = "webhook", _("通用 HTTP 回调（短信网关等）")


# The robots accept 20 messages a minute each; more and they refuse (DingTalk then blocks the
# robot for 10 minutes). A channel's own limit may be lower, never higher.
ROBOT_KINDS = frozenset({ChannelKind.WECOM, ChannelKind.DINGTALK})
ROBOT_MAX_PER_MINUTE = 20


class GroupBy(models.TextChoices):
    """What makes alerts one group, as Alertmanager's ``group_by``: one message per group per
    window."""

    KIND_BUILDING = "kind_building", _("类型 + 楼宇")
    KIND = "kind", _("类型")
    BUILDING = "building", _("楼宇")
    DEPARTMENT = "department", _("设备所属部门")
    ALERT = "alert", _("不分组（每条告警一条消息）")


class NotificationStatus(models.TextChoices):
    PENDING = "pending", _("等待发送")
    RETRYING = "retrying", _("等待重试")
    SENT = "sent", _("已发送")
    FAILED = "failed", _("发送失败")
    CANCELLED = "cancelled", _("已取消（告警已确认或解决）")


class DeliveryStatus(models.TextChoices):
    """One attempt to deliver a message, as the delivery log shows it."""

    SENT = "sent", _("已发送")
    RETRYING = "retrying", _("失败，将重试")
    FAILED = "failed", _("失败，不再重试")
