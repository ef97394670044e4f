"""Card-management actions appear live (R-OPS-5): a loss report and a replacement made at the
desk show up on the card-action page, pushed, with today's counts; names and UIDs masked."""

from __future__ import annotations

import signal
import subprocess

import pytest

from ops.accounts.roles import Role
from ops.accounts.services import create_or_update_operator
from ops.registry.lifecycle import services
from tests.browser import chromium, log_in, log_in_expecting, outside_the_browser_loop, stop
from tests.conftest import campuscard_cmd

pytestmark = [pytest.mark.browser, pytest.mark.slow]
PASSWORD = "cards-feed-pass-2"


def test_desk_actions_are_pushed_to_the_card_feed(campus, stack, subprocess_env):
    nic = create_or_update_operator(username="nic-feed", password=PASSWORD, role=Role.NIC)
    relay = subprocess.Popen(campuscard_cmd("relay"), env=subprocess_env)
    card = campus.cards[4]
    try:
        with chromium() as browser:
            page = browser.new_page()
            log_in(page, stack, "nic-feed", PASSWORD, "/live/cards/")
            page.wait_for_selector("#cards-status.live", timeout=20_000)
            assert page.locator("tr.card-row").count() == 0

            outside_the_browser_loop(lambda: services.report_loss(card=card, operator=nic, basis="本人挂失"))
            page.wait_for_selector("#cards-count-lose", timeout=10_000)
            assert page.inner_text("#cards-count-lose") == "1"
            row = page.locator("tr.card-row").first.inner_text()
            assert "挂失" in row and "张*4" in row and "nic-feed" in row
            assert card.uid not in page.content() and card.holder.name not in page.content()

            outside_the_browser_loop(
                lambda: services.replace_card(card=card, new_uid="0C0FFEE1", operator=nic, reason="loss", basis="补卡")
            )
            page.wait_for_selector("#cards-count-replace", timeout=10_000)
            assert page.locator("tr.card-row").count() == 2
    finally:
        stop(relay, signal.SIGTERM)


def test_a_dorm_manager_cannot_open_the_card_feed(campus, stack):
    create_or_update_operator(username="dorm-x", password=PASSWORD, role=Role.DORM_MANAGER, buildings=[campus.dorm])
    with chromium() as browser:
        page = browser.new_page()
        assert log_in_expecting(page, stack, "dorm-x", PASSWORD, "/live/cards/") == 403
