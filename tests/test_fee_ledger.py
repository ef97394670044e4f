"""R-FEE-1..3: first card free, replacements charged per the policy and never above the cap,
and Finance's per-day, per-operator/window ledger exported for reconciliation."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from openpyxl import load_workbook

from ops.accounts.roles import Role
from ops.accounts.services import create_or_update_operator
from ops.audit.models import AuditRecord
from ops.registry.lifecycle import ledger, services
from ops.registry.lifecycle.choices import ChargeStatus, FeeKind
from ops.registry.lifecycle.models import FeeCharge, FeePolicy

pytestmark = pytest.mark.django_db


def test_replacements_are_charged_and_the_ledger_reconciles(campus, client):
    a = create_or_update_operator(username="nic-a", password="pw-a-12345", role=Role.NIC, is_superuser=True)
    b = create_or_update_operator(username="nic-b", password="pw-b-12345", role=Role.NIC)
    services.replace_card(
        card=campus.cards[0], new_uid="FEE00001", operator=a, reason="loss", basis="补卡", window="NIC-1"
    )
    services.replace_card(
        card=campus.cards[1],
        new_uid="FEE00002",
        operator=a,
        reason="damage",
        basis="补卡",
        window="NIC-1",
        fee=Decimal("15.00"),
    )
    services.replace_card(
        card=campus.cards[2], new_uid="FEE00003", operator=b, reason="loss", basis="补卡", window="NIC-2"
    )
    today = timezone.localdate()
    result = ledger.ledger(start=today, end=today)
    assert result.count == 3 and result.total == Decimal("55.00")
    assert [r[1:] for r in result.summary] == [
        ["nic-a", "NIC-1", 2, Decimal("35.00")],
        ["nic-b", "NIC-2", 1, Decimal("20.00")],
    ]
    client.post("/accounts/login/", {"username": "nic-a", "password": "pw-a-12345"})
    xlsx = client.get(f"/admin/cards/feecharge/export/?from={today}&to={today}&format=xlsx")
    book = load_workbook(io.BytesIO(xlsx.content))
    assert book["汇总"].cell(row=4, column=5).value == 55.0  # the 合计 row
    assert book["明细"].max_row == 4
    rows = list(
        csv.reader(
            io.StringIO(
                client.get(f"/admin/cards/feecharge/export/?from={today}&to={today}&format=csv").content.decode(
                    "utf-8-sig"
                )
            )
        )
    )
    assert rows[0] == ledger.ITEM_HEADERS and len(rows) == 4
    assert campus.cards[0].holder.name not in str(rows)  # names masked in exports


def test_the_policy_can_never_exceed_the_cap():
    policy = FeePolicy.current()
    policy.replacement_fee = policy.cap + 1
    with pytest.raises(IntegrityError), transaction.atomic():
        policy.save()


def test_fees_are_not_refundable(campus):
    nic = create_or_update_operator(username="nic-c", password="pw-c-12345", role=Role.NIC)
    services.replace_card(card=campus.cards[3], new_uid="FEE00009", operator=nic, reason="loss", basis="补卡")
    with pytest.raises(IntegrityError), transaction.atomic():
        FeeCharge.objects.create(
            holder=campus.cards[3].holder, card=campus.cards[3], kind="loss", amount=Decimal("-20.00")
        )
    with pytest.raises(ValidationError, match="超过"):
        services.replace_card(
            card=campus.cards[4], new_uid="FEE0000A", operator=nic, reason="loss", basis="补卡", fee=Decimal("25.01")
        )


def _owed(campus, nic, amount="80.00"):
    return FeeCharge.objects.create(
        holder=campus.cards[5].holder,
        kind=FeeKind.DEVICE_DAMAGE,
        amount=Decimal(amount),
        operator=nic,
        window="NIC",
        status=ChargeStatus.OWED,
    )


def test_an_owed_charge_enters_the_ledger_when_paid_not_when_opened(campus):
    """Issue 13, defect 6 (R-DEV-3, R-FEE-3): a damage charge is owed from the repair ticket;
    the ledger counts the payment on the day it is made, at the window that took it."""
    nic = create_or_update_operator(username="nic-d", password="pw-d-12345", role=Role.NIC)
    finance = create_or_update_operator(username="fin-a", password="pw-f-12345", role=Role.FINANCE)
    charge = _owed(campus, nic)
    today = timezone.localdate()
    assert ledger.ledger(start=today, end=today).count == 0
    services.settle_charge(charge=charge, to=ChargeStatus.PAID, operator=finance, window="财务处-2")
    book = ledger.ledger(start=today, end=today)
    assert book.count == 1 and book.total == Decimal("80.00")
    assert book.summary[0][1:3] == ["fin-a", "财务处-2"]  # who took it, where
    assert AuditRecord.objects.get(action="fee.paid").object_id == str(charge.pk)
    with pytest.raises(ValidationError, match="已缴"):  # paid is final: never refunded
        services.settle_charge(charge=charge, to=ChargeStatus.VOID, operator=finance, reason="误收")


def test_a_waiver_or_void_needs_a_reason_and_finance_or_nic(campus):
    nic = create_or_update_operator(username="nic-e", password="pw-e-12345", role=Role.NIC)
    security = create_or_update_operator(username="sec-a", password="pw-s-12345", role=Role.SECURITY)
    charge = _owed(campus, nic)
    with pytest.raises(ValidationError, match="只有计划财务处或网信中心"):
        services.settle_charge(charge=charge, to=ChargeStatus.PAID, operator=security)
    with pytest.raises(ValidationError, match="理由"):
        services.settle_charge(charge=charge, to=ChargeStatus.WAIVED, operator=nic, reason="  ")
    services.settle_charge(charge=charge, to=ChargeStatus.WAIVED, operator=nic, reason="经查为设备老化，非人为")
    charge.refresh_from_db()
    assert charge.status == ChargeStatus.WAIVED and charge.paid_at is None
    today = timezone.localdate()
    assert ledger.ledger(start=today, end=today).count == 0  # no money: not in the ledger


def test_finance_records_a_payment_in_the_admin(campus, client):
    nic = create_or_update_operator(username="nic-f", password="pw-f-12345", role=Role.NIC, is_superuser=True)
    charge = _owed(campus, nic, "55.00")
    client.post("/accounts/login/", {"username": "nic-f", "password": "pw-f-12345"})
    response = client.post(
        reverse("admin:cards_feecharge_changelist"),
        {"action": "record_payment", "_selected_action": [charge.pk]},
    )
    assert response.status_code == 302
    charge.refresh_from_db()
    assert charge.status == ChargeStatus.PAID and charge.settled_by == nic and charge.window == "财务处"
