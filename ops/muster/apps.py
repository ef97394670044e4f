from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MusterConfig(AppConfig):
    name = "ops.muster"
    label = "muster"
    verbose_name = _("紧急清点")
