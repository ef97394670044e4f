"""``campuscard fees``: Finance's reconciliation export (R-FEE-3)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from ops.registry.lifecycle import ledger


class Command(BaseCommand):
    help = "Fee ledger per day and per operator/window, with line items (CSV or XLSX)."

    def add_arguments(self, parser):
        parser.add_argument("--from", dest="start", required=True, help="YYYY-MM-DD")
        parser.add_argument("--to", dest="end", required=True, help="YYYY-MM-DD")
        parser.add_argument("--out", type=Path, help="write .xlsx or .csv (summary) here")

    def handle(self, *args, **opts):
        try:
            start, end = date.fromisoformat(opts["start"]), date.fromisoformat(opts["end"])
        except ValueError:
            raise CommandError("日期格式应为 YYYY-MM-DD") from None
        if end < start:
            raise CommandError("结束日期不能早于开始日期")
        result = ledger.ledger(start=start, end=end)
        for row in result.summary:
            self.stdout.write("  ".join(str(v) for v in row))
        self.stdout.write(f"合计：{result.count} 笔，{result.total} 元")
        out: Path | None = opts["out"]
        if out:
            if out.suffix.lower() == ".xlsx":
                out.write_bytes(ledger.to_xlsx(result))
            else:
                out.write_bytes(ledger.to_csv(ledger.SUMMARY_HEADERS, result.summary))
            self.stdout.write(f"已导出：{out}")
