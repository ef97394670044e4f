"""Operator profiles: the role and scope of a personal operator account (R-SEC-1, R-SEC-3)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from ops.accounts.roles import Role


class SignIn(models.TextChoices):
    """How an account proves who it is (issue 16): a local password (NIC's break-glass admins and
    accounts NIC made by hand), or the campus single sign-on — CAS or the LDAP directory."""

    LOCAL = "local", _("本地账号")
    CAS = "cas", _("统一身份认证（CAS）")
    LDAP = "ldap", _("LDAP 目录")


class Operator(models.Model):
    """The role an operator account holds, and its scope (department, buildings). An account that
    signed in through SSO for the first time has no role ("") — no rights at all until NIC grants
    one (R-SEC-3)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="operator")
    role = models.CharField(
        _("角色"), max_length=20, choices=Role.choices, blank=True, help_text=_("空：尚无任何权限，等待网信中心授予")
    )
    sign_in = models.CharField(
        _("登录方式"),
        max_length=8,
        choices=SignIn.choices,
        default=SignIn.LOCAL,
        help_text=_("统一身份认证的账号不能用本地密码登录，本地账号也不能经统一身份认证登录"),
    )
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
        return f"{self.user.get_username()} ({self.get_role_display() or '—'})"
