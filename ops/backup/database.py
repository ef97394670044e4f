"""The database side of a backup: a consistent snapshot streamed out, and a restore streamed in,
for the two vendors the system runs on. Connection parameters come from the connection's own
settings (under pytest that is the test database, not the one named in settings).

PostgreSQL: a ``REPEATABLE READ`` transaction exports its snapshot and ``pg_dump --snapshot``
dumps exactly that (custom format); the snapshot is taken before the file stores (photos, basis
files) are listed, so every file the dump refers to is in the archive (files are written before
the rows that name them and never changed or deleted). ``pg_restore --single-transaction --clean --if-exists``
restores it all or nothing. SQLite: the online backup API copies a consistent file, and copies
it back into the live database on restore.

A restore *check* (issue 16, Build 4) restores a dump somewhere else: PostgreSQL into a scratch
database created for it on the same server and dropped afterwards (the database user needs
CREATEDB); SQLite into a temporary file. Either way the key tables are counted, as they were in
the snapshot, and compared with the manifest.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import psycopg
from django.apps import apps
from django.conf import settings
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection, connections
from django.db.backends.postgresql.client import DatabaseClient
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.recorder import MigrationRecorder
from django.utils.translation import gettext as _

from ops.audit.models import AuditChain, AuditRecord
from ops.backup.errors import BackupError
from ops.paths import var_dir

_READ = 1 << 16
# Rows ``campuscard migrate`` itself writes (content types, permissions, the audit chain's
# head with nothing chained yet): a freshly migrated system is still "empty".
_MIGRATE_ROWS = (ContentType, Permission, AuditChain)
# Counted in the snapshot (the manifest's ``row_counts``) and again after a restore check: a
# dump that lost rows shows there. Not every table: the tap history may hold many millions.
CHECKED_MODELS = (
    "audit.AuditRecord",
    "accounts.Operator",
    "campus.Department",
    "campus.Building",
    "campus.Cardholder",
    "campus.Card",
    "campus.Device",
    "cards.CardAction",
    "cards.FeeCharge",
)
MIGRATIONS_TABLE = "django_migrations"


def vendor() -> str:
    return connection.vendor


def checked_tables() -> list[str]:
    tables = {apps.get_model(settings.AUTH_USER_MODEL)._meta.db_table}
    for label in CHECKED_MODELS:
        try:
            tables.add(apps.get_model(label)._meta.db_table)
        except LookupError:  # pragma: no cover - an app left out of INSTALLED_APPS
            continue
    return sorted(tables)


def _count_rows(scalar: Callable[[str], int], tables: list[str], exists: Callable[[str], bool]) -> dict[str, int]:
    """``count(*)`` of each of ``tables`` that exists (``scalar(sql)``: the query's one value)."""
    quote = connection.ops.quote_name
    return {table: scalar(f"SELECT count(*) FROM {quote(table)}") for table in tables if exists(table)}  # noqa: S608


@dataclass
class Snapshot:
    """The database as of one instant: its migration state, its audit record count, and
    ``blocks()`` — the dump, streamed."""

    migrations: list[list[str]]
    audit_records: int
    blocks: Callable[[], Iterator[bytes]] = field(repr=False)
    row_counts: dict[str, int] = field(default_factory=dict)  # the key tables (CHECKED_MODELS)


@contextmanager
def snapshot() -> Iterator[Snapshot]:
    if vendor() == "postgresql":
        with _pg_snapshot() as snap:
            yield snap
    elif vendor() == "sqlite":
        with _sqlite_snapshot() as snap:
            yield snap
    else:
        raise BackupError(_("不支持备份这种数据库：%(vendor)s") % {"vendor": vendor()})


def restore(blocks: Iterator[bytes]) -> None:
    """Replace the database with the dump streamed in ``blocks`` — all of it or nothing."""
    if vendor() == "postgresql":
        _pg_restore(blocks)
    else:
        _sqlite_restore(blocks)
    ContentType.objects.clear_cache()


def non_empty_table() -> str | None:
    """The first table holding application rows (any user, audit record, cardholder…), or
    None for an empty system — a blank database or a freshly migrated one."""
    existing = set(connection.introspection.table_names())
    for model in apps.get_models(include_auto_created=True):
        meta = model._meta
        if meta.proxy or not meta.managed or model in _MIGRATE_ROWS or meta.db_table not in existing:
            continue
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT 1 FROM {connection.ops.quote_name(meta.db_table)} LIMIT 1")  # noqa: S608
            if cursor.fetchone():
                return meta.db_table
    return None


def applied_migrations() -> set[tuple[str, str]]:
    recorder = MigrationRecorder(connection)
    return set(recorder.applied_migrations()) if recorder.has_table() else set()


def known_migrations() -> set[tuple[str, str]]:
    return set(MigrationLoader(None, ignore_no_migrations=True).disk_migrations)


# --- PostgreSQL -----------------------------------------------------------------------------


def _pg_command(program: str, *, dbname: str | None = None) -> tuple[list[str], dict[str, str]]:
    """``program`` with the connection's host, port, user and database (or ``dbname``); the
    password and TLS settings go in the environment (as ``campuscard dbshell`` does), never on
    the command line."""
    path = shutil.which(program)
    if path is None:
        raise BackupError(
            _("找不到 %(program)s：请安装与数据库服务器同版本的 PostgreSQL 客户端") % {"program": program}
        )
    cfg = dict(connection.settings_dict)
    if dbname is not None:
        cfg["NAME"] = dbname
    args = [path]
    for flag, key in (("--host", "HOST"), ("--port", "PORT"), ("--username", "USER"), ("--dbname", "NAME")):
        if cfg.get(key):
            args.append(f"{flag}={cfg[key]}")
    _psql, env = DatabaseClient.settings_to_cmd_args_env(cfg, [])
    return args, {**os.environ, **(env or {})}


def _stderr_tail(handle: IO[bytes]) -> str:
    handle.seek(0)
    return handle.read().decode(errors="replace").strip()[-2000:]


@contextmanager
def _pg_snapshot() -> Iterator[Snapshot]:
    raw = connection.get_new_connection(connection.get_connection_params())
    try:
        raw.autocommit = True
        raw.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        snapshot_id = raw.execute("SELECT pg_export_snapshot()").fetchone()[0]
        migrations: list[list[str]] = []
        if raw.execute("SELECT to_regclass('django_migrations')").fetchone()[0]:
            migrations = [
                list(r) for r in raw.execute("SELECT app, name FROM django_migrations ORDER BY app, name").fetchall()
            ]
        audit = 0
        if raw.execute("SELECT to_regclass(%s)", [AuditRecord._meta.db_table]).fetchone()[0]:
            audit = raw.execute(f"SELECT count(*) FROM {AuditRecord._meta.db_table}").fetchone()[0]  # noqa: S608
        counts = _count_rows(
            lambda sql: int(raw.execute(sql).fetchone()[0]),
            checked_tables(),
            lambda table: raw.execute("SELECT to_regclass(%s)", [table]).fetchone()[0] is not None,
        )
        yield Snapshot(migrations, audit, lambda: _pg_dump(snapshot_id), row_counts=counts)
    finally:
        raw.close()  # ends the snapshot's transaction: only after pg_dump is done with it


def _pg_dump(snapshot_id: str) -> Iterator[bytes]:
    args, env = _pg_command("pg_dump")
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen(
            [*args, "--format=custom", f"--snapshot={snapshot_id}"], stdout=subprocess.PIPE, stderr=errors, env=env
        )
        assert proc.stdout is not None
        finished = False
        try:
            while block := proc.stdout.read(_READ):
                yield block
            finished = True
        finally:
            if not finished:
                proc.kill()  # the consumer gave up half-way
            proc.stdout.close()
            code = proc.wait()
        if code != 0:
            raise BackupError(_("pg_dump 失败：%(error)s") % {"error": _stderr_tail(errors)})


# Partitioned tables (the monthly taps, issue 14) are dropped whole before pg_restore's own
# --clean statements run: those would otherwise try to drop each partition's inherited key,
# which PostgreSQL refuses. In the same transaction as the rest, so a failed restore keeps them.
_DROP_PARTITIONED = """DO $$ DECLARE r record; BEGIN
  FOR r IN SELECT n.nspname, c.relname FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid
           JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = current_schema() LOOP
    EXECUTE format('DROP TABLE %I.%I CASCADE', r.nspname, r.relname);
  END LOOP; END $$;"""


def _pg_restore(blocks: Iterator[bytes]) -> None:
    """pg_restore turns the archive into SQL; psql runs it in one transaction after dropping
    the partitioned tables. psql's input is closed (and so committed) only once pg_restore has
    finished cleanly; any failure kills psql, and its transaction rolls back."""
    connections.close_all()  # nothing of ours holds the tables while they are replaced
    (restore_path, *_conn), _env = _pg_command("pg_restore")
    psql_args, env = _pg_command("psql")
    with tempfile.TemporaryFile() as errors:
        psql = subprocess.Popen(
            [*psql_args, "-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction"]
            + ["-c", _DROP_PARTITIONED, "-f", "-"],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=errors,
            env=env,
        )
        restore = subprocess.Popen(
            [restore_path, "--clean", "--if-exists", "--no-owner", "--no-privileges", "-f", "-"],
            stdin=subprocess.PIPE,
            stdout=psql.stdin,
            stderr=errors,
            env=env,
        )
        assert restore.stdin is not None and psql.stdin is not None
        try:
            try:
                for block in blocks:
                    restore.stdin.write(block)
                restore.stdin.close()
            except BrokenPipeError:
                pass  # pg_restore stopped early: its exit code and message say why
            if restore.wait() != 0:
                raise BackupError(_("pg_restore 失败，数据库未改动：%(error)s") % {"error": _stderr_tail(errors)})
        except BaseException:
            restore.kill()
            psql.kill()  # never let it commit a half-read dump: killed, its transaction rolls back
            restore.wait()
            psql.wait()
            raise
        psql.stdin.close()  # the whole script is in: psql commits at its end
        if psql.wait() != 0:
            raise BackupError(_("pg_restore 失败，数据库未改动：%(error)s") % {"error": _stderr_tail(errors)})


@dataclass(frozen=True)
class ScratchRestore:
    """What a restore check found in the restored copy: where it was restored (gone now), the
    key tables' rows and the applied migrations there."""

    database: str
    row_counts: dict[str, int]
    migrations: int


def restore_check(blocks: Iterator[bytes], *, source_vendor: str, tables: list[str]) -> ScratchRestore:
    """Restore the dump streamed in ``blocks`` away from the system — a scratch PostgreSQL
    database (made and dropped here) or a temporary SQLite file — and count ``tables`` there."""
    if source_vendor == "sqlite":
        return _sqlite_scratch(blocks, tables)
    if source_vendor != "postgresql" or vendor() != "postgresql":
        raise BackupError(
            _("备份来自 %(source)s 数据库，本系统用的是 %(target)s：无法做恢复校验")
            % {"source": source_vendor, "target": vendor()}
        )
    return _pg_scratch(blocks, tables)


def _scratch_name() -> str:
    """``scratch_<this database>_<random>``: whose it is, and never one that exists."""
    own = re.sub(r"[^a-z0-9_]", "_", str(connection.settings_dict.get("NAME") or "campuscard").lower())
    return f"scratch_{own[:40]}_{secrets.token_hex(4)}"


def _pg_scratch(blocks: Iterator[bytes], tables: list[str]) -> ScratchRestore:
    params = connection.get_connection_params()
    name = _scratch_name()
    quoted = connection.ops.quote_name(name)
    admin = connection.get_new_connection(params)
    try:
        admin.autocommit = True
        try:
            admin.execute(f"CREATE DATABASE {quoted}")
        except psycopg.Error as exc:
            raise BackupError(
                _("恢复校验需要新建一个临时数据库，但未能建立（数据库用户需要 CREATEDB 权限）：%(error)s")
                % {"error": exc}
            ) from exc
        try:
            _pg_restore_into(name, blocks)
            # straight to the scratch database, never through a pool (which would hand back a
            # connection to the system's own database), and checked to be that database
            scratch = psycopg.connect(**{**params, "dbname": name})
            try:
                if _scalar(scratch, "SELECT current_database()") != name:  # pragma: no cover
                    raise BackupError(_("恢复校验没有连到临时数据库：已停止"))
                counts = _count_rows(
                    lambda sql: int(_scalar(scratch, sql)),
                    [*tables, MIGRATIONS_TABLE],
                    lambda table: _scalar(scratch, "SELECT to_regclass(%s)", [table]) is not None,
                )
            finally:
                scratch.close()
        finally:
            try:
                admin.execute(f"DROP DATABASE IF EXISTS {quoted}")
            except psycopg.Error as exc:
                raise BackupError(
                    _("恢复校验用的临时数据库 %(name)s 未能删除，请手工删除：%(error)s") % {"name": name, "error": exc}
                ) from exc
    finally:
        admin.close()
    migrations = counts.pop(MIGRATIONS_TABLE, 0)
    return ScratchRestore(name, counts, migrations)


def _scalar(conn: psycopg.Connection[Any], sql: str, params: list[str] | None = None) -> Any:
    row = conn.execute(sql, params).fetchone()
    return None if row is None else row[0]


def _pg_restore_into(dbname: str, blocks: Iterator[bytes]) -> None:
    """``pg_restore`` straight into the (empty) scratch database, in one transaction, stopping
    at the first error."""
    args, env = _pg_command("pg_restore", dbname=dbname)
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen(
            [*args, "--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction"],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=errors,
            env=env,
        )
        assert proc.stdin is not None
        try:
            try:
                for block in blocks:
                    proc.stdin.write(block)
                proc.stdin.close()
            except BrokenPipeError:
                pass  # pg_restore stopped early: its exit code and message say why
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        if proc.wait() != 0:
            raise BackupError(_("恢复校验失败：pg_restore 出错：%(error)s") % {"error": _stderr_tail(errors)})


# --- SQLite ---------------------------------------------------------------------------------


def _sqlite_connection() -> sqlite3.Connection:
    connection.ensure_connection()
    return connection.connection


@contextmanager
def _sqlite_snapshot() -> Iterator[Snapshot]:
    fd, name = tempfile.mkstemp(dir=var_dir(), prefix=".backup-", suffix=".sqlite3")
    os.close(fd)
    path = Path(name)
    try:
        copy = sqlite3.connect(path)
        try:
            _sqlite_connection().backup(copy)
            tables = {r[0] for r in copy.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            migrations = (
                [list(r) for r in copy.execute("SELECT app, name FROM django_migrations ORDER BY app, name")]
                if "django_migrations" in tables
                else []
            )
            audit = (
                copy.execute(f"SELECT count(*) FROM {AuditRecord._meta.db_table}").fetchone()[0]  # noqa: S608
                if AuditRecord._meta.db_table in tables
                else 0
            )
            counts = _count_rows(
                lambda sql: int(copy.execute(sql).fetchone()[0]), checked_tables(), tables.__contains__
            )
        finally:
            copy.close()
        yield Snapshot(migrations, audit, lambda: _read_file(path), row_counts=counts)
    finally:
        path.unlink(missing_ok=True)


def _read_file(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while block := handle.read(_READ):
            yield block


def _sqlite_restore(blocks: Iterator[bytes]) -> None:
    fd, name = tempfile.mkstemp(dir=var_dir(), prefix=".restore-", suffix=".sqlite3")
    path = Path(name)
    try:
        with os.fdopen(fd, "wb") as handle:
            for block in blocks:
                handle.write(block)
        source = sqlite3.connect(path)
        try:
            if source.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
                raise BackupError(_("备份中的 SQLite 数据库已损坏，数据库未改动"))
            source.backup(_sqlite_connection())  # one step: the live database changes all at once
        finally:
            source.close()
    finally:
        with suppress(OSError):
            path.unlink()


def _sqlite_scratch(blocks: Iterator[bytes], tables: list[str]) -> ScratchRestore:
    fd, name = tempfile.mkstemp(dir=var_dir(), prefix=".restore-check-", suffix=".sqlite3")
    path = Path(name)
    try:
        with os.fdopen(fd, "wb") as handle:
            for block in blocks:
                handle.write(block)
        copy = sqlite3.connect(path)
        try:
            if copy.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
                raise BackupError(_("备份中的 SQLite 数据库已损坏"))
            present = {r[0] for r in copy.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            counts = _count_rows(
                lambda sql: int(copy.execute(sql).fetchone()[0]), [*tables, MIGRATIONS_TABLE], present.__contains__
            )
        finally:
            copy.close()
    finally:
        with suppress(OSError):
            path.unlink()
    migrations = counts.pop(MIGRATIONS_TABLE, 0)
    return ScratchRestore(f"sqlite:{path.name}", counts, migrations)
