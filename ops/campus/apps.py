from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CampusConfig(AppConfig):
    name = "ops.campus"
    label = "campus"
    verbose_name = _("校园卡与设备")
