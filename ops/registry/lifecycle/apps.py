from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class LifecycleConfig(AppConfig):
    name = "ops.registry.lifecycle"
    label = "cards"  # the label names tables and migration history: kept from the old package
    verbose_name = _("卡务")
