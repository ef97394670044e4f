"""Acceptance (issue 4, point 5): with pcscd + vsmartcard-vpcd + the project's card emulator,
tapping (inserting) an enrolled card at a gate's reader produces an allowed event on the live
gate page; after a loss report, the same card gives a deny with its reason (R-USE-1)."""

from __future__ import annotations

import signal
import subprocess
import time

import pytest

from ops.accounts.roles import Role
from ops.accounts.services import create_or_update_operator
from ops.registry.lifecycle import services
from tests import pcsc
from tests.browser import chromium, log_in, outside_the_browser_loop, stop
from tests.card_emulator import EmulatedCard
from tests.conftest import campuscard_cmd

pcsc_reader = pcsc.pcsc_reader
pytestmark = [pytest.mark.pcsc, pytest.mark.browser, pytest.mark.slow]
PASSWORD = "pcsc-gate-pass-1"


def test_a_card_on_the_gate_reader_shows_on_the_live_page(campus, stack, subprocess_env, pcsc_reader):
    create_or_update_operator(username="guard", password=PASSWORD, role=Role.SECURITY)
    nic = create_or_update_operator(username="nic-desk", password=PASSWORD, role=Role.NIC)
    card = campus.cards[5]
    relay = subprocess.Popen(campuscard_cmd("relay"), env=subprocess_env)
    agent = subprocess.Popen(
        campuscard_cmd("reader", "--device", "G-E-01", "--reader", pcsc_reader, "--heartbeat", "2"), env=subprocess_env
    )
    port = pcsc.vpcd_port(pcsc_reader)
    try:
        time.sleep(4)  # the relay seeds the credential feed; the agent loads it
        with chromium() as browser:
            page = browser.new_page()
            log_in(page, stack, "guard", PASSWORD, "/live/gates/")
            page.wait_for_selector("#gates-status.live", timeout=20_000)

            with EmulatedCard(card.uid, port=port) as emulated:
                emulated.insert()
                page.wait_for_selector("tr.tap-row.allow", timeout=15_000)
                emulated.remove()
            row = page.locator("tr.tap-row").first.inner_text()
            assert "东门人行1号闸" in row and "允许" in row and "张*5" in row

            outside_the_browser_loop(lambda: services.report_loss(card=card, operator=nic, basis="本人挂失"))
            time.sleep(2)  # relay → credential stream → the agent's cache
            with EmulatedCard(card.uid, port=port) as emulated:
                emulated.insert()
                page.wait_for_selector("tr.tap-row.deny", timeout=15_000)
            assert "已挂失" in page.locator("tr.tap-row.deny").first.inner_text()
    finally:
        stop(agent, signal.SIGTERM)
        stop(relay, signal.SIGTERM)
