"""Backups exist and restore (R-SEC-4): ``campuscard backup`` writes one encrypted archive of
the database (PostgreSQL here, the test database pytest-django made), the photo store and the
personal-data basis files; after the system is wiped, ``campuscard restore`` brings back an
identical database, the same photos and basis files, and the audit chain verifies. A tampered
archive, a wrong key and a non-empty target are refused, and nothing changes."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import subprocess
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import connection

from ops.audit.models import AuditRecord
from ops.audit.services import Entry, record, record_many
from ops.backup import services
from ops.personal_data import basis_store
from ops.registry.lifecycle import photo_store
from ops.registry.lifecycle.photos import make_test_photo
from tests.conftest import ROOT, campuscard_cmd
from tests.factories import make_campus

pytestmark = pytest.mark.django_db(transaction=True)

AUDIT_TABLE = AuditRecord._meta.db_table


@pytest.fixture
def var(tmp_path, monkeypatch):
    """A private var directory (photo store) and a backup key for each test."""
    path = tmp_path / "var"
    monkeypatch.setenv("CAMPUSCARD_VAR_DIR", str(path))
    monkeypatch.setenv("CAMPUSCARD_BACKUP_KEY", secrets.token_hex(32))
    monkeypatch.delenv("CAMPUSCARD_BACKUP_KEY_FILE", raising=False)
    return path


def _build_campus() -> None:
    campus = make_campus(n_cards=12)
    for i, card in enumerate(campus.cards[:8]):
        holder = card.holder
        holder.photo_sha256 = photo_store.save(make_test_photo(color=(40 + 20 * i, 120, 200 - 10 * i), seed=i))
        holder.save(update_fields=["photo_sha256"])
    operator = get_user_model().objects.create_user("nic", password="a-long-password-1")
    record(
        actor=operator,
        action="card.issue",
        object_type="card",
        object_id=campus.cards[0].uid,
        basis="审批单 12",
        data={"holder": campus.cards[0].holder.number, "金额": "20.00"},
    )
    record_many(
        actor=operator,
        basis="批量导入",
        entries=[Entry("holder.create", "cardholder", c.holder.number, {"row": i}) for i, c in enumerate(campus.cards)],
    )
    basis_store.save("审批单.pdf", BASIS_PDF)
    basis_store.save("scan.png", b"\x89PNG\r\n\x1a\n" + bytes(range(64)))


BASIS_PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def _tables() -> list[str]:
    return sorted(connection.introspection.table_names())


def _state() -> dict:
    """Every row of every table, in primary-key order, and every sequence's position."""
    out = {}
    with connection.cursor() as cursor:
        for table in _tables():
            cursor.execute(f'SELECT * FROM "{table}" ORDER BY 1')
            out[table] = [tuple(json.dumps(v, sort_keys=True, default=str) for v in row) for row in cursor.fetchall()]
        cursor.execute("SELECT sequencename, last_value FROM pg_sequences ORDER BY 1")
        out["sequences"] = cursor.fetchall()
    return out


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _photos() -> dict[str, bytes]:
    return _files(photo_store.photo_dir())


def _basis_files() -> dict[str, bytes]:
    return _files(basis_store.basis_dir())


def _flush() -> None:
    """A freshly migrated system: tables there, no rows but what migrate itself writes."""
    call_command("flush", interactive=False, verbosity=0)


def _drop() -> None:
    """A blank database: no tables at all."""
    with connection.cursor() as cursor:
        for table in _tables():
            cursor.execute(f'DROP TABLE IF EXISTS "{table}" CASCADE')


def _wipe_photos() -> None:
    """The file stores: photos and personal-data basis files."""
    shutil.rmtree(photo_store.photo_dir())
    shutil.rmtree(basis_store.basis_dir())


def _backup(path: Path) -> None:
    call_command("backup", "--out", str(path), verbosity=0)


