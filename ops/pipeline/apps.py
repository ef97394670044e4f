"""The event path: reader events in, taps stored, alerts derived, pages pushed (no models of its own)."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PipelineConfig(AppConfig):
    name = "ops.pipeline"
    label = "pipeline"
    verbose_name = _("事件管道")
