"""Issue 18, Build 7 / acceptance 7 (R-CARD-4/5/6, R-END-2/3): the lists beyond enrolment —
leavers, deferred graduation, dorm assignments, staff changes — through the enrolment import's
one pipeline. Each kind is previewed (what will be updated, old → new; the rejected rows with
row, column, reason; nothing changed), applied, and re-applied with no change: the second list
previews as "nothing to do" and its apply writes no card history and no audit record of a
change. Issue 19, item 9: the preview lists creates and updates with old → new."""

from __future__ import annotations

from datetime import date, timedelta
from types import SimpleNamespace

import pytest
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from ops.accounts.roles import Role
from ops.accounts.services import create_or_update_operator
from ops.audit.models import AuditRecord
from ops.registry.choices import HolderKind, HolderStatus
from ops.registry.lifecycle import importing, services
from ops.registry.lifecycle.errors import CardRuleError
from ops.registry.lifecycle.models import CardAction, OutboxMessage
from ops.registry.models import Building, Card, Cardholder, Department
from streams.cards import CardStatus

pytestmark = [pytest.mark.django_db, pytest.mark.pipeline]
PASSWORD = "lists-pass-18"


@pytest.fixture
def w(db):
    w = SimpleNamespace()
    w.cs = Department.objects.create(code="CS", name="计算机工程系")
    w.ma = Department.objects.create(code="MA", name="数学系")
    w.d1 = Building.objects.create(code="D1", name="1号楼", is_dorm=True)
    w.d2 = Building.objects.create(code="D2", name="2号楼", is_dorm=True)
    w.nic = create_or_update_operator(username="nic", password=PASSWORD, role=Role.NIC)
    w.academic = create_or_update_operator(username="academic", password=PASSWORD, role=Role.ACADEMIC)
    w.hr = create_or_update_operator(username="hr", password=PASSWORD, role=Role.HR)
    w.dorm1 = create_or_update_operator(username="dorm1", password=PASSWORD, role=Role.DORM_MANAGER, buildings=[w.d1])
    end = date(timezone.localdate().year + 1, 7, 1)
    for i in range(1, 5):
        Cardholder.objects.create(
            kind=HolderKind.STUDENT, number=f"S{i}", name=f"学生{i}", department=w.cs, class_name="计科1", study_end=end
        )
    for i in range(1, 3):
        Cardholder.objects.create(kind=HolderKind.STAFF, number=f"T{i}", name=f"教工{i}", department=w.cs, title="讲师")
    for number, uid in (("S1", "5A000001"), ("S2", "5A000002"), ("T1", "5A000003"), ("T2", "5A000004")):
        services.issue_card(
            holder=Cardholder.objects.get(number=number),
            uid=uid,
            operator=w.nic,
            approved_by_operator=w.nic,
            basis="发卡",
        )
    return w


def _csv(header: str, rows: list[str]) -> bytes:
    return ("\r\n".join([header, *rows]) + "\r\n").encode("utf-8-sig")


def _changes() -> tuple[int, int]:
    """Card history rows, and audit records other than previews (the records of a change)."""
    return CardAction.objects.count(), AuditRecord.objects.exclude(action="import.preview").count()


def _rejected(batch) -> dict[int, str]:
    return {e["row"]: e["message"] for e in batch.plan["rejected"]}


def _diff(batch) -> dict[str, dict[str, tuple[str, str]]]:
    return {
        u["number"]: {d["field"]: (d["old"], d["new"]) for d in u["diff"]}
        for u in importing.updates_for_display(batch.plan["update"])
    }


def _reapply_changes_nothing(kind: str, data: bytes, operator, expect_unchanged: int) -> None:
    before = _changes()
    again = importing.preview_import(kind=kind, filename="again.csv", data=data, operator=operator)
    assert importing.summary(again)["update"] == 0 and importing.summary(again)["unchanged"] == expect_unchanged
    result = importing.apply_import(batch=again, operator=operator)
    assert result["created"] == 0 and result["updated"] == 0
    assert _changes() == before  # no card history, no audit record of a change


