"""The calendar's and the door rules' vocabularies, with their labels."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from ops.registry.choices import Labels
from streams.calendar import DayType

DAY_TYPES = Labels(
    DayType,
    {
        DayType.TEACHING: _("教学日"),
        DayType.EXAM: _("考试周"),
        DayType.WEEKEND: _("周末"),
        DayType.WINTER_VACATION: _("寒假"),
        DayType.SUMMER_VACATION: _("暑假"),
        DayType.HOLIDAY: _("法定节假日"),
        DayType.MAKEUP_WORKDAY: _("调休上班日"),
    },
)


class RuleKind(models.TextChoices):
    """Who sets a rule: the opening hours are NIC's; dorm curfews and vacation closure are
    Student Affairs' (dorm managers, within their buildings)."""

    SCHEDULE = "schedule", _("开放时段（网信中心）")
    DORM = "dorm", _("宿舍作息（学生工作处）")


WEEKDAYS = [
    (1, _("周一")),
    (2, _("周二")),
    (3, _("周三")),
    (4, _("周四")),
    (5, _("周五")),
    (6, _("周六")),
    (7, _("周日")),
]
