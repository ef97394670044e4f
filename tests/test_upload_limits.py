"""Issue 20, items 4-5: hostile uploads are refused early, with bounded memory, and change nothing.

The trial's attempts, each replayed here against the API the web import shares its code with:
a 1 MB photo ZIP of 100 × 10 MiB of zeros (accepted, 201: the web server went from 196 MB to
1.2 GB); a 300 KB XLSX with one 300 MB shared string (accepted, a 314 MB plan stored, every
view of the import list ~700 MB more until the kernel killed the server); a 50 MB / 819,200-row
CSV (52 s and 2.1 GB before it was refused). Memory is measured: Python's allocations with
tracemalloc, and the XLSX reader's (Rust, invisible to tracemalloc) as the peak RSS of a
separate process. The limits are settings (docs/accountability.md "Upload limits")."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from openpyxl import Workbook
from openpyxl.worksheet.worksheet import Worksheet
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from ops.accounts.roles import Role
from ops.accounts.services import create_or_update_operator
from ops.registry import citizen_id
from ops.registry.lifecycle import importing, tabular
from ops.registry.lifecycle.models import ImportBatch
from ops.registry.models import Cardholder
from tests.upload_bombs import MIB, big_csv, photo_zip_bomb, xlsx_with_one_long_string

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parent.parent
# The trial's bombs unpacked to 1000 MiB and 300 MiB against limits of 256 MB and 64 MB; here
# the same bombs, a tenth and a fifth as large (writing them was most of this file's time),
# meet limits as much lower (settings), and the memory bounds stay where they were — far under
# what unpacking either would take.
ZIP_UNPACKED_MIB, ZIP_LIMIT = 100, 16 * MIB  # 100 photos × 1 MiB of zeros
XLSX_STRING_MIB, XLSX_LIMIT = 64, 8 * MIB


@pytest.fixture(scope="module")
def bombs(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("bombs")
    return {
        "zip": photo_zip_bomb(folder / "photos.zip", entries=100, entry_mib=ZIP_UNPACKED_MIB // 100),
        "xlsx": xlsx_with_one_long_string(folder / "名单.xlsx", string_mib=XLSX_STRING_MIB),
    }


@pytest.fixture
def api(campus) -> APIClient:
    user = create_or_update_operator(username="nic-api", password="pw-nic-api-1", role=Role.NIC)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


def _list(n: int = 2) -> bytes:
    lines = ["学号,姓名,学系,班级,身份证号"]
    for i in range(n):
        cid = citizen_id.make("440507", date(2007, 1, 1) + timedelta(days=i), i % 999)
        lines.append(f"2026SC{i:05d},新生{i},保卫处,2601班,{cid}")
    return ("\n".join(lines) + "\n").encode("utf-8-sig")


def _peak(work: Callable[[], Any]) -> tuple[Any, int]:
    """``work()``'s result and the peak of Python memory it allocated, in bytes."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        result = work()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_photo_zip_bomb_is_refused_before_it_is_unpacked(api, bombs, settings):
    settings.PHOTO_ZIP_MAX_UNPACKED_BYTES = ZIP_LIMIT
    data = bombs["zip"].read_bytes()
    assert len(data) < 2 * MIB  # as the trial's 1 MB ZIP of 1000 MiB
    files = {"kind": "student", "file": SimpleUploadedFile("名单.csv", _list()), "photos": None}

    def post():
        files["photos"] = SimpleUploadedFile("photos.zip", data)
        return api.post("/api/v1/imports/", files, format="multipart")

    r, peak = _peak(post)
    assert r.status_code == 400, r.content[:300]
    assert "解压后共 100 MB，超过上限 16 MB" in r.json()["detail"]
    assert peak < 40 * MIB, f"{peak / MIB:.0f} MiB"  # the upload twice, not the 100 MiB it unpacks to
    assert not ImportBatch.objects.exists() and not Cardholder.objects.filter(number__startswith="2026SC").exists()


def test_a_photo_zip_with_too_many_entries_is_refused(api, settings, tmp_path):
    settings.PHOTO_ZIP_MAX_ENTRIES = 10
    bomb = photo_zip_bomb(tmp_path / "many.zip", entries=11, entry_mib=0)
    r = api.post(
        "/api/v1/imports/",
        {
            "kind": "student",
            "file": SimpleUploadedFile("名单.csv", _list()),
            "photos": SimpleUploadedFile("many.zip", bomb.read_bytes()),
        },
        format="multipart",
    )
    assert r.status_code == 400 and "有 11 个文件，超过上限 10 个" in r.json()["detail"]
    assert not ImportBatch.objects.exists()


def test_a_photo_zip_above_the_upload_limit_is_refused_unopened(api, settings):
    settings.PHOTO_ZIP_MAX_BYTES = 1024
    api.cookies[django_settings.LANGUAGE_COOKIE_NAME] = "en"
    r = api.post(
        "/api/v1/imports/",
        {
            "kind": "student",
            "file": SimpleUploadedFile("名单.csv", _list()),
            "photos": SimpleUploadedFile("photos.zip", b"PK\x03\x04" + b"\0" * 4096),
        },
        format="multipart",
    )
    assert r.status_code == 400 and "is too large" in r.json()["detail"]


def test_an_xlsx_with_a_300_mb_string_is_refused_with_bounded_memory(api, bombs, settings):
    """The trial's 300 MB string, here 64 MiB against an 8 MB limit: 16 MiB is still far under it."""
    settings.IMPORT_MAX_UNPACKED_BYTES = XLSX_LIMIT
    data = bombs["xlsx"].read_bytes()
    assert len(data) < MIB
    r, peak = _peak(
        lambda: api.post(
            "/api/v1/imports/", {"kind": "student", "file": SimpleUploadedFile("名单.xlsx", data)}, format="multipart"
        )
    )
    assert r.status_code == 400, r.content[:300]
    assert "Excel 文件解压后超过 8 MB" in r.json()["detail"]
    assert peak < 16 * MIB, f"{peak / MIB:.0f} MiB"
    assert not ImportBatch.objects.exists()


