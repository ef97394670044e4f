"""The revocation tracker (issue 17, Build 6; R-USE-1: a lost card must stop working everywhere at
once): for each loss report, blacklisting or cancellation, which readers already hold it and which
do not yet — on the card's page and on the NIC desk, live — and an alert for a reader still
missing it 30 s after it was published, cleared when the reader catches up.

Service level: the real card services, outbox relay and test Redis; readers' reported versions
set as the processor writes them; the 30 s check with its clock given. Browser: real daphne,
processor, supervisor and relay processes, three real reader agents following the signed feed,
and Chromium on the card's admin page and the NIC desk."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from datetime import datetime, timedelta
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.db import connection
from django.utils import timezone

from dashboard import revocation_feed
from dashboard.routing import asgi_route
from ops.accounts.roles import Role
from ops.accounts.services import create_or_update_operator
from ops.alerts.choices import AlertKind
from ops.alerts.models import Alert
from ops.pipeline.relay import OutboxRelay
from ops.pipeline.revocation_watch import GRACE_S, subject, watch_revocations
from ops.registry.choices import DeviceState
from ops.registry.lifecycle.models import OutboxMessage
from ops.registry.lifecycle.services import report_found, report_loss, set_blacklist
from ops.registry.models import Device
from ops.registry.revocations import card_tracker, desk_tracker
from readers.agent.agent import ReaderAgent, client_factory
from readers.agent.config import parse_config
from tests import screenshots
from tests.browser import chromium, log_in, stop
from tests.browser import outside_the_browser_loop as db
from tests.conftest import campuscard_cmd
from tests.factories import device_key
from tests.private_servers import wait_until
from tests.signing_keys import PUBLIC_KEYS

PASSWORD = "nic-revocations-7"
SCREENSHOT = screenshots.path("card-revocations.png")


def _nic():
    return create_or_update_operator(username="nic-rev", password=PASSWORD, role=Role.NIC)


def _published(uid: str) -> tuple[int, int, datetime]:
    """The card's latest published credential change: its outbox row, feed version and time."""
    row = OutboxMessage.objects.filter(version__isnull=False, payload__uid=uid).latest("id")
    assert row.version is not None and row.published_at is not None
    return row.id, row.version, row.published_at


def _holds(code: str, version: int, *, state: str = DeviceState.ONLINE, heard: bool = True) -> None:
    """A reader's heartbeat as the processor records it."""
    Device.objects.filter(code=code).update(
        credential_version=version, state=state, last_seen_at=timezone.now() if heard else None
    )


def _codes(rows) -> list[str]:
    return [r["code"] for r in rows]


@pytest.mark.django_db(transaction=True)
def test_the_card_page_lists_the_readers_that_hold_a_loss_report_and_those_that_do_not(campus, redis_client):
    relay = OutboxRelay(redis_client, fanout=None)
    relay.ensure_feed()
    card, nic = campus.cards[0], _nic()
    assert card_tracker(card.uid)["revocations"] == []

    report_loss(card=card, operator=nic, basis="本人持身份证挂失")
    [pending] = card_tracker(card.uid)["revocations"]
    assert pending["version"] is None and pending["have"] == []  # still in the outbox: nobody has it
    assert _codes(pending["missing"]) == ["D1-01", "G-E-01", "V-E-IN"]

    relay.run_once()
    _id, v, _at = _published(card.uid)
    _holds("G-E-01", v)
    _holds("V-E-IN", v - 1)  # one change behind: it has not got it
    _holds("D1-01", 0, heard=False)
    [loss] = card_tracker(card.uid)["revocations"]
    assert (loss["version"], loss["status"], loss["card"]) == (v, "lost", f"{card.uid[:2]}****{card.uid[-2:]}")
    assert _codes(loss["have"]) == ["G-E-01"]
    assert [(r["code"], r["state"]) for r in loss["missing"]] == [("D1-01", "never"), ("V-E-IN", "online")]

    # found again, then blacklisted: the found card is no revocation, the blacklisting is one;
    # each lists its own readers (the loss report stays on record)
    report_found(card=card, operator=nic, basis="卡已找回")
    set_blacklist(card=card, blacklisted=True, operator=nic, basis="冒用他人卡")
    relay.run_once()
    _holds("V-E-IN", v + 1)  # has the loss report and the "found", not yet the blacklisting
    listed = card_tracker(card.uid)["revocations"]
    assert [(r["status"], r["blacklisted"]) for r in listed] == [("active", True), ("lost", False)]
    assert _codes(listed[0]["have"]) == [] and _codes(listed[1]["have"]) == ["G-E-01", "V-E-IN"]
    # another card's page shows nothing of this one's
    assert card_tracker(campus.cards[1].uid)["revocations"] == []


