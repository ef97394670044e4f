"""An open desk does not keep the scope it was opened under (issue 20 item 10; R-OPS-4, R-SEC-3):
when NIC changes an operator's scope — a dorm manager's buildings, their department, their role —
the operator's open websockets close within ``WS_RECHECK_S`` seconds, as at logout, and the page
reconnects under the new scope. In process (Channels' communicator on the real ASGI
application) for each kind of change, and in a real browser against real daphne with the change
saved through the admin by a NIC operator."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.test import Client

from dashboard.guard import REVOKED_CODE
from ops.accounts.models import Operator
from ops.accounts.roles import Role
from ops.accounts.services import create_or_update_operator
from ops.asgi import application
from ops.registry.models import Building, Department, Device
from streams.cards import DeviceKind
from tests.browser import chromium, log_in, outside_the_browser_loop
from tests.factories import device_key

PASSWORD = "scope-change-pass-9"
WS_PATH = "/live/dorm/_dash-ws-callback"
D3_DOOR = "3号公寓东门"


def _third_building(campus) -> Building:
    d3 = Building.objects.create(code="D3", name="3号学生公寓", is_dorm=True)
    Device.objects.create(
        code="D3-01",
        name=D3_DOOR,
        kind=DeviceKind.DORM_DOOR,
        location="3号学生公寓",
        building=d3,
        owner=campus.dept,
        key_hex=device_key("D3-01").hex(),
    )
    return d3


async def _closed_within(communicator: WebsocketCommunicator, seconds: float) -> int | None:
    deadline = asyncio.get_running_loop().time() + seconds
    while (left := deadline - asyncio.get_running_loop().time()) > 0:
        try:
            message = await communicator.receive_output(timeout=left)
        except TimeoutError:
            return None
        if message["type"] == "websocket.close":
            return message.get("code")
    return None


@pytest.mark.parametrize("change", ["buildings", "department", "none"])
@pytest.mark.django_db(transaction=True)  # the change is made from another thread, as another request would
def test_a_dorm_managers_open_socket_closes_when_nic_changes_their_scope(campus, change, settings):
    settings.WS_RECHECK_S = 1
    d3 = _third_building(campus)
    user = create_or_update_operator(
        username="dorm1", password=PASSWORD, role=Role.DORM_MANAGER, buildings=[campus.dorm]
    )
    client = Client()
    assert client.post("/accounts/login/", {"username": "dorm1", "password": PASSWORD}).status_code == 302
    cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
    headers = [(b"host", b"127.0.0.1"), (b"origin", b"http://127.0.0.1"), (b"cookie", cookie.encode())]
    other = Department.objects.create(code="SA", name="学生工作处")

    def change_scope():
        # the ORM, not the service: the service also resets the password (which alone would
        # close the socket); the guard must notice the scope itself, however it was saved
        operator = Operator.objects.get(user=user)
        if change == "buildings":
            operator.buildings.set([d3])  # NIC moved dorm1 from D1 to D3
        elif change == "department":
            operator.department = other
            operator.save()

    async def go():
        communicator = WebsocketCommunicator(application, WS_PATH, headers=headers)
        connected, _detail = await communicator.connect(timeout=10)
        assert connected
        still_open = await communicator.receive_nothing(timeout=2.5)
        await asyncio.get_running_loop().run_in_executor(None, change_scope)
        if change == "none":  # nothing changed: it stays open (the page's pushes aside)
            return still_open, await communicator.receive_nothing(timeout=6)
        closed = await _closed_within(communicator, 6)
        await communicator.wait(timeout=10)
        return still_open, closed

    still_open, after = async_to_sync(go)()
    assert still_open is True
    assert after == (True if change == "none" else REVOKED_CODE)


@pytest.mark.browser
@pytest.mark.pipeline
@pytest.mark.slow
def test_the_dorm_desk_follows_nic_moving_its_manager_to_another_building(campus, stack):
    """dorm1 watches D1; NIC moves dorm1 from D1 to D3 in the admin; within a few seconds dorm1's
    open desk no longer shows D1 — it shows D3, without a reload."""
    d3 = _third_building(campus)
    user = create_or_update_operator(
        username="dorm1", password=PASSWORD, role=Role.DORM_MANAGER, buildings=[campus.dorm]
    )
    create_or_update_operator(username="nic1", password=PASSWORD, role=Role.NIC, is_superuser=True)
    with chromium() as browser:
        desk = browser.new_context().new_page()
        log_in(desk, stack, "dorm1", PASSWORD, "/live/dorm/")
        desk.wait_for_selector("#dorm-status.live", timeout=20_000)
        desk.wait_for_selector("#dorm-D1", timeout=10_000)
        assert desk.locator("#dorm-D3").count() == 0

        admin = browser.new_context().new_page()
        change = f"/admin/auth/user/{user.pk}/change/"
        log_in(admin, stack, "nic1", PASSWORD, change)
        admin.select_option("#id_operator-0-buildings_to", value=str(campus.dorm.pk))
        admin.click("#id_operator-0-buildings_remove")
        admin.select_option("#id_operator-0-buildings_from", value=str(d3.pk))
        admin.click("#id_operator-0-buildings_add")
        admin.click("input[name=_save]")
        admin.wait_for_selector(".messagelist .success", timeout=10_000)
        saved = outside_the_browser_loop(
            lambda: list(Operator.objects.get(user_id=user.pk).buildings.values_list("code", flat=True))
        )
        assert saved == ["D3"]

        # the same few seconds as a logout (WS_RECHECK_S = 3 by default), not 30 s and more
        desk.wait_for_selector("#dorm-D3", timeout=8_000)
        assert desk.locator("#dorm-D1").count() == 0
        assert "1号学生公寓" not in desk.inner_text("#dorm-panels")
