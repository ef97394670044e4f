"""A person's passages are personal data (issue 13, defect 8; R-SEC-2): the admin's tap list and
a tap's own page show the card masked, never the holder, and a search for one card's passages is
audited — who looked up whose movements, and when."""

from __future__ import annotations

import uuid

import pytest
from django.urls import reverse

from ops.accounts.roles import Role
from ops.accounts.services import create_or_update_operator
from ops.audit.models import AuditRecord
from ops.masking import mask_uid
from ops.registry.models import AccessEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def nic(client):
    user = create_or_update_operator(username="nic", password="pw-nic-123", role=Role.NIC, is_superuser=True)
    client.post("/accounts/login/", {"username": "nic", "password": "pw-nic-123"})
    return user


@pytest.fixture
def passage(campus):
    card = campus.cards[0]
    return AccessEvent.objects.create(
        event_id=uuid.uuid4(),
        device=campus.gate,
        card=card,
        card_uid=card.uid,
        holder=card.holder,
        occurred_at="2026-11-27T03:00:00Z",
        direction="in",
        decision="allow",
        reason="ok",
    )


def test_the_tap_list_and_a_taps_page_show_the_card_masked_and_no_holder(client, nic, passage):
    for url in (
        reverse("admin:campus_accessevent_changelist"),
        reverse("admin:campus_accessevent_change", args=[passage.pk]),
    ):
        page = client.get(url).content.decode()
        assert mask_uid(passage.card_uid) in page, url
        assert passage.card_uid not in page, url
        assert passage.holder.name not in page and passage.holder.number not in page, url


def test_a_search_for_one_cards_passages_is_audited(client, nic, passage):
    url = reverse("admin:campus_accessevent_changelist")
    page = client.get(url, {"q": passage.card_uid.lower()}).content.decode()
    assert mask_uid(passage.card_uid) in page  # found (one result), still masked
    record = AuditRecord.objects.filter(action="access_events.search").latest("id")
    assert record.actor_name == "nic" and record.object_id == str(passage.card_id)
    assert passage.card_uid not in str(record.data)
