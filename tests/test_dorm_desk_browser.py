"""The dorm desk in a real browser against real daphne, processor, PostgreSQL and Redis
(R-OPS-4): the manager of one building lands on their desk, sees its doors live — residents
inside, late returns after curfew — and never another building's, also when forging the
websocket (replaying the page's own callback request with another building named in it, or
opening another page's websocket) or calling the API for another building."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone
from rest_framework.authtoken.models import Token

from ops.accounts.roles import Role
from ops.accounts.services import create_or_update_operator
from ops.registry.choices import HolderKind
from ops.registry.models import Building, Card, Cardholder, Device
from streams.cards import CardStatus, CardType, DeviceKind
from streams.reasons import Direction
from tests import screenshots
from tests.browser import chromium, log_in
from tests.factories import device_key, publish, tap

pytestmark = [pytest.mark.browser, pytest.mark.pipeline, pytest.mark.slow]
PASSWORD = "dorm-desk-pass-9"
SCREENSHOT = screenshots.path("dorm-desk.png")
OTHER_DOOR = "2号公寓北门"


def _second_building(campus):
    """A second dorm building with its own door and one resident."""
    d2 = Building.objects.create(code="D2", name="2号学生公寓", is_dorm=True)
    Device.objects.create(
        code="D2-01",
        name=OTHER_DOOR,
        kind=DeviceKind.DORM_DOOR,
        location="2号学生公寓",
        building=d2,
        owner=campus.dept,
        key_hex=device_key("D2-01").hex(),
    )
    holder = Cardholder.objects.create(
        kind=HolderKind.STUDENT, number="2025CS99999", name="李四九", department=campus.dept, dorm_building=d2
    )
    return d2, Card.objects.create(
        uid="B0000001",
        holder=holder,
        card_type=CardType.STUDENT,
        status=CardStatus.ACTIVE,
        valid_from=timezone.now() - timedelta(days=10),
    )


def _curfew_around_now(building) -> None:
    """A late-return window that contains this moment, whatever the time of the test run."""
    now = timezone.localtime()
    building.curfew_start = (now - timedelta(hours=1)).time().replace(second=0, microsecond=0)
    building.curfew_end = (now + timedelta(hours=1)).time().replace(second=0, microsecond=0)
    building.save()


def _in(device: str, uid: str, seq: int, when: datetime, *, late: bool = False):
    """An entry; ``late``: the door let it in during its curfew and flagged it (readers.decide)."""
    event = tap(device, uid, seq=seq, when=when)
    return event.model_copy(update={"direction": Direction.IN, "flags": ("late_return",) if late else ()})


def test_dorm_manager_sees_only_their_building(campus, redis_client, stack):
    d2, outsider = _second_building(campus)
    _curfew_around_now(campus.dorm)
    create_or_update_operator(username="dorm-a", password=PASSWORD, role=Role.DORM_MANAGER, buildings=[campus.dorm])
    resident = campus.cards[0]
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        log_in(page, stack, "dorm-a", PASSWORD, "/live/dorm/")  # lands on its own desk
        page.wait_for_selector("#dorm-status.live", timeout=20_000)
        page.wait_for_selector("#dorm-D1", timeout=10_000)
        assert page.locator("#dorm-D2").count() == 0
        assert page.inner_text("#dorm-D1-inside").startswith("0 /")

        now = datetime.now(UTC)
        publish(redis_client, [_in("D2-01", outsider.uid, 1, now)])
        publish(redis_client, [_in("D1-01", resident.uid, 1, now + timedelta(seconds=1), late=True)])
        page.wait_for_function("document.querySelector('#dorm-D1-inside').innerText.startsWith('1 /')", timeout=10_000)
        assert page.inner_text("#dorm-D1-late") == "1"  # in after curfew, flagged by the door: late
        assert "张*0" in page.inner_text("#dorm-D1")  # masked
        assert OTHER_DOOR not in page.content() and "李*九" not in page.content()
        page.screenshot(path=SCREENSHOT)

        # forging: start the page's own persistent callback over a fresh websocket, as the
        # renderer does (the request shape of dash-renderer's websocket worker), with the other
        # building named in every place a client controls
        deps = page.request.get(f"{stack}/live/dorm/_dash-dependencies").json()
        output = next(d["output"] for d in deps if d.get("persistent"))
        forged_value = {"id": "building", "property": "value", "value": "D2"}

        def request(**extra):
            return json.dumps(
                {
                    "type": "callback_request",
                    "rendererId": "forged",
                    "requestId": "forged-1",
                    "payload": {
                        "output": output,
                        "inputs": [],
                        "changedPropIds": [],
                        "parsedChangedPropsIds": [],
                        **extra,
                    },
                }
            )

        def listen(message: str) -> str:
            return page.evaluate(
                """async ([url, message]) => {
                const ws = new WebSocket(url); const got = [];
                ws.onmessage = (e) => got.push(String(e.data));
                await new Promise((ok, fail) => { ws.onopen = ok; ws.onerror = fail; });
                ws.send(message);
                await new Promise((ok) => setTimeout(ok, 5000));
                ws.close(); return got.join("\\n");
            }""",
                [stack.replace("http", "ws") + "/live/dorm/_dash-ws-callback", message],
            )

        later = threading.Timer(
            2.0, publish, args=(redis_client, [_in("D2-01", outsider.uid, 2, now + timedelta(seconds=3))])
        )
        later.start()  # a tap at the other building while the forged desk is listening
        # the request the renderer sends, plus the other building wherever a field is free
        received = listen(request(building="D2", buildings=["D2"], scope={"buildings": ["D2"]}))
        later.join()
        assert "dorm-D1" in received  # a live desk ... of D1 only
        assert "dorm-D2" not in received and OTHER_DOOR not in received
        assert "2号学生公寓" not in received
        # inputs or state the page does not have are refused by the callback machinery
        for forged in (request(inputs=[forged_value]), request(state=[forged_value])):
            answer = listen(forged)
            assert "dorm-D" not in answer and OTHER_DOOR not in answer, answer[:300]
        refused = page.evaluate(
            """async (url) => await new Promise((done) => {
            const ws = new WebSocket(url);
            ws.onopen = () => done("open"); ws.onerror = () => done("refused");
        })""",
            stack.replace("http", "ws") + "/live/gates/_dash-ws-callback",
        )
        assert refused == "refused"
        assert OTHER_DOOR not in page.content()


def test_the_dorm_api_answers_only_for_the_managers_buildings(campus, client):
    d2, _card = _second_building(campus)
    user = create_or_update_operator(
        username="dorm-api", password=PASSWORD, role=Role.DORM_MANAGER, buildings=[campus.dorm]
    )
    token = Token.objects.create(user=user)
    auth = {"HTTP_AUTHORIZATION": f"Token {token.key}"}
    own = client.get("/api/v1/dorms/D1/", **auth)
    assert own.status_code == 200 and own.json()["building"] == "D1"
    assert own.json()["residents"] == len(campus.cards)
    for forged in ("D2", "NOPE", "D1%00", "..%2FD2"):
        response = client.get(f"/api/v1/dorms/{forged}/", **auth)
        assert response.status_code in (403, 404), forged
        assert "2号学生公寓" not in response.content.decode()
    nic = create_or_update_operator(username="nic-api", password=PASSWORD, role=Role.NIC)
    nic_token = Token.objects.create(user=nic)
    assert client.get("/api/v1/dorms/D2/", HTTP_AUTHORIZATION=f"Token {nic_token.key}").status_code == 200
    guard = create_or_update_operator(username="guard-api", password=PASSWORD, role=Role.SECURITY)
    guard_token = Token.objects.create(user=guard)
    assert client.get("/api/v1/dorms/D1/", HTTP_AUTHORIZATION=f"Token {guard_token.key}").status_code == 403
