"""Issue 18, Build 1, acceptance (R-ROLE-3, R-DEV-3, R-DEV-4): in a real browser against the real
server, the Library files a repair request for its gate with a photo, NIC accepts it and marks it
a human fault with the market price and the responsible person, Finance takes the payment at the
fee ledger (the existing payment path), NIC marks it repaired, the Library verifies, NIC closes
it. The Library's own page shows every state change, and each step reaches the Library's
webhook (issue 16's channels, sent by the real supervisor)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ops.accounts.roles import Role
from ops.accounts.services import create_or_update_operator
from ops.alerts.choices import ChannelKind, RepairState
from ops.alerts.models import NotificationChannel, RepairTicket, RoutingRule
from ops.registry.lifecycle.choices import ChargeStatus
from ops.registry.lifecycle.models import FeeCharge
from ops.registry.lifecycle.photos import make_test_photo
from ops.registry.models import Department
from streams.cards import DeviceKind
from tests.browser import chromium, free_port, log_in, outside_the_browser_loop
from tests.factories import make_device

PASSWORD = "repair-browser-pass-7"
S = RepairState


@pytest.fixture
def hook() -> Iterator[tuple[str, list[dict]]]:
    """The Library's webhook: a local HTTP receiver keeping every JSON body it is sent."""
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{port}/library-hook", received
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.browser
@pytest.mark.slow
def test_the_library_files_a_repair_nic_charges_it_finance_takes_the_payment_and_it_closes(
    campus, stack, hook, tmp_path
):
    url, received = hook
    lib = Department.objects.create(code="LIB", name="图书馆")
    make_device("L-GATE", "图书馆入口闸机", DeviceKind.PEDESTRIAN_GATE, "图书馆入口", lib)
    create_or_update_operator(username="lib1", password=PASSWORD, role=Role.LIBRARY, department=lib)
    create_or_update_operator(username="nic1", password=PASSWORD, role=Role.NIC)
    create_or_update_operator(username="fin1", password=PASSWORD, role=Role.FINANCE)
    channel = NotificationChannel.objects.create(name="图书馆回调", kind=ChannelKind.WEBHOOK, address=url)
    rule = RoutingRule.objects.create(name="图书馆设备", group_window_s=0)
    rule.owner_departments.set([lib])
    rule.channels.set([channel])
    responsible = campus.cards[0].holder
    photo = tmp_path / "gate.jpg"
    photo.write_bytes(make_test_photo(size=(320, 240), dpi=None))

    with chromium() as browser:
        library = browser.new_context().new_page()
        nic = browser.new_context().new_page()
        finance = browser.new_context().new_page()
        log_in(library, stack, "lib1", PASSWORD, "/repairs/")
        log_in(nic, stack, "nic1", PASSWORD, "/repairs/")
        log_in(finance, stack, "fin1", PASSWORD, "/admin/cards/feecharge/")

        # the Library: its own gate only, a request with a photo
        assert library.locator("#repair-devices tr.device").count() == 1
        assert library.inner_text("#repair-devices tr[data-code='L-GATE']")
        library.select_option("#repair-device", label="L-GATE 图书馆入口闸机")
        library.fill("#repair-description", "入口闸机挡板被撞弯，无法开闸")
        library.set_input_files("#repair-photo", str(photo))
        with library.expect_navigation():
            library.click("#repair-submit")
        ticket_url = library.url
        assert ticket_url.startswith(f"{stack}/repairs/") and library.is_visible("#ticket-photo")

        def library_sees(state: RepairState) -> None:
            library.goto(ticket_url)
            assert library.get_attribute("#ticket-state", "data-state") == state.value
            assert library.inner_text("#ticket-state") == state.label
            assert library.locator(f"#ticket-steps tr.step[data-to='{state.value}']").count() == 1

        library_sees(S.REPORTED)

        # NIC: the request is in its queue; accept it, then a human fault at the market price
        nic.goto(f"{stack}/repairs/")
        assert "入口闸机挡板被撞弯" in nic.inner_text("#repair-tickets")
        nic.goto(ticket_url)
        with nic.expect_navigation():
            nic.click("#step-accepted")
        library_sees(S.ACCEPTED)
        nic.fill("#step-responsible", responsible.number)
        nic.fill("#step-price", "abc")  # refused with a message, nothing changed
        with nic.expect_navigation():
            nic.click("#step-charged")
        assert "赔偿金额须为数字" in nic.inner_text(".msg.error")
        nic.fill("#step-responsible", responsible.number)
        nic.fill("#step-price", "480")
        with nic.expect_navigation():
            nic.click("#step-charged")
        assert nic.inner_text("#ticket-state") == S.CHARGED.label
        library_sees(S.CHARGED)
        assert "480.00" in library.inner_text("body") and str(ChargeStatus.OWED.label) in library.inner_text(
            "#ticket-fee"
        )

        # it cannot close while the charge is owed
        nic.click("#step-repaired")
        nic.wait_for_selector("#step-repaired", state="detached")
        library_sees(S.REPAIRED)
        library.click("#step-verified")  # the owning department verifies the repair
        library.wait_for_selector("#step-verified", state="detached")
        library_sees(S.VERIFIED)
        nic.goto(ticket_url)
        with nic.expect_navigation():
            nic.click("#step-closed")
        assert "尚未缴纳赔偿" in nic.inner_text(".msg.error")
        assert nic.inner_text("#ticket-state") == S.VERIFIED.label

        # Finance takes the payment at the fee ledger (the admin's payment action)
        fee_id = outside_the_browser_loop(lambda: RepairTicket.objects.get().fee_id)
        finance.goto(f"{stack}/admin/cards/feecharge/")
        finance.check(f"input[name=_selected_action][value='{fee_id}']")
        finance.select_option("select[name=action]", "record_payment")
        with finance.expect_navigation():
            finance.click("button[name=index]")
        assert "已登记缴费 1 笔" in finance.inner_text("body")
        assert outside_the_browser_loop(lambda: FeeCharge.objects.get(pk=fee_id).status) == ChargeStatus.PAID

        nic.goto(ticket_url)
        with nic.expect_navigation():
            nic.click("#step-closed")
        assert nic.inner_text("#ticket-state") == S.CLOSED.label
        library_sees(S.CLOSED)
        assert library.locator("#ticket-steps tr.step").count() == 6
        library.goto(f"{stack}/repairs/?state=all")
        assert str(S.CLOSED.label) in library.inner_text("#repair-tickets tr.ticket")

    # every step reached the Library's webhook (the supervisor sends them)
    wanted = [S.REPORTED, S.ACCEPTED, S.CHARGED, S.REPAIRED, S.VERIFIED, S.CLOSED]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(received) < len(wanted):
        time.sleep(0.2)
    assert sorted(m["to_state"] for m in received) == sorted(s.value for s in wanted)
    assert {m["device"] for m in received} == {"L-GATE"} and all(m["owner_department"] == "LIB" for m in received)
