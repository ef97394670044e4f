"""Emergency modes (issue 17, Build 2): lockdown and unlock-all for the campus, a building or a
door group — the service's rules (reason, confirmation, one live mode per place, a second
operator's approval for a campus-wide lockdown, ended only by a person, every step and every
refusal audited, nothing changed by a refusal), the security office's page and its role scope,
the banner's websocket scope, the signed state and ``decide()``, and a real reader agent on real
Redis that applies it ahead of card changes, keeps it across a restart, refuses a forged one and
drives its door locks for an unlock-all."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone, translation

from ops.accounts.roles import Role
from ops.accounts.services import create_or_update_operator
from ops.asgi import application
from ops.audit.models import AuditRecord
from ops.pipeline.relay import OutboxRelay
from ops.registry.calendar.models import DoorGroup
from ops.registry.choices import DeviceApproval, HolderKind
from ops.registry.emergency import selectors, services
from ops.registry.emergency.models import EmergencyMode, EmergencyRevision
from ops.registry.explain import explain
from ops.registry.models import Building, Card, Cardholder, Department, Device
from readers.agent.agent import ReaderAgent, client_factory
from readers.agent.config import parse_config
from readers.agent.emergency import EmergencyHold
from readers.decide import Credential, Door, Emergency, decide
from readers.decide import EmergencyMode as Mode
from readers.doors import DoorMonitor
from readers.sources.simulated import SimulatedSource
from streams import emergency as feed
from streams.cards import CardStatus, CardType, DeviceKind
from streams.credentials import FeedSigner, FeedVerifier, ForgedCredential, SignedChange
from streams.reasons import Decision, Direction, Reason
from tests.factories import device_key, make_device
from tests.private_servers import wait_until
from tests.signing_keys import PUBLIC_KEYS, SIGNER

PASSWORD = "pw-emergency-123"


@pytest.fixture
def guards(campus):
    """Two security operators, NIC and a dorm manager."""
    return {
        "guard": create_or_update_operator(username="guard-a", password=PASSWORD, role=Role.SECURITY),
        "second": create_or_update_operator(username="guard-b", password=PASSWORD, role=Role.SECURITY),
        "nic": create_or_update_operator(username="nic-e", password=PASSWORD, role=Role.NIC),
        "dorm": create_or_update_operator(
            username="dorm-e", password=PASSWORD, role=Role.DORM_MANAGER, buildings=[campus.dorm]
        ),
    }


@pytest.fixture
def staff(campus):
    """A security officer's staff card (department SEC) and a staff card of another department."""
    other = Department.objects.create(code="CS", name="计算机学院")
    start = timezone.now() - timedelta(days=30)
    cards = {}
    for key, dept, number in (("security", campus.dept, "S0001"), ("teacher", other, "T0001")):
        holder = Cardholder.objects.create(kind=HolderKind.STAFF, number=number, name=f"{key}", department=dept)
        cards[key] = Card.objects.create(
            uid=f"F0{number}", holder=holder, card_type=CardType.STAFF, status=CardStatus.ACTIVE, valid_from=start
        )
    return cards


def _audits(action: str) -> int:
    return AuditRecord.objects.filter(action=action).count()


