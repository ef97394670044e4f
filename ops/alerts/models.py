"""Alerts: device supervision (R-DEV-2), security (R-SEC-5) and faults (R-DEV-3). One open
alert per (kind, device/card): repeats increase its count instead of flooding the desk."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from ops.alerts.choices import AlertKind, AlertStatus, LogAction, RepairCause, Severity


class Alert(models.Model):
    kind = models.CharField(_("类型"), max_length=24, choices=AlertKind.choices)
    severity = models.CharField(_("级别"), max_length=10, choices=Severity.choices)
    status = models.CharField(_("状态"), max_length=14, choices=AlertStatus.choices, default=AlertStatus.OPEN)
    subject = models.CharField(_("对象"), max_length=64, help_text=_("设备编号或卡号"))
    device = models.ForeignKey(
        "campus.Device", verbose_name=_("设备"), null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts"
    )
    first_at = models.DateTimeField(_("首次发生"))
    last_at = models.DateTimeField(_("最近发生"))
    count = models.PositiveIntegerField(_("次数"), default=1)
    detail = models.JSONField(_("详情"), default=dict)
    building = models.ForeignKey(
        "campus.Building", verbose_name=_("楼宇"), null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # workflow (R-OPS-3): opened → acknowledged (with a comment) → resolved; an acknowledgement
    # lapses when the fault comes back; unacknowledged alerts escalate
    opened_at = models.DateTimeField(
        _("进入未处理"), null=True, blank=True, help_text=_("首次发生或确认失效的时间（计算确认时长和升级）")
    )
    cleared_at = models.DateTimeField(
        _("条件消除于"), null=True, blank=True, help_text=_("设备恢复心跳或故障消除的时间；再次发生即“复发”")
    )
    acknowledged_at = models.DateTimeField(_("确认时间"), null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("确认人"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    ack_comment = models.CharField(_("确认说明"), max_length=200, blank=True)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("处理人"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    resolved_at = models.DateTimeField(_("解决时间"), null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("解决人"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    resolution = models.CharField(_("处理结果"), max_length=200, blank=True)
    escalation = models.PositiveSmallIntegerField(_("升级级别"), default=0)
    escalated_at = models.DateTimeField(_("升级时间"), null=True, blank=True)
    lapses = models.PositiveIntegerField(_("确认失效次数"), default=0)
    refires = models.JSONField(_("复发时间"), default=list, blank=True, help_text=_("近期复发的时间戳（判断抖动）"))
    flapping = models.BooleanField(_("抖动中"), default=False)

    class Meta:
        verbose_name = _("告警")
        verbose_name_plural = _("告警")
        ordering = ["-last_at"]
        constraints = [
            models.UniqueConstraint(fields=["kind", "subject"], condition=~Q(status="resolved"), name="one_open_alert"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.subject} ×{self.count}"


class AlertLog(models.Model):
    """The alert's timeline: every change of its state, by whom, with the comment."""

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="log")
    at = models.DateTimeField(_("时间"))
    action = models.CharField(_("动作"), max_length=14, choices=LogAction.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("操作员"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    comment = models.CharField(_("说明"), max_length=200, blank=True)
    seconds = models.FloatField(
        _("用时（秒）"), null=True, blank=True, help_text=_("确认：自进入未处理起；解决：自首次发生起")
    )

    class Meta:
        verbose_name = _("告警处理记录")
        verbose_name_plural = _("告警处理记录")
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["action", "at"])]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.get_action_display()}"


class RepairTicket(models.Model):
    device = models.ForeignKey(
        "campus.Device", verbose_name=_("设备"), on_delete=models.PROTECT, related_name="repairs"
    )
    alert = models.ForeignKey(
        Alert, verbose_name=_("告警"), null=True, blank=True, on_delete=models.SET_NULL, related_name="tickets"
    )
    cause = models.CharField(_("原因"), max_length=10, choices=RepairCause.choices)
    description = models.CharField(_("故障描述"), max_length=200)
    vendor = models.CharField(_("维修厂商"), max_length=100, blank=True)
    responsible = models.ForeignKey(
        "campus.Cardholder", verbose_name=_("责任人"), null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    price = models.DecimalField(_("赔偿金额（元）"), max_digits=8, decimal_places=2, default=0)
    fee = models.OneToOneField(
        "cards.FeeCharge",
        verbose_name=_("收费流水"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="repair",
    )
    opened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("开单人"), on_delete=models.PROTECT, related_name="+"
    )
    opened_at = models.DateTimeField(_("开单时间"))

    class Meta:
        verbose_name = _("维修单")
        verbose_name_plural = _("维修单")
        ordering = ["-opened_at"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(cause="human", responsible__isnull=False, price__gt=0) | Q(cause="non_human", price=0)),
                name="repair_cause_rules",
            ),  # R-DEV-3
        ]

    def __str__(self) -> str:
        return f"{self.device_id} {self.get_cause_display()}"
