"""The academic calendar, door groups, central door rules and the vacation stay list (issue 17).
Written only by :mod:`ops.registry.calendar.services` (audited; each change goes to the doors as
a new signed door policy, or — the stay list — with the student's card)."""

from __future__ import annotations

from datetime import time

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from ops.registry.calendar.choices import DAY_TYPES, RuleKind
from ops.registry.models import Building, Cardholder, Device


class CalendarDay(models.Model):
    """One date of the academic calendar and its type. Dates not listed are teaching days from
    Monday to Friday and weekends on Saturday and Sunday (``streams.calendar.default_day_type``):
    the calendar names vacations, holidays, exam weeks and make-up working days (调休)."""

    date = models.DateField(_("日期"), unique=True)
    day_type = models.CharField(_("日类型"), max_length=20, choices=DAY_TYPES.choices)
    note = models.CharField(_("备注"), max_length=100, blank=True)
    updated_at = models.DateTimeField(_("更新时间"), auto_now=True)

    class Meta:
        verbose_name = _("校历日")
        verbose_name_plural = _("校历")
        ordering = ["date"]

    def __str__(self) -> str:
        return f"{self.date:%Y-%m-%d} {self.get_day_type_display()}"


class DoorGroup(models.Model):
    """A set of doors that central rules are set for: devices, and whole buildings (every door
    of them, including doors registered later). NIC keeps the groups."""

    code = models.CharField(_("代码"), max_length=40, unique=True)
    name = models.CharField(_("名称"), max_length=100)
    devices = models.ManyToManyField(Device, verbose_name=_("设备"), blank=True, related_name="+")
    buildings = models.ManyToManyField(Building, verbose_name=_("楼宇"), blank=True, related_name="+")

    class Meta:
        verbose_name = _("门禁组")
        verbose_name_plural = _("门禁组")
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class DoorRule(models.Model):
    """A central rule for the doors of a group on days of some types — and, if weekdays are
    given, only on those weekdays (Friday nights: a rule for teaching days limited to Friday
    outranks the plain teaching-day rule). A schedule rule (NIC) gives the opening windows; a
    dorm rule (Student Affairs) a curfew that flags late returns or closes the door to students,
    and/or closes the dorm to students during a vacation except those on the stay list. Which
    rule wins where several match: ``readers.decide.Policy``."""

    name = models.CharField(_("名称"), max_length=100)
    kind = models.CharField(_("类别"), max_length=10, choices=RuleKind.choices)
    group = models.ForeignKey(DoorGroup, verbose_name=_("门禁组"), on_delete=models.PROTECT, related_name="rules")
    # lists of values (JSON: the same on PostgreSQL and SQLite); checked by the service
    day_types = models.JSONField(_("日类型"), default=list)
    weekdays = models.JSONField(_("限星期"), default=list, blank=True, help_text=_("不选：每天"))
    schedule = models.CharField(
        _("开放时段"),
        max_length=200,
        blank=True,
        help_text=_("如 07:00-12:00, 13:30-22:30；可跨午夜（22:00-02:00）；留空：全天开放"),
    )
    closed_all_day = models.BooleanField(_("全天关闭"), default=False)
    curfew_start = models.TimeField(_("晚归/闭门开始"), null=True, blank=True)
    curfew_end = models.TimeField(_("晚归/闭门结束"), null=True, blank=True)
    curfew_closes = models.BooleanField(
        _("闭门"), default=False, help_text=_("勾选：此时段学生不能进入；不勾选：可进入，记为晚归")
    )
    vacation_closed = models.BooleanField(
        _("假期闭楼"), default=False, help_text=_("学生不能进入，留校名单上的学生除外")
    )
    updated_at = models.DateTimeField(_("更新时间"), auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("操作员"), null=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        verbose_name = _("门禁规则")
        verbose_name_plural = _("门禁规则")
        ordering = ["group__code", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(curfew_start__isnull=True, curfew_end__isnull=True)
                | Q(curfew_start__isnull=False, curfew_end__isnull=False),
                name="door_rule_curfew_has_both_ends",
            ),
            models.CheckConstraint(
                condition=Q(kind=RuleKind.DORM) | Q(curfew_start__isnull=True, vacation_closed=False),
                name="door_rule_schedule_sets_no_curfew",
            ),
            models.CheckConstraint(
                condition=Q(kind=RuleKind.SCHEDULE) | Q(schedule="", closed_all_day=False),
                name="door_rule_dorm_sets_no_schedule",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def curfew(self) -> tuple[time, time] | None:
        return (self.curfew_start, self.curfew_end) if self.curfew_start and self.curfew_end else None


class VacationStay(models.Model):
    """The vacation stay list (留校名单): a student whose own dorm stays open to them from
    ``start`` to ``end`` (both included) while a vacation closes it to students. Kept by Student
    Affairs (dorm managers, for their buildings' residents); sent to the doors with the student's
    card (``CardCredential.stays``), so a replacement card carries it too."""

    holder = models.ForeignKey(Cardholder, verbose_name=_("学生"), on_delete=models.PROTECT, related_name="stays")
    start = models.DateField(_("留校开始"))
    end = models.DateField(_("留校结束"))
    basis = models.CharField(_("依据"), max_length=200)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("登记人"), null=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(_("登记时间"), auto_now_add=True)
    revoked_at = models.DateTimeField(_("撤销时间"), null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("撤销人"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )

    class Meta:
        verbose_name = _("留校名单")
        verbose_name_plural = _("留校名单")
        ordering = ["-start", "id"]
        constraints = [models.CheckConstraint(condition=Q(end__gte=models.F("start")), name="stay_ends_after_start")]

    def __str__(self) -> str:
        return f"{self.holder_id} {self.start:%Y-%m-%d}—{self.end:%Y-%m-%d}"


class PolicyRevision(models.Model):
    """One row, locked by every change to the calendar, the groups or the rules, so that door
    policies are built and queued in the order their changes commit (the last one queued always
    holds every change before it)."""

    revision = models.PositiveBigIntegerField(default=0)
    # the calendar horizon of the last policy queued (None: none yet): the supervisor sends a
    # fresh one before the doors run out of calendar
    days_until = models.DateField(null=True, blank=True)

    class Meta:
        verbose_name = _("门禁策略版本")
        verbose_name_plural = _("门禁策略版本")

    def __str__(self) -> str:
        return str(self.revision)
