"""Anti-passback that holds (issue 17, Build 5; acceptance 4; R-SEC-5): shared across the readers
of one zone through the server, kept across an agent restart, forgiven by a security operator
from the desk — one person or the whole zone — audited, and explained at the help desk.

Real parts: a private redis-server 7 (ACL users: each agent logs in as its own device user,
which may read its zone's stream and nothing of another zone, nor write it), the test's
PostgreSQL, two real :class:`~readers.agent.agent.ReaderAgent` instances (one door each, both in
zone ``east``) with their SQLite state, the real processor (in this process), and the desk's
real endpoint through Django's test client with a logged-in security operator."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
import redis
from django.db import transaction
from django.test import Client

from ops.accounts.roles import Role
from ops.accounts.services import create_or_update_operator
from ops.audit.models import AuditRecord
from ops.pipeline.passback_share import ZoneShare
from ops.pipeline.processor import ReaderEventProcessor
from ops.registry import device_acl as registry_acl
from ops.registry.choices import DeviceKind
from ops.registry.explain import explain
from ops.registry.lifecycle.outbox import credential_payload
from ops.registry.models import AccessEvent, Device
from ops.registry.passback import services
from ops.registry.passback.models import Forgiveness
from readers.agent.agent import ReaderAgent
from readers.agent.config import parse_config
from streams import credentials as feed
from streams import device_acl
from streams import passback as zone_feed
from streams.reasons import Decision, Direction, Reason
from tests.factories import device_key, make_device, tap
from tests.private_servers import start_redis, stop, wait_until
from tests.signing_keys import PUBLIC_KEYS, SIGNER

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.pipeline]

ZONE = "east"
G1, G2, OTHER = "G-Z-01", "G-Z-02", "G-W-01"
NOPERM = redis.exceptions.NoPermissionError
PASSWORD = "pw-passback-1"


@pytest.fixture
def zone(campus, tmp_path, settings):
    """Two hard anti-passback gates of zone ``east``, one of zone ``west``; their agents' Redis
    users made by the registry; the credential feed published; the processor ready."""
    try:
        proc, port = start_redis(tmp_path / "redis")
    except (RuntimeError, OSError) as exc:
        pytest.fail(f"redis-server did not start: {exc}")
    url = f"redis://127.0.0.1:{port}/0"
    settings.REDIS_URL = settings.EVENTS_REDIS_URL = url
    settings.EVENTS_REDIS_CLUSTER = False
    settings.DEVICE_REDIS_ACL = True
    for code, area in ((G1, ZONE), (G2, ZONE), (OTHER, "west")):
        device = make_device(code, f"东区闸机{code}", DeviceKind.PEDESTRIAN_GATE, "东门", campus.dept)
        Device.objects.filter(pk=device.pk).update(passback="hard", passback_area=area)
    registry_acl.sync_all(actor=None, basis="test")
    admin = redis.Redis(port=port)
    feed.publish(admin, [credential_payload(c) for c in campus.cards], SIGNER)
    processor = ReaderEventProcessor(admin, fanout=None, consumer="t", block_ms=50)
    agents: list[ReaderAgent] = []
    ns = SimpleNamespace(url=url, port=port, admin=admin, processor=processor, agents=agents, dir=tmp_path)
    yield ns
    for agent in agents:
        agent.close()
    admin.close()
    stop(proc)


def make_agent(ns: SimpleNamespace, code: str) -> ReaderAgent:
    config = parse_config(
        {
            "feed_keys": PUBLIC_KEYS,
            "redis_url": ns.url,
            "redis_auth": "device",
            "agent_id": code,
            "state_dir": str(ns.dir / code),
            "heartbeat_s": 30,
            "doors": [
                {
                    "device_id": code,
                    "key_hex": device_key(code).hex(),
                    "kind": "pedestrian_gate",
                    "direction": "in",
                    "area": ZONE,
                    "passback": "hard",
                }
            ],
        }
    )
    agent = ReaderAgent(config, sources=[])  # its own device login
    ns.agents.append(agent)
    return agent


def started(ns: SimpleNamespace, agent: ReaderAgent) -> ReaderAgent:
    agent.start()
    wait_until(lambda: agent.cache.version > 0 and agent.zone_follower.connected, 20, "the agent's sync")
    return agent


def pump(ns: SimpleNamespace, until, what: str) -> None:
    """Run the processor until ``until()`` holds."""

    def step() -> bool:
        ns.processor.run(max_idle_polls=1)
        return bool(until())

    wait_until(step, 20, what, step=0.05)


def desk(role: Role, name: str) -> Client:
    user = create_or_update_operator(username=name, password=PASSWORD, role=role)
    client = Client()
    client.force_login(user)
    return client


def test_two_readers_of_a_zone_share_passback_keep_it_over_a_restart_and_the_desk_forgives(zone, campus):
    card = campus.cards[1]
    uid = card.uid
    a = started(zone, make_agent(zone, G1))
    b = started(zone, make_agent(zone, G2))

    # IN at reader 1: admitted; the server stores it and shares it with the zone
    first = a.tap(G1, uid)
    assert first.decision == Decision.ALLOW and first.flags == ()
    pump(zone, lambda: b.edge_state.last(uid, ZONE) is not None, "reader 2 to learn of the passage")
    # IN at reader 2 of the same zone: refused (R-SEC-5), decided at the door from shared state
    second = b.tap(G2, uid)
    assert (second.decision, second.reason, second.flags) == (Decision.DENY, Reason.ANTI_PASSBACK, ())
    assert a.tap(G1, uid).reason == Reason.ANTI_PASSBACK
    # another card, and the same card in another zone, are not held
    assert b.tap(G2, campus.cards[2].uid).reason == Reason.OK

    # the help desk's "why was this card denied here?" names anti-passback and the passage
    pump(zone, lambda: AccessEvent.objects.filter(device__code=G2, card_uid=uid).exists(), "reader 2's taps stored")
    why = explain(uid=uid, device_code=G2)
    assert why.reason == Reason.ANTI_PASSBACK
    assert "防潜回" in why.text and G1 in why.text and "豁免" in why.text
    assert G1 in why.facts["防潜回"]

    # reader 2's agent restarts: before it reaches Redis again it still refuses — from its own
    # SQLite — and says the zone's state was out of reach
    b.close()
    zone.agents.remove(b)
    b = make_agent(zone, G2)
    offline = b.tap(G2, uid)
    assert (offline.decision, offline.reason) == (Decision.DENY, Reason.ANTI_PASSBACK)
    assert offline.flags == ("passback_offline",)
    started(zone, b)
    assert b.tap(G2, uid).flags == ()  # followed again: no flag

    # a dorm manager, or NIC, may not forgive: refused, nothing changes
    nic = desk(Role.NIC, "nic-1")
    assert nic.get("/passback/").status_code == 403
    refused = nic.post("/passback/forgive/", {"zone": ZONE, "scope": "person", "person": card.holder.number})
    assert refused.status_code == 403
    assert not Forgiveness.objects.exists()

    # the security desk forgives this one person in the zone
    security = desk(Role.SECURITY, "guard-1")
    page = security.get("/passback/")
    assert page.status_code == 200 and ZONE in page.content.decode() and G1 in page.content.decode()
    done = security.post(
        "/passback/forgive/",
        {"zone": ZONE, "scope": "person", "person": card.holder.number, "reason": "随访客出门未刷卡"},
        follow=True,
    )
    assert done.status_code == 200 and "已保存" in done.content.decode()
    forgiveness = Forgiveness.objects.get()
    assert (forgiveness.zone, forgiveness.holder_id, forgiveness.uids) == (ZONE, card.holder_id, [uid])
    audit = AuditRecord.objects.get(action=services.ACTION)
    assert (audit.actor_name, audit.object_type, audit.object_id) == ("guard-1", "passback_zone", ZONE)
    assert audit.basis == "随访客出门未刷卡" and audit.data["uids"] == [uid] and audit.data["scope"] == "person"

    # it reaches both readers of the zone: admitted again, at either
    wait_until(
        lambda: a.edge_state.last(uid, ZONE) is None and b.edge_state.last(uid, ZONE) is None,
        20,
        "the forgiveness at both readers",
    )
    assert b.tap(G2, uid).decision == Decision.ALLOW
    local = forgiveness.at.astimezone(ZoneInfo("Asia/Shanghai"))
    assert explain(uid=uid, device_code=G2).facts["最近豁免"].startswith(f"{local:%Y-%m-%d %H:%M:%S} 由 guard-1")

    # the whole zone: everyone inside may enter again
    pump(zone, lambda: a.edge_state.last(uid, ZONE) is not None, "the new passage shared")
    other = campus.cards[2].uid
    assert a.tap(G1, other).reason == Reason.ANTI_PASSBACK
    whole = security.post(
        "/passback/forgive/", {"zone": ZONE, "scope": "zone", "person": "ignored", "reason": "消防演练结束"}
    )
    assert whole.status_code == 302
    assert Forgiveness.objects.filter(holder__isnull=True, zone=ZONE).count() == 1
    wait_until(lambda: len(a.edge_state) == 0 and len(b.edge_state) == 0, 20, "the zone forgiven at both readers")
    assert a.tap(G1, other).decision == Decision.ALLOW
    assert a.tap(G1, uid).decision == Decision.ALLOW


def test_an_agents_user_reads_its_zones_stream_and_no_other_and_cannot_write_it(zone):
    now = datetime.now(UTC)
    zone_feed.publish(zone.admin, ZONE, zone_feed.ZoneForgiveness(None, now, 1))
    zone_feed.publish(zone.admin, "west", zone_feed.ZoneForgiveness(None, now, 2))
    user = redis.Redis(port=zone.port, username=device_acl.user_name(G1), password=device_acl.password(device_key(G1)))
    try:
        assert [z for z, _i, _e in zone_feed.read(user, {ZONE: "0"})] == [ZONE]
        with pytest.raises(NOPERM):
            zone_feed.read(user, {"west": "0"})
        with pytest.raises(NOPERM):  # a forged forgiveness or passage from a reader: refused
            zone_feed.publish(user, ZONE, zone_feed.ZoneForgiveness(None, now, 3))
    finally:
        user.close()
    assert zone.admin.xlen(zone_feed.zone_stream(ZONE)) == 1


@pytest.mark.parametrize(
    ("post", "message"),
    [
        ({"zone": "nowhere", "scope": "zone", "reason": "原因充分"}, "没有名为“nowhere”的防潜回区域"),
        ({"zone": ZONE, "scope": "zone", "reason": " "}, "请填写豁免原因"),
        (
            {"zone": ZONE, "scope": "person", "person": "NOBODY", "reason": "原因充分"},
            "找不到学工号或卡号为“NOBODY”的持卡人",
        ),
    ],
)
def test_bad_input_is_refused_in_the_operators_words_and_changes_nothing(zone, post, message):
    security = desk(Role.SECURITY, "guard-2")
    page = security.post("/passback/forgive/", post, follow=True)
    assert message in page.content.decode()
    assert not Forgiveness.objects.exists()
    assert not AuditRecord.objects.filter(action=services.ACTION).exists()
    assert zone.admin.exists(zone_feed.zone_stream(ZONE)) == 0


def test_a_forgiveness_the_readers_cannot_hear_is_not_given(zone, campus, settings):
    security = desk(Role.SECURITY, "guard-3")
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # Redis unreachable
    page = security.post(
        "/passback/forgive/",
        {"zone": ZONE, "scope": "person", "person": campus.cards[1].uid, "reason": "原因充分"},
        follow=True,
    )
    assert "无法通知该区域的读卡器" in page.content.decode()
    assert not Forgiveness.objects.exists()
    assert not AuditRecord.objects.filter(action=services.ACTION).exists()


def test_the_english_desk_explains_a_refusal_in_english(zone, settings):
    security = desk(Role.SECURITY, "guard-4")
    security.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    page = security.post("/passback/forgive/", {"zone": ZONE, "scope": "zone", "reason": ""}, follow=True)
    assert "reason for the forgiveness" in page.content.decode()


def test_the_processor_shares_only_allowed_directed_passages_at_anti_passback_doors(zone):
    """A denied tap, a tap with no direction and a tap at a door without anti-passback are not
    passages of a zone; a passage at a zone's door goes to that zone's stream alone."""
    share = ZoneShare()
    when = datetime.now(UTC)
    undirected = tap(G1, "04000003", when=when).model_copy(update={"direction": "none"})
    with transaction.atomic():
        share.publish_on_commit(
            [
                (tap(G1, "04000001", when=when), G1),
                (tap(OTHER, "04000001", when=when), OTHER),
                (tap(G2, "04000002", decision=Decision.DENY, reason=Reason.ANTI_PASSBACK, when=when), G2),
                (undirected, G1),
                (tap("G-E-01", "04000004", when=when), "G-E-01"),  # the campus gate: anti-passback off
            ]
        )
        assert not zone.admin.exists(zone_feed.zone_stream(ZONE))  # not before the commit
    east = [e for _z, _i, e in zone_feed.read(zone.admin, {ZONE: "0"})]
    west = [e for _z, _i, e in zone_feed.read(zone.admin, {"west": "0"})]
    assert east == [zone_feed.ZonePassage("04000001", Direction.IN, when, G1)]
    assert west == [zone_feed.ZonePassage("04000001", Direction.IN, when, OTHER)]
    assert not zone.admin.exists(zone_feed.zone_stream("G-E-01"))
