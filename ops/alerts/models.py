"""Alerts: device supervision (R-DEV-2), security (R-SEC-5) and faults (R-DEV-3). One open
alert per (kind, device/card): repeats increase its count instead of flooding the desk."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
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


class Severity(models.TextChoices):
    INFO = "info", _("提示")
    WARNING = "warning", _("警告")
    CRITICAL = "critical", _("严重")


class AlertStatus(models.TextChoices):
    OPEN = "open", _("未处理")
    ACKNOWLEDGED = "acknowledged", _("已确认")
    RESOLVED = "resolved", _("已解决")


class Alert(models.Model):
    kind = models.CharField(_("类型"), max_length=24, choices=AlertKind.choices)
    severity = models.CharField(_("级别"), max_length=10, choices=Severity.choices)
    status = models.CharField(_("状态"), max_length=14, choices=AlertStatus.choices,
                              default=AlertStatus.OPEN)
    subject = models.CharField(_("对象"), max_length=64, help_text=_("设备编号或卡号"))
    device = models.ForeignKey("campus.Device", verbose_name=_("设备"), null=True, blank=True,
                               on_delete=models.SET_NULL, related_name="alerts")
    first_at = models.DateTimeField(_("首次发生"))
    last_at = models.DateTimeField(_("最近发生"))
    count = models.PositiveIntegerField(_("次数"), default=1)
    detail = models.JSONField(_("详情"), default=dict)

    class Meta:
        verbose_name = _("告警")
        verbose_name_plural = _("告警")
        ordering = ["-last_at"]
        constraints = [
            models.UniqueConstraint(fields=["kind", "subject"],
                                    condition=~Q(status="resolved"), name="one_open_alert"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.subject} ×{self.count}"
