"""The periods a report covers (issue 18, Build 4): a day, an ISO week (Monday–Sunday), a
calendar month, or a semester of the academic calendar.

**Semester.** The academic calendar (``ops.registry.calendar``) names the winter and summer
vacations; a semester is the run of days between two vacations (teaching days, exam weeks,
weekends and holidays inside it). A date inside a vacation belongs to the semester that the
vacation ends. Where the calendar names no vacation within a year of the date, the usual Chinese
college year stands in: vacations are 20 January – end of February and 10 July – 31 August.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum

from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from ops.registry.calendar.models import CalendarDay
from streams.calendar import VACATIONS

SEARCH_DAYS = 400  # how far from the date the calendar is searched for vacations


class Kind(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    SEMESTER = "semester"


KIND_LABELS = {
    Kind.DAY: gettext_lazy("日报"),
    Kind.WEEK: gettext_lazy("周报"),
    Kind.MONTH: gettext_lazy("月报"),
    Kind.SEMESTER: gettext_lazy("学期报"),
}


@dataclass(frozen=True)
class Period:
    kind: Kind
    start: date  # first day, inclusive
    end: date  # last day, inclusive

    @property
    def label(self) -> str:
        return _("%(kind)s %(start)s 至 %(end)s") % {
            "kind": KIND_LABELS[self.kind],
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
        }

    @property
    def slug(self) -> str:
        return f"{self.kind}-{self.start:%Y%m%d}-{self.end:%Y%m%d}"

    def bounds(self) -> tuple[datetime, datetime]:
        """[from, to) in local time: the filter on each table's time column."""
        tz = timezone.get_current_timezone()
        return (
            datetime.combine(self.start, time.min, tzinfo=tz),
            datetime.combine(self.end + timedelta(days=1), time.min, tzinfo=tz),
        )


def _conventional_vacation(day: date) -> bool:
    return (day.month == 1 and day.day >= 20) or day.month == 2 or (day.month == 7 and day.day >= 10) or day.month == 8


def vacation_days(around: date) -> set[date] | None:
    """The vacation dates the calendar names within ``SEARCH_DAYS`` of ``around`` (None: it names none)."""
    days = set(
        CalendarDay.objects.filter(
            date__gte=around - timedelta(days=SEARCH_DAYS),
            date__lte=around + timedelta(days=SEARCH_DAYS),
            day_type__in=[str(v) for v in VACATIONS],
        ).values_list("date", flat=True)
    )
    return days or None


def semester_of(day: date) -> Period:
    named = vacation_days(day)

    def vacation(d: date) -> bool:
        return d in named if named is not None else _conventional_vacation(d)

    limit = timedelta(days=SEARCH_DAYS)
    probe = day
    while vacation(probe) and day - probe < limit:  # in a vacation: the semester it ends
        probe -= timedelta(days=1)
    start = probe
    while not vacation(start - timedelta(days=1)) and probe - start < limit:
        start -= timedelta(days=1)
    end = probe
    while not vacation(end + timedelta(days=1)) and end - probe < limit:
        end += timedelta(days=1)
    return Period(Kind.SEMESTER, start, end)


def period_of(kind: Kind | str, day: date) -> Period:
    """The period of ``kind`` that holds ``day``."""
    kind = Kind(kind)
    if kind == Kind.DAY:
        return Period(kind, day, day)
    if kind == Kind.WEEK:
        monday = day - timedelta(days=day.weekday())
        return Period(kind, monday, monday + timedelta(days=6))
    if kind == Kind.MONTH:
        first = day.replace(day=1)
        following = (first + timedelta(days=32)).replace(day=1)
        return Period(kind, first, following - timedelta(days=1))
    return semester_of(day)


def ended_on(day: date) -> list[Period]:
    """The periods whose last day is ``day`` (what the scheduler mails the morning after)."""
    return [p for p in (period_of(k, day) for k in Kind) if p.end == day]
