"""Finance's fee ledger and reconciliation (R-FEE-3): per day and per operator/window totals
and the line items behind them, exportable as CSV (Excel-friendly UTF-8 with BOM) or XLSX to
check against the bank statement (银校对账)."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import cast

from django.db.models import Count, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from ops.masking import mask_name
from ops.registry.lifecycle.choices import ChargeStatus, FeeKind
from ops.registry.lifecycle.models import FeeCharge
from ops.spreadsheet import append_row, csv_bytes

SUMMARY_HEADERS = ["日期", "操作员", "收费窗口", "笔数", "金额（元）"]
ITEM_HEADERS = ["流水号", "收费时间", "操作员", "收费窗口", "收费项目", "学工号", "姓名", "新卡号", "金额（元）"]


@dataclass(frozen=True)
class Ledger:
    summary: list[list[object]]
    items: list[list[object]]
    total: Decimal
    count: int


def _range(start: date, end: date) -> tuple[datetime, datetime]:
    tz = timezone.get_current_timezone()
    return (
        datetime.combine(start, time.min, tzinfo=tz),
        datetime.combine(end + timedelta(days=1), time.min, tzinfo=tz),
    )


def ledger(*, start: date, end: date) -> Ledger:
    lo, hi = _range(start, end)
    # payments, on the day they were made, by whoever took them (issue 13, defect 6): an owed
    # damage charge is not money in the till until it is paid
    charges = FeeCharge.objects.filter(status=ChargeStatus.PAID, paid_at__gte=lo, paid_at__lt=hi)
    summary = [
        [r["day"].isoformat(), r["settled_by__username"] or "system", r["window"], r["n"], r["total"]]
        for r in charges.annotate(day=TruncDate("paid_at", tzinfo=timezone.get_current_timezone()))
        .values("day", "settled_by__username", "window")
        .annotate(n=Count("id"), total=Sum("amount"))
        .order_by("day", "settled_by__username", "window")
    ]
    items = [
        [
            c.id,
            timezone.localtime(c.paid_at).strftime("%Y-%m-%d %H:%M:%S") if c.paid_at else "",
            c.settled_by.username if c.settled_by else "system",
            c.window,
            str(FeeKind(c.kind).label),
            c.holder.number,
            mask_name(c.holder.name),
            c.card.uid if c.card else "",
            c.amount,
        ]
        for c in charges.select_related("settled_by", "holder", "card").order_by("id")
    ]
    agg = charges.aggregate(total=Sum("amount"), n=Count("id"))
    return Ledger(summary, items, agg["total"] or Decimal("0.00"), agg["n"])


def to_csv(headers: list[str], rows: list[list[object]]) -> bytes:
    """A window typed at a desk (``=HYPERLINK(…)``) is text in the file, never a formula
    (issue 20, item 3; :mod:`ops.spreadsheet`)."""
    return csv_bytes(headers, rows)  # BOM: Excel opens it as UTF-8


def to_xlsx(ledger_: Ledger) -> bytes:
    from openpyxl import Workbook
    from openpyxl.worksheet.worksheet import Worksheet

    book = Workbook()
    sheet = book.active
    assert isinstance(sheet, Worksheet)  # a new workbook opens on its one worksheet
    sheet.title = "汇总"
    append_row(sheet, SUMMARY_HEADERS)
    for row in ledger_.summary:
        append_row(sheet, [*row[:4], float(cast(Decimal, row[4]))])
    append_row(sheet, ["合计", "", "", ledger_.count, float(ledger_.total)])
    detail = book.create_sheet("明细")
    append_row(detail, ITEM_HEADERS)
    for row in ledger_.items:
        append_row(detail, [*row[:8], float(cast(Decimal, row[8]))])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
