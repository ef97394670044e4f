"""Cells written to a CSV or XLSX file that an operator opens in Excel/WPS (issue 20, item 3).

Text that a spreadsheet would run as a formula — ``=HYPERLINK(…)``, ``=cmd|' /C calc'!A0``,
``+1+1``, ``-2+3``, ``@SUM(1+1)``, or any of them after a tab or carriage return — is written
with a leading apostrophe and stays text (OWASP, "CSV injection"): a fee window typed at a
desk or a name from an imported list must not become a formula on whoever opens the export.
Every CSV and XLSX writer of the project goes through :func:`cell`, :func:`csv_bytes` or
:func:`append_row`. Numbers and dates are left alone (they are values, not text).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.utils import timezone
from openpyxl.worksheet.worksheet import Worksheet

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def cell(value: Any) -> Any:
    """``value`` as a cell: text a spreadsheet would read as a formula gets an apostrophe first;
    an aware time becomes local and naive (xlsx has no time zones)."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        return timezone.localtime(value).replace(tzinfo=None, microsecond=0)
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def csv_bytes(headers: Iterable[Any], rows: Iterable[Iterable[Any]]) -> bytes:
    """A CSV file for Excel: UTF-8 with a BOM (Excel then reads it as UTF-8), every cell neutral."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([cell(v) for v in headers])
    writer.writerows([cell(v) for v in row] for row in rows)
    return buffer.getvalue().encode("utf-8-sig")


def append_row(sheet: Worksheet, row: Iterable[Any]) -> None:
    """Append ``row`` to ``sheet``; each text cell is a string cell, never a formula (openpyxl
    would otherwise store any text starting with ``=`` as one)."""
    sheet.append([cell(v) for v in row])
    for c in sheet[sheet.max_row]:
        if isinstance(c.value, str):
            c.data_type = "s"
