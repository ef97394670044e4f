from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RegistryConfig(AppConfig):
    name = "ops.registry"
    label = "campus"  # the label names tables and migration history: kept from the old package
    verbose_name = _("校园卡与设备")

    def ready(self) -> None:
        # the tap-commit lock taken by every delete of what a tap refers to (issue 14)
        from ops.registry import event_refs  # noqa: F401