# -- the service ------------------------------------------------------------------------------------
def test_a_building_lockdown_starts_at_once_audited_and_raises_the_revision(campus, guards, staff):
    mode = services.start_mode(
        kind="lockdown", scope="building", target="D1", reason="持刀人员闯入", confirmed=True, by=guards["guard"]
    )
    assert (mode.status, mode.building, mode.started_at is not None) == ("active", campus.dorm, True)
    assert selectors.revision() == (1, 0)
    record = AuditRecord.objects.get(action="emergency.start")
    assert (record.actor_id, record.basis, record.data["target"], record.data["revision"]) == (
        guards["guard"].pk,
        "持刀人员闯入",
        "D1",
        1,
    )
    state = selectors.reader_state(1)
    assert [(m.kind, m.scope, m.buildings) for m in state.modes] == [("lockdown", "building", ("D1",))]
    assert state.security == (staff["security"].uid,)  # the teacher's staff card is not security's

    ended = services.end_mode(mode.pk, by=guards["second"], note="已处置")
    assert (ended.status, ended.ended_by, ended.end_note) == ("ended", guards["second"], "已处置")
    assert selectors.revision() == (2, 0)
    assert selectors.reader_state(2).modes == () and selectors.reader_state(2).security == ()
    assert _audits("emergency.end") == 1
    with pytest.raises(services.EmergencyError, match="已经结束"):
        services.end_mode(mode.pk, by=guards["guard"])
    assert selectors.revision() == (2, 0)  # a refusal changes nothing


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"reason": " "}, "原因"),
        ({"confirmed": False}, "确认"),
        ({"kind": "party"}, "模式"),
        ({"scope": "planet"}, "范围"),
        ({"target": "NOPE"}, "没有这栋楼宇"),
        ({"scope": "group", "target": "NOPE"}, "没有这个门禁组"),
        ({"reason": "x" * 201}, "过长"),
    ],
)
def test_a_bad_start_is_refused_in_words_audited_and_changes_nothing(campus, guards, changes, message):
    args = {"kind": "lockdown", "scope": "building", "target": "D1", "reason": "演练", "confirmed": True}
    with pytest.raises(services.EmergencyError, match=message):
        services.start_mode(**{**args, **changes}, by=guards["guard"])
    assert not EmergencyMode.objects.exists()
    assert selectors.revision() == (0, 0)
    refused = AuditRecord.objects.get(action="emergency.refused")
    assert refused.actor_id == guards["guard"].pk and message in refused.basis


def test_refusals_speak_english_to_an_english_operator(campus, guards):
    with translation.override("en"), pytest.raises(services.EmergencyError) as exc:
        services.start_mode(
            kind="lockdown", scope="building", target="D1", reason="", confirmed=True, by=guards["guard"]
        )
    assert "reason" in str(exc.value).lower()


@pytest.mark.parametrize("who", ["nic", "dorm"])
def test_only_the_security_office_starts_approves_or_ends(campus, guards, who):
    with pytest.raises(services.EmergencyForbidden):
        services.start_mode(kind="unlock_all", scope="campus", reason="火警", confirmed=True, by=guards[who])
    mode = services.start_mode(kind="unlock_all", scope="campus", reason="火警", confirmed=True, by=guards["guard"])
    with pytest.raises(services.EmergencyForbidden):
        services.end_mode(mode.pk, by=guards[who])
    assert EmergencyMode.objects.get().status == "active"
    assert _audits("emergency.refused") == 2


def test_one_live_mode_of_a_kind_per_place(campus, guards):
    services.start_mode(
        kind="lockdown", scope="building", target="D1", reason="一号", confirmed=True, by=guards["guard"]
    )
    with pytest.raises(services.EmergencyError, match="已有同类"):
        services.start_mode(
            kind="lockdown", scope="building", target="D1", reason="二次", confirmed=True, by=guards["second"]
        )
    # another kind on the same place is another mode (an unlock-all outranks it at the door)
    services.start_mode(
        kind="unlock_all", scope="building", target="D1", reason="火警", confirmed=True, by=guards["guard"]
    )
    assert EmergencyMode.objects.filter(status="active").count() == 2


def test_a_campus_lockdown_waits_for_a_second_operator(campus, guards):
    mode = services.start_mode(kind="lockdown", scope="campus", reason="全校封闭", confirmed=True, by=guards["guard"])
    assert mode.status == "pending" and mode.started_at is None
    assert selectors.revision() == (0, 0)  # nothing for the readers yet
    assert _audits("emergency.request") == 1
    with pytest.raises(services.EmergencyError, match="另一名"):
        services.approve_mode(mode.pk, by=guards["guard"])
    assert EmergencyMode.objects.get().status == "pending"
    approved = services.approve_mode(mode.pk, by=guards["second"])
    assert (approved.status, approved.approved_by) == ("active", guards["second"])
    assert selectors.revision() == (1, 0)
    assert [m.scope for m in selectors.reader_state(1).modes] == ["campus"]
    with pytest.raises(services.EmergencyError, match="待批准"):
        services.approve_mode(mode.pk, by=guards["second"])


