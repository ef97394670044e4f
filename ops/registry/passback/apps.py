from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PassbackConfig(AppConfig):
    """Anti-passback zones and their forgiveness (issue 17, Build 5): inside the registry's room,
    since a zone is its doors' ``passback_area`` and the registry's explanation reads it."""

    name = "ops.registry.passback"
    label = "passback"
    verbose_name = _("防潜回")
