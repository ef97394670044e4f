from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    name = "ops.accounts"
    label = "accounts"
    verbose_name = _("操作员与权限")
