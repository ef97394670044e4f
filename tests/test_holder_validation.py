"""One validation of a cardholder's citizen ID (GB 11643: check character and birth date) and
phone, on every path (issue 13, defect 3: the admin's form accepted ``123456789012345678`` and
phone ``x``). The rule lives on the model's fields (``ops.registry.citizen_id.validate``,
``ops.registry.phone.validate``), so the admin's forms run it; the services and the list import
run the same ``problem`` functions."""

from __future__ import annotations

from datetime import date

import pytest
from django.urls import reverse

from ops.accounts.roles import Role
from ops.accounts.services import create_or_update_operator
from ops.registry import citizen_id, phone
from ops.registry.lifecycle import services
from ops.registry.lifecycle.errors import CardRuleError
from ops.registry.lifecycle.tabular import citizen_id_problem
from ops.registry.models import Cardholder

pytestmark = pytest.mark.django_db

GOOD_ID = citizen_id.make("440507", date(1990, 1, 1), 123)


@pytest.fixture
def nic(client):
    user = create_or_update_operator(username="nic", password="pw-nic-123", role=Role.NIC, is_superuser=True)
    client.post("/accounts/login/", {"username": "nic", "password": "pw-nic-123"})
    return user


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("123456789012345678", "出生日期无效"),
        ("44050719900101123", "应为18位"),
        (GOOD_ID[:17] + ("0" if GOOD_ID[17] != "0" else "1"), "校验位错误"),
        ("440507" + "20991231" + "123" + citizen_id.check_char("44050720991231123"), "出生日期无效"),
    ],
)
def test_the_one_citizen_id_check(value, reason):
    assert reason in (citizen_id.problem(value) or "")
    assert citizen_id_problem(value) == citizen_id.problem(value)  # the list import's is the same one
    assert citizen_id.problem(GOOD_ID) is None


@pytest.mark.parametrize(
    "value", ["13812345678", "+86 13812345678", "010-12345678", "0755 1234567", "021-12345678-123"]
)
def test_phone_numbers_a_card_office_records(value):
    assert phone.problem(value) is None


@pytest.mark.parametrize("value", ["x", "12345", "23812345678", "138123456789", "1381234567a"])
def test_phone_numbers_refused(value):
    assert "手机号应为" in (phone.problem(value) or "")


def _add_form(campus, **values):
    data = {"kind": "student", "number": "2026CS00001", "name": "新生", "department": campus.dept.pk}
    data.update({"status": "active", "cards-TOTAL_FORMS": "0", "cards-INITIAL_FORMS": "0", **values})
    return data


def test_the_admin_add_form_refuses_a_bad_citizen_id_and_phone_and_creates_nothing(client, nic, campus):
    url = reverse("admin:campus_cardholder_add")
    response = client.post(url, _add_form(campus, citizen_id="123456789012345678", phone="x"))
    assert response.status_code == 200  # the form again, with the errors
    page = response.content.decode()
    assert "身份证号中的出生日期无效" in page and "手机号应为" in page
    assert not Cardholder.objects.filter(number="2026CS00001").exists()
    response = client.post(url, _add_form(campus, citizen_id=GOOD_ID, phone="13812345678"))
    assert response.status_code == 302, [ln for ln in response.content.decode().splitlines() if "error" in ln][:20]
    assert Cardholder.objects.get(number="2026CS00001").citizen_id == GOOD_ID


def test_the_admin_change_form_refuses_a_bad_phone_and_keeps_the_record(client, nic, campus):
    holder = campus.cards[0].holder
    holder.phone = "13812345678"
    holder.save()
    url = reverse("admin:campus_cardholder_change", args=[holder.pk])
    data = {
        "kind": holder.kind,
        "number": holder.number,
        "name": holder.name,
        "department": holder.department_id,
        "status": holder.status,
        "phone": "x",
        "cards-TOTAL_FORMS": "0",
        "cards-INITIAL_FORMS": "0",
    }
    response = client.post(url, data)
    assert response.status_code == 200 and "手机号应为" in response.content.decode()
    holder.refresh_from_db()
    assert holder.phone == "13812345678"


def test_the_identity_change_service_runs_the_same_check(campus, nic):
    card = campus.cards[0]
    with pytest.raises(CardRuleError, match="出生日期无效"):
        services.replace_card(
            card=card,
            new_uid="7E57AA01",
            operator=nic,
            reason="identity_change",
            basis="户籍变更",
            identity_changes={"citizen_id": "123456789012345678"},
        )
    card.refresh_from_db()
    assert card.status == "active"
