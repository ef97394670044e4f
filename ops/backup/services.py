"""Backup and restore, the rules (R-SEC-4).

``backup``: one archive file, encrypted and authenticated with the backup key: the database as
of one instant, every photo and every personal-data basis file stored by then (``stores``), and
a manifest (digests, migration state, time, source vendor). Written aside and renamed into
place, so a failed backup leaves no archive.

``restore``: only into an empty system (no application rows, no photos, no basis files). The
whole archive is read and checked first — every chunk's tag, every member's digest, the vendor,
the migration state, the audit key — and only then are the files staged, the database restored
in one transaction, and the files moved in. Both are audited. The audit HMAC key is not in the
archive: the restored log verifies only with the source system's ``AUDIT_HMAC_KEY``.

``check_restore`` (issue 16, Build 4): proves an archive restores without touching the system —
read and checked whole, its database restored into a scratch database (``database.restore_check``)
whose key tables must hold the rows the manifest counted at the snapshot. Audited, pass or fail.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import IO, Any

import django
from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _

from ops.audit import chain, checkpoints
from ops.audit.models import AuditRecord
from ops.audit.services import record
from ops.backup import archive, database, keys, stores
from ops.backup.crypto import Damaged, DecryptingReader, EncryptingWriter
from ops.backup.errors import BackupError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BackupResult:
    path: Path
    sha256: str
    size: int
    photos: int
    skipped_photos: list[str]
    manifest: dict[str, Any] = field(repr=False)
    basis_files: int = 0
    skipped_basis_files: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class RestoreResult:
    manifest: dict[str, Any] = field(repr=False)
    photos: int = 0
    audit: chain.Verdict | None = None
    pending_migrations: list[str] = field(default_factory=list)
    basis_files: int = 0


def audit_key_check() -> str:
    """A fingerprint of the audit key (an HMAC of a fixed text: says nothing about the key),
    so a restore can tell before it starts whether the restored log will verify here."""
    return hmac.new(settings.AUDIT_HMAC_KEY.encode(), b"campuscard backup: audit key check", "sha256").hexdigest()


class _Hashing:
    """A file wrapper that hashes what is written through it."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw, self.digest, self.size = raw, hashlib.sha256(), 0

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        self.size += len(data)
        return self.raw.write(data)


def backup(out: Path) -> BackupResult:
    key = keys.load_key(create=True)
    out = out.resolve()
    if out.exists():
        raise BackupError(_("%(path)s 已存在：备份不会覆盖已有文件") % {"path": out})
    if not out.parent.is_dir():
        raise BackupError(_("目录 %(path)s 不存在") % {"path": out.parent})
    part = out.with_name(f".{out.name}.{os.getpid()}.part")
    vendor = database.vendor()
    skipped: dict[str, list[str]] = {store.prefix: [] for store in stores.STORES}
    added: dict[str, int] = {store.prefix: 0 for store in stores.STORES}
    try:
        with database.snapshot() as snap:  # first the database, then the files it refers to
            taken = timezone.now()
            stored = [(store, list(store.stored())) for store in stores.STORES]
            fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as raw:
                sink = _Hashing(raw)
                writer = archive.ArchiveWriter(EncryptingWriter(sink, key))
                for store, files in stored:
                    for name, path in files:
                        data = path.read_bytes()
                        if hashlib.sha256(data).hexdigest() != archive.content_digest(name):
                            skipped[store.prefix].append(name)  # bit rot: say so, go on
                            continue
                        writer.add(name, [data])
                        added[store.prefix] += 1
                writer.add(archive.DATABASE[vendor], snap.blocks())
                manifest = _manifest(snap, vendor, taken, skipped)
                writer.finish(manifest)
                raw.flush()
                os.fsync(raw.fileno())
        os.replace(part, out)
    finally:
        part.unlink(missing_ok=True)
    result = BackupResult(
        out,
        sink.digest.hexdigest(),
        sink.size,
        added[stores.PHOTOS.prefix],
        skipped[stores.PHOTOS.prefix],
        manifest,
        basis_files=added[stores.BASIS_FILES.prefix],
        skipped_basis_files=skipped[stores.BASIS_FILES.prefix],
    )
    record(
        actor=None,
        action="backup.create",
        object_type="backup",
        object_id=out.name[:64],
        data={
            "file": str(out),
            "sha256": result.sha256,
            "bytes": result.size,
            "photos": result.photos,
            "basis_files": result.basis_files,
            "vendor": vendor,
            "taken_at": taken.isoformat(),
            "audit_records": snap.audit_records,
            "damaged_photos": result.skipped_photos,
            "damaged_basis_files": result.skipped_basis_files,
        },
    )
    return result


