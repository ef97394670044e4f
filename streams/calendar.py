"""The academic calendar's vocabulary (issue 17), shared by the edge and the centre: the type of
a day, which the central door rules are set for. Values, not labels (``ops.registry.calendar``
labels them)."""

from __future__ import annotations

from datetime import date
from enum import StrEnum


class DayType(StrEnum):
    TEACHING = "teaching"  # 教学日
    EXAM = "exam"  # 考试周
    WEEKEND = "weekend"  # 周末
    WINTER_VACATION = "winter_vacation"  # 寒假
    SUMMER_VACATION = "summer_vacation"  # 暑假
    HOLIDAY = "holiday"  # 法定节假日
    MAKEUP_WORKDAY = "makeup_workday"  # 调休上班日


VACATIONS = frozenset({DayType.WINTER_VACATION, DayType.SUMMER_VACATION})


def default_day_type(day: date) -> DayType:
    """A date the calendar does not name: Monday to Friday a teaching day, Saturday and Sunday a
    weekend. The calendar names only what differs (vacations, holidays, exam weeks, 调休)."""
    return DayType.WEEKEND if day.isoweekday() >= 6 else DayType.TEACHING
