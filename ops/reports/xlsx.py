"""A report as one XLSX file (issue 18, Build 4): a cover sheet naming the period, then one
sheet per section with the very rows the page shows (``selectors.report``), written through the
project's one spreadsheet writer (``ops.spreadsheet``: text never becomes a formula)."""

from __future__ import annotations

import io
import re

from django.utils import timezone
from django.utils.translation import gettext as _
from openpyxl import Workbook

from ops.reports.selectors import Report
from ops.spreadsheet import append_row

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
SHEET_NAME_MAX = 31  # Excel's limit
NOT_IN_SHEET_NAMES = re.compile(r"[\\/?*\[\]:]")


def sheet_name(title: str) -> str:
    return NOT_IN_SHEET_NAMES.sub(" ", title)[:SHEET_NAME_MAX]


def filename(report: Report) -> str:
    return f"campuscard-report-{report.period.slug}.xlsx"


def to_xlsx(report: Report) -> bytes:
    book = Workbook()
    cover = book.active
    assert cover is not None
    cover.title = sheet_name(_("说明"))
    append_row(cover, [_("校园一卡通统计报表")])
    append_row(cover, [_("报表期间"), report.period.label])
    append_row(cover, [_("开始日期"), report.period.start])
    append_row(cover, [_("结束日期"), report.period.end])
    append_row(cover, [_("生成时间"), timezone.now()])
    for section in report.sections:
        sheet = book.create_sheet(sheet_name(section.title))
        append_row(sheet, section.headers)
        for row in section.rows:
            append_row(sheet, row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
