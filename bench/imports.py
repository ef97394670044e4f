"""``campuscard bench import``: a 30,000-row student list (XLSX, Chinese headers) previewed and
applied, validation included; then the photo-standard check rate over a photo set."""

from __future__ import annotations

import io
import secrets
import time
from datetime import date, timedelta
from typing import Any

from django.core.management import call_command

from ops.accounts.roles import Role
from ops.accounts.services import create_or_update_operator
from ops.registry import citizen_id
from ops.registry.lifecycle import importing, photos
from ops.registry.models import Cardholder, Department

DEPARTMENTS = ["计算机工程系", "机电工程系", "经济管理系", "外语系", "艺术设计系", "化学工程系"]


def student_list(rows: int) -> bytes:
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet("新生名单")
    sheet.append(["学号", "姓名", "学系", "班级", "身份证号"])
    for i in range(rows):
        birth = date(2006, 1, 1) + timedelta(days=i % 1500)
        sheet.append(
            [
                f"2026{i % 6:02d}{i:06d}",
                f"新生{i}",
                DEPARTMENTS[i % 6],
                f"26{i % 6}{i % 40:02d}班",
                citizen_id.make("440507", birth, i % 999),
            ]
        )
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def run(*, rows: int, photo_count: int) -> dict[str, Any]:
    call_command("migrate", verbosity=0, interactive=False)
    for i, name in enumerate(DEPARTMENTS):
        Department.objects.get_or_create(code=f"D{i}", defaults={"name": name})
    nic = create_or_update_operator(username="bench-nic", password=secrets.token_urlsafe(12), role=Role.NIC)
    data = student_list(rows)

    t0 = time.perf_counter()
    batch = importing.preview_import(kind="student", filename="新生名单.xlsx", data=data, operator=nic)
    t_preview = time.perf_counter() - t0
    result = importing.apply_import(batch=batch, operator=nic)
    seconds = time.perf_counter() - t0

    t1 = time.perf_counter()
    again = importing.preview_import(kind="student", filename="新生名单.xlsx", data=data, operator=nic)
    t_reimport = time.perf_counter() - t1

    samples = [photos.make_test_photo(color=(67 + i % 9, 142, 219 - i % 11), seed=i) for i in range(50)]
    items = [(f"2026{i:08d}", samples[i % len(samples)]) for i in range(photo_count)]
    t2 = time.perf_counter()
    checked = photos.check_many(items)
    photo_seconds = time.perf_counter() - t2
    return {
        "rows": rows,
        "seconds": round(seconds, 3),
        "preview_seconds": round(t_preview, 3),
        "apply_seconds": round(seconds - t_preview, 3),
        "created": result["created"],
        "holders": Cardholder.objects.count(),
        "reimport_seconds": round(t_reimport, 3),
        "reimport_changes": importing.summary(again)["create"] + importing.summary(again)["update"],
        "photos": photo_count,
        "photos_rejected": sum(1 for p in checked.values() if p),
        "photos_per_s": round(photo_count / photo_seconds, 1),
    }
