"""``campuscard graduates``: the July run (R-END-1). Dry-run by default: prints the report of
what would happen; ``--apply`` does exactly that. Students on Academic Affairs' stamped
deferred-graduation list (CSV: 学号, 延期至) are extended instead (R-CARD-6)."""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from ops.accounts.cli_identity import proven_operator
from ops.registry.lifecycle import graduation
from ops.registry.lifecycle.errors import CardRuleError


def read_deferred(path: Path) -> dict[str, date]:
    """The deferred list: columns 学号 and 延期至 (YYYY-MM-DD); UTF-8 or GB18030."""
    raw = path.read_bytes()
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = raw.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise CommandError(f"{path}: 无法识别的文件编码")
    out: dict[str, date] = {}
    for line_no, row in enumerate(csv.DictReader(io.StringIO(text)), start=2):
        number = (row.get("学号") or "").strip()
        until = (row.get("延期至") or "").strip()
        if not number or not until:
            raise CommandError(f"{path} 第 {line_no} 行：需要“学号”和“延期至”两列")
        try:
            out[number] = date.fromisoformat(until)
        except ValueError:
            raise CommandError(f"{path} 第 {line_no} 行：“延期至”应为 YYYY-MM-DD，读到“{until}”") from None
    return out


class Command(BaseCommand):
    help = "Cancel graduated students' cards in one batch (dry-run unless --apply)."

    def add_arguments(self, parser):
        parser.add_argument("--cutoff", required=True, help="students whose study ends by this date (YYYY-MM-DD)")
        parser.add_argument("--deferred", type=Path, help="Academic Affairs' deferred list (CSV)")
        parser.add_argument(
            "--operator",
            required=True,
            help="your operator account, proven by CAMPUSCARD_TOKEN or your password",
        )
        parser.add_argument("--basis", required=True, help="e.g. 2026届毕业生名单（教务处）")
        parser.add_argument("--apply", action="store_true", help="do it (default: dry run)")
        parser.add_argument("--json", action="store_true", help="print the report as JSON")

    def handle(self, *args, **opts):
        try:
            cutoff = date.fromisoformat(opts["cutoff"])
        except ValueError:
            raise CommandError("--cutoff 应为 YYYY-MM-DD") from None
        operator = proven_operator(opts["operator"], command="graduates")  # R-SEC-1: proven, not named
        deferred = read_deferred(opts["deferred"]) if opts["deferred"] else {}
        try:
            plan = graduation.plan_graduation(cutoff=cutoff, deferred=deferred)
            report = (
                graduation.run_graduation(plan=plan, operator=operator, basis=opts["basis"])
                if opts["apply"]
                else plan.report()
            )
        except CardRuleError as exc:
            raise CommandError(" ".join(exc.messages)) from None
        if opts["json"]:
            self.stdout.write(json.dumps(report, ensure_ascii=False))
            return
        mode = "已执行" if opts["apply"] else "预演（未做任何更改；加 --apply 执行）"
        self.stdout.write(f"{mode}：截止 {report['cutoff']}")
        self.stdout.write(f"  注销毕业生：{report['graduate']} 人")
        self.stdout.write(f"  延期毕业（延长有效期）：{report['extend']} 人")
        if report["unknown_deferred"]:
            self.stdout.write(f"  延期名单中查无此人（未处理）：{', '.join(report['unknown_deferred'])}")
        if report["no_study_end"]:
            shown = ", ".join(report["no_study_end"][:20]) + (" …" if len(report["no_study_end"]) > 20 else "")
            self.stdout.write(
                f"  在校学生缺少预计毕业日期（本次不会处理，请补录）：{len(report['no_study_end'])} 人：{shown}"
            )