def test_leavers_cancel_through_the_lifecycle_and_a_second_list_changes_nothing(w):
    data = _csv(
        "学号,姓名,离校类型",
        [
            "S1,学生1,退学",  # row 2: withdrawn, card cancelled
            "S2,别人,离校",  # row 3: the name is not S2's
            "S3,学生3,转学",  # row 4: left, no card
            "T1,教工1,离职",  # row 5: Academic Affairs lists students only
            "X9,某人,退学",  # row 6: not on record
            "S4,学生4,退休",  # row 7: a student does not retire
            "S4,学生4,休学吧",  # row 8: the number repeated
        ],
    )
    before = _changes()
    batch = importing.preview_import(kind="leavers", filename="离校.csv", data=data, operator=w.academic)
    assert importing.summary(batch) == {"create": 0, "update": 2, "unchanged": 0, "rejected": 5}
    rejected = _rejected(batch)
    assert set(rejected) == {3, 5, 6, 7, 8}
    assert "姓名" in rejected[3] and "只能包含学生" in rejected[5] and "没有" in rejected[6]
    assert "退休" in rejected[7] and "重复" in rejected[8]
    diff = _diff(batch)
    assert diff["S1"]["在校状态"] == ("在校/在职", "已退学") and diff["S1"]["校园卡"] == ("1 张有效卡", "注销")
    assert diff["S3"] == {"在校状态": ("在校/在职", "已离校/离职")}
    assert Card.objects.get(uid="5A000001").status == CardStatus.ACTIVE  # the preview changed nothing
    assert _changes() == before

    result = importing.apply_import(batch=batch, operator=w.academic)
    assert result == {"created": 0, "updated": 2, "unchanged": 0, "rejected": 5}
    assert Card.objects.get(uid="5A000001").status == CardStatus.CANCELLED
    assert Cardholder.objects.get(number="S1").status == HolderStatus.WITHDRAWN
    assert Cardholder.objects.get(number="S3").status == HolderStatus.LEFT
    cancel = CardAction.objects.get(card__uid="5A000001", action="cancel")  # the lifecycle's own step
    assert cancel.operator == w.academic and "离校名单" in cancel.basis
    assert Card.objects.get(uid="5A000002").status == CardStatus.ACTIVE  # the rejected rows: nothing
    assert AuditRecord.objects.filter(action="holder.leavers").count() == 2

    _reapply_changes_nothing("leavers", data, w.academic, expect_unchanged=2)


def test_deferred_graduation_extends_study_and_card_and_a_second_list_changes_nothing(w):
    year = timezone.localdate().year
    data = _csv(
        "学号,姓名,延期毕业日期",
        [
            f"S1,学生1,{year + 2}-07-01",  # row 2: card and study end extended
            f"S3,学生3,{year + 2}-07",  # row 3: no card: study end only
            f"S2,学生2,{year}-01-01",  # row 4: in the past / earlier
            f"T1,教工1,{year + 2}-07-01",  # row 5: not a student
            "S4,学生4,明年",  # row 6: no date
        ],
    )
    batch = importing.preview_import(kind="deferral", filename="延期.csv", data=data, operator=w.academic)
    assert importing.summary(batch) == {"create": 0, "update": 2, "unchanged": 0, "rejected": 3}
    assert set(_rejected(batch)) == {4, 5, 6}
    diff = _diff(batch)
    assert diff["S1"]["预计毕业日期"] == (f"{year + 1}-07-01", f"{year + 2}-07-01")
    assert diff["S1"]["卡有效期至"] == (f"{year + 1}-07-01", f"{year + 2}-07-01")
    assert "卡有效期至" not in diff["S3"]

    importing.apply_import(batch=batch, operator=w.academic)
    card = Card.objects.get(uid="5A000001")
    assert timezone.localtime(card.valid_until).date() == date(year + 2, 7, 1)
    assert Cardholder.objects.get(number="S1").study_end == date(year + 2, 7, 1)
    assert Cardholder.objects.get(number="S3").study_end == date(year + 2, 7, 1)
    assert CardAction.objects.filter(card=card, action="extend").count() == 1
    assert Cardholder.objects.get(number="S2").study_end == date(year + 1, 7, 1)

    _reapply_changes_nothing("deferral", data, w.academic, expect_unchanged=2)
    with pytest.raises(PermissionDenied):  # HR does not send deferrals (R-CARD-6)
        importing.preview_import(kind="deferral", filename="延期.csv", data=data, operator=w.hr)


