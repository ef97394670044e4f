"""Forgiving anti-passback from the security desk in a real browser (issue 17, Build 5;
acceptance 4; R-SEC-5), against real daphne, the real processor (a subprocess), PostgreSQL and
Redis, with two real reader agents of one zone: an IN at one reader is refused at the other;
the security officer goes from the gate desk to 防潜回豁免, is told in Chinese what is wrong
with an empty reason (nothing changes), forgives the person, and the reader admits them."""

from __future__ import annotations

import pytest
from django.conf import settings

from ops.accounts.roles import Role
from ops.accounts.services import create_or_update_operator
from ops.audit.models import AuditRecord
from ops.registry.lifecycle.outbox import credential_payload
from ops.registry.models import Device
from ops.registry.passback.models import Forgiveness
from readers.agent.agent import ReaderAgent, client_factory
from readers.agent.config import parse_config
from streams import credentials as feed
from streams.reasons import Decision, Reason
from tests.browser import chromium, log_in
from tests.browser import outside_the_browser_loop as db
from tests.factories import device_key
from tests.private_servers import wait_until
from tests.signing_keys import PUBLIC_KEYS, SIGNER

pytestmark = [pytest.mark.browser, pytest.mark.pipeline, pytest.mark.slow]
PASSWORD = "passback-desk-pass-7"
ZONE = "east"
GATES = ("G-E-01", "D1-01")  # the campus's east gate and a dorm door, here in one zone


def _agent(code: str, kind: str, building: str | None, state_dir) -> ReaderAgent:
    door = {
        "device_id": code,
        "key_hex": device_key(code).hex(),
        "kind": kind,
        "direction": "in",
        "area": ZONE,
        "passback": "hard",
    }
    if building:
        door["building"] = building
    config = parse_config(
        {
            "feed_keys": PUBLIC_KEYS,
            "redis_url": settings.REDIS_URL,
            "state_dir": str(state_dir),
            "heartbeat_s": 30,
            "doors": [door],
        }
    )
    return ReaderAgent(config, client_factory(settings.REDIS_URL), sources=[])


def test_the_security_desk_forgives_one_person_and_the_reader_admits_them(campus, redis_client, stack, tmp_path):
    Device.objects.filter(code__in=GATES).update(passback="hard", passback_area=ZONE)
    create_or_update_operator(username="guard-pb", password=PASSWORD, role=Role.SECURITY)
    feed.publish(redis_client, [credential_payload(c) for c in campus.cards], SIGNER)
    card = campus.cards[3]  # a resident of D1: may pass both doors
    gate = _agent("G-E-01", "pedestrian_gate", None, tmp_path / "gate")
    dorm = _agent("D1-01", "dorm_door", "D1", tmp_path / "dorm")
    agents = [gate, dorm]
    try:
        for agent in agents:
            agent.start()
        wait_until(
            lambda: all(a.cache.version > 0 and a.zone_follower.connected for a in agents), 20, "the agents' sync"
        )
        assert gate.tap("G-E-01", card.uid).decision == Decision.ALLOW
        wait_until(lambda: dorm.edge_state.last(card.uid, ZONE) is not None, 20, "the passage shared by the server")
        assert dorm.tap("D1-01", card.uid).reason == Reason.ANTI_PASSBACK

        with chromium() as browser:
            page = browser.new_page()
            log_in(page, stack, "guard-pb", PASSWORD, "/live/gates/")
            page.click("header.nav a[href='/passback/']")
            page.wait_for_selector("#forgive-form")
            assert "G-E-01" in page.inner_text("#forgive-zone") and "D1-01" in page.inner_text("#forgive-zone")
            page.select_option("#forgive-zone", ZONE)
            page.fill("#forgive-person", card.holder.number)
            page.click("#forgive-submit")  # no reason
            page.wait_for_selector(".msg.error")
            assert "请填写豁免原因" in page.inner_text(".msg.error")
            assert db(lambda: Forgiveness.objects.count()) == 0

            page.fill("#forgive-person", card.holder.number)
            page.fill("#forgive-reason", "随访客出门未刷卡")
            page.click("#forgive-submit")
            page.wait_for_selector(".msg.success")
            assert card.holder.number in page.inner_text("#recent-forgiveness")

        audit = db(lambda: AuditRecord.objects.get(action="passback.forgiven"))
        assert (audit.actor_name, audit.object_id, audit.data["uids"]) == ("guard-pb", ZONE, [card.uid])
        wait_until(lambda: dorm.edge_state.last(card.uid, ZONE) is None, 20, "the forgiveness at the dorm door")
        assert dorm.tap("D1-01", card.uid).decision == Decision.ALLOW
    finally:
        for agent in agents:
            agent.close()