def _manifest(snap: database.Snapshot, vendor: str, taken: datetime, skipped: dict[str, list[str]]) -> dict[str, Any]:
    try:
        version = metadata.version("campuscard")
    except metadata.PackageNotFoundError:
        version = ""
    return {
        "format": 1,
        "created_at": taken.astimezone(UTC).isoformat(),
        "vendor": vendor,
        "campuscard": version,
        "django": django.get_version(),
        "migrations": snap.migrations,
        "audit_records": snap.audit_records,
        "row_counts": snap.row_counts,  # the key tables at the snapshot: a restore check compares
        "audit_key_check": audit_key_check(),
        "damaged_photos_left_out": skipped[stores.PHOTOS.prefix],
        "damaged_basis_files_left_out": skipped[stores.BASIS_FILES.prefix],
    }


def verify(path: Path) -> archive.Verified:
    """Read and check the whole archive; change nothing."""
    key = keys.load_key(create=False)
    if not path.is_file():
        raise BackupError(_("找不到备份文件 %(path)s") % {"path": path})
    return archive.verify(path, key)


@dataclass(frozen=True)
class RestoreCheck:
    """An archive proven to restore: where its database was restored (dropped since), the key
    tables' rows found there, the time it took."""

    manifest: dict[str, Any] = field(repr=False)
    database: str = ""
    row_counts: dict[str, int] = field(default_factory=dict)
    migrations: int = 0
    seconds: float = 0.0

    def report(self) -> dict[str, Any]:
        return {
            "scratch_database": self.database,
            "row_counts": self.row_counts,
            "migrations": self.migrations,
            "seconds": round(self.seconds, 3),
            "created_at": self.manifest.get("created_at"),
        }


def check_restore(path: Path) -> RestoreCheck:
    """Restore ``path``'s database into a scratch database and compare what arrived with the
    manifest (R-SEC-4: backups exist *and restore*). The system itself is not touched."""
    began = time.monotonic()
    try:
        key = keys.load_key(create=False)
        if not path.is_file():
            raise BackupError(_("找不到备份文件 %(path)s") % {"path": path})
        verified = archive.verify(path, key)  # every tag and digest first
        manifest = verified.manifest
        member = archive.DATABASE[manifest["vendor"]]
        expected: dict[str, int] = manifest.get("row_counts") or {}
        if not expected:  # an archive made before row counts were kept: its audit count
            expected = {AuditRecord._meta.db_table: int(manifest.get("audit_records", 0))}
        restored = None
        with path.open("rb") as raw:
            reader = DecryptingReader(raw, key)
            if reader.header != verified.header:
                raise Damaged(_("备份文件在校验之后被替换了，已停止"))
            for name, blocks in archive.members(reader):
                if name == member:
                    restored = database.restore_check(
                        _checked(name, blocks, manifest["members"][name]["sha256"]),
                        source_vendor=manifest["vendor"],
                        tables=sorted(expected),
                    )
                    break
        if restored is None:  # pragma: no cover - verify() requires the member
            raise Damaged(_("备份内容不完整：没有数据库"))
        _compare(manifest, expected, restored)
    except BackupError as exc:
        record(
            actor=None,
            action="backup.check",
            object_type="backup",
            object_id=path.name[:64],
            data={"file": str(path), "ok": False, "error": str(exc)[:500]},
        )
        raise
    result = RestoreCheck(
        manifest, restored.database, restored.row_counts, restored.migrations, time.monotonic() - began
    )
    record(
        actor=None,
        action="backup.check",
        object_type="backup",
        object_id=path.name[:64],
        data={"file": str(path), "ok": True, **result.report()},
    )
    return result


def _compare(manifest: dict[str, Any], expected: dict[str, int], restored: database.ScratchRestore) -> None:
    for table, rows in sorted(expected.items()):
        got = restored.row_counts.get(table)
        if got != rows:
            raise BackupError(
                _("恢复校验不符：表 %(table)s 恢复后有 %(got)s 行，备份时为 %(rows)s 行")
                % {"table": table, "got": "—" if got is None else got, "rows": rows}
            )
    if restored.migrations != len(manifest.get("migrations", [])):
        raise BackupError(
            _("恢复校验不符：恢复后有 %(got)s 个已应用的迁移，备份时为 %(rows)s 个")
            % {"got": restored.migrations, "rows": len(manifest.get("migrations", []))}
        )


