"""The demo campus and its `campuscard demo` command (no models)."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DemoConfig(AppConfig):
    name = "ops.demo"
    label = "demo"
    verbose_name = _("演示校园")
