from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class GrantsConfig(AppConfig):
    name = "ops.grants"
    label = "grants"
    verbose_name = _("个人数据查询")