def restore(path: Path, *, accept_other_audit_key: bool = False) -> RestoreResult:
    key = keys.load_key(create=False)
    if not path.is_file():
        raise BackupError(_("找不到备份文件 %(path)s") % {"path": path})
    table = database.non_empty_table()
    if table:
        raise BackupError(
            _(
                "只能恢复到空系统：数据库表 %(table)s 里已有数据。请新建一个空数据库"
                "（可先运行 campuscard migrate）再恢复；没有改动任何数据"
            )
            % {"table": table}
        )
    if stores.PHOTOS.files():
        raise BackupError(
            _("只能恢复到空系统：照片目录 %(path)s 不是空的；没有改动任何数据") % {"path": stores.PHOTOS.root()}
        )
    if stores.BASIS_FILES.files():
        raise BackupError(
            _("只能恢复到空系统：书面依据目录 %(path)s 不是空的；没有改动任何数据")
            % {"path": stores.BASIS_FILES.root()}
        )
    verified = archive.verify(path, key)  # every tag and digest, before anything is touched
    manifest = verified.manifest
    _check_compatible(manifest, accept_other_audit_key)
    staging = stores.Staging()
    try:
        with path.open("rb") as raw:
            reader = DecryptingReader(raw, key)
            if reader.header != verified.header:
                raise Damaged(_("备份文件在校验之后被替换了，已停止；没有改动任何数据"))
            db_member = archive.DATABASE[manifest["vendor"]]
            for name, blocks in archive.members(reader):
                expected = manifest["members"].get(name)
                if name == archive.MANIFEST:
                    continue
                if expected is None:
                    raise Damaged(_("校验和不符：成员 %(name)s 与清单不一致") % {"name": name})
                checked = _checked(name, blocks, expected["sha256"])
                if name == db_member:
                    database.restore(checked)
                else:
                    staging.add(name, checked)
        counts = dict(staging.counts)
        staging.commit()
    except BaseException:
        staging.discard()
        raise
    verdict = chain.verify()
    pending = sorted(
        f"{app}.{name}" for app, name in database.known_migrations() - {tuple(m) for m in manifest["migrations"]}
    )
    record(
        actor=None,
        action="backup.restore",
        object_type="backup",
        object_id=str(manifest.get("created_at", ""))[:64],
        data={
            "file": str(path.resolve()),
            "created_at": manifest.get("created_at"),
            "source_vendor": manifest["vendor"],
            "photos": counts[stores.PHOTOS.prefix],
            "basis_files": counts[stores.BASIS_FILES.prefix],
            "audit_chain_ok": verdict.ok,
            "pending_migrations": pending,
        },
    )
    # the audit checkpoints outside the database (issue 20) go on from the restored head: what
    # came after the backup is gone, as the verdict above (in the restore's record) says
    try:
        checkpoints.write(rebase=f"restore of the backup of {manifest.get('created_at')}")
    except (checkpoints.CheckpointError, OSError) as exc:  # the data is back; the anchor is NIC's to mend
        log.error("restored, but no audit checkpoint written: %s", exc, extra={"event": "audit.checkpoint_refused"})
    return RestoreResult(
        manifest, counts[stores.PHOTOS.prefix], verdict, pending, basis_files=counts[stores.BASIS_FILES.prefix]
    )


def _check_compatible(manifest: dict[str, Any], accept_other_audit_key: bool) -> None:
    if manifest.get("vendor") != database.vendor():
        raise BackupError(
            _("备份来自 %(source)s 数据库，本系统用的是 %(target)s：不能恢复")
            % {"source": manifest.get("vendor"), "target": database.vendor()}
        )
    archived = {tuple(m) for m in manifest.get("migrations", [])}
    unknown = sorted(archived - database.known_migrations())
    if unknown:
        raise BackupError(
            _("备份来自更新的版本（本系统没有迁移 %(migration)s）：请先升级本系统再恢复")
            % {"migration": ".".join(unknown[0])}
        )
    ahead = sorted(database.applied_migrations() - archived)
    if ahead:
        raise BackupError(
            _(
                "目标数据库已迁移到比备份更新的状态（%(migration)s）：请在新建的空数据库上"
                "恢复，之后再运行 campuscard migrate"
            )
            % {"migration": ".".join(ahead[0])}
        )
    if not accept_other_audit_key and not hmac.compare_digest(
        str(manifest.get("audit_key_check", "")), audit_key_check()
    ):
        raise BackupError(
            _(
                "本系统的审计密钥 AUDIT_HMAC_KEY 与制作备份的系统不同：恢复后审计链将无法"
                "校验。请设置源系统的 AUDIT_HMAC_KEY 再恢复（确实遗失时可加 "
                "--accept-other-audit-key）"
            )
        )


def _checked(name: str, blocks: Iterable[bytes], sha256: str) -> Iterator[bytes]:
    """The blocks, passed on; the digest is compared at the end (the first pass already did:
    this guards the second read)."""
    digest = hashlib.sha256()
    for block in blocks:
        digest.update(block)
        yield block
    if digest.hexdigest() != sha256:
        raise Damaged(_("校验和不符：成员 %(name)s 与清单不一致") % {"name": name})