def test_dorm_assignments_reach_the_readers_and_a_second_list_changes_nothing(w):
    t2 = Cardholder.objects.get(number="T2")
    t2.dorm_building, t2.dorm_room, t2.dorm_bed = w.d1, "102", "2"
    t2.save()
    data = _csv(
        "学号,姓名,宿舍楼,房间,床位",
        [
            "S1,学生1,D1,101,1",  # row 2: assigned (a building: a credential change)
            "S2,学生2,1号楼,101,1",  # row 3: the same bed as row 2 (building by name)
            "S3,学生3,D2,201,1",  # row 4: not the dorm manager's building
            "S4,学生4,D1,102,2",  # row 5: T2 sleeps there
            "S4,学生4,9号楼,1,1",  # row 6: the number repeated
        ],
    )
    batch = importing.preview_import(kind="dorm", filename="宿舍.csv", data=data, operator=w.dorm1)
    assert importing.summary(batch) == {"create": 0, "update": 1, "unchanged": 0, "rejected": 4}
    rejected = _rejected(batch)
    assert "第 2 行重复" in rejected[3] and "自己负责" in rejected[4] and "T2" in rejected[5]
    assert _diff(batch)["S1"] == {
        "宿舍楼": ("—", "1号楼（D1）"),
        "房间": ("—", "101"),
        "床位": ("—", "1"),
    }
    outbox = OutboxMessage.objects.count()
    importing.apply_import(batch=batch, operator=w.dorm1)
    s1 = Cardholder.objects.get(number="S1")
    assert (s1.dorm_building_id, s1.dorm_room, s1.dorm_bed) == (w.d1.id, "101", "1")
    assert OutboxMessage.objects.count() > outbox  # S1's card goes to the doors with its building
    assert AuditRecord.objects.filter(action="holder.dorm", object_id="S1").exists()

    _reapply_changes_nothing("dorm", data, w.dorm1, expect_unchanged=1)
    with pytest.raises(PermissionDenied):
        importing.preview_import(kind="dorm", filename="宿舍.csv", data=data, operator=w.academic)


def test_staff_changes_and_a_retirement_and_a_second_list_changes_nothing(w):
    data = _csv(
        "工号,姓名,部门,职务/职称",
        [
            "T1,教工1,数学系,副教授",  # row 2: department and title
            "T2,教工2,计算机工程系,讲师",  # row 3: as on record
            "S1,学生1,数学系,讲师",  # row 4: HR lists staff only
            "T2,教工2,天文系,讲师",  # row 5: repeated number
        ],
    )
    batch = importing.preview_import(kind="staff_change", filename="人事.csv", data=data, operator=w.hr)
    assert importing.summary(batch) == {"create": 0, "update": 1, "unchanged": 1, "rejected": 2}
    assert "只能包含教职工" in _rejected(batch)[4]
    assert _diff(batch)["T1"] == {"部门/学系": ("计算机工程系", "数学系"), "职务/职称": ("讲师", "副教授")}
    importing.apply_import(batch=batch, operator=w.hr)
    t1 = Cardholder.objects.get(number="T1")
    assert (t1.department_id, t1.title) == (w.ma.id, "副教授")
    _reapply_changes_nothing("staff_change", data, w.hr, expect_unchanged=2)

    # HR's leavers: a retiree keeps the card (R-END-2)
    retire = _csv("工号,离校类型", ["T2,退休"])
    batch = importing.preview_import(kind="leavers", filename="退休.csv", data=retire, operator=w.hr)
    importing.apply_import(batch=batch, operator=w.hr)
    assert Cardholder.objects.get(number="T2").status == HolderStatus.RETIRED
    assert Card.objects.get(uid="5A000004").status == CardStatus.ACTIVE
    _reapply_changes_nothing("leavers", retire, w.hr, expect_unchanged=1)