def test_a_pending_request_can_be_withdrawn_and_the_approval_can_be_turned_off(campus, guards, settings):
    mode = services.start_mode(kind="lockdown", scope="campus", reason="误报", confirmed=True, by=guards["guard"])
    withdrawn = services.end_mode(mode.pk, by=guards["guard"])
    assert withdrawn.status == "withdrawn" and selectors.revision() == (0, 0)
    assert _audits("emergency.withdraw") == 1
    settings.EMERGENCY_CAMPUS_LOCKDOWN_APPROVAL = False
    mode = services.start_mode(kind="lockdown", scope="campus", reason="全校封闭", confirmed=True, by=guards["guard"])
    assert mode.status == "active"


def test_a_door_group_mode_names_the_groups_doors(campus, guards):
    group = DoorGroup.objects.create(code="east", name="东区")
    group.devices.add(campus.gate)
    Building.objects.create(code="T1", name="教学楼")
    group.buildings.add(Building.objects.get(code="T1"))
    services.start_mode(
        kind="unlock_all", scope="group", target="east", reason="火警", confirmed=True, by=guards["guard"]
    )
    (mode,) = selectors.reader_state(1).modes
    assert (mode.devices, mode.buildings) == (("G-E-01",), ("T1",))


def test_the_help_desk_explains_a_lockdown(campus, guards):
    uid = campus.cards[0].uid
    assert explain(uid=uid, device_code="D1-01").reason == "ok"
    services.start_mode(
        kind="lockdown", scope="building", target="D1", reason="封闭", confirmed=True, by=guards["guard"]
    )
    why = explain(uid=uid, device_code="D1-01")
    assert why.reason == "lockdown" and "紧急封闭" in why.text
    assert explain(uid=uid, device_code="G-E-01").reason == "ok"  # not in the building


# -- the security office's page ----------------------------------------------------------------------
def test_the_page_confirms_before_it_starts_and_is_the_security_offices_alone(campus, guards):
    anonymous = Client()
    assert anonymous.get("/emergency/").status_code == 302  # to the login page
    for who in ("nic", "dorm"):
        client = Client()
        client.force_login(guards[who])
        assert client.get("/emergency/").status_code == 403
        assert client.post("/emergency/start/", {"kind": "lockdown", "scope": "campus"}).status_code == 403
    client = Client()
    client.force_login(guards["guard"])
    assert client.get("/emergency/").status_code == 200
    form = {"kind": "lockdown", "scope": "building", "building": "D1", "group": "", "reason": "持刀人员闯入"}
    confirm = client.post("/emergency/start/", form)
    assert confirm.status_code == 200 and "确认启动" in confirm.content.decode()
    assert not EmergencyMode.objects.exists()  # nothing until confirmed
    refused = client.post("/emergency/start/", {**form, "reason": ""}, follow=True)
    assert "请填写启动紧急模式的原因" in refused.content.decode() and not EmergencyMode.objects.exists()
    done = client.post("/emergency/start/", {**form, "confirm": "yes"}, follow=True)
    assert "紧急模式已启动" in done.content.decode()
    mode = EmergencyMode.objects.get()
    assert mode.status == "active" and mode.requested_by == guards["guard"]
    not_confirmed = client.post(f"/emergency/{mode.pk}/end/", {"note": "x"}, follow=True)
    assert "请确认结束紧急模式" in not_confirmed.content.decode()
    assert EmergencyMode.objects.get().status == "active"
    client.post(f"/emergency/{mode.pk}/end/", {"note": "解除", "confirm": "yes"})
    assert EmergencyMode.objects.get().status == "ended"


