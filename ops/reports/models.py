"""Which reports the scheduler has mailed (issue 18, Build 4): one row per period, so each
period goes to the leaders once, whichever supervisor runs the job and however often."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class MailedReport(models.Model):
    kind = models.CharField(_("报表类型"), max_length=10)
    start = models.DateField(_("开始日期"))
    end = models.DateField(_("结束日期"))
    recipients = models.JSONField(_("收件人"), default=list)
    sent_at = models.DateTimeField(_("发送时间"), auto_now_add=True)

    class Meta:
        verbose_name = _("已发送报表")
        verbose_name_plural = _("已发送报表")
        constraints = [models.UniqueConstraint(fields=["kind", "start", "end"], name="mailed_report_once")]

    def __str__(self) -> str:
        return f"{self.kind} {self.start}–{self.end}"
