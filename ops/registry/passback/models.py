"""A security operator's forgiveness of anti-passback in one zone (issue 17, Build 5; R-SEC-5):
for one person's cards or for every card of the zone. Kept (never edited): the explanation of
a denial and the agents that were offline when it was given both need to know it was given."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from ops.registry.models import Cardholder


class Forgiveness(models.Model):
    zone = models.CharField(_("防潜回区域"), max_length=40)
    holder = models.ForeignKey(
        Cardholder,
        verbose_name=_("持卡人"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="passback_forgiveness",
    )  # None: the whole zone
    uids = models.JSONField(_("卡号"), default=list, blank=True)  # the holder's cards then; [] for the zone
    at = models.DateTimeField(_("豁免时间"), db_index=True)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("操作人"), on_delete=models.PROTECT, related_name="+"
    )
    reason = models.CharField(_("原因"), max_length=200)

    class Meta:
        verbose_name = _("防潜回豁免")
        verbose_name_plural = _("防潜回豁免")
        ordering = ["-at"]
        indexes = [models.Index(fields=["zone", "-at"], name="passback_zone_at")]

    def __str__(self) -> str:
        return f"{self.zone} {self.holder_id or '*'} {self.at:%Y-%m-%d %H:%M}"
