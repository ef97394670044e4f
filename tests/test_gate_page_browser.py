"""The gate page in a real browser against real daphne, a real processor, PostgreSQL and
Redis: a tap published by a reader shows up pushed, masked, with its decision and reason
(R-OPS-1, R-OPS-2)."""

from __future__ import annotations

import time

import pytest

from ops.accounts.roles import Role
from ops.accounts.services import create_or_update_operator
from streams.reasons import Decision, Reason
from tests.browser import chromium, log_in, log_in_expecting
from tests.factories import publish, tap

pytestmark = [pytest.mark.browser, pytest.mark.pipeline, pytest.mark.slow]
PASSWORD = "gate-test-pass-3"


def test_a_blacklisted_tap_is_pushed_to_the_security_desk_masked(campus, redis_client, stack):
    create_or_update_operator(username="guard", password=PASSWORD, role=Role.SECURITY)
    card = campus.cards[3]
    with chromium() as browser:
        page = browser.new_page()
        log_in(page, stack, "guard", PASSWORD, "/live/gates/")
        page.wait_for_selector("#gates-status.live", timeout=20_000)
        assert page.locator("tr.tap-row").count() == 0

        publish(
            redis_client,
            [
                tap("G-E-01", card.uid, decision=Decision.DENY, reason=Reason.BLACKLISTED),
            ],
        )
        started = time.monotonic()
        page.wait_for_selector("tr.tap-row.alarm", timeout=10_000)
        shown_after = time.monotonic() - started

        row = page.locator("tr.tap-row").first.inner_text()
        assert "东门人行1号闸" in row and "黑名单" in row
        assert "张*3" in row  # the holder's name, masked
        assert card.holder.name not in page.content()  # never the full name
        assert card.uid not in page.content()  # nor the full card UID
        assert page.inner_text("#gates-total-deny") == "1"

        publish(redis_client, [tap("G-E-01", c.uid, seq=i + 2) for i, c in enumerate(campus.cards[:5])])
        page.wait_for_function("document.querySelectorAll('tr.tap-row').length === 6", timeout=10_000)
        assert page.inner_text("#gates-total-allow") == "5"
    assert shown_after < 5.0


def test_a_dorm_manager_cannot_open_the_gate_page(campus, stack):
    create_or_update_operator(username="dormmgr", password=PASSWORD, role=Role.DORM_MANAGER, buildings=[campus.dorm])
    with chromium() as browser:
        page = browser.new_page()
        assert log_in_expecting(page, stack, "dormmgr", PASSWORD, "/live/gates/") == 403
        assert "无权访问" in page.content()