def _backed_up_then_emptied(tmp_path: Path) -> tuple[Path, dict]:
    """A campus backed up, then an empty system (migrated, no files): the archive and that state."""
    _build_campus()
    archive = tmp_path / "campus.ccbackup"
    _backup(archive)
    _flush()
    _wipe_photos()
    return archive, _state()


@pytest.mark.parametrize("wipe", [_flush, _drop], ids=["migrated-empty", "blank"])
def test_backup_wipe_restore_gives_back_the_identical_system(var, tmp_path, wipe, capsys):
    _build_campus()
    before, photos_before, basis_before = _state(), _photos(), _basis_files()
    assert len(photos_before) == 8 and len(before[AUDIT_TABLE]) == 13
    pdf_sha = hashlib.sha256(BASIS_PDF).hexdigest()
    assert len(basis_before) == 2 and basis_before[f"{pdf_sha[:2]}/{pdf_sha}.pdf"] == BASIS_PDF
    archive = tmp_path / "campus.ccbackup"
    _backup(archive)
    assert AuditRecord.objects.latest("id").action == "backup.create"
    assert b"2025CS00000" not in archive.read_bytes()  # encrypted, names and all
    assert not list(tmp_path.glob(".*.part"))

    wipe()
    _wipe_photos()
    assert _photos() == {} and _basis_files() == {}
    call_command("restore", str(archive))

    after = _state()
    assert _photos() == photos_before
    assert _basis_files() == basis_before
    basis = basis_store.path_for(pdf_sha, "application/pdf")
    assert basis is not None and basis.read_bytes() == BASIS_PDF
    assert not list(var.glob(".*-restoring-*"))
    restored_audit = after.pop(AUDIT_TABLE)
    assert restored_audit[:-1] == before.pop(AUDIT_TABLE)
    assert AuditRecord.objects.latest("id").action == "backup.restore"
    sequences_after, sequences_before = dict(after.pop("sequences")), dict(before.pop("sequences"))
    audit_seq = f"{AUDIT_TABLE}_id_seq"
    assert sequences_after.pop(audit_seq) == sequences_before.pop(audit_seq) + 1  # + the restore record
    assert sequences_after == sequences_before
    chain_table = "audit_auditchain"
    after.pop(chain_table), before.pop(chain_table)  # the head moved on by the restore record
    assert after == before  # every other table, row for row
    capsys.readouterr()
    call_command("audit", "verify")
    assert f"intact: {len(restored_audit)} records" in capsys.readouterr().out


def test_a_tampered_archive_is_refused_and_nothing_changes(var, tmp_path):
    archive, empty = _backed_up_then_emptied(tmp_path)
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0x01
    archive.write_bytes(bytes(data))
    with pytest.raises(CommandError, match="已损坏或被篡改"):
        call_command("restore", str(archive))
    cut = tmp_path / "cut.ccbackup"
    cut.write_bytes(bytes(data[: len(data) - 100]))
    with pytest.raises(CommandError, match="不完整|已损坏或被篡改"):
        call_command("restore", str(cut))
    assert _state() == empty and _photos() == {} and _basis_files() == {}
    assert not list(var.glob(".*-restoring-*"))


def test_the_wrong_key_is_refused_and_nothing_changes(var, tmp_path, monkeypatch):
    archive, empty = _backed_up_then_emptied(tmp_path)
    monkeypatch.setenv("CAMPUSCARD_BACKUP_KEY", secrets.token_hex(32))
    with pytest.raises(CommandError, match="备份密钥不对"):
        call_command("restore", str(archive))
    monkeypatch.setenv("CAMPUSCARD_BACKUP_KEY", "not-a-key")
    with pytest.raises(CommandError, match="64 位十六进制"):
        call_command("restore", str(archive))
    assert _state() == empty and _photos() == {}


