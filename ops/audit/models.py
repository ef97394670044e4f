"""The audit trail: every operator write, one row per affected record (R-SEC-1)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class AuditRecord(models.Model):
    """Who did what, to which record, when, and on what basis. Append-only: the admin cannot
    change or delete it. (Chaining each record to the previous one with an HMAC, so a change
    made directly in the database is detectable, is the accountability work of issue 6.)"""

    at = models.DateTimeField(_("时间"), auto_now_add=True, db_index=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("操作员"), null=True,
                              on_delete=models.PROTECT, related_name="+")
    actor_name = models.CharField(_("操作员账号"), max_length=150)
    action = models.CharField(_("操作"), max_length=40, db_index=True)
    object_type = models.CharField(_("对象类型"), max_length=40)
    object_id = models.CharField(_("对象"), max_length=64, db_index=True)
    basis = models.CharField(_("依据"), max_length=200, blank=True)
    data = models.JSONField(_("内容"), default=dict, blank=True)

    class Meta:
        verbose_name = _("审计记录")
        verbose_name_plural = _("审计记录")
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor_name} {self.action} {self.object_id}"
