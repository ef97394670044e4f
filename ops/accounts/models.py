"""Operator profiles: the role and scope of a personal operator account (R-SEC-1, R-SEC-3)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from ops.accounts.roles import Role


class Operator(models.Model):
    """The role an operator account holds, and its scope (department, buildings)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="operator")
    role = models.CharField(_("角色"), max_length=20, choices=Role.choices)
    department = models.ForeignKey(
        "campus.Department",
        verbose_name=_("部门"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
    )
    buildings = models.ManyToManyField(
        "campus.Building",
        verbose_name=_("负责楼宇"),
        blank=True,
        help_text=_("宿管只能看到这些楼宇的门禁"),
    )

    class Meta:
        verbose_name = _("操作员")
        verbose_name_plural = _("操作员")

    def __str__(self) -> str:
        return f"{self.user.get_username()} ({self.get_role_display()})"
