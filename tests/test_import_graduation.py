"""Imported students graduate (issue 13, defect 1 and acceptance 1; R-END-1, R-END-3): a student
list carries when study ends — 预计毕业日期, or 入学年份 and 学制, else the July of this academic
year's entry + 4 years — so a list imported through the service (the browser's import page) and
through the API is in the next July dry-run report and cancelled by its apply; a deferred
student is kept; a student with no end of study on record is named in the report."""

from __future__ import annotations

from datetime import date

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from ops.accounts.roles import Role
from ops.accounts.services import create_or_update_operator
from ops.registry import citizen_id
from ops.registry.choices import HolderKind
from ops.registry.lifecycle import graduation, importing, services, tabular
from ops.registry.models import Card, Cardholder
from streams.cards import CardStatus

pytestmark = pytest.mark.django_db


def _list(campus, prefix: str) -> bytes:
    lines = ["学号,姓名,学系,班级,身份证号,预计毕业日期,入学年份,学制"]
    rows = [
        ("0", "2027-06-30", "", ""),  # the date itself
        ("1", "", "2023", "4"),  # entry year + length of study: July 2027
        ("2", "", "2023", "5"),  # a five-year programme: July 2028
        ("3", "", "", ""),  # nothing: this academic year's entry + 4
        ("4", "2027/7", "", ""),  # year and month: the 1st
    ]
    for i, (n, end, entry, years) in enumerate(rows):
        cid = citizen_id.make("440507", date(2004, 5, 1 + i), i)
        lines.append(f"{prefix}{n},学生{n},{campus.dept.name},2301班,{cid},{end},{entry},{years}")
    return "\n".join(lines).encode("utf-8-sig")


def _expected_default() -> date:
    today = timezone.localdate()
    return date((today.year if today.month >= 9 else today.year - 1) + tabular.STUDY_YEARS, 7, 1)


def _cards_for(nic, numbers):
    for i, number in enumerate(numbers):
        holder = Cardholder.objects.get(number=number)
        uid = f"7A{i:02X}{sum(map(ord, number)) % 0xFFFF:04X}"
        services.issue_card(holder=holder, uid=uid, operator=nic, approved_by_operator=nic, basis="新生")


def _july_run(nic, prefix: str):
    plan = graduation.plan_graduation(cutoff=date(2027, 7, 31), deferred={f"{prefix}1": date(2028, 7, 1)})
    report = plan.report()
    applied = graduation.run_graduation(plan=plan, operator=nic, basis="2027届毕业名单")
    return report, applied


@pytest.fixture
def nic(campus):
    return create_or_update_operator(username="nic", password="pw-nic-123", role=Role.NIC, is_superuser=True)


def _check(prefix: str, nic):
    ends = dict(Cardholder.objects.filter(number__startswith=prefix).values_list("number", "study_end"))
    assert ends == {
        f"{prefix}0": date(2027, 6, 30),
        f"{prefix}1": date(2027, 7, 1),
        f"{prefix}2": date(2028, 7, 1),
        f"{prefix}3": _expected_default(),
        f"{prefix}4": date(2027, 7, 1),
    }
    _cards_for(nic, sorted(ends))
    report, applied = _july_run(nic, prefix)
    due = {f"{prefix}0", f"{prefix}4"} | ({f"{prefix}3"} if _expected_default() <= date(2027, 7, 31) else set())
    assert set(report["graduate_numbers"]) & set(ends) == due  # in the dry-run report …
    assert report["extend_numbers"].get(f"{prefix}1") == "2028-07-01"  # … the deferred one kept
    assert applied == report
    cancelled = set(
        Card.objects.filter(holder__number__startswith=prefix, status=CardStatus.CANCELLED).values_list(
            "holder__number", flat=True
        )
    )
    assert cancelled == due  # … and cancelled by its apply
    assert Card.objects.get(holder__number=f"{prefix}1").status == "active"


def test_a_list_imported_through_the_service_graduates(campus, nic):
    batch = importing.preview_import(kind="student", filename="名单.csv", data=_list(campus, "2023SV"), operator=nic)
    assert not batch.plan["rejected"], batch.plan["rejected"]
    importing.apply_import(batch=batch, operator=nic)
    _check("2023SV", nic)


def test_a_list_imported_through_the_api_graduates(campus, nic):
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=nic).key}")
    upload = SimpleUploadedFile("名单.csv", _list(campus, "2023AP"))
    r = api.post("/api/v1/imports/", {"kind": "student", "file": upload}, format="multipart")
    assert r.status_code == 201 and r.json()["rejected"] == 0, r.content
    assert api.post(f"/api/v1/imports/{r.json()['id']}/apply/").status_code == 200
    _check("2023AP", nic)


def test_an_unreadable_date_is_rejected_naming_the_cell_and_a_default_never_replaces_a_date(campus, nic):
    data = "学号,姓名,学系,班级,身份证号,预计毕业日期\n"
    data += f"2023BD0,坏日期,{campus.dept.name},2301班,{citizen_id.make('440507', date(2004, 5, 1), 1)},明年夏天\n"
    batch = importing.preview_import(kind="student", filename="名单.csv", data=data.encode(), operator=nic)
    [problem] = batch.plan["rejected"]
    assert problem["column"] == "预计毕业日期" and "YYYY-MM-DD" in problem["message"]
    holder = Cardholder.objects.create(
        kind=HolderKind.STUDENT, number="2023KP0", name="延期", department=campus.dept, study_end=date(2029, 7, 1)
    )
    cid = citizen_id.make("440507", date(2004, 5, 2), 2)
    again = f"学号,姓名,学系,班级,身份证号\n2023KP0,延期,{campus.dept.name},2301班,{cid}\n"
    batch = importing.preview_import(kind="student", filename="名单.csv", data=again.encode(), operator=nic)
    importing.apply_import(batch=batch, operator=nic)
    holder.refresh_from_db()
    assert holder.study_end == date(2029, 7, 1)  # the deferral on record stands


def test_the_dry_run_names_students_no_july_run_can_reach(campus, nic):
    Cardholder.objects.create(kind=HolderKind.STUDENT, number="2023NO0", name="无日期", department=campus.dept)
    report = graduation.plan_graduation(cutoff=date(2027, 7, 31), deferred={}).report()
    assert "2023NO0" in report["no_study_end"]
