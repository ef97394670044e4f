"""The supervisor's record of its scheduled work (issue 16, Build 4)."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from ops.pipeline.choices import RunOutcome


class ScheduledRun(models.Model):
    """One scheduled job's latest run, shared by every supervisor (``ops.pipeline.scheduled``):
    the slot it was due at — moved forward by one conditional UPDATE per slot, which is the claim,
    so two supervisors never run one slot twice and a Redis restart cannot make it run again —
    when it started and how long it took, its outcome and error, what it did, its last success
    and when it is due next. The NIC desk shows these rows; a failure, or no success for twice
    the job's interval, is an alert."""

    job = models.CharField(_("任务"), max_length=40, unique=True)
    known_since = models.DateTimeField(_("登记时间"), help_text=_("监督进程第一次见到此任务的时间"))
    slot = models.DateTimeField(_("最近一次应运行时间"), null=True, blank=True)
    runner = models.CharField(_("运行者"), max_length=100, blank=True)
    started_at = models.DateTimeField(_("上次开始"), null=True, blank=True)
    finished_at = models.DateTimeField(_("上次结束"), null=True, blank=True)
    duration_s = models.FloatField(_("用时（秒）"), null=True, blank=True)
    outcome = models.CharField(_("结果"), max_length=10, choices=RunOutcome.choices, blank=True)
    error = models.CharField(_("错误"), max_length=1000, blank=True)
    detail = models.JSONField(_("详情"), default=dict, blank=True)
    last_ok_at = models.DateTimeField(_("上次成功"), null=True, blank=True)
    next_due_at = models.DateTimeField(_("下次运行"), null=True, blank=True)

    class Meta:
        verbose_name = _("定时任务")
        verbose_name_plural = _("定时任务")
        ordering = ["job"]

    def __str__(self) -> str:
        return f"{self.job} {self.outcome}"
