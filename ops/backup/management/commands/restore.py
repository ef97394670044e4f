"""``campuscard restore PATH``: restore a ``campuscard backup`` archive into an empty system,
after checking all of it (R-SEC-4; ``ops.backup``). ``--verify`` only checks."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from ops.backup import services
from ops.backup.errors import BackupError


class Command(BaseCommand):
    help = (
        "Restore a backup archive into an empty system (database, photos and personal-data "
        "basis files), after "
        "verifying every checksum; --verify only checks the archive."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", type=Path, help="the archive written by campuscard backup")
        parser.add_argument(
            "--verify", action="store_true", help="only check the archive (key, tags, checksums); change nothing"
        )
        parser.add_argument(
            "--accept-other-audit-key",
            action="store_true",
            help="restore even though AUDIT_HMAC_KEY differs from the source "
            "system's (the restored audit log will then not verify)",
        )

    def handle(self, *args, **opts):
        try:
            if opts["verify"]:
                manifest = services.verify(Path(opts["path"])).manifest
                self.stdout.write(
                    _("备份完好：%(members)d 个成员校验无误（%(vendor)s，制作于 %(at)s）")
                    % {
                        "members": len(manifest["members"]),
                        "vendor": manifest["vendor"],
                        "at": manifest.get("created_at"),
                    }
                )
                return
            result = services.restore(Path(opts["path"]), accept_other_audit_key=opts["accept_other_audit_key"])
        except BackupError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            _("恢复完成：数据库（%(vendor)s，备份于 %(at)s）、%(photos)d 张照片和 %(basis)d 个书面依据文件")
            % {
                "vendor": result.manifest["vendor"],
                "at": result.manifest.get("created_at"),
                "photos": result.photos,
                "basis": result.basis_files,
            }
        )
        if result.pending_migrations:
            self.stdout.write(
                _("本系统比备份新：请运行 campuscard migrate（%(count)d 个迁移未应用）")
                % {"count": len(result.pending_migrations)}
            )
        if result.audit is not None and not result.audit.ok:
            raise CommandError(
                _("数据已恢复，但审计链校验失败（记录 #%(id)s）：请确认 AUDIT_HMAC_KEY 与源系统一致")
                % {"id": result.audit.broken_id}
            )
        if result.audit is not None:
            self.stdout.write(_("审计链完整：%(count)d 条记录") % {"count": result.audit.checked})
