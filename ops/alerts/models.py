"""Alerts: device supervision (R-DEV-2), security (R-SEC-5) and faults (R-DEV-3). One open
alert per (kind, device/card): repeats increase its count instead of flooding the desk."""

from __future__ import annotations

import datetime as dt
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from ops.alerts.choices import (
    ROBOT_KINDS,
    ROBOT_MAX_PER_MINUTE,
    AlertKind,
    AlertStatus,
    ChannelKind,
    DeliveryStatus,
    GroupBy,
    LogAction,
    NotificationStatus,
    RepairCause,
    RepairState,
    Severity,
)


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
    # the department it is about when no device names one: a temporary card's owning department
    # (R-CARD-7); notification rules that name a department reach it (issue 16, Build 4)
    department = models.ForeignKey(
        "campus.Department",
        verbose_name=_("所属部门"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
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
    # blank while a department's request waits for NIC to decide the cause (issue 18, Build 1)
    cause = models.CharField(_("原因"), max_length=10, choices=RepairCause.choices, blank=True)
    description = models.CharField(_("故障描述"), max_length=200)
    # issue 18, Build 1: the workflow's state — changed only by ops.alerts.repairs.transition
    state = models.CharField(
        _("状态"), max_length=12, choices=RepairState.choices, default=RepairState.REPORTED, editable=False
    )
    reporter_department = models.ForeignKey(
        "campus.Department",
        verbose_name=_("报修部门"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    photo_sha256 = models.CharField(_("故障照片"), max_length=64, blank=True, editable=False)
    accepted_at = models.DateTimeField(_("受理时间"), null=True, blank=True, editable=False)
    repaired_at = models.DateTimeField(_("修复时间"), null=True, blank=True, editable=False)
    closed_at = models.DateTimeField(_("关闭时间"), null=True, blank=True, editable=False)
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
                condition=(
                    Q(cause="human", responsible__isnull=False, price__gt=0)
                    | Q(cause="non_human", price=0)
                    | Q(cause="", price=0, responsible__isnull=True)
                ),
                name="repair_cause_rules",
            ),  # R-DEV-3; no cause yet: reported or accepted, nothing charged
            models.CheckConstraint(
                condition=~Q(cause="") | Q(state__in=["reported", "accepted", "rejected"]),
                name="repair_cause_before_work",
            ),
        ]
        indexes = [models.Index(fields=["state", "opened_at"])]

    def __str__(self) -> str:
        return str(_("维修单 #%(n)s %(device)s") % {"n": self.pk, "device": self.device.code})


class RepairStep(models.Model):
    """One transition of a repair ticket (issue 18, Build 1): who, when, from and to which
    state, and a note — the department's page shows them, NIC's queue counts the time."""

    ticket = models.ForeignKey(RepairTicket, verbose_name=_("维修单"), on_delete=models.CASCADE, related_name="steps")
    at = models.DateTimeField(_("时间"))
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("操作人"), on_delete=models.PROTECT, related_name="+"
    )
    from_state = models.CharField(_("原状态"), max_length=12, choices=RepairState.choices, blank=True)
    to_state = models.CharField(_("新状态"), max_length=12, choices=RepairState.choices)
    comment = models.CharField(_("说明"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("维修进度")
        verbose_name_plural = _("维修进度")
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.get_to_state_display()}"


# -- notifications (issue 16): who is told about an alert, how, and what happened ---------------


class NotificationChannel(models.Model):
    """Where a notification goes: a set of mailboxes (SMTP), one WeCom or DingTalk group robot,
    or one HTTP webhook (an SMS gateway). The token and secret are write-only in the admin; a
    value ``env:NAME`` is read from the environment at send time, so the database need not hold
    it (docs/notifications.md)."""

    name = models.CharField(_("名称"), max_length=64, unique=True)
    kind = models.CharField(_("类型"), max_length=10, choices=ChannelKind.choices)
    address = models.CharField(
        _("地址"),
        max_length=500,
        blank=True,
        help_text=_(
            "机器人：接口地址，留空为官方地址；通用回调：完整 URL；电子邮件：除收件人本人外另发的邮箱，逗号分隔"
        ),
    )
    token = models.CharField(
        _("机器人 key / access_token"),
        max_length=300,
        blank=True,
        help_text=_("企业微信的 key、钉钉的 access_token。保存后不再显示；可填 env:变量名，发送时从环境变量读取"),
    )
    secret = models.CharField(
        _("签名密钥"),
        max_length=300,
        blank=True,
        help_text=_("钉钉“加签”的 SEC 密钥；通用回调的 HMAC-SHA256 密钥。保存后不再显示；可填 env:变量名"),
    )
    rate_per_minute = models.PositiveSmallIntegerField(
        _("每分钟最多条数"), default=ROBOT_MAX_PER_MINUTE, help_text=_("机器人最多 20；0 为不限（仅邮件和通用回调）")
    )
    enabled = models.BooleanField(_("启用"), default=True)

    OFFICIAL = {
        ChannelKind.WECOM: "https://qyapi.weixin.qq.com/cgi-bin/webhook/send",
        ChannelKind.DINGTALK: "https://oapi.dingtalk.com/robot/send",
    }
    TOKEN_PARAM = {ChannelKind.WECOM: "key", ChannelKind.DINGTALK: "access_token"}

    class Meta:
        verbose_name = _("通知渠道")
        verbose_name_plural = _("通知渠道")
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(kind__in=sorted(k.value for k in ROBOT_KINDS))
                | Q(rate_per_minute__gte=1, rate_per_minute__lte=ROBOT_MAX_PER_MINUTE),
                name="robot_rate_within_its_limit",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name}（{self.get_kind_display()}）"

    def clean(self) -> None:
        self.address = self.address.strip()
        if self.kind in self.TOKEN_PARAM and self.address:
            # A robot's address pasted whole (…/send?key=…): the key goes to the write-only field
            # so it is never shown on the page again.
            parts = urlsplit(self.address)
            query = parse_qsl(parts.query)
            param = self.TOKEN_PARAM[ChannelKind(self.kind)]
            found = [v for k, v in query if k == param]
            if found:
                self.token = found[0]
                rest = urlencode([(k, v) for k, v in query if k != param])
                self.address = urlunsplit((parts.scheme, parts.netloc, parts.path, rest, ""))
        if self.kind == ChannelKind.EMAIL:
            for address in self.emails():
                try:
                    validate_email(address)
                except ValidationError:
                    raise ValidationError({"address": _("不是有效的邮箱：%(a)s") % {"a": address}}) from None
        else:
            url = self.address or self.OFFICIAL.get(ChannelKind(self.kind), "")
            if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc:
                raise ValidationError({"address": _("请填写 http(s):// 开头的地址")})
        if self.kind in ROBOT_KINDS:
            if not self.token:
                raise ValidationError({"token": _("机器人需要 key / access_token")})
            if not 1 <= self.rate_per_minute <= ROBOT_MAX_PER_MINUTE:
                raise ValidationError({"rate_per_minute": _("机器人每分钟最多 20 条")})
        if self.kind == ChannelKind.DINGTALK and not self.secret:
            raise ValidationError({"secret": _("钉钉机器人请开启“加签”并填写 SEC 开头的密钥")})

    def emails(self) -> list[str]:
        return [a.strip() for a in self.address.replace(";", ",").split(",") if a.strip()]

    def endpoint(self) -> str:
        return self.address or self.OFFICIAL.get(ChannelKind(self.kind), "")


class DutyRoster(models.Model):
    """A duty roster (值班表): who is on duty when. A rule that names it notifies whoever is on
    duty at the moment the message goes out."""

    name = models.CharField(_("名称"), max_length=64, unique=True)
    description = models.CharField(_("说明"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("值班表")
        verbose_name_plural = _("值班表")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


WEEKDAYS = "1234567"  # ISO weekdays, Monday = 1


def _validate_weekdays(value: str) -> None:
    if not value or any(c not in WEEKDAYS for c in value):
        raise ValidationError(_("星期用数字 1–7 表示（1 为星期一），如 12345"))


class DutyShift(models.Model):
    """One operator on a roster on some weekdays between two times of day (local time; a
    shift may run past midnight, e.g. 22:00–08:00, and then belongs to the day it starts)."""

    roster = models.ForeignKey(DutyRoster, on_delete=models.CASCADE, related_name="shifts")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("值班人"), on_delete=models.CASCADE, related_name="+"
    )
    weekdays = models.CharField(_("星期"), max_length=7, default=WEEKDAYS, validators=[_validate_weekdays])
    start = models.TimeField(_("开始"), default=dt.time(0, 0))
    end = models.TimeField(_("结束"), default=dt.time(0, 0), help_text=_("与开始相同表示全天"))

    class Meta:
        verbose_name = _("值班班次")
        verbose_name_plural = _("值班班次")

    def __str__(self) -> str:
        return f"{self.roster} {self.weekdays} {self.start:%H:%M}–{self.end:%H:%M}"

    def covers(self, local: dt.datetime) -> bool:
        """Is ``local`` (a local wall-clock time) within this shift?"""
        t, day = local.time(), str(local.isoweekday())
        yesterday = str((local - dt.timedelta(days=1)).isoweekday())
        if self.start == self.end:
            return day in self.weekdays
        if self.start < self.end:
            return day in self.weekdays and self.start <= t < self.end
        # past midnight: the evening part on its own day, the morning part on the next
        return (day in self.weekdays and t >= self.start) or (yesterday in self.weekdays and t < self.end)


class RoutingRule(models.Model):
    """Which alerts go to whom and how (issue 16): alert kinds × the lowest severity × building
    or the device's owning department (R-DEV-4) → channels and recipients (operators, duty
    rosters). ``level`` 0 tells at once (after the group window); a higher level is the
    escalation: it tells its recipients when the alert is still unacknowledged ``delay_s``
    after it opened (or, without a delay, once the alert itself has escalated that far —
    ``ALERT_ESCALATE_*``)."""

    name = models.CharField(_("名称"), max_length=64, unique=True)
    enabled = models.BooleanField(_("启用"), default=True)
    kinds = models.JSONField(_("告警类型"), default=list, blank=True, help_text=_("不选为全部类型"))
    min_severity = models.CharField(_("最低级别"), max_length=10, choices=Severity.choices, default=Severity.INFO)
    buildings = models.ManyToManyField(
        "campus.Building", verbose_name=_("楼宇"), blank=True, related_name="+", help_text=_("不选为全部楼宇")
    )
    owner_departments = models.ManyToManyField(
        "campus.Department",
        verbose_name=_("设备所属部门"),
        blank=True,
        related_name="+",
        help_text=_("不选为全部部门（R-DEV-4：谁使用谁负责）"),
    )
    level = models.PositiveSmallIntegerField(_("通知级别"), default=0, help_text=_("0 为首次通知，1、2 为升级通知"))
    delay_s = models.PositiveIntegerField(
        _("未确认多久后通知（秒）"),
        null=True,
        blank=True,
        help_text=_("自告警进入未处理起；留空：级别 0 立即，升级级别随告警本身的升级时间"),
    )
    group_by = models.CharField(_("分组方式"), max_length=16, choices=GroupBy.choices, default=GroupBy.KIND_BUILDING)
    group_window_s = models.PositiveIntegerField(
        _("分组窗口（秒）"), default=60, help_text=_("同组告警在窗口内合并为一条消息；0 为不等待")
    )
    channels = models.ManyToManyField(NotificationChannel, verbose_name=_("通知渠道"), related_name="rules")
    operators = models.ManyToManyField(
        settings.AUTH_USER_MODEL, verbose_name=_("通知的操作员"), blank=True, related_name="+"
    )
    rosters = models.ManyToManyField(
        DutyRoster, verbose_name=_("通知的值班表"), blank=True, related_name="rules", help_text=_("发送时在班的人")
    )
    # issue 18, Build 1: a rule naming owning departments also tells them each step of their
    # devices' repair tickets (ops.alerts.repairs)
    repair_steps = models.BooleanField(
        _("通知维修进度"),
        default=True,
        help_text=_("规则选了设备所属部门时，也把这些部门设备维修单的每一步通知出去"),
    )

    class Meta:
        verbose_name = _("通知规则")
        verbose_name_plural = _("通知规则")
        ordering = ["level", "name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        unknown = [k for k in self.kinds or [] if k not in AlertKind.values]
        if not isinstance(self.kinds, list) or unknown:
            raise ValidationError({"kinds": _("未知的告警类型：%(k)s") % {"k": ", ".join(map(str, unknown))}})


class Notification(models.Model):
    """One message to one channel: the alerts of one group (rule × channel × group key) that
    arrived within the group window. Written by ``campuscard supervise``; sent, retried with
    backoff and logged (``DeliveryAttempt``) there, never in the processor."""

    rule = models.ForeignKey(
        RoutingRule, verbose_name=_("通知规则"), null=True, on_delete=models.SET_NULL, related_name="notifications"
    )
    channel = models.ForeignKey(
        NotificationChannel,
        verbose_name=_("通知渠道"),
        null=True,
        on_delete=models.SET_NULL,
        related_name="notifications",
    )
    rule_name = models.CharField(_("规则"), max_length=64)
    channel_name = models.CharField(_("渠道"), max_length=64)
    level = models.PositiveSmallIntegerField(_("通知级别"), default=0)
    group_key = models.CharField(_("分组"), max_length=200)
    alerts = models.ManyToManyField(Alert, through="NotificationItem", related_name="notifications")
    opened_at = models.DateTimeField(_("开始收集"))
    due_at = models.DateTimeField(_("窗口结束"))
    next_at = models.DateTimeField(_("下次尝试"))
    status = models.CharField(
        _("状态"), max_length=10, choices=NotificationStatus.choices, default=NotificationStatus.PENDING
    )
    attempts = models.PositiveSmallIntegerField(_("尝试次数"), default=0)
    claimed_until = models.DateTimeField(null=True, blank=True)  # a supervisor is sending it
    sent_at = models.DateTimeField(_("发送时间"), null=True, blank=True)
    # issue 18, Build 1: a repair ticket's step told to its department (no alerts in it)
    repair_step = models.ForeignKey(
        RepairStep,
        verbose_name=_("维修进度"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="notifications",
    )

    class Meta:
        verbose_name = _("告警通知")
        verbose_name_plural = _("告警通知")
        ordering = ["-opened_at"]
        indexes = [
            models.Index(fields=["status", "next_at"]),
            models.Index(fields=["rule", "channel", "group_key", "status"]),
        ]

    def __str__(self) -> str:
        return f"{self.rule_name} → {self.channel_name} [{self.group_key}]"


class NotificationItem(models.Model):
    """An alert in a notification, for one *episode* of the alert: the time it (re)opened. An
    episode is told once per rule and channel; an acknowledgement that lapses opens a new one."""

    notification = models.ForeignKey(Notification, on_delete=models.CASCADE, related_name="items")
    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="notification_items")
    episode = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["notification", "alert"], name="one_item_per_alert")]
        indexes = [models.Index(fields=["alert", "episode"])]

    def __str__(self) -> str:
        return f"{self.notification_id}: {self.alert_id} @ {self.episode:%Y-%m-%d %H:%M:%S}"


class DeliveryAttempt(models.Model):
    """The delivery log: every attempt to send a notification, its outcome and error."""

    notification = models.ForeignKey(Notification, on_delete=models.CASCADE, related_name="attempt_log")
    channel = models.ForeignKey(
        NotificationChannel, verbose_name=_("通知渠道"), null=True, on_delete=models.SET_NULL, related_name="+"
    )
    group_key = models.CharField(_("分组"), max_length=200)
    attempt = models.PositiveSmallIntegerField(_("第几次"))
    status = models.CharField(_("结果"), max_length=10, choices=DeliveryStatus.choices)
    at = models.DateTimeField(_("时间"))
    alerts = models.PositiveIntegerField(_("告警数"), default=0)
    recipients = models.CharField(_("通知对象"), max_length=500, blank=True)
    error = models.CharField(_("错误"), max_length=500, blank=True)

    class Meta:
        verbose_name = _("通知发送记录")
        verbose_name_plural = _("通知发送记录")
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} #{self.attempt} {self.get_status_display()}"
