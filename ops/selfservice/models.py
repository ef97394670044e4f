"""The self-service password NIC sets for a cardholder at the desk (issue 18, Build 6)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from ops.registry.models import Cardholder


class HolderPassword(models.Model):
    """A cardholder's self-service password: only its hash, set by NIC at the desk (the holder
    shows their ID there), never shown again."""

    holder = models.OneToOneField(
        Cardholder, verbose_name=_("持卡人"), on_delete=models.CASCADE, related_name="self_service_password"
    )
    password = models.CharField(_("密码摘要"), max_length=128, editable=False)
    set_at = models.DateTimeField(_("设置时间"), editable=False)
    set_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("设置人"),
        null=True,
        editable=False,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        verbose_name = _("自助服务密码")
        verbose_name_plural = _("自助服务密码")
        ordering = ["holder__number"]

    def __str__(self) -> str:
        return f"{self.holder.number} · {_('自助服务密码')}"