def test_the_confirmation_counts_the_doors_nic_approved_only(campus, guards):
    """R-DEV-1 (issue 18, Build 2): an install still pending or a reader removed holds no key
    and takes no feed, so the confirmation does not count it among the doors a mode reaches."""
    approved = {"building": Device.objects.filter(building=campus.dorm).count(), "campus": Device.objects.count()}
    for code, approval in (("D1-NEW", DeviceApproval.PENDING), ("D1-OLD", DeviceApproval.REMOVED)):
        door = make_device(code, code, DeviceKind.DORM_DOOR, "1号学生公寓", campus.dept, building=campus.dorm)
        Device.objects.filter(pk=door.pk).update(approval=approval)
    client = Client()
    client.force_login(guards["guard"])
    for scope, building in (("building", "D1"), ("campus", "")):
        form = {"kind": "lockdown", "scope": scope, "building": building, "group": "", "reason": "演练"}
        page = client.post("/emergency/start/", form).content.decode()
        counted = re.search(r'id="confirm-doors">(\d+)<', page)
        assert counted is not None and int(counted.group(1)) == approved[scope], scope


@pytest.mark.django_db(transaction=True)
def test_the_banner_websocket_admits_operators_with_a_role_only(campus, guards):
    services.start_mode(
        kind="lockdown", scope="building", target="D1", reason="封闭演练", confirmed=True, by=guards["guard"]
    )
    nobody = get_user_model().objects.create_user("no-role", password=PASSWORD)  # no role granted yet

    def banner(user) -> tuple[bool, dict | None]:
        headers = [(b"host", b"127.0.0.1"), (b"origin", b"http://127.0.0.1")]
        if user is not None:
            client = Client()
            client.force_login(user)
            session = client.cookies[settings.SESSION_COOKIE_NAME].value
            headers.append((b"cookie", f"{settings.SESSION_COOKIE_NAME}={session}".encode()))

        async def go() -> tuple[bool, dict | None]:
            communicator = WebsocketCommunicator(application, "/live/emergency/", headers=headers)
            connected, _detail = await communicator.connect(timeout=10)
            if not connected:
                await communicator.wait(timeout=5)
                return False, None
            message = await communicator.receive_json_from(timeout=10)
            await communicator.disconnect(timeout=10)
            return True, message

        return async_to_sync(go)()

    connected, message = banner(guards["dorm"])
    assert connected and message is not None
    (line,) = message["modes"]
    assert line["kind"] == "lockdown" and "1号学生公寓" in line["text"] and line["reason"] == "封闭演练"
    assert banner(nobody) == (False, None)
    assert banner(None) == (False, None)


# -- decide() -----------------------------------------------------------------------------------------
NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
DORM = Door("D1-01", DeviceKind.DORM_DOOR, building="D1")
OTHER_DORM = Door("D2-01", DeviceKind.DORM_DOOR, building="D2")
GATE = Door("G-E-01", DeviceKind.PEDESTRIAN_GATE, schedule=())  # closed all day


def card(uid: str, card_type: CardType = CardType.STUDENT, status: CardStatus = CardStatus.ACTIVE) -> Credential:
    return Credential(uid, card_type, status, False, NOW - timedelta(days=1), None, dorm_building="D1")


STUDENT, OFFICER = card("A1"), card("S1", CardType.STAFF)
LOCKDOWN_D1 = Emergency(1, (Mode(1, "lockdown", buildings=frozenset({"D1"})),), frozenset({"S1"}))


