from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CalendarConfig(AppConfig):
    """The academic calendar and the central door rules (issue 17): inside the registry's room,
    since the rules name its doors and buildings and the stay list its cardholders, and the
    registry's explanations and credentials read them."""

    name = "ops.registry.calendar"
    label = "door_calendar"
    verbose_name = _("校历与门禁规则")
