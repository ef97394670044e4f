"""The audit trail: every operator write, one row per affected record (R-SEC-1)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class AuditRecord(models.Model):
    """Who did what, to which record, when, and on what basis. Append-only: the admin cannot
    change or delete it, and each record is chained to the one before by an HMAC whose key is
    not in the database (``ops.audit.chain``): a change made directly in the database — an
    edit, a deletion, an insertion — breaks the chain at that record."""

    at = models.DateTimeField(_("时间"), default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("操作员"), null=True, on_delete=models.PROTECT, related_name="+"
    )
    actor_name = models.CharField(_("操作员账号"), max_length=150)
    action = models.CharField(_("操作"), max_length=40, db_index=True)
    object_type = models.CharField(_("对象类型"), max_length=40)
    object_id = models.CharField(_("对象"), max_length=64, db_index=True)
    basis = models.CharField(_("依据"), max_length=200, blank=True)
    data = models.JSONField(_("内容"), default=dict, blank=True)
    mac = models.CharField(_("链式校验码"), max_length=64, editable=False, default="")

    class Meta:
        verbose_name = _("审计记录")
        verbose_name_plural = _("审计记录")
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor_name} {self.action} {self.object_id}"


class AuditChain(models.Model):
    """The head of the chain (one row): the last record chained, the number of records, and
    an HMAC over both — so cutting records off the end is detected too. Appending takes this
    row's lock, so the chain order is the commit order."""

    last_id = models.BigIntegerField(default=0)
    last_mac = models.CharField(max_length=64, blank=True)
    count = models.BigIntegerField(default=0)
    head_mac = models.CharField(max_length=64, blank=True)
    # After a retention purge: the chain starts after record ``base_id``, from its MAC
    base_id = models.BigIntegerField(default=0)
    base_mac = models.CharField(max_length=64, blank=True)
    purged = models.BigIntegerField(default=0)

    class Meta:
        verbose_name = _("审计链头")
        verbose_name_plural = _("审计链头")

    def __str__(self) -> str:
        return f"#{self.last_id} ({self.count})"
