"""Reading an academic calendar file (issue 17): CSV or ICS (iCalendar, RFC 5545, read with the
``icalendar`` library). Both give dated entries with a row (the line in the file) each; every
problem is reported with its row, in the operator's language, and nothing is written until the
whole file is clean (``services.import_calendar``).

CSV: a header row, then one row per date or per range of dates —

    日期,类型,备注                     or       开始日期,结束日期,类型,备注
    2026-10-01,法定节假日,国庆节                 2026-07-11,2026-08-30,暑假,

(English headers ``date``, ``start``, ``end``, ``day_type``, ``note`` too). The type is a label
(暑假) or a value (``summer_vacation``). UTF-8 (with or without BOM) or GB18030, as Excel saves.

ICS: each event (VEVENT) is one date or a range: all-day ``DTSTART``/``DTEND`` (the end is
exclusive, as RFC 5545 says) or ``DURATION``. Its type is the first of: a property
``X-CAMPUSCARD-DAY-TYPE`` or a ``CATEGORIES`` entry naming a type (label or value), or words of its
``SUMMARY`` (调休/补班/上班 → make-up working day, 寒假, 暑假, 考试 → exam week, 放假/节/假 →
public holiday, 教学 → teaching day). Recurring events (``RRULE``) are refused rather than
guessed.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import icalendar
from django.utils import timezone
from django.utils.translation import gettext as _

from ops.registry.calendar.choices import DAY_TYPES
from streams.calendar import DayType

MAX_SPAN_DAYS = 400  # one entry: at most a year and a bit (a summer vacation is ~60 days)
MAX_DATES = 5000


@dataclass(frozen=True)
class Entry:
    row: int  # the line in the file (CSV: its row, the header being row 1; ICS: BEGIN:VEVENT's line)
    day: date
    day_type: DayType
    note: str


@dataclass(frozen=True)
class Problem:
    row: int
    message: str

    def __str__(self) -> str:
        return _("第 %(row)s 行：%(message)s") % {"row": self.row, "message": self.message}


def day_type_of(text: str) -> DayType | None:
    """A type by its value (``summer_vacation``) or its label in either language (暑假)."""
    text = (text or "").strip()
    if not text:
        return None
    lowered = text.lower()
    for member in DayType:
        if lowered == member.value or text == DAY_TYPES.label(member) or text == _label_zh(member):
            return member
    return None


_ZH = {
    DayType.TEACHING: "教学日",
    DayType.EXAM: "考试周",
    DayType.WEEKEND: "周末",
    DayType.WINTER_VACATION: "寒假",
    DayType.SUMMER_VACATION: "暑假",
    DayType.HOLIDAY: "法定节假日",
    DayType.MAKEUP_WORKDAY: "调休上班日",
}


def _label_zh(member: DayType) -> str:
    """The Chinese label whatever the operator's language (files are written in Chinese)."""
    return _ZH[member]


# words of an event's summary, first match wins (调休上班 before 假: "国庆调休上班")
_SUMMARY_WORDS: tuple[tuple[tuple[str, ...], DayType], ...] = (
    (("调休", "补班", "上班"), DayType.MAKEUP_WORKDAY),
    (("寒假", "winter"), DayType.WINTER_VACATION),
    (("暑假", "summer"), DayType.SUMMER_VACATION),
    (("考试", "exam"), DayType.EXAM),
    (("放假", "节", "假", "holiday"), DayType.HOLIDAY),
    (("教学", "上课", "teaching"), DayType.TEACHING),
)


def _date(text: str) -> date | None:
    text = (text or "").strip().replace("/", "-").replace(".", "-")
    match = re.fullmatch(r"(\d{4})-(\d{1,2})-(\d{1,2})", text)
    if not match:
        return None
    try:
        return date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return None


def _decode(data: bytes) -> str:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ValueError(_("文件编码无法识别（应为 UTF-8 或 GB18030）"))


_HEADERS = {
    "日期": "date",
    "date": "date",
    "开始日期": "start",
    "开始": "start",
    "start": "start",
    "结束日期": "end",
    "结束": "end",
    "end": "end",
    "类型": "day_type",
    "日类型": "day_type",
    "day_type": "day_type",
    "type": "day_type",
    "备注": "note",
    "说明": "note",
    "note": "note",
}


def parse_csv(data: bytes) -> tuple[list[Entry], list[Problem]]:
    try:
        text = _decode(data)
    except ValueError as exc:
        return [], [Problem(1, str(exc))]
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        return [], [Problem(1, _("文件是空的"))]
    header = [_HEADERS.get(cell.strip().lower(), _HEADERS.get(cell.strip(), "")) for cell in rows[0]]
    has_range = "start" in header and "end" in header
    if "day_type" not in header or not ("date" in header or has_range):
        return [], [Problem(1, _("表头应为“日期,类型,备注”或“开始日期,结束日期,类型,备注”"))]
    entries: list[Entry] = []
    problems: list[Problem] = []
    for number, cells in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in cells):
            continue
        row = {name: (cells[i].strip() if i < len(cells) else "") for i, name in enumerate(header) if name}
        day_type = day_type_of(row.get("day_type", ""))
        if day_type is None:
            problems.append(Problem(number, _("日类型“%(text)s”无法识别") % {"text": row.get("day_type", "")}))
            continue
        if row.get("date"):
            first = last = _date(row["date"])
            bad = row["date"] if first is None else ""
        else:
            first, last = _date(row.get("start", "")), _date(row.get("end", ""))
            bad = row.get("start", "") if first is None else row.get("end", "") if last is None else ""
        if first is None or last is None:
            problems.append(Problem(number, _("日期“%(text)s”无法识别（应为 YYYY-MM-DD）") % {"text": bad}))
            continue
        problem = _span_problem(first, last)
        if problem:
            problems.append(Problem(number, problem))
            continue
        entries += [Entry(number, d, day_type, row.get("note", "")[:100]) for d in _days(first, last)]
    return entries, problems


