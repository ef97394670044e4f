"""Issue 19, items 7 and 8, below the browser: the one table of what a card's state allows
(``services.STATE_RULES``) is what the services enforce and what the desk offers; a replacement's
reason is a card's (not 损坏设备赔偿) on every path; the loss form hides the photo from roles
that may not see photos; a holder's photo is set only through the photo standard (R-CARD-8),
atomically and audited, by whoever may edit the holder."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from django import forms
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from ops.accounts.roles import Role
from ops.accounts.services import create_or_update_operator
from ops.audit import services as audit
from ops.audit.models import AuditRecord
from ops.registry.choices import HolderKind
from ops.registry.lifecycle import photo_store, services
from ops.registry.lifecycle.choices import Action
from ops.registry.lifecycle.errors import CardRuleError
from ops.registry.lifecycle.forms import CARD_FORMS, ReplaceForm
from ops.registry.lifecycle.models import CardAction, FeeCharge
from ops.registry.lifecycle.photos import make_test_photo
from ops.registry.models import Card, Cardholder, Department

pytestmark = pytest.mark.django_db
PASSWORD = "pw-guide-1234"


@pytest.fixture(autouse=True)
def own_photo_store(tmp_path, monkeypatch):
    monkeypatch.setenv("CAMPUSCARD_VAR_DIR", str(tmp_path / "var"))


@pytest.fixture
def nic(campus):
    return create_or_update_operator(username="nic-g", password=PASSWORD, role=Role.NIC)


def test_every_card_form_has_a_state_rule_and_the_desk_offers_what_the_rules_allow(campus, nic):
    assert set(CARD_FORMS) <= set(services.STATE_RULES)
    card = campus.cards[0]
    assert services.actions_allowed(card) == [
        Action.LOSE,
        Action.BLACKLIST,
        Action.CANCEL,
        Action.EXTEND,
        Action.REPLACE,
    ]
    services.report_loss(card=card, operator=nic, basis="挂失")
    card.refresh_from_db()
    allowed = services.actions_allowed(card)
    assert Action.FIND in allowed and Action.LOSE not in allowed
    services.set_blacklist(card=card, blacklisted=True, operator=nic, basis="盗用")
    card.refresh_from_db()
    allowed = services.actions_allowed(card)
    assert Action.UNBLACKLIST in allowed and Action.BLACKLIST not in allowed
    services.cancel_card(card=card, operator=nic, basis="注销")
    card.refresh_from_db()
    assert services.actions_allowed(card) == [Action.UNBLACKLIST]


def test_what_the_desk_does_not_offer_the_service_refuses_with_the_same_reason(campus, nic):
    card = campus.cards[1]
    refusal = services.state_refusal(card, Action.FIND)
    assert refusal is not None and "只有已挂失的卡可以解挂" in refusal
    with pytest.raises(CardRuleError) as caught:
        services.report_found(card=card, operator=nic, basis="解挂")
    assert caught.value.messages == [refusal]
    assert not CardAction.objects.filter(card=card).exists()


def test_grants_are_offered_on_a_temporary_card_and_revocation_only_with_a_grant_in_force(campus, nic):
    gao = Department.objects.create(code="GAO", name="总务处")
    holder = Cardholder.objects.create(kind=HolderKind.CONTRACTOR, number="LCO09999", name="维修李", department=gao)
    card = services.issue_card(
        holder=holder,
        uid="7E5B0009",
        operator=nic,
        approving_department=gao,
        basis="合同",
        valid_until=timezone.now() + timedelta(days=30),
    )
    assert Action.GRANT in services.actions_allowed(card) and Action.REVOKE_GRANT not in services.actions_allowed(card)
    assert Action.GRANT not in services.actions_allowed(campus.cards[0])  # a student card
    services.grant_access(
        card=card, place=campus.dorm, until=timezone.now() + timedelta(days=3), operator=nic, basis="函"
    )
    assert Action.REVOKE_GRANT in services.actions_allowed(card)


def test_a_staff_card_is_not_offered_an_extension(campus, nic):
    staff = Cardholder.objects.create(kind=HolderKind.STAFF, number="T2001", name="李老师", department=campus.dept)
    card = services.issue_card(holder=staff, uid="5A5A0001", operator=nic, approved_by_operator=nic, basis="入职")
    assert Action.EXTEND not in services.actions_allowed(card)
    assert services.state_refusal(card, Action.EXTEND) == "教工卡长期有效，无需延期"


def test_device_damage_is_not_a_replacement_reason_on_any_path(campus, nic):
    reason = ReplaceForm().fields["reason"]
    assert isinstance(reason, forms.ChoiceField)
    assert "device_damage" not in [value for value, _label in reason.widget.choices]
    card = campus.cards[2]
    with pytest.raises(CardRuleError, match="补卡原因应为"):
        services.replace_card(card=card, new_uid="B0B0B0B0", operator=nic, reason="device_damage", basis="x")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=nic)[0].key}")
    response = api.post(
        f"/api/v1/cards/{card.uid}/replace/", {"new_uid": "B0B0B0B1", "reason": "device_damage", "basis": "x"}
    )
    assert response.status_code == 400
    card.refresh_from_db()
    assert card.status == "active" and not FeeCharge.objects.exists() and not Card.objects.filter(uid="B0B0B0B1")


def test_the_loss_form_hides_the_photo_from_a_role_that_may_not_see_photos(campus, nic, client):
    """A department's clerk manages its temporary card (R-CARD-7) but is not a photo viewer:
    the masked name to confirm against, no photo."""
    gao = Department.objects.create(code="GAO", name="总务处")
    create_or_update_operator(username="gao-clerk", password=PASSWORD, role=Role.GENERAL, department=gao)
    holder = Cardholder.objects.create(kind=HolderKind.CONTRACTOR, number="LCO07777", name="维修赵", department=gao)
    holder.photo_sha256 = photo_store.save(make_test_photo())
    holder.save()
    card = services.issue_card(
        holder=holder,
        uid="7E5B0007",
        operator=nic,
        approving_department=gao,
        basis="合同",
        valid_until=timezone.now() + timedelta(days=30),
    )
    client.post("/accounts/login/", {"username": "gao-clerk", "password": PASSWORD})
    html = client.get(f"/admin/campus/card/{card.pk}/lose/").content.decode()
    assert "维*赵" in html and "维修赵" not in html
    assert "有照片（您的角色不能查看照片）" in html and "/photos/holders/" not in html
    client.force_login(nic)
    html = client.get(f"/admin/campus/card/{card.pk}/lose/").content.decode()
    assert f"/photos/holders/{holder.pk}.jpg" in html


def test_a_photo_that_misses_the_standard_changes_nothing(campus, nic):
    holder = campus.cards[3].holder
    bad = make_test_photo(size=(300, 400))
    with pytest.raises(CardRuleError) as caught:
        services.set_holder_photo(holder=holder, data=bad, operator=nic)
    assert "照片尺寸为 300×400 像素" in " ".join(caught.value.messages)
    holder.refresh_from_db()
    assert holder.photo_sha256 == ""
    assert photo_store.path_for(hashlib.sha256(bad).hexdigest()) is None
    assert not AuditRecord.objects.filter(action="holder.photo").exists()


def test_a_photo_is_stored_and_saved_together_or_not_at_all(campus, nic, monkeypatch):
    holder = campus.cards[4].holder
    data = make_test_photo(seed=44)
    sha = hashlib.sha256(data).hexdigest()

    def broken(**kwargs):
        raise RuntimeError("the audit log is unreachable")

    record = audit.record
    monkeypatch.setattr(audit, "record", broken)
    with pytest.raises(RuntimeError):
        services.set_holder_photo(holder=holder, data=data, operator=nic)
    holder.refresh_from_db()
    assert holder.photo_sha256 == "" and photo_store.path_for(sha) is None
    monkeypatch.setattr(audit, "record", record)

    services.set_holder_photo(holder=holder, data=data, operator=nic, source="camera")
    holder.refresh_from_db()
    assert holder.photo_sha256 == sha and photo_store.path_for(sha) is not None
    row = AuditRecord.objects.get(action="holder.photo")
    assert row.object_id == holder.number and row.data["source"] == "camera"


def test_only_who_may_edit_the_holder_sets_a_photo(campus, client):
    hr = create_or_update_operator(username="hr-g", password=PASSWORD, role=Role.SECURITY)
    holder = campus.cards[5].holder
    with pytest.raises(CardRuleError, match="没有更改持卡人照片的权限"):
        services.set_holder_photo(holder=holder, data=make_test_photo(), operator=hr)
    client.force_login(hr)
    response = client.post(f"/admin/campus/cardholder/{holder.pk}/photo/", {"source": "upload"})
    assert response.status_code == 403
    holder.refresh_from_db()
    assert holder.photo_sha256 == ""


def test_the_holder_form_takes_no_typed_digest(campus, client, nic):
    """The photo's digest is computed from the photo: a digest posted with the holder's form is
    not a field there, and is ignored."""
    holder = campus.cards[6].holder
    client.force_login(nic)
    url = f"/admin/campus/cardholder/{holder.pk}/change/"
    assert 'name="photo_sha256"' not in client.get(url).content.decode()
    form = {
        "number": holder.number,
        "name": holder.name,
        "department": holder.department_id,
        "dorm_building": holder.dorm_building_id or "",
        "citizen_id": "",
        "phone": "",
        "class_name": "新班级",
        "title": "",
        "study_end": "",
        "photo_sha256": "ab" * 32,
        "cards-TOTAL_FORMS": "1",
        "cards-INITIAL_FORMS": "1",
        "cards-MIN_NUM_FORMS": "0",
        "cards-MAX_NUM_FORMS": "1000",
        "cards-0-id": campus.cards[6].pk,
        "cards-0-holder": holder.pk,
    }
    response = client.post(url, form)
    assert response.status_code == 302, response.content.decode()[:2000]
    holder.refresh_from_db()
    assert holder.class_name == "新班级" and holder.photo_sha256 == ""
