"""Issue 20, item 1 (R-SEC-2): the admin's filters and search box are no oracle on masked data.

The security trial recovered a full citizen ID in 35 requests and a phone in 57, as hr, academic
or nic, by asking ``/admin/campus/cardholder/?citizen_id__startswith=4406…`` digit by digit and
reading "1 持卡人" or "0". Every such lookup is now refused (400, with the reason) and audited;
the answer is the same whether the guessed prefix is right or wrong."""

from __future__ import annotations

from datetime import date

import pytest
from django.conf import settings
from django.contrib import admin
from django.test import Client

from ops.accounts.masked_lookups import MASKED_FIELDS, MaskedLookupsAdmin, masked_path, search_path
from ops.accounts.roles import Role
from ops.accounts.services import create_or_update_operator
from ops.audit.models import AuditRecord
from ops.registry import citizen_id
from ops.registry.lifecycle.choices import ImportStatus
from ops.registry.lifecycle.models import ImportBatch
from ops.registry.models import AccessEvent, Cardholder

pytestmark = pytest.mark.django_db

CID = citizen_id.make("440607", date(2004, 5, 6), 321)
PHONE = "13912345678"
CHANGELIST = "/admin/campus/cardholder/"


def _login(role: Role) -> Client:
    client = Client()
    create_or_update_operator(username=f"op-{role.value}", password="pw-trial-123", role=role)
    assert client.post("/accounts/login/", {"username": f"op-{role.value}", "password": "pw-trial-123"}).status_code
    return client


@pytest.fixture
def secret_holder(campus) -> Cardholder:
    holder = campus.cards[0].holder
    holder.citizen_id, holder.phone = CID, PHONE
    holder.save()
    return holder


def _content(html: str) -> str:
    """The page's content block (the header carries a per-request token)."""
    return html[html.index('id="content"') :]


def _refusals() -> int:
    return AuditRecord.objects.filter(action="admin.lookup_refused").count()


@pytest.mark.parametrize("role", [Role.HR, Role.ACADEMIC, Role.NIC])
@pytest.mark.parametrize(
    "lookup, right, wrong",
    [
        ("citizen_id__startswith", CID[:4], "9999"),
        ("citizen_id__istartswith", CID[:7], "1111111"),
        ("citizen_id__contains", CID[6:14], "00000000"),
        ("citizen_id__regex", f"^{CID[:5]}", "^99"),
        ("phone__startswith", PHONE[:5], "10000"),
        ("phone__regex", f"^{PHONE[:4]}", "^100"),
        ("phone", PHONE, "10000000000"),
        ("name__startswith", "张三0", "王"),
        ("cards__holder__citizen_id__startswith", CID[:4], "9999"),  # round trip through a relation
    ],
)
def test_a_masked_field_cannot_be_probed_through_the_cardholder_filters(secret_holder, role, lookup, right, wrong):
    client = _login(role)
    before = _refusals()
    hit = client.get(CHANGELIST, {lookup: right})
    miss = client.get(CHANGELIST, {lookup: wrong})
    # the trial's oracle: "1 持卡人" for the right prefix, "0" for a wrong one — now one answer
    assert hit.status_code == miss.status_code == 400, hit.content[:300]
    text = hit.content.decode()
    assert _content(text) == _content(miss.content.decode())
    assert "个人信息保护" in text and "个人数据查询申请" in text
    assert "2025CS00000" not in text  # no row of the list comes back
    assert _refusals() == before + 2
    record = AuditRecord.objects.filter(action="admin.lookup_refused").latest("id")
    assert record.actor_name == f"op-{role.value}" and record.data == {"lookups": [lookup]}
    assert right not in str(record.data) and wrong not in str(record.data)  # guesses are not kept


def test_the_refusal_speaks_english_to_an_english_operator(secret_holder):
    client = _login(Role.NIC)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"  # the language menu's choice
    r = client.get(CHANGELIST, {"citizen_id__startswith": "44"})
    assert r.status_code == 400
    assert "Personal data protection" in r.content.decode()


def test_allowed_filters_and_the_number_search_still_work(secret_holder):
    client = _login(Role.NIC)
    r = client.get(CHANGELIST, {"kind__exact": "student", "q": secret_holder.number})
    assert r.status_code == 200 and secret_holder.number in r.content.decode()
    assert _refusals() == 0


@pytest.mark.parametrize("role", [Role.HR, Role.NIC])
def test_the_search_box_does_not_find_a_holder_by_citizen_id_or_phone(secret_holder, role):
    client = _login(role)
    for term in (CID, CID[:10], PHONE, PHONE[:7], "张三0"):
        r = client.get(CHANGELIST, {"q": term})
        assert r.status_code == 200
        assert secret_holder.number not in r.content.decode(), term


def test_passages_and_import_plans_cannot_be_probed_either(campus):
    AccessEvent.objects.create(
        event_id="5f0c5b5e-1111-4222-8333-444455556601",
        device=campus.gate,
        card_uid=campus.cards[0].uid,
        card=campus.cards[0],
        occurred_at="2026-11-27T03:00:00Z",
        direction="in",
        decision="allow",
        reason="ok",
    )
    ImportBatch.objects.create(
        kind="student",
        filename="list.csv",
        sha256="0" * 64,
        rows=1,
        status=ImportStatus.PREVIEWED,
        plan={"create": [{"number": "2026CS1", "citizen_id": CID}], "update": [], "unchanged": 0, "rejected": []},
    )
    client = _login(Role.NIC)
    for url, lookup, value in [
        ("/admin/campus/accessevent/", "card_uid__startswith", campus.cards[0].uid[:3]),
        ("/admin/campus/accessevent/", "card", str(campus.cards[0].pk)),
        ("/admin/campus/accessevent/", "card__holder__phone__startswith", "139"),
        ("/admin/cards/importbatch/", "plan__icontains", CID[:6]),
    ]:
        r = client.get(url, {lookup: value})
        assert r.status_code == 400, (url, lookup, r.status_code)
    assert _refusals() == 4
    assert client.get("/admin/cards/importbatch/").status_code == 200


def test_a_user_without_the_right_to_the_list_gets_no_answer_and_no_refusal_record(secret_holder):
    client = _login(Role.FINANCE)  # no cardholder view permission
    r = client.get(CHANGELIST, {"citizen_id__startswith": CID[:4]})
    assert r.status_code == 403
    assert _refusals() == 0


def test_every_admin_of_a_model_with_masked_fields_guards_them():
    labels = {model._meta.label_lower: model_admin for model, model_admin in admin.site._registry.items()}
    for label in MASKED_FIELDS:
        assert isinstance(labels[label], MaskedLookupsAdmin), label
    for model, model_admin in admin.site._registry.items():
        filters = [f if isinstance(f, str) else f[0] for f in model_admin.list_filter if isinstance(f, str | tuple)]
        paths = [*filters, *map(search_path, model_admin.search_fields), model_admin.date_hierarchy or ""]
        for path in paths:
            assert not (isinstance(path, str) and path and masked_path(model, path)), (model._meta.label, path)


def test_masked_path_follows_relations_and_attnames():
    assert masked_path(Cardholder, "citizen_id__startswith") == "campus.cardholder.citizen_id"
    assert masked_path(Cardholder, "cards__holder__phone") == "campus.cardholder.phone"
    assert masked_path(AccessEvent, "card_id") == "campus.accessevent.card"
    assert masked_path(AccessEvent, "device__code__startswith") is None
    assert masked_path(Cardholder, "number__startswith") is None
    assert masked_path(Cardholder, "nonsense") is None
