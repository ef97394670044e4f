"""The backup key: 32 random bytes written as 64 hex digits, from ``CAMPUSCARD_BACKUP_KEY`` or
the file named by ``CAMPUSCARD_BACKUP_KEY_FILE`` — never from the database, never in the
archive. Required in production; the demo keeps a generated key under ``var/`` (as the audit
key does), which must be copied somewhere safe with the backups: without it they are unreadable.
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext as _

from ops.backup.errors import BackupError
from ops.env import envbool, envstr
from ops.paths import var_dir

ENV = "CAMPUSCARD_BACKUP_KEY"
_HEX = re.compile(r"^[0-9a-fA-F]{64}$")


def demo_key_file() -> Path:
    return var_dir() / "backup_key"


def load_key(*, create: bool) -> bytes:
    """The key; in demo/dev a generated one under ``var/`` (created only when ``create``: a
    restore never invents a key, it could not open anything with it)."""
    try:
        raw = envstr(ENV)
    except ImproperlyConfigured as exc:
        raise BackupError(str(exc)) from exc
    if not raw:
        if not settings.DEBUG and envbool("CAMPUSCARD_PRODUCTION", False):
            raise BackupError(_("生产环境必须设置备份密钥 CAMPUSCARD_BACKUP_KEY（或 CAMPUSCARD_BACKUP_KEY_FILE）"))
        key_file = demo_key_file()
        if not key_file.exists():
            if not create:
                raise BackupError(
                    _(
                        "未设置备份密钥：请设置 CAMPUSCARD_BACKUP_KEY 或 "
                        "CAMPUSCARD_BACKUP_KEY_FILE 为制作备份时所用的密钥"
                    )
                )
            key_file.write_text(secrets.token_hex(32), encoding="utf-8")
            key_file.chmod(0o600)
        raw = key_file.read_text(encoding="utf-8")
    raw = raw.strip()
    if not _HEX.match(raw):
        raise BackupError(
            _(
                "备份密钥应为 64 位十六进制数（32 字节），可用 python -c "
                '"import secrets; print(secrets.token_hex(32))" 生成'
            )
        )
    return bytes.fromhex(raw)
