"""Batch lists from Academic Affairs / HR (R-CARD-4, R-CARD-5): preview first (nothing changes),
apply exactly the preview, re-import is a no-op, every rejected row says row, column and why."""

from __future__ import annotations

import zipfile
from datetime import date, timedelta

import pytest

from ops.accounts.roles import Role
from ops.accounts.services import create_or_update_operator
from ops.audit.models import AuditRecord
from ops.registry import citizen_id
from ops.registry.lifecycle import importing
from ops.registry.lifecycle.errors import CardRuleError
from ops.registry.lifecycle.photos import load_photo_set, make_test_photo
from ops.registry.models import Cardholder, Department

pytestmark = [pytest.mark.django_db, pytest.mark.pipeline]


@pytest.fixture
def nic(db):
    Department.objects.create(code="CS", name="计算机工程系")
    return create_or_update_operator(username="nic", password="pw-nic-123", role=Role.NIC)


def _id(i: int) -> str:
    return citizen_id.make("440507", date(2007, 1, 1) + timedelta(days=i), i % 999)


def _bad_check_digit(value: str) -> str:
    return value[:17] + ("0" if value[17] != "0" else "1")


def _csv(rows: list[list[str]]) -> bytes:
    lines = ["学号,姓名,学系,班级,身份证号"] + [",".join(r) for r in rows]
    return ("\r\n".join(lines) + "\r\n").encode("utf-8-sig")


def test_fifty_bad_rows_are_reported_exactly_and_nothing_changes_until_apply(nic):
    rows, bad_rows = [], set()
    for i in range(600):  # > 500 rows: on PostgreSQL the apply goes through COPY
        row = [f"2026CS{i:05d}", f"新生{i}", "计算机工程系", "计科2601", _id(i)]
        if i % 12 == 3:  # 50 bad rows of five kinds
            kind = (i // 12) % 5
            if kind == 0:
                row[4] = _bad_check_digit(row[4])
            elif kind == 1:
                row[4] = row[4][:6] + "20071332" + row[4][14:]  # month 13
            elif kind == 2:
                row[1] = ""
            elif kind == 3:
                row[2] = "天文系"  # no such department
            else:
                row[0] = "2026CS00000"  # duplicates row 2's number
            bad_rows.add(i + 2)  # header is row 1
        rows.append(row)
    batch = importing.preview_import(kind="student", filename="名单.csv", data=_csv(rows), operator=nic)
    rejected = batch.plan["rejected"]
    assert {e["row"] for e in rejected} == bad_rows and len(rejected) == 50
    assert all(e["column"] and e["message"] for e in rejected)
    messages = {e["message"] for e in rejected}
    assert "身份证号校验位错误" in messages
    assert any("天文系" in m for m in messages) and any("重复" in m for m in messages)
    assert Cardholder.objects.count() == 0  # the preview changed nothing

    result = importing.apply_import(batch=batch, operator=nic)
    assert result == {"created": 550, "updated": 0, "unchanged": 0, "rejected": 50}
    assert Cardholder.objects.count() == 550
    assert AuditRecord.objects.filter(action="holder.create").count() == 550
    with pytest.raises(CardRuleError, match="已经导入过"):
        importing.apply_import(batch=batch, operator=nic)

    again = importing.preview_import(kind="student", filename="名单.csv", data=_csv(rows), operator=nic)
    assert importing.summary(again) == {"create": 0, "update": 0, "unchanged": 550, "rejected": 50}
    assert importing.apply_import(batch=again, operator=nic)["created"] == 0
    assert Cardholder.objects.count() == 550


def test_a_changed_row_is_an_update(nic):
    rows = [[f"2026CS{i:05d}", f"新生{i}", "计算机工程系", "计科2601", _id(i)] for i in range(3)]
    importing.apply_import(
        batch=importing.preview_import(kind="student", filename="a.csv", data=_csv(rows), operator=nic), operator=nic
    )
    rows[1][3] = "计科2602"
    batch = importing.preview_import(kind="student", filename="b.csv", data=_csv(rows), operator=nic)
    assert batch.plan["update"] == [  # with the old value for the preview (issue 19, item 9)
        {
            "row": 3,
            "number": "2026CS00001",
            "name": "新生1",
            "changes": {"class_name": "计科2602"},
            "old": {"class_name": "计科2601"},
        }
    ]
    importing.apply_import(batch=batch, operator=nic)
    assert Cardholder.objects.get(number="2026CS00001").class_name == "计科2602"


def test_photos_that_miss_the_standard_reject_their_rows(nic, tmp_path, settings, django_capture_on_commit_callbacks):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    rows = [[f"2026CS{i:05d}", f"新生{i}", "计算机工程系", "计科2601", _id(i)] for i in range(4)]
    archive = tmp_path / "photos.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("2026CS00000.jpg", make_test_photo())
        z.writestr("2026CS00001.jpg", make_test_photo(size=(300, 400)))
        z.writestr("2026CS00002.jpg", make_test_photo(color=(128, 128, 128)))
        # 2026CS00003 has no photo
    batch = importing.preview_import(
        kind="student", filename="名单.csv", data=_csv(rows), operator=nic, photo_set=load_photo_set(archive)
    )
    by_row = {e["row"]: e["message"] for e in batch.plan["rejected"]}
    assert set(by_row) == {3, 4, 5}
    assert "295×421" in by_row[3] and "蓝" in by_row[4] and "没有" in by_row[5]
    with django_capture_on_commit_callbacks(execute=True):  # photos move after the commit
        importing.apply_import(batch=batch, operator=nic)
    holder = Cardholder.objects.get()
    assert holder.number == "2026CS00000" and len(holder.photo_sha256) == 64
    assert (tmp_path / "media" / "photos" / "2026CS00000.jpg").exists()


def test_an_unreadable_file_is_refused_with_a_reason(nic):
    with pytest.raises(CardRuleError):
        importing.preview_import(kind="student", filename="名单.xlsx", data=b"not excel", operator=nic)
    with pytest.raises(CardRuleError, match="名单类型"):
        importing.preview_import(kind="alien", filename="名单.csv", data=_csv([]), operator=nic)
