"""Backups on a schedule (R-SEC-4; issue 16, Build 4): the supervisor's ``backup`` job, every day
at ``BACKUP_AT`` (local time; ``ops.pipeline.scheduled``).

1. **Back up** into ``BACKUP_DIR`` as ``campuscard-<UTC time>Z.backup`` (``services.backup``:
   encrypted, written aside and renamed, never overwriting).
2. **Prove it restores**: the new archive is read whole and its database restored into a scratch
   database, whose key tables must hold the rows the manifest counted (``services.check_restore``).
3. **Rotate**, only once the new archive has passed: kept are the newest archive of each of the
   ``BACKUP_KEEP_DAILY`` latest days that have one, and — older than those days — the newest of
   each of the ``BACKUP_KEEP_WEEKLY`` latest ISO weeks (local dates); every other archive named
   like ours is deleted, and the deletion audited (``backup.rotate``). Other files in the folder
   are never touched.

A failure at any step fails the job (``job_failed`` on the NIC desk) and deletes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils.translation import gettext_lazy as _

from ops.audit.services import record
from ops.backup import services
from ops.pipeline.scheduled import Job, daily

ARCHIVE = re.compile(r"^campuscard-(\d{8}T\d{6})Z\.backup$")


def archive_name(at: datetime) -> str:
    return f"campuscard-{at.astimezone(UTC):%Y%m%dT%H%M%S}Z.backup"


def archives(folder: Path) -> dict[datetime, Path]:
    """The scheduled archives in ``folder`` by the time in their names."""
    found = {}
    for path in folder.iterdir():
        match = ARCHIVE.match(path.name)
        if match and path.is_file():
            found[datetime.strptime(match.group(1), "%Y%m%dT%H%M%S").replace(tzinfo=UTC)] = path
    return found


def to_keep(taken: Iterable[datetime], *, keep_daily: int, keep_weekly: int, tz: ZoneInfo) -> set[datetime]:
    """The rotation: the newest of each of the ``keep_daily`` latest days, then, before those
    days, the newest of each of the ``keep_weekly`` latest ISO weeks."""
    newest_first = sorted(taken, reverse=True)
    kept: set[datetime] = set()
    days: list[Any] = []
    for at in newest_first:
        day = at.astimezone(tz).date()
        if day in days:
            continue
        if len(days) == keep_daily:
            break
        days.append(day)
        kept.add(at)
    weeks: list[tuple[int, int]] = []
    for at in newest_first:
        day = at.astimezone(tz).date()
        if days and day >= days[-1]:
            continue  # the daily archives' days
        week = day.isocalendar()[:2]
        if week in weeks:
            continue
        if len(weeks) == keep_weekly:
            break
        weeks.append(week)
        kept.add(at)
    return kept


def rotate(folder: Path, *, keep_daily: int, keep_weekly: int) -> tuple[list[str], list[str]]:
    """Delete the archives the rotation does not keep; returns (kept, deleted) file names."""
    found = archives(folder)
    keep = to_keep(found, keep_daily=keep_daily, keep_weekly=keep_weekly, tz=ZoneInfo(settings.TIME_ZONE))
    kept = sorted(found[at].name for at in keep)
    deleted = []
    for at in sorted(set(found) - keep):
        found[at].unlink()
        deleted.append(found[at].name)
    if deleted:
        record(
            actor=None,
            action="backup.rotate",
            object_type="backup",
            object_id=str(folder)[:64],
            basis=f"BACKUP_KEEP_DAILY={keep_daily}, BACKUP_KEEP_WEEKLY={keep_weekly}",
            data={"folder": str(folder), "deleted": deleted, "kept": kept},
        )
    return kept, deleted


def scheduled_backup(now: datetime) -> dict[str, Any]:
    folder = Path(settings.BACKUP_DIR)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    made = services.backup(folder / archive_name(now))
    check = services.check_restore(made.path)
    kept, deleted = rotate(folder, keep_daily=settings.BACKUP_KEEP_DAILY, keep_weekly=settings.BACKUP_KEEP_WEEKLY)
    return {
        "archive": made.path.name,
        "bytes": made.size,
        "sha256": made.sha256,
        "photos": made.photos,
        "basis_files": made.basis_files,
        "restore_check": check.report(),
        "kept": kept,
        "deleted": deleted,
    }


JOB = Job("backup", _("加密备份、恢复校验与轮换"), lambda: daily(settings.BACKUP_AT), scheduled_backup)
