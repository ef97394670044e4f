"""The admin lists every record the pipeline touches, with personal data masked in lists."""

from __future__ import annotations

import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from ops.accounts.roles import Role
from ops.accounts.services import create_or_update_operator
from ops.registry.admin import CappedPaginator
from ops.registry.models import AccessEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def nic_client(client):
    create_or_update_operator(username="nic", password="pw-nic-123", role=Role.NIC, is_superuser=True)
    client.post("/accounts/login/", {"username": "nic", "password": "pw-nic-123"})
    return client


@pytest.mark.parametrize("model", ["department", "building", "cardholder", "card", "device", "accessevent"])
def test_nic_can_list_every_record(nic_client, campus, model):
    response = nic_client.get(reverse(f"admin:campus_{model}_changelist"))
    assert response.status_code == 200


def test_cardholder_list_masks_citizen_id_and_phone(nic_client, campus):
    holder = campus.cards[0].holder
    holder.citizen_id, holder.phone = "44050719900101123X", "13812345678"
    holder.save()
    html = nic_client.get(reverse("admin:campus_cardholder_changelist")).content.decode()
    assert "440507********123X" in html and "138****5678" in html
    assert "44050719900101123X" not in html and "13812345678" not in html


def test_access_events_are_read_only(nic_client, campus):
    AccessEvent.objects.create(
        event_id="5f0c5b5e-1111-4222-8333-444455556666",
        device=campus.gate,
        card_uid="A0000000",
        occurred_at="2026-11-27T03:00:00Z",
        direction="in",
        decision="allow",
        reason="ok",
    )
    assert nic_client.get(reverse("admin:campus_accessevent_add")).status_code == 403


def test_operators_are_users_with_a_role(nic_client):
    html = nic_client.get(reverse("admin:auth_user_changelist")).content.decode()
    assert "网信中心管理员" in html


def test_the_card_change_page_is_reachable_beside_the_card_actions(campus, client):
    """The card actions' URLs (<pk>/lose/ …) must not swallow the admin's own <pk>/change/."""
    create_or_update_operator(username="nic", password="pw-nic-123", role=Role.NIC, is_superuser=True)
    client.post("/accounts/login/", {"username": "nic", "password": "pw-nic-123"})
    card = campus.cards[0]
    assert client.get(f"/admin/campus/card/{card.pk}/change/").status_code == 200
    assert client.get(f"/admin/campus/card/{card.pk}/history/").status_code == 200
    assert client.get(f"/admin/campus/card/{card.pk}/lose/").status_code == 200


def test_card_action_forms_are_not_offered_to_roles_that_may_not_act(campus, client):
    """R-SEC-3: only NIC (and, for its temporary cards, the approving department) acts on a
    card; the form itself is refused to anyone else, not only its submission."""
    create_or_update_operator(username="lib", password="pw-lib-1234", role=Role.LIBRARY)
    client.post("/accounts/login/", {"username": "lib", "password": "pw-lib-1234"})
    card = campus.cards[0]
    response = client.get(f"/admin/campus/card/{card.pk}/lose/")
    assert response.status_code == 403


def test_the_issuance_form_is_offered_only_to_who_may_issue(campus, client):
    """R-SEC-3, R-CARD-7: NIC issues every card and a department the temporary cards it
    approves; HR may look up cardholders but issues nothing — neither the button nor the form."""
    from ops.registry.models import Department

    holder = campus.cards[0].holder
    issue_url = f"/admin/campus/cardholder/{holder.pk}/issue/"
    change_url = f"/admin/campus/cardholder/{holder.pk}/change/"
    create_or_update_operator(username="hr", password="pw-hr-12345", role=Role.HR)
    client.post("/accounts/login/", {"username": "hr", "password": "pw-hr-12345"})
    page = client.get(change_url)
    assert page.status_code == 200 and issue_url not in page.content.decode()
    refused = client.get(issue_url)
    assert refused.status_code == 403
    assert refused.content.decode().count("没有办理此卡务的权限") == 1
    client.post("/accounts/logout/")

    gao = Department.objects.create(code="GAO", name="总务处")
    create_or_update_operator(username="gao", password="pw-gao-12345", role=Role.GENERAL, department=gao)
    client.post("/accounts/login/", {"username": "gao", "password": "pw-gao-12345"})
    assert issue_url in client.get(change_url).content.decode()
    assert client.get(issue_url).status_code == 200


def test_the_tap_list_counts_with_a_cap_and_has_no_year_scan(nic_client, campus, monkeypatch):
    """At a year of taps (~36 M rows, issue 14) an exact COUNT(*) or date_hierarchy's DISTINCT
    over the years costs seconds per page: the list counts at most CAP + 1 rows and filters by
    date ranges instead."""
    monkeypatch.setattr(CappedPaginator, "CAP", 5)
    AccessEvent.objects.bulk_create(
        AccessEvent(
            event_id=uuid.uuid4(),
            device=campus.gate,
            card_uid=f"A{i:07d}",
            occurred_at=f"2026-11-27T03:00:{i:02d}Z",
            direction="in",
            decision="allow",
            reason="ok",
        )
        for i in range(12)
    )
    assert CappedPaginator(AccessEvent.objects.all(), 3).count == 6
    with CaptureQueriesContext(connection) as queries:
        response = nic_client.get(
            reverse("admin:campus_accessevent_changelist"), {"occurred_at__gte": "2026-11-01 00:00:00+00:00"}
        )
    assert response.status_code == 200 and response.context["cl"].result_count == 6
    counts = [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"].upper() and "accessevent" in q["sql"]]
    assert counts and all("LIMIT" in sql.upper() for sql in counts)
    assert not any("DISTINCT" in q["sql"].upper() and "accessevent" in q["sql"] for q in queries.captured_queries)


def _taps(campus, uid: str, card=None, n: int = 2) -> list[AccessEvent]:
    return AccessEvent.objects.bulk_create(
        AccessEvent(
            event_id=uuid.uuid4(),
            device=campus.gate,
            card=card,
            holder=card.holder if card else None,
            card_uid=uid,
            occurred_at=f"2026-11-27T04:00:{i:02d}Z",
            direction="in",
            decision="allow" if card else "deny",
            reason="ok" if card else "unknown_card",
        )
        for i in range(n)
    )


def test_the_tap_list_finds_a_whole_uid_through_indexes_never_a_substring_scan(nic_client, campus):
    """Issue 14: at a year of taps a substring search on card_uid reads every row. A whole UID
    (as typed off the card: spaces, colons, lower case) is found through the card's index or,
    for a card never registered, the partial index on unknown cards' UIDs."""
    card = campus.cards[0]
    mine = _taps(campus, card.uid, card)
    stranger = _taps(campus, "DEADBEEF01")
    _taps(campus, campus.cards[1].uid, campus.cards[1])  # someone else's taps
    url = reverse("admin:campus_accessevent_changelist")
    spaced = " ".join(card.uid[i : i + 2] for i in range(0, len(card.uid), 2)).lower()
    for term, expected in ((spaced, mine), ("de:ad:be:ef:01", stranger)):
        with CaptureQueriesContext(connection) as queries:
            response = nic_client.get(url, {"q": term})
        assert response.status_code == 200
        assert {e.pk for e in response.context["cl"].result_list} == {e.pk for e in expected}
        taps_sql = [q["sql"] for q in queries.captured_queries if "campus_accessevent" in q["sql"]]
        assert taps_sql and not any("LIKE" in sql.upper() for sql in taps_sql)
    # a device code is still searched as before
    response = nic_client.get(url, {"q": campus.gate.code})
    assert response.context["cl"].result_count == 6
