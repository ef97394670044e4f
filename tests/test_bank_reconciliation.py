"""R-FEE-3 (issue 18, Build 3): bank reconciliation (银校对账). Every payment carries a channel and
a reference; Finance imports the bank's statement (CSV/XLSX, configurable columns), the system
matches it to the ledger and lists what is unmatched on both sides; a closed day is locked —
refused by the services and by the database — and corrections are new entries."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone
from openpyxl import Workbook, load_workbook
from openpyxl.worksheet.worksheet import Worksheet

from ops.accounts.roles import Role
from ops.accounts.services import create_or_update_operator
from ops.audit.models import AuditRecord
from ops.registry.lifecycle import reconciliation, services
from ops.registry.lifecycle.choices import ChargeStatus, FeeKind, PayChannel
from ops.registry.lifecycle.errors import CardRuleError
from ops.registry.lifecycle.models import BankStatement, ClosedDay, FeeCharge, StatementLine
from streams.cards import CardStatus

pytestmark = pytest.mark.django_db

FIN_PASSWORD = "fin-pw-12345"


@pytest.fixture
def nic():
    return create_or_update_operator(username="nic-rec", password="nic-pw-12345", role=Role.NIC, is_superuser=True)


@pytest.fixture
def finance():
    return create_or_update_operator(username="fin-rec", password=FIN_PASSWORD, role=Role.FINANCE)


def replace(card, uid: str, operator, *, reason: str = "loss", **payment):
    """A replacement card (补卡) through the card service, paid as ``payment`` says (window,
    channel, reference, fee)."""
    return services.replace_card(card=card, new_uid=uid, operator=operator, reason=reason, basis="补卡", **payment)


@pytest.fixture
def two_payments(campus, nic):
    """Two WeChat payments today at window W1: A (20.00) and B (15.00)."""
    wechat = {"window": "W1", "channel": PayChannel.WECHAT}
    replace(campus.cards[0], "BEC00001", nic, **wechat, reference="WX-A")
    replace(campus.cards[1], "BEC00002", nic, reason="damage", **wechat, fee=Decimal("15.00"), reference="WX-B")
    return FeeCharge.objects.get(reference="WX-A"), FeeCharge.objects.get(reference="WX-B")


def statement_csv(rows: list[tuple[str, str]], headers: tuple[str, str] = ("交易流水号", "交易金额")) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([*headers, "交易时间"])
    for reference, amount in rows:
        writer.writerow([reference, amount, "2026-12-07 10:00:00"])
    return out.getvalue().encode("utf-8-sig")


def import_statement(rows: list[tuple[str, str]], operator, *, channel: str = PayChannel.WECHAT, **options):
    """Today's statement of ``channel`` (WeChat unless said), a CSV of (reference, amount) rows,
    imported through the service; ``options``: the CSV's ``headers``, the ``columns`` to read."""
    headers = options.pop("headers", ("交易流水号", "交易金额"))
    return reconciliation.import_statement(
        day=timezone.localdate(),
        channel=channel,
        filename=f"{channel}.csv",
        data=statement_csv(rows, headers=headers),
        operator=operator,
        **options,
    )


def test_one_matching_one_unknown_one_missing_through_the_service(two_payments, finance):
    a, b = two_payments
    today = timezone.localdate()
    statement = import_statement([("WX-A", "20.00"), ("WX-C", "9.90")], finance)
    assert statement.rows == 2 and statement.total == Decimal("29.90")
    result = reconciliation.reconcile(today)
    assert [(line.reference, charge.pk) for line, charge in result.matched] == [("WX-A", a.pk)]
    assert [line.reference for line, _why in result.unknown] == ["WX-C"]
    assert [c.pk for c in result.missing] == [b.pk]
    assert not result.balanced
    assert AuditRecord.objects.filter(action="fee.statement_import", object_id=str(statement.pk)).exists()


def test_amount_mismatch_and_cash_without_statement(campus, nic, finance):
    replace(campus.cards[2], "BEC00003", nic, window="W2")
    cash = FeeCharge.objects.get(card__uid="BEC00003")
    assert cash.channel == PayChannel.CASH and cash.reference.startswith("JF")  # a reference of its own
    replace(campus.cards[3], "BEC00004", nic, window="W2", channel=PayChannel.POS, reference="POS-1")
    today = timezone.localdate()
    import_statement([("POS-1", "2.00")], finance, channel=PayChannel.POS)
    result = reconciliation.reconcile(today)
    assert [line.reference for line, _why in result.unknown] == ["POS-1"]
    assert "金额不符" in result.unknown[0][1]
    assert [c.reference for c in result.missing] == ["POS-1"]
    assert result.unstated == {PayChannel.CASH: 1}  # cash: no statement imported


