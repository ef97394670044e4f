from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PersonalDataConfig(AppConfig):
    name = "ops.personal_data"
    label = "grants"  # the label names tables and migration history: kept from the old package
    verbose_name = _("个人数据查询")
