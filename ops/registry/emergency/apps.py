from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class EmergencyConfig(AppConfig):
    """Emergency modes (issue 17, Build 2): lockdown and unlock-all. Inside the registry's room
    like the door calendar, since a mode names its buildings, door groups and doors, and the
    relay (``ops.pipeline``) sends it to the readers."""

    name = "ops.registry.emergency"
    label = "emergency"
    verbose_name = _("紧急模式")
