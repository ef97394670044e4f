"""``campuscard backup --out PATH``: one encrypted archive of the database, the photo store and
the personal-data basis files (R-SEC-4; ``ops.backup``)."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from ops.backup import services
from ops.backup.errors import BackupError


class Command(BaseCommand):
    help = (
        "Back up the database, the photo store and the personal-data basis files into one "
        "encrypted archive "
        "(key: CAMPUSCARD_BACKUP_KEY or CAMPUSCARD_BACKUP_KEY_FILE)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--out", required=True, type=Path, help="the archive to write (must not exist)")

    def handle(self, *args, **opts):
        try:
            result = services.backup(Path(opts["out"]))
        except BackupError as exc:
            raise CommandError(str(exc)) from exc
        for name in result.skipped_photos:
            self.stderr.write(_("照片文件已损坏（内容与摘要不符），未放入备份：%(name)s") % {"name": name})
        for name in result.skipped_basis_files:
            self.stderr.write(_("书面依据文件已损坏（内容与摘要不符），未放入备份：%(name)s") % {"name": name})
        self.stdout.write(
            _("备份完成：%(path)s（%(size)d 字节，%(photos)d 张照片，%(basis)d 个书面依据文件，SHA-256 %(sha)s）")
            % {
                "path": result.path,
                "size": result.size,
                "photos": result.photos,
                "basis": result.basis_files,
                "sha": result.sha256,
            }
        )
