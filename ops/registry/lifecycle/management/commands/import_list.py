"""``campuscard import_list``: import a list from HR or Academic Affairs. First a preview of
what would be created / updated / rejected (nothing changes); ``--apply BATCH`` applies exactly
that preview once the operator has read it (``--yes`` previews and applies in one go)."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from ops.accounts.cli_identity import proven_operator
from ops.registry.lifecycle import importing
from ops.registry.lifecycle import photos as photo_checks
from ops.registry.lifecycle.choices import ImportKind
from ops.registry.lifecycle.errors import CardRuleError
from ops.registry.lifecycle.models import ImportBatch


class Command(BaseCommand):
    help = (
        "Import a list: student (教务处) or staff (人事处) enrolment, leavers (离校/退学/离职), deferral "
        "(延期毕业), dorm (宿舍分配), staff_change (人事变动): preview, then apply."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", nargs="?", type=Path, help="CSV or XLSX with Chinese headers")
        parser.add_argument("--kind", choices=ImportKind.values, default="student")
        parser.add_argument("--photos", type=Path, help="zip or folder of photos named by number")
        parser.add_argument(
            "--operator",
            required=True,
            help="your operator account, proven by CAMPUSCARD_TOKEN or your password",
        )
        parser.add_argument("--apply", type=int, metavar="BATCH", help="apply a previewed batch")
        parser.add_argument("--yes", action="store_true", help="apply right after the preview")
        parser.add_argument("--show", type=int, default=50, help="rejected rows to print")

    def handle(self, *args, **opts):
        operator = proven_operator(opts["operator"], command="import_list")  # R-SEC-1: proven, not named
        try:
            if opts["apply"]:
                batch = ImportBatch.objects.filter(pk=opts["apply"]).first()
                if batch is None:
                    raise CommandError(f"没有编号为 {opts['apply']} 的导入批次")
            else:
                batch = self._preview(opts, operator)
                if not opts["yes"]:
                    self.stdout.write(
                        f"以上为预览，数据库未做任何更改。确认无误后执行：\n"
                        f"  campuscard import_list --apply {batch.id} --operator {opts['operator']}"
                    )
                    return
            with tqdm(
                total=max(1, importing.summary(batch)["create"] + importing.summary(batch)["update"]),
                desc="导入",
                unit="人",
                disable=None,
            ) as bar:
                result = importing.apply_import(
                    batch=batch, operator=operator, progress=lambda _p, done, _t: bar.update(done - bar.n)
                )
        except CardRuleError as exc:
            raise CommandError(" ".join(exc.messages)) from None
        self.stdout.write(
            self.style.SUCCESS(
                f"已导入：新增 {result['created']}，更新 {result['updated']}，"
                f"无变化 {result['unchanged']}，拒绝 {result['rejected']}"
            )
        )

    def _preview(self, opts, operator) -> ImportBatch:
        path: Path | None = opts["file"]
        if path is None or not path.is_file():
            raise CommandError("请给出名单文件（CSV 或 XLSX）")
        photo_set = None
        if opts["photos"]:
            try:
                photo_set = photo_checks.load_photo_set(opts["photos"])
            except photo_checks.PhotoSetError as exc:
                raise CommandError(str(exc)) from None
            for skipped in photo_set.skipped:
                self.stderr.write(f"跳过照片文件 {skipped.name}：{skipped.reason}")
        steps = 3
        with tqdm(total=steps, desc="预览", unit="步", disable=None) as bar:
            batch = importing.preview_import(
                kind=opts["kind"],
                filename=path.name,
                data=path.read_bytes(),
                operator=operator,
                photo_set=photo_set,
                progress=lambda *_: bar.update(1),
            )
            bar.update(steps - bar.n)
        s = importing.summary(batch)
        self.stdout.write(
            f"导入批次 {batch.id}（{batch.filename}，{batch.rows} 行）："
            f"新增 {s['create']}，更新 {s['update']}，无变化 {s['unchanged']}，"
            f"拒绝 {s['rejected']}"
        )
        for error in batch.plan["rejected"][: opts["show"]]:
            self.stdout.write(f"  第 {error['row']} 行 [{error['column']}] {error['value']}：{error['message']}")
        if s["rejected"] > opts["show"]:
            self.stdout.write(f"  …… 其余 {s['rejected'] - opts['show']} 条见管理后台的导入批次")
        return batch