def test_decide_lockdown_lets_only_security_staff_through_the_doors_it_covers():
    assert decide(STUDENT, DORM, NOW) == (Decision.ALLOW, Reason.OK, ())
    assert decide(STUDENT, DORM, NOW, emergency=LOCKDOWN_D1) == (Decision.DENY, Reason.LOCKDOWN, ())
    assert decide(STUDENT, DORM, NOW, direction=Direction.OUT, emergency=LOCKDOWN_D1).reason == Reason.LOCKDOWN
    assert decide(card("T1", CardType.STAFF), DORM, NOW, emergency=LOCKDOWN_D1).reason == Reason.LOCKDOWN
    assert decide(OFFICER, DORM, NOW, emergency=LOCKDOWN_D1).allowed
    assert decide(card("A2"), OTHER_DORM, NOW, emergency=LOCKDOWN_D1).reason == Reason.FUNCTION_NOT_ALLOWED
    # the card's own validity first: a lost officer's card is still lost; an unknown card unknown
    assert decide(card("S1", CardType.STAFF, CardStatus.LOST), DORM, NOW, emergency=LOCKDOWN_D1).reason == Reason.LOST
    assert decide(None, DORM, NOW, emergency=LOCKDOWN_D1).reason == Reason.UNKNOWN_CARD
    campus_wide = Emergency(2, (Mode(2, "lockdown", campus=True),), frozenset({"S1"}))
    assert decide(OFFICER, GATE, NOW, emergency=campus_wide).allowed  # a responder passes a closed gate
    assert decide(STUDENT, GATE, NOW, emergency=campus_wide).reason == Reason.LOCKDOWN


def test_decide_unlock_all_lets_every_tap_through_flagged_and_outranks_a_lockdown():
    fire = Emergency(3, (Mode(3, "unlock_all", devices=frozenset({"G-E-01"})),))
    assert decide(None, GATE, NOW, emergency=fire) == (Decision.ALLOW, Reason.OK, ("emergency_open",))
    assert decide(card("A1", status=CardStatus.LOST), GATE, NOW, emergency=fire).flags == ("emergency_open",)
    assert decide(STUDENT, DORM, NOW, emergency=fire) == (Decision.ALLOW, Reason.OK, ())  # not this door
    both = Emergency(4, (*LOCKDOWN_D1.modes, Mode(4, "unlock_all", buildings=frozenset({"D1"}))), frozenset())
    assert decide(STUDENT, DORM, NOW, emergency=both).flags == ("emergency_open",)
    assert decide(STUDENT, DORM, NOW, emergency=Emergency(5)) == (Decision.ALLOW, Reason.OK, ())  # ended


def test_a_door_held_by_an_unlock_all_raises_no_alarm_and_relocks_when_it_ends():
    monitor = DoorMonitor(unlock_s=5, held_open_s=30)
    assert monitor.hold(True, 0.0) == [] and monitor.lock_released
    assert monitor.contact(True, 1.0) == []  # opened: no door_forced
    assert monitor.tick(500.0) == []  # held open for minutes: no door_held_open
    monitor.contact(False, 501.0)
    assert monitor.lock_released  # still held after it shut
    monitor.hold(False, 502.0)
    assert not monitor.lock_released
    assert [a.code for a in monitor.contact(True, 503.0)] == ["door_forced"]  # back to normal


# -- the signed state ---------------------------------------------------------------------------------
def _state(revision: int, *modes: feed.Mode, security: tuple[str, ...] = ()) -> feed.EmergencyState:
    return feed.EmergencyState(revision=revision, issued_at=NOW, modes=modes, security=security)


LOCK_D1 = feed.Mode(id=1, kind="lockdown", scope="building", buildings=("D1",), started_at=NOW)


def test_the_state_is_signed_under_its_own_domain():
    verifier = FeedVerifier(PUBLIC_KEYS)
    signed = feed.sign(_state(7, LOCK_D1), SIGNER)
    assert feed.verify(signed, verifier).modes == (LOCK_D1,)
    as_card = SignedChange(7, signed.e, signed.key, SIGNER.sign(7, signed.e))  # the credential domain
    with pytest.raises(ForgedCredential):
        feed.verify(feed.SignedState(7, signed.e, as_card.key, as_card.sig), verifier)
    with pytest.raises(ForgedCredential):  # replayed at another revision
        feed.verify(feed.SignedState(8, signed.e, signed.key, signed.sig), verifier)
    attacker = feed.sign(_state(9), _attacker())
    with pytest.raises(ForgedCredential):
        feed.verify(attacker, verifier)
    with pytest.raises(ValueError):  # a campus mode naming doors is not a campus mode
        feed.Mode(id=2, kind="lockdown", scope="campus", buildings=("D1",), started_at=NOW)