@pytest.mark.django_db(transaction=True)
def test_a_reader_still_missing_a_revocation_after_30_s_is_an_alert_until_it_catches_up(campus, redis_client):
    relay = OutboxRelay(redis_client, fanout=None)
    relay.ensure_feed()
    card = campus.cards[3]
    report_loss(card=card, operator=_nic(), basis="本人持身份证挂失")
    relay.run_once()
    row_id, v, published = _published(card.uid)
    _holds("G-E-01", v)
    _holds("V-E-IN", v - 1)  # heard from, behind: alerted
    _holds("D1-01", v - 1, state=DeviceState.SILENT)  # cut off: upload_stopped says so, not this

    assert watch_revocations(now=published + timedelta(seconds=GRACE_S - 1)) == 0
    assert not Alert.objects.filter(kind=AlertKind.REVOCATION_MISSING).exists()

    later = published + timedelta(seconds=GRACE_S + 1)
    assert watch_revocations(now=later) == 1
    [alert] = Alert.objects.filter(kind=AlertKind.REVOCATION_MISSING)
    assert alert.subject == subject("V-E-IN", v) and alert.device is not None and alert.device.code == "V-E-IN"
    assert alert.severity == "critical" and alert.cleared_at is None
    assert alert.detail["card"] == f"{card.uid[:2]}****{card.uid[-2:]}" and card.uid not in str(alert.detail)
    assert (alert.detail["version"], alert.detail["holds"]) == (v, v - 1)
    # the next check does not pile up repeats of the same alert
    assert watch_revocations(now=later + timedelta(seconds=5)) == 0
    alert.refresh_from_db()
    assert alert.count == 1

    # the NIC desk's row says the same: one holds it, two do not (yet)
    [desk] = desk_tracker(now=later)
    assert (desk["id"], desk["have"], desk["missing"], desk["missing_codes"]) == (row_id, 1, 2, ["D1-01", "V-E-IN"])

    _holds("V-E-IN", v)  # its next heartbeat reports the version: caught up
    watch_revocations(now=later + timedelta(seconds=10))
    alert.refresh_from_db()
    assert alert.cleared_at is not None
    assert desk_tracker(now=later)[0]["missing"] == 1


# -- in a real browser ----------------------------------------------------------------------------
class RecordedAt:
    """When the processor wrote a reader's version (≥ ``version``) to the database, as seen by
    polling it every 20 ms from a thread of its own (Playwright's loop holds the test's)."""

    def __init__(self, code: str, version: int) -> None:
        self.code, self.version, self.seen = code, version, threading.Event()
        self._at = 0.0
        threading.Thread(target=self._watch, daemon=True).start()

    def _watch(self) -> None:
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                if Device.objects.filter(code=self.code, credential_version__gte=self.version).exists():
                    self._at = time.monotonic()
                    self.seen.set()
                    return
                time.sleep(0.02)
        finally:
            connection.close()

    def at(self) -> float:
        assert self.seen.wait(5), f"{self.code} never reported version {self.version}"
        return self._at


def _agent(code: str, kind: str, state_dir, **door) -> ReaderAgent:
    config = {
        "feed_keys": PUBLIC_KEYS,
        "redis_url": settings.REDIS_URL,
        "state_dir": str(state_dir),
        "heartbeat_s": 1,
        "doors": [{"device_id": code, "key_hex": device_key(code).hex(), "kind": kind, "direction": "in", **door}],
    }
    return ReaderAgent(parse_config(config), client_factory(settings.REDIS_URL), sources=[])


