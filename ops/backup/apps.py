"""Backups and restores with their commands (R-SEC-4; no models), and the scheduled backup."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class BackupConfig(AppConfig):
    name = "ops.backup"
    label = "backup"
    verbose_name = _("备份与恢复")

    def ready(self) -> None:
        # The supervisor's scheduler sits in a room below this one: the backup job is handed to
        # it here, once the app registry is ready (docs/architecture.md, "imports inside functions").
        from ops.backup.scheduled import JOB
        from ops.pipeline.scheduled import register

        register(JOB)