def _attacker():
    return FeedSigner(Ed25519PrivateKey.generate())


def test_publish_never_goes_back(redis_client):
    assert feed.publish(redis_client, _state(2, LOCK_D1), SIGNER)
    assert not feed.publish(redis_client, _state(1), SIGNER)  # an older revision: not written
    assert not feed.publish(redis_client, _state(2, LOCK_D1), SIGNER)  # the same, same key
    assert feed.held(redis_client) == (2, SIGNER.key_id)
    loaded = feed.load(redis_client)
    assert loaded is not None and feed.verify(loaded, FeedVerifier(PUBLIC_KEYS)).revision == 2


def test_the_hold_takes_only_newer_states_and_keeps_them_across_a_restart(tmp_path):
    hold = EmergencyHold(tmp_path / "emergency.sqlite3")
    assert hold.apply(_state(3, LOCK_D1, security=("s1",)).wire())
    assert not hold.apply(_state(2).wire())  # an old state replayed ends nothing
    assert hold.current.at(DORM) == "lockdown" and hold.current.security == frozenset({"S1"})
    hold.close()
    again = EmergencyHold(tmp_path / "emergency.sqlite3")
    assert again.revision == 3 and again.current.at(DORM) == "lockdown"
    assert again.apply(_state(4).wire()) and again.current.at(DORM) is None
    again.close()


# -- a real agent on real Redis, with the relay --------------------------------------------------------
def _agent(state_dir, doors=(("D1-01", "dorm_door", "D1"),)) -> ReaderAgent:
    config = parse_config(
        {
            "feed_keys": PUBLIC_KEYS,
            "redis_url": settings.REDIS_URL,
            "confirm": "redis",
            "state_dir": str(state_dir),
            "heartbeat_s": 3600,
            "doors": [
                {"device_id": d, "key_hex": device_key(d).hex(), "kind": k, "building": b, "direction": "in"}
                for d, k, b in doors
            ],
        }
    )
    return ReaderAgent(config, client_factory(settings.REDIS_URL), sources=[])


@pytest.mark.django_db(transaction=True)
def test_a_reader_agent_applies_the_mode_ahead_of_card_changes_keeps_it_and_refuses_a_forgery(
    campus, guards, staff, redis_client, tmp_path
):
    relay = OutboxRelay(redis_client, fanout=None)
    relay.ensure_feed()
    relay.run_once()
    agent = _agent(tmp_path / "agent")
    agent.start()
    student, officer = campus.cards[0].uid, staff["security"].uid
    try:
        wait_until(agent.synced.is_set, 20, "the agent's first sync")
        wait_until(lambda: agent.cache.lookup(officer) is not None, 10, "the officer's card")
        assert agent.tap("D1-01", student).reason == Reason.OK
        mode = services.start_mode(
            kind="lockdown", scope="building", target="D1", reason="封闭", confirmed=True, by=guards["guard"]
        )
        assert relay.ensure_emergency() == 1
        wait_until(lambda: agent.emergency.revision == 1, 5, "the lockdown at the agent")
        assert agent.tap("D1-01", student).reason == Reason.LOCKDOWN
        assert agent.tap("D1-01", officer).allowed
        assert AuditRecord.objects.filter(action="emergency.publish").count() == 1
        assert relay.ensure_emergency() == 0  # Redis holds it: nothing to send again

        # someone with Redis rights writes "no mode" at a newer revision with their own key
        fake = feed.sign(_state(2), _attacker())
        redis_client.xadd(feed.STREAM, {"r": 2, "e": fake.e, "k": fake.key, "s": fake.sig}, id="2-1")
        wait_until(lambda: agent.refused_changes >= 1, 10, "the forged state to be refused")
        assert agent.emergency.revision == 1 and agent.tap("D1-01", student).reason == Reason.LOCKDOWN
    finally:
        agent.close()

    # restarted with Redis unreachable: the lockdown holds
    offline = ReaderAgent(
        parse_config(
            {
                "feed_keys": PUBLIC_KEYS,
                "redis_url": "redis://127.0.0.1:1/0",
                "state_dir": str(tmp_path / "agent"),
                "heartbeat_s": 3600,
                "doors": [
                    {"device_id": "D1-01", "key_hex": device_key("D1-01").hex(), "kind": "dorm_door", "building": "D1"}
                ],
            }
        ),
        client_factory("redis://127.0.0.1:1/0"),
        sources=[],
    )
    try:
        assert offline.emergency.revision == 1
        assert offline.tap("D1-01", student).reason == Reason.LOCKDOWN
    finally:
        offline.close()

    # ended while that agent was away: it hears the end when it is back, at once
    services.end_mode(mode.pk, by=guards["guard"])
    redis_client.delete(feed.STREAM)  # the stream trimmed: the state key alone tells it
    relay.ensure_emergency()
    back = _agent(tmp_path / "agent")
    back.start()
    try:
        wait_until(lambda: back.emergency.revision >= 2, 10, "the end at the agent")
        assert back.tap("D1-01", student).reason == Reason.OK
    finally:
        back.close()