def test_a_different_audit_key_is_refused_unless_accepted(var, tmp_path, settings):
    """The audit key is not in the archive: a restore that could not verify its log asks."""
    archive, empty = _backed_up_then_emptied(tmp_path)
    settings.AUDIT_HMAC_KEY = "another-systems-key"
    with pytest.raises(CommandError, match="AUDIT_HMAC_KEY"):
        call_command("restore", str(archive))
    assert _state() == empty and _photos() == {}
    with pytest.raises(CommandError, match="数据已恢复，但审计链校验失败"):
        call_command("restore", "--accept-other-audit-key", str(archive))
    assert len(_photos()) == 8 and get_user_model().objects.filter(username="nic").exists()


def test_restoring_into_a_system_that_is_not_empty_is_refused(var, tmp_path):
    _build_campus()
    archive = tmp_path / "campus.ccbackup"
    _backup(archive)
    state, photos = _state(), _photos()
    with pytest.raises(CommandError, match="只能恢复到空系统"):
        call_command("restore", str(archive))
    assert _state() == state and _photos() == photos
    _flush()  # an empty database, but photos left behind
    state = _state()
    with pytest.raises(CommandError, match="照片目录"):
        call_command("restore", str(archive))
    assert _state() == state and _photos() == photos
    shutil.rmtree(photo_store.photo_dir())  # no photos, but basis files left behind
    with pytest.raises(CommandError, match="书面依据目录"):
        call_command("restore", str(archive))
    assert _state() == state and _photos() == {} and len(_basis_files()) == 2
    _wipe_photos()  # one audit record is enough to refuse
    record(actor=None, action="test.row", object_type="t", object_id="1")
    with pytest.raises(CommandError, match=AUDIT_TABLE):
        call_command("restore", str(archive))


def test_a_damaged_basis_file_is_left_out_and_reported(var, tmp_path, capsys):
    _build_campus()
    pdf_sha = hashlib.sha256(BASIS_PDF).hexdigest()
    damaged = basis_store.basis_dir() / pdf_sha[:2] / f"{pdf_sha}.pdf"
    damaged.write_bytes(BASIS_PDF.replace(b"1.4", b"1.5"))  # bit rot
    archive = tmp_path / "campus.ccbackup"
    capsys.readouterr()
    _backup(archive)
    member = f"personal_data_basis/{pdf_sha[:2]}/{pdf_sha}.pdf"
    assert f"书面依据文件已损坏（内容与摘要不符），未放入备份：{member}" in capsys.readouterr().err
    manifest = services.verify(archive).manifest
    assert manifest["damaged_basis_files_left_out"] == [member] and member not in manifest["members"]
    assert AuditRecord.objects.latest("id").data["damaged_basis_files"] == [member]
    kept = {k: v for k, v in _basis_files().items() if not k.endswith(".pdf")}
    _flush()
    _wipe_photos()
    call_command("restore", str(archive), verbosity=0)
    assert _basis_files() == kept and len(kept) == 1


def test_the_key_is_required_in_production(var, tmp_path, monkeypatch):
    monkeypatch.delenv("CAMPUSCARD_BACKUP_KEY")
    monkeypatch.setenv("CAMPUSCARD_PRODUCTION", "1")
    with pytest.raises(CommandError, match="CAMPUSCARD_BACKUP_KEY"):
        _backup(tmp_path / "x.ccbackup")
    assert not (tmp_path / "x.ccbackup").exists() and not (var / "backup_key").exists()
    key_file = tmp_path / "key"
    key_file.write_text(secrets.token_hex(32))
    monkeypatch.setenv("CAMPUSCARD_BACKUP_KEY_FILE", str(key_file))
    _backup(tmp_path / "x.ccbackup")
    call_command("restore", "--verify", str(tmp_path / "x.ccbackup"), verbosity=0)