def test_the_xlsx_reader_process_stays_small(bombs, tmp_path):
    """calamine allocates in Rust: the peak RSS of a process that reads the bomb, against one
    that only starts. Before the fix the reader held the 300 MB string, and its copies (here
    64 MiB, against an 8 MB limit: holding it is twice the bound)."""
    script = (
        "import json, resource, sys, django; django.setup()\n"
        "from ops.registry.lifecycle import tabular\n"
        "data = open(sys.argv[1], 'rb').read()\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "try:\n"
        "    tabular.read_table('名单.xlsx', data); error = ''\n"
        "except tabular.TableError as exc:\n"
        "    error = str(exc)\n"
        "after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "print(json.dumps({'grew_kib': after - before, 'error': error}))\n"
    )
    env = dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="ops.settings",
        CAMPUSCARD_VAR_DIR=str(tmp_path / "var"),
        IMPORT_MAX_UNPACKED_BYTES=str(XLSX_LIMIT),
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(bombs["xlsx"])], cwd=ROOT, env=env, capture_output=True, timeout=120
    )
    assert out.returncode == 0, out.stderr.decode()[-2000:]
    result = json.loads(out.stdout.decode().strip().splitlines()[-1])
    assert "解压后超过" in result["error"]
    assert result["grew_kib"] < 32 * 1024, result


def test_a_50_mb_csv_is_refused_before_it_is_read(api):
    data = big_csv()
    assert len(data) > 48 * MIB
    upload = SimpleUploadedFile("名单.csv", data)
    started = time.monotonic()
    r = api.post("/api/v1/imports/", {"kind": "student", "file": upload}, format="multipart")
    assert r.status_code == 400 and "文件过大" in r.json()["detail"] and "上限 16 MB" in r.json()["detail"]
    assert time.monotonic() - started < 10  # the trial: 52 s; most of this is the test client's multipart
    assert not ImportBatch.objects.exists()


def test_rows_columns_and_cells_are_capped_while_reading(settings):
    settings.IMPORT_MAX_ROWS = 1000
    with pytest.raises(tabular.TableError, match="名单超过 1000 行"):
        tabular.read_table("名单.csv", big_csv(rows=1001))
    tabular.read_table("名单.csv", big_csv(rows=1000))  # at the limit: read
    long_name = _list(1).decode("utf-8-sig").replace("新生0", "名" * 501)
    with pytest.raises(tabular.TableError, match="第 2 行 B 列的内容超过 500 个字符"):
        tabular.read_table("名单.csv", long_name.encode())
    wide = ("学号," + ",".join(f"c{i}" for i in range(120)) + "\n1," + ",".join("x" * 120) + "\n").encode()
    with pytest.raises(tabular.TableError, match="第 1 行超过 100 列"):
        tabular.read_table("名单.csv", wide)


def test_a_wide_or_long_sheet_is_refused_before_its_grid_is_built(settings, tmp_path):
    book = Workbook()
    sheet = book.active
    assert isinstance(sheet, Worksheet)
    sheet.append(["学号", "姓名"])
    sheet["XFD1"] = "远处"  # the 16,384th column: the padded grid would be 16,384 wide
    book.save(tmp_path / "wide.xlsx")
    with pytest.raises(tabular.TableError, match="有 16384 列，超过 100 列"):
        tabular.read_table("wide.xlsx", (tmp_path / "wide.xlsx").read_bytes())
    settings.IMPORT_MAX_ROWS = 50
    book = Workbook()
    sheet = book.active
    assert isinstance(sheet, Worksheet)
    sheet["A1"], sheet["A1048576"] = "学号", "1"
    book.save(tmp_path / "long.xlsx")
    with pytest.raises(tabular.TableError, match="名单超过 50 行"):
        tabular.read_table("long.xlsx", (tmp_path / "long.xlsx").read_bytes())


def test_the_plan_keeps_a_bounded_record_of_rejected_rows(campus):
    nic = create_or_update_operator(username="nic", password="pw-nic-12345", role=Role.NIC)
    lines = ["学号,姓名,学系,班级,身份证号"] + [
        f"2026X{i:05d},名{i},保卫处,1班,{'9' * 17}{i % 10}" for i in range(3000)
    ]
    lines.append("2026Y00001,长,保卫处,1班," + "1" * 400)
    batch = importing.preview_import(kind="student", filename="名单.csv", data="\n".join(lines).encode(), operator=nic)
    assert importing.summary(batch)["rejected"] == 3001
    assert len(batch.plan["rejected"]) == importing.MAX_REJECTED_KEPT
    assert max(len(e["value"]) for e in batch.plan["rejected"]) <= importing.MAX_VALUE_KEPT + 1
    assert len(json.dumps(batch.plan, ensure_ascii=False)) < 400_000


def test_the_import_list_never_loads_the_plans(campus, client):
    nic = create_or_update_operator(username="nic", password="pw-nic-12345", role=Role.NIC, is_superuser=True)
    for _ in range(3):
        importing.preview_import(kind="student", filename="名单.csv", data=_list(50), operator=nic)
    client.force_login(nic)
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/admin/cards/importbatch/").status_code == 200
    batch_reads = [q["sql"] for q in queries if 'FROM "cards_importbatch"' in q["sql"]]
    assert batch_reads and not [sql for sql in batch_reads if '"cards_importbatch"."plan"' in sql]