@pytest.mark.django_db(transaction=True)
def test_a_redis_that_lost_the_state_gets_it_again(campus, guards, redis_client):
    relay = OutboxRelay(redis_client, fanout=None)
    services.start_mode(kind="unlock_all", scope="campus", reason="火警", confirmed=True, by=guards["guard"])
    assert relay.ensure_emergency() == 1
    redis_client.delete(feed.STATE, feed.REVISION, feed.SIGNED_BY, feed.STREAM)
    assert relay.ensure_emergency() == 1
    loaded = feed.load(redis_client)
    assert loaded is not None and [m.kind for m in feed.verify(loaded, FeedVerifier(PUBLIC_KEYS)).modes] == [
        "unlock_all"
    ]
    assert EmergencyRevision.objects.get().published == 1


def test_an_unlock_all_holds_the_agents_lock_released_across_a_restart_and_relocks_at_its_end(tmp_path):
    """The agent drives its lock outputs from the mode (real agent, simulated door inputs; no Redis
    needed: the state is handed to its hold as the sync would)."""

    def agent_with_door() -> tuple[ReaderAgent, SimulatedSource]:
        door = SimulatedSource(["G-E-01"], lambda: [], rate=0)
        config = {
            "feed_keys": PUBLIC_KEYS,
            "redis_url": "redis://127.0.0.1:1/0",
            "state_dir": str(tmp_path / "agent"),
            "heartbeat_s": 3600,
            "doors": [
                {
                    "device_id": "G-E-01",
                    "key_hex": device_key("G-E-01").hex(),
                    "kind": "pedestrian_gate",
                    "direction": "in",
                    "unlock_s": 1,
                    "held_open_s": 1,
                }
            ],
        }
        agent = ReaderAgent(parse_config(config), client_factory("redis://127.0.0.1:1/0"), sources=[door])
        agent.start()
        return agent, door

    fire = feed.Mode(id=1, kind="unlock_all", scope="campus", started_at=NOW)
    agent, door = agent_with_door()
    try:
        assert not door.locks.get("G-E-01")
        agent.emergency.apply(_state(1, fire).wire())
        assert door.locks["G-E-01"] is True
        door.open_door("G-E-01")
        time.sleep(1.6)  # past held_open_s and unlock_s: still released, no alarm
        assert agent.door_monitors["G-E-01"].active == set() and door.locks["G-E-01"] is True
    finally:
        agent.close()
    again, door = agent_with_door()  # restarted: the mode held, the lock released at once
    try:
        wait_until(lambda: door.locks.get("G-E-01") is True, 5, "the lock released after the restart")
        again.emergency.apply(_state(2).wire())  # ended
        door.close_door("G-E-01")
        wait_until(lambda: door.locks.get("G-E-01") is False, 5, "the lock engaged again")
        door.open_door("G-E-01")
        wait_until(lambda: "door_forced" in again.door_monitors["G-E-01"].active, 5, "back to normal")
    finally:
        again.close()