def test_a_row_refused_at_apply_leaves_the_whole_list_unapplied(w):
    data = _csv("学号,宿舍楼,房间,床位", ["S1,D1,201,1", "S2,D1,202,1"])
    batch = importing.preview_import(kind="dorm", filename="宿舍.csv", data=data, operator=w.nic)
    assert importing.summary(batch)["update"] == 2
    t2 = Cardholder.objects.get(number="T2")  # the bed is taken between preview and apply
    t2.dorm_building, t2.dorm_room, t2.dorm_bed = w.d1, "202", "1"
    t2.save()
    with pytest.raises(CardRuleError, match="第 3 行.*整份名单未导入"):
        importing.apply_import(batch=batch, operator=w.nic)
    assert Cardholder.objects.get(number="S1").dorm_room == ""  # row 2 rolled back too
    batch.refresh_from_db()
    assert batch.status == "previewed"


def test_a_list_acts_on_cards_only_within_its_office(w):
    """The card services accept a list's apply only for the cards the list's office answers
    for; nobody else cancels a card by naming a list (R-SEC-3)."""
    staff_card = Card.objects.get(uid="5A000003")
    student_card = Card.objects.get(uid="5A000002")
    with pytest.raises(CardRuleError):
        services.cancel_card(card=staff_card, operator=w.academic, basis="名单", by_list="leavers")
    with pytest.raises(CardRuleError):
        services.cancel_card(card=student_card, operator=w.academic, basis="名单")
    with pytest.raises(CardRuleError):
        services.cancel_card(card=student_card, operator=w.dorm1, basis="名单", by_list="dorm")
    with pytest.raises(CardRuleError):
        services.extend_validity(
            card=student_card,
            new_until=timezone.now() + timedelta(days=900),
            operator=w.hr,
            basis="名单",
            by_list="deferral",
        )
    assert Card.objects.get(uid="5A000002").status == CardStatus.ACTIVE


def test_the_enrolment_preview_lists_creates_and_updates_old_to_new(w):
    """Issue 19, item 9 for the enrolment lists: who will be created, and each update's fields
    old → new (departments by name)."""
    data = _csv("工号,姓名,部门,职务/职称", ["T1,教工1,数学系,教授", "T9,新教工,计算机工程系,助教"])
    batch = importing.preview_import(kind="staff", filename="教职工.csv", data=data, operator=w.hr)
    creates = importing.creates_for_display(batch.plan["create"])
    assert creates == [{"row": 3, "number": "T9", "name": "新教工", "department": "计算机工程系", "detail": "助教"}]
    assert _diff(batch)["T1"] == {"部门/学系": ("计算机工程系", "数学系"), "职务/职称": ("讲师", "教授")}


def test_the_api_and_the_command_take_every_list_kind(w, tmp_path, monkeypatch):
    """The same pipeline through the API (Academic Affairs' leavers) and ``campuscard
    import_list`` (a dorm manager's assignments): previewed, applied, refused where not theirs."""
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.core.management import call_command
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    api = APIClient()
    api.force_authenticate(user=w.academic)
    upload = SimpleUploadedFile("离校.csv", _csv("学号,离校类型", ["S2,退学"]))
    r = api.post("/api/v1/imports/", {"kind": "leavers", "file": upload}, format="multipart")
    assert r.status_code == 201, r.content
    assert r.json()["update"] == 1 and Card.objects.get(uid="5A000002").status == CardStatus.ACTIVE
    assert api.post(f"/api/v1/imports/{r.json()['id']}/apply/").status_code == 200
    assert Card.objects.get(uid="5A000002").status == CardStatus.CANCELLED
    upload = SimpleUploadedFile("宿舍.csv", _csv("学号,宿舍楼,房间,床位", ["S1,D1,101,1"]))
    assert api.post("/api/v1/imports/", {"kind": "dorm", "file": upload}, format="multipart").status_code == 403

    path = tmp_path / "宿舍.csv"
    path.write_bytes(_csv("学号,宿舍楼,房间,床位", ["S3,D1,301,2"]))
    monkeypatch.setenv("CAMPUSCARD_TOKEN", Token.objects.get_or_create(user=w.dorm1)[0].key)
    call_command("import_list", str(path), "--kind", "dorm", "--operator", "dorm1", "--yes")
    s3 = Cardholder.objects.get(number="S3")
    assert (s3.dorm_building_id, s3.dorm_room, s3.dorm_bed) == (w.d1.id, "301", "2")