def _span_problem(first: date, last: date) -> str:
    if last < first:
        return _("结束日期 %(end)s 早于开始日期 %(start)s") % {"end": last, "start": first}
    if (last - first).days >= MAX_SPAN_DAYS:
        return _("一个条目最多 %(n)s 天") % {"n": MAX_SPAN_DAYS}
    return ""


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def parse_ics(data: bytes) -> tuple[list[Entry], list[Problem]]:
    try:
        text = _decode(data)
    except ValueError as exc:
        return [], [Problem(1, str(exc))]
    # the line of each event, for the messages (icalendar keeps no positions)
    lines = [n for n, line in enumerate(text.splitlines(), start=1) if line.strip().upper() == "BEGIN:VEVENT"]
    try:
        calendar = icalendar.Calendar.from_ical(text)
    except ValueError as exc:
        return [], [Problem(1, _("不是有效的 iCalendar (ICS) 文件：%(error)s") % {"error": exc})]
    entries: list[Entry] = []
    problems: list[Problem] = []
    for index, event in enumerate(calendar.walk("VEVENT")):
        number = lines[index] if index < len(lines) else 1
        summary = str(event.get("SUMMARY", "")).strip()
        if event.get("RRULE") is not None:
            problems.append(
                Problem(number, _("事件“%(summary)s”是重复事件（RRULE），请逐段列出") % {"summary": summary})
            )
            continue
        day_type = _event_day_type(event, summary)
        if day_type is None:
            problems.append(
                Problem(
                    number,
                    _("无法判断事件“%(summary)s”的日类型：请在标题中写明（如 暑假、国庆节、调休上班）")
                    % {"summary": summary},
                )
            )
            continue
        span = _event_span(event)
        if isinstance(span, str):
            problems.append(
                Problem(number, _("事件“%(summary)s”：%(problem)s") % {"summary": summary, "problem": span})
            )
            continue
        first, last = span
        problem = _span_problem(first, last)
        if problem:
            problems.append(Problem(number, problem))
            continue
        entries += [Entry(number, d, day_type, summary[:100]) for d in _days(first, last)]
    return entries, problems


def _event_day_type(event: Any, summary: str) -> DayType | None:
    explicit = event.get("X-CAMPUSCARD-DAY-TYPE")
    if explicit is not None:
        return day_type_of(str(explicit))
    categories = event.get("CATEGORIES")
    for group in categories if isinstance(categories, list) else [categories] if categories is not None else []:
        for category in getattr(group, "cats", [group]):
            found = day_type_of(str(category))
            if found is not None:
                return found
    lowered = summary.lower()
    for words, day_type in _SUMMARY_WORDS:
        if any(word in lowered for word in words):
            return day_type
    return None


def _local_date(value: date | datetime) -> date:
    if isinstance(value, datetime):
        return timezone.localtime(value).date() if timezone.is_aware(value) else value.date()
    return value


def _event_span(event: Any) -> tuple[date, date] | str:
    """The first and last date (both included) an event covers, or what is wrong with it."""
    start_prop = event.get("DTSTART")
    if start_prop is None:
        return _("没有开始日期（DTSTART）")
    start = start_prop.dt
    end_prop, duration = event.get("DTEND"), event.get("DURATION")
    if end_prop is not None:
        end = end_prop.dt
    elif duration is not None:
        end = start + duration.dt
    else:
        end = start if isinstance(start, datetime) else start + timedelta(days=1)  # one day (RFC 5545)
    first = _local_date(start)
    if isinstance(end, datetime):
        last_moment = timezone.localtime(end) if timezone.is_aware(end) else end
        last = (
            last_moment.date() - timedelta(days=1) if last_moment.time() == datetime.min.time() else last_moment.date()
        )
        last = max(last, first)
    else:
        last = end - timedelta(days=1)  # an all-day DTEND is exclusive
    if last < first:
        return _("结束早于开始")
    return first, last


def parse(data: bytes, filename: str) -> tuple[list[Entry], list[Problem]]:
    """Entries and problems of a calendar file, by its name's extension (.ics, else CSV). Two
    entries giving one date different types are a problem at the later one."""
    entries, problems = parse_ics(data) if filename.lower().endswith((".ics", ".ical", ".ifb")) else parse_csv(data)
    seen: dict[date, Entry] = {}
    for entry in entries:
        before = seen.get(entry.day)
        if before is not None and before.day_type != entry.day_type:
            problems.append(
                Problem(
                    entry.row,
                    _("%(day)s 已在第 %(row)s 行定为“%(first)s”，这里又定为“%(second)s”")
                    % {
                        "day": entry.day,
                        "row": before.row,
                        "first": DAY_TYPES.label(before.day_type),
                        "second": DAY_TYPES.label(entry.day_type),
                    },
                )
            )
        seen.setdefault(entry.day, entry)
    if len(seen) > MAX_DATES:
        problems.append(Problem(1, _("一次最多导入 %(n)s 个日期") % {"n": MAX_DATES}))
    problems.sort(key=lambda p: p.row)
    return list(seen.values()), problems