def test_the_acceptance_through_finance_pages(two_payments, finance, client):
    a, b = two_payments
    today = timezone.localdate()
    client.post("/accounts/login/", {"username": "fin-rec", "password": FIN_PASSWORD})
    workbench = client.get("/").content.decode()  # Finance's workbench leads to it
    assert 'href="/admin/cards/bankstatement/"' in workbench and 'href="/admin/cards/closedday/"' in workbench
    assert "银行对账与结账" in client.get("/admin/cards/bankstatement/").content.decode()
    # the bank's own column names (configurable columns), as an XLSX
    book = Workbook()
    sheet = book.active
    assert isinstance(sheet, Worksheet)
    sheet.append(["Ref No", "Amt", "Memo"])
    sheet.append(["WX-A", 20, "x"])
    sheet.append(["WX-C", 9.9, "y"])
    data = io.BytesIO()
    book.save(data)
    data.seek(0)
    data.name = "bank.xlsx"
    response = client.post(
        "/admin/cards/bankstatement/upload/",
        {
            "day": today.isoformat(),
            "channel": PayChannel.WECHAT,
            "file": data,
            "reference_column": "Ref No",
            "amount_column": "Amt",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    page = client.get(response["Location"]).content.decode()
    matched = page.split('id="matched"')[1].split("</table>")[0]
    unknown = page.split('id="unknown"')[1].split("</table>")[0]
    missing = page.split('id="missing"')[1].split("</table>")[0]
    assert "WX-A" in matched and "WX-C" not in matched and "WX-B" not in matched
    assert "WX-C" in unknown and "WX-A" not in unknown
    assert "WX-B" in missing and "WX-A" not in missing
    rows = list(
        csv.reader(
            io.StringIO(
                client.get(f"/admin/cards/bankstatement/reconcile/export/?day={today}&format=csv").content.decode(
                    "utf-8-sig"
                )
            )
        )
    )
    assert rows[0] == reconciliation.EXPORT_HEADERS
    assert sorted((r[0], r[2]) for r in rows[1:]) == sorted(
        [("已匹配", "WX-A"), ("对账单有、账上无", "WX-C"), ("账上有、对账单无", "WX-B")]
    )
    xlsx = load_workbook(io.BytesIO(client.get(f"/admin/cards/bankstatement/reconcile/export/?day={today}").content))
    assert xlsx["对账结果"].max_row == 4
    # unmatched items: closing needs a note, and is refused without one — nothing closed
    page = client.post(f"/admin/cards/bankstatement/reconcile/?day={today}", {"window": "", "note": ""})
    assert "请写明结账说明" in page.content.decode() and not ClosedDay.objects.exists()
    response = client.post(
        f"/admin/cards/bankstatement/reconcile/?day={today}", {"window": "", "note": "WX-C 为他校误入账，已函告银行"}
    )
    assert response.status_code == 302
    closed = ClosedDay.objects.get(day=today, window="")
    assert closed.closed_by == finance and closed.summary["missing"] == ["WX-B"]
    assert AuditRecord.objects.filter(action="fee.day_close", object_id=str(closed.pk)).exists()


def test_bad_statements_are_refused_and_change_nothing(two_payments, finance):
    with pytest.raises(CardRuleError, match="缺少“交易流水号”列"):
        import_statement([("WX-A", "20.00")], finance, headers=("单号", "交易金额"))
    with pytest.raises(CardRuleError, match="第 3 行：金额“abc”不是有效金额"):
        import_statement([("WX-A", "20.00"), ("WX-C", "abc")], finance)
    with pytest.raises(CardRuleError, match="没有名为“Ref”的列"):
        import_statement([("WX-A", "20.00")], finance, columns={"reference": "Ref"})
    with pytest.raises(CardRuleError, match="不支持的文件类型"):
        reconciliation.import_statement(
            day=timezone.localdate(), channel=PayChannel.WECHAT, filename="wx.exe", data=b"MZ\x00", operator=finance
        )
    assert not BankStatement.objects.exists() and not StatementLine.objects.exists()


def test_only_finance_reconciles(two_payments, nic, client):
    general = create_or_update_operator(username="gen-rec", password="gen-pw-12345", role=Role.GENERAL)
    with pytest.raises(CardRuleError, match="只有计划财务处"):
        import_statement([("WX-A", "20.00")], general)
    with pytest.raises(CardRuleError, match="只有计划财务处"):
        reconciliation.close_day(day=timezone.localdate(), window="", operator=general, note="x")
    client.post("/accounts/login/", {"username": "gen-rec", "password": "gen-pw-12345"})
    assert client.get("/admin/cards/bankstatement/reconcile/").status_code == 403
    assert client.get("/admin/cards/bankstatement/reconcile/export/").status_code == 403
    assert client.get("/admin/cards/bankstatement/upload/").status_code == 403
    client.logout()
    assert client.get("/admin/cards/bankstatement/reconcile/").status_code == 302  # to the login page
    assert not ClosedDay.objects.exists() and not BankStatement.objects.exists()


def test_a_closed_day_refuses_every_write_path(campus, two_payments, nic, finance):
    a, _b = two_payments
    today = timezone.localdate()
    owed = FeeCharge.objects.create(
        holder=campus.cards[4].holder, kind=FeeKind.DEVICE_DAMAGE, amount=Decimal("80.00"), status=ChargeStatus.OWED
    )
    with pytest.raises(CardRuleError, match="请写明结账说明"):  # B has no statement line yet
        reconciliation.close_day(day=today, window="W1", operator=finance)
    reconciliation.close_day(day=today, window="W1", operator=finance, note="微信对账单次日到")
    with pytest.raises(CardRuleError, match="已结账，不能重复结账"):
        reconciliation.close_day(day=today, window="W1", operator=finance, note="again")

    # the services: a replacement paid at the closed window is refused, nothing changes
    card = campus.cards[2]
    with pytest.raises(CardRuleError, match="已结账，账目已锁定"):
        replace(card, "BEC00009", nic, window="W1")
    card.refresh_from_db()
    assert card.status == CardStatus.ACTIVE and not FeeCharge.objects.filter(card__uid="BEC00009").exists()
    # a damage charge paid at the closed window is refused; it stays owed
    with pytest.raises(CardRuleError, match="已结账，账目已锁定"):
        services.settle_charge(charge=owed, to=ChargeStatus.PAID, operator=finance, window="W1")
    owed.refresh_from_db()
    assert owed.status == ChargeStatus.OWED and owed.paid_at is None
    # another window of the same day is still open: the correction is a new entry there
    services.settle_charge(
        charge=owed, to=ChargeStatus.PAID, operator=finance, window="W2", channel=PayChannel.POS, reference="POS-9"
    )

    # the database: a locked payment cannot be edited, deleted, or a payment slipped in
    with pytest.raises(IntegrityError), transaction.atomic():
        FeeCharge.objects.filter(pk=a.pk).update(amount=Decimal("1.00"))
    with pytest.raises(IntegrityError), transaction.atomic():
        FeeCharge.objects.filter(pk=a.pk).delete()
    with pytest.raises(IntegrityError), transaction.atomic():
        FeeCharge.objects.create(
            holder=a.holder,
            kind=FeeKind.LOSS,
            amount=Decimal("5.00"),
            window="W1",
            status=ChargeStatus.PAID,
            paid_at=timezone.now(),
            channel=PayChannel.CASH,
            reference="SNEAK",
        )
    with pytest.raises(IntegrityError), transaction.atomic():  # a closing is never undone
        ClosedDay.objects.filter(day=today).delete()
    a.refresh_from_db()
    assert a.amount == Decimal("20.00") and ClosedDay.objects.filter(day=today, window="W1").exists()

    # closing the whole day locks every window, W2 included
    reconciliation.close_day(day=today, window="", operator=finance, note="日结")
    with pytest.raises(CardRuleError, match="全部窗口"):
        replace(card, "BEC00010", nic, window="W2")
    with pytest.raises(IntegrityError), transaction.atomic():
        FeeCharge.objects.filter(reference="POS-9").update(window="W3")


def test_references_are_unique_and_never_formulas(two_payments, nic, campus):
    card = campus.cards[2]
    with pytest.raises(CardRuleError, match="已登记过"):
        replace(card, "BEC00011", nic, channel=PayChannel.WECHAT, reference="WX-A")
    with pytest.raises(CardRuleError, match="不能以 =、\\+、-、@ 开头"):
        replace(card, "BEC00011", nic, channel=PayChannel.WECHAT, reference="=HYPERLINK(1)")
    with pytest.raises(CardRuleError, match="未知的支付渠道"):
        replace(card, "BEC00011", nic, channel="bitcoin")
    assert not FeeCharge.objects.filter(card__uid="BEC00011").exists()


def test_a_statement_formula_is_text_in_the_export(two_payments, finance):
    import_statement([("=cmd|' /C calc'!A0", "1.00")], finance)
    today = timezone.localdate()
    rows = list(csv.reader(io.StringIO(reconciliation.to_csv(reconciliation.reconcile(today)).decode("utf-8-sig"))))
    assert "'=cmd|' /C calc'!A0" in [r[2] for r in rows]
