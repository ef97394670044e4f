"""The event path: reader events in, taps stored, alerts derived, pages pushed; and the
supervisor's scheduled work (its one model: ``ScheduledRun``)."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PipelineConfig(AppConfig):
    name = "ops.pipeline"
    label = "pipeline"
    verbose_name = _("事件管道")