def test_the_same_round_trip_on_sqlite(tmp_path):
    """The embedded default (SQLite, online backup API), through the real command line."""

    def run(db: str, *args: str) -> str:
        env = {
            **os.environ,
            "DATABASE_URL": f"sqlite:///{tmp_path / db}",
            "CAMPUSCARD_VAR_DIR": str(tmp_path / f"var-{db}"),
            "CAMPUSCARD_BACKUP_KEY": "ab" * 32,
            "AUDIT_HMAC_KEY": "k" * 32,
        }
        env.pop("CAMPUSCARD_TEST_SQLITE", None)
        done = subprocess.run(campuscard_cmd(*args), env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout

    seed = (
        "from ops.registry.lifecycle import photo_store; from ops.registry.lifecycle.photos import make_test_photo; "
        "from ops.audit.services import record; "
        "from django.contrib.auth.models import User; u = User.objects.create_user('nic'); "
        "record(actor=u, action='t.x', object_type='t', object_id=photo_store.save(make_test_photo())); "
        "from ops.personal_data import basis_store; basis_store.save('b.pdf', b'%PDF-1.4\\n%%EOF\\n')"
    )
    run("a.sqlite3", "migrate", "-v0")
    run("a.sqlite3", "shell", "-c", seed)
    dump = run("a.sqlite3", "dumpdata", "auth.user", "audit.auditrecord", "campus")
    run("a.sqlite3", "backup", "--out", str(tmp_path / "a.ccbackup"))
    run("b.sqlite3", "migrate", "-v0")
    out = run("b.sqlite3", "restore", str(tmp_path / "a.ccbackup"))
    assert "审计链完整" in out or "intact" in out
    restored = [
        o
        for o in json.loads(run("b.sqlite3", "dumpdata", "auth.user", "audit.auditrecord", "campus"))
        if o["fields"].get("action") != "backup.restore"
    ]
    assert restored == json.loads(dump)
    photos_a = sorted(p.read_bytes() for p in (tmp_path / "var-a.sqlite3" / "photos").rglob("*.jpg"))
    photos_b = sorted(p.read_bytes() for p in (tmp_path / "var-b.sqlite3" / "photos").rglob("*.jpg"))
    assert photos_a == photos_b and len(photos_a) == 1
    basis_a = sorted(p.read_bytes() for p in (tmp_path / "var-a.sqlite3" / "personal_data_basis").rglob("*.pdf"))
    basis_b = sorted(p.read_bytes() for p in (tmp_path / "var-b.sqlite3" / "personal_data_basis").rglob("*.pdf"))
    assert basis_a == basis_b == [b"%PDF-1.4\n%%EOF\n"]
    run("b.sqlite3", "audit", "verify")


def test_the_encrypted_stream_refuses_reordered_dropped_cut_or_extended_chunks():
    import io

    from ops.backup.crypto import Damaged, DecryptingReader, EncryptingWriter, WrongKey

    key, plain = secrets.token_bytes(32), secrets.token_bytes(10_000)
    raw = io.BytesIO()
    writer = EncryptingWriter(raw, key, chunk=1000)
    writer.write(plain)
    writer.close()
    data = raw.getvalue()
    header, body = data[:52], data[52:]
    chunks = [body[i : i + 1020] for i in range(0, len(body), 1020)]
    assert len(chunks) == 10

    def read(blob: bytes, k: bytes = key) -> bytes:
        reader = DecryptingReader(io.BytesIO(blob), k)
        return b"".join(iter(lambda: reader.read(4096), b""))

    assert read(data) == plain
    for bad in (
        header + b"".join([chunks[1], chunks[0], *chunks[2:]]),  # reordered
        header + b"".join(chunks[:-1]),  # last chunk dropped
        header + b"".join(chunks[:5]),  # cut at a chunk boundary
        data + b"\0",  # something appended
        data[:60] + bytes([data[60] ^ 1]) + data[61:],
    ):  # one bit flipped
        with pytest.raises(Damaged):
            read(bad)
    with pytest.raises(WrongKey):
        read(data, secrets.token_bytes(32))