@pytest.mark.browser
@pytest.mark.pipeline
def test_after_a_loss_report_the_card_page_lists_who_has_it_and_fills_in_live(
    campus, redis_client, stack, subprocess_env, tmp_path
):
    relay = subprocess.Popen(campuscard_cmd("relay"), env=subprocess_env)
    agents = {
        "G-E-01": _agent("G-E-01", "pedestrian_gate", tmp_path / "g"),
        "V-E-IN": _agent("V-E-IN", "vehicle_gate", tmp_path / "v"),
        "D1-01": _agent("D1-01", "dorm_door", tmp_path / "d", building="D1"),
    }
    card = campus.cards[5]
    try:
        agents["G-E-01"].start()  # one reader up before the report; the other two come later
        wait_until(lambda: Device.objects.get(code="G-E-01").credential_version > 0, 20, "the first heartbeat")
        report_loss(card=card, operator=_nic(), basis="本人持身份证挂失")
        wait_until(
            lambda: OutboxMessage.objects.filter(version__isnull=False, payload__uid=card.uid).exists(),
            10,
            "the relay to publish the loss",
        )
        loss_id, version, _at = _published(card.uid)
        wait_until(lambda: Device.objects.get(code="G-E-01").credential_version >= version, 10, "G-E-01 to hold it")
        with chromium() as browser:
            context = browser.new_context(viewport={"width": 1500, "height": 1100})
            page = context.new_page()
            log_in(page, stack, "nic-rev", PASSWORD, f"/admin/campus/card/{card.pk}/change/")
            tracker = page.locator("#revocation-tracker")
            page.wait_for_selector("#revocation-tracker[data-live='1']", timeout=10_000)
            block = f"#rev-{loss_id}"
            page.wait_for_selector(f"{block} .rev-have li[data-device='G-E-01']", timeout=10_000)
            for code in ("V-E-IN", "D1-01"):
                assert page.locator(f"{block} .rev-missing li[data-device='{code}']").count() == 1
            assert "从未上线" in page.inner_text(f"{block} .rev-missing li[data-device='D1-01']")
            assert card.uid not in tracker.inner_text()  # the card masked, as everywhere live
            tracker.screenshot(path=SCREENSHOT)

            desk = context.new_page()  # the same session
            desk.goto(f"{stack}/live/devices/")
            desk.wait_for_selector(f"#nic-revocations #rev-{loss_id}[data-missing='2']", timeout=15_000)

            page.evaluate("window.__stayed = true")  # a reload would lose it
            for code in ("V-E-IN", "D1-01"):
                # the agent comes up, loads the feed, heartbeats its version; the processor writes
                # it and pushes: the page moves the reader within about a second of the write —
                # well inside the panel's 10 s resync, so it is the push that moved it
                written = RecordedAt(code, version)
                agents[code].start()
                page.wait_for_selector(f"{block} .rev-have li[data-device='{code}']", timeout=15_000)
                shown = time.monotonic()
                assert page.locator(f"{block} .rev-missing li[data-device='{code}']").count() == 0
                assert shown - written.at() < 3.0, f"{code} shown {shown - written.at():.1f} s after the write"
            assert page.locator(f"{block} .rev-missing li").count() == 1  # "无"
            assert page.locator(f"{block}.complete").count() == 1
            assert page.evaluate("window.__stayed") is True
            assert int(tracker.get_attribute("data-updates") or 0) >= 3
            desk.wait_for_selector(f"#nic-revocations #rev-{loss_id}[data-missing='0']", timeout=15_000)
        # nobody was left behind for 30 s: no alert for this card
        assert not db(lambda: Alert.objects.filter(kind=AlertKind.REVOCATION_MISSING).exists())
    finally:
        for agent in agents.values():
            agent.close()
        stop(relay, signal.SIGTERM)


@pytest.mark.django_db(transaction=True)
def test_the_live_panel_is_sent_only_for_a_card_the_viewer_may_open(campus, redis_client):
    """NIC gets the card's tracker at once; a department's operator — who sees only the temporary
    cards it manages (R-CARD-7) — is refused a student card's panel at the handshake."""
    card = campus.cards[1]
    nic = _nic()
    general = create_or_update_operator(username="ga-rev", password=PASSWORD, role=Role.GENERAL, department=campus.dept)
    router = URLRouter([asgi_route(revocation_feed.PATH, revocation_feed.CardRevocationFeed.as_asgi())])

    async def attempt(user: Any) -> tuple[bool, int | str | None, Any]:
        async def as_user(scope: Any, receive: Any, send: Any) -> None:
            scope = dict(scope, user=user)  # as AuthMiddlewareStack leaves it
            return await router(scope, receive, send)

        communicator = WebsocketCommunicator(as_user, f"/live/revocations/{card.pk}/")
        connected, code = await communicator.connect(timeout=10)
        snapshot = await communicator.receive_json_from(timeout=10) if connected else None
        await communicator.disconnect()
        return connected, code, snapshot

    connected, _code, snapshot = async_to_sync(attempt)(nic)
    assert connected and snapshot == {"revocations": [], "readers": 3}
    connected, code, snapshot = async_to_sync(attempt)(general)
    assert not connected and code == 4403 and snapshot is None
