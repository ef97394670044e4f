"""Personal-data queries in a real browser (R-SEC-2): the requester is refused without a grant,
files a request with its written basis, the responsible leader approves it, NIC reviews it, the
requester sees the person unmasked, and once the grant has run out is refused again — every
step in the audit. Three operators, three browser sessions, the real daphne server."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import Page

from ops.accounts.roles import Role
from ops.accounts.services import create_or_update_operator
from ops.audit.models import AuditRecord
from ops.personal_data.models import PersonalDataRequest
from ops.registry.models import Cardholder
from tests.browser import chromium, log_in, outside_the_browser_loop

pytestmark = [pytest.mark.browser, pytest.mark.slow]
PASSWORD = "privacy-pass-7"
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << >>\n%%EOF\n"
CITIZEN_ID = "440507200703011234"
PHONE = "13912345678"


def _status(page: Page, url: str) -> int:
    """The status ``url`` answers when the page navigates to it."""
    response = page.goto(url)
    assert response is not None, url  # None only for a navigation within the same document
    return response.status


def test_request_approve_review_view_and_expire_in_the_browser(campus, stack, tmp_path):
    holder = campus.cards[0].holder
    Cardholder.objects.filter(pk=holder.pk).update(citizen_id=CITIZEN_ID, phone=PHONE)
    other = campus.cards[1].holder
    create_or_update_operator(username="clerk-web", password=PASSWORD, role=Role.GENERAL)
    create_or_update_operator(username="leader-web", password=PASSWORD, role=Role.LEADER)
    create_or_update_operator(username="nic-web", password=PASSWORD, role=Role.NIC)
    basis = tmp_path / "查询申请函.pdf"
    basis.write_bytes(PDF)
    holder_url = f"{stack}/privacy/holders/{holder.pk}/"

    with chromium() as browser:
        clerk = browser.new_context().new_page()
        log_in(clerk, stack, "clerk-web", PASSWORD, "/privacy/requests/")
        # without a grant: a 403 refusal page, and no digit of the ID on it
        assert _status(clerk, holder_url) == 403
        assert clerk.get_attribute("#refusal", "data-reason") == "no_grant"
        assert "分管领导审批" in clerk.inner_text("#refusal-message")
        assert CITIZEN_ID not in clerk.content() and PHONE not in clerk.content()

        # file the request with its written basis
        clerk.goto(f"{stack}/privacy/requests/")
        clerk.click("#new-request-link")
        clerk.fill("#purpose", "纪检监督：核查校园卡异常消费")
        clerk.fill("#numbers", holder.number)
        clerk.set_input_files("#basis", str(basis))
        clerk.click("#file-submit")
        clerk.wait_for_selector("#request-status[data-status=filed]")
        request_id = int(clerk.inner_text("#request-id"))
        assert clerk.query_selector("#approve-submit") is None  # not the requester's to approve

        # the responsible leader approves
        leader = browser.new_context().new_page()
        log_in(leader, stack, "leader-web", PASSWORD, "/privacy/requests/")
        leader.click(f"#approval-{request_id}")
        leader.wait_for_selector("#approve-submit")
        assert holder.name not in leader.inner_text("#request-persons")  # masked for the leader
        assert leader.query_selector("#review-submit") is None
        leader.fill("#approve-comment", "同意，限本次核查使用")
        leader.click("#approve-submit")
        leader.wait_for_selector("#request-status[data-status=approved]")

        # the requester still sees nothing before NIC's review
        assert _status(clerk, holder_url) == 403
        assert clerk.get_attribute("#refusal", "data-reason") == "pending"

        # NIC reviews: the grant opens for two hours
        nic = browser.new_context().new_page()
        log_in(nic, stack, "nic-web", PASSWORD, "/privacy/requests/")
        nic.click(f"#review-{request_id}")
        nic.fill("#review-hours", "2")
        nic.fill("#review-comment", "书面依据已核对")
        nic.click("#review-submit")
        nic.wait_for_selector("#request-status[data-status=reviewed]")
        assert nic.inner_text("#request-valid-until") != "—"

        # the requester views the person unmasked, under the grant
        clerk.goto(f"{stack}/privacy/requests/{request_id}/")
        clerk.click(f"#holder-link-{holder.pk}")
        clerk.wait_for_selector("#personal-data")
        assert clerk.inner_text("#pd-citizen-id") == CITIZEN_ID
        assert clerk.inner_text("#pd-phone") == PHONE
        assert clerk.inner_text("#pd-name") == holder.name
        assert f"#{request_id}" in clerk.inner_text("#pd-grant")
        # ... only the person the request names, and only for the requester
        assert _status(clerk, f"{stack}/privacy/holders/{other.pk}/") == 403
        assert _status(nic, holder_url) == 403

        # the grant runs out: the clock alone ends it
        outside_the_browser_loop(
            lambda: PersonalDataRequest.objects.filter(pk=request_id).update(
                valid_until=timezone.now() - timedelta(seconds=1)
            )
        )
        assert _status(clerk, holder_url) == 403
        assert clerk.get_attribute("#refusal", "data-reason") == "expired"
        assert CITIZEN_ID not in clerk.content()
        clerk.goto(f"{stack}/privacy/requests/{request_id}/")
        assert clerk.get_attribute("#request-status", "data-status") == "expired"
        assert clerk.query_selector(f"#holder-link-{holder.pk}") is None

    steps = list(
        AuditRecord.objects.filter(action__startswith="personal_data.")
        .order_by("id")
        .values_list("action", "actor_name")
    )
    assert steps == [
        ("personal_data.refused", "clerk-web"),
        ("personal_data.file", "clerk-web"),
        ("personal_data.approve", "leader-web"),
        ("personal_data.refused", "clerk-web"),
        ("personal_data.review", "nic-web"),
        ("personal_data.view", "clerk-web"),
        ("personal_data.refused", "clerk-web"),
        ("personal_data.refused", "nic-web"),
        ("personal_data.expire", "system"),
        ("personal_data.refused", "clerk-web"),
    ]
    ref = f"personal_data_request:{request_id}"
    assert set(
        AuditRecord.objects.filter(
            action__in=[
                "personal_data.file",
                "personal_data.approve",
                "personal_data.review",
                "personal_data.view",
                "personal_data.expire",
            ]
        ).values_list("basis", flat=True)
    ) == {ref}
