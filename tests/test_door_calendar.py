"""The academic calendar and central door rules (issue 17, Build 1): a calendar of day types
imported from ICS or CSV (each problem with its row, nothing imported until the file is clean);
door rules per door group and day type set centrally — opening hours by NIC, curfews and vacation
closure by Student Affairs — sent to the doors as a signed door policy on the credential feed
and decided by ``decide()``; the stay list travels with the student's card; "why denied" names
the rule.

Acceptance: a dorm door closes at curfew on teaching days and later on Friday nights, and stays
closed to students in the summer vacation except those on the stay list; "why denied" names the
rule. Real parts: the test's Redis and database, the relay's publishing and signing, the agent's
own sync, cache and parser, a real reader agent."""

from __future__ import annotations

import threading
from datetime import date, datetime, time, timedelta

import pytest
import redis
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from ops.accounts.roles import Role
from ops.accounts.services import create_or_update_operator
from ops.audit.models import AuditRecord
from ops.pipeline.relay import OutboxRelay
from ops.registry.calendar import services
from ops.registry.calendar.choices import RuleKind
from ops.registry.calendar.models import CalendarDay, DoorGroup, DoorRule
from ops.registry.calendar.policy import door_policy
from ops.registry.explain import explain
from ops.registry.lifecycle.outbox import credential_payload
from ops.registry.models import Building, Card
from readers.agent.agent import ReaderAgent, client_factory
from readers.agent.cache import CredentialCache
from readers.agent.config import parse_config
from readers.agent.sync import CredentialSync
from readers.decide import CAMPUS_TZ, Door, decide
from streams import credentials as feed
from streams import names
from streams.calendar import DayType
from streams.cards import DeviceKind
from streams.reasons import Direction, Reason
from tests.factories import device_key, make_device
from tests.private_servers import wait_until
from tests.signing_keys import PUBLIC_KEYS, SIGNER

pytestmark = pytest.mark.django_db(transaction=True)

DORM_DOOR = Door("D1-01", DeviceKind.DORM_DOOR, building="D1")  # as the agent's config gives it
GATE = Door("G-E-01", DeviceKind.PEDESTRIAN_GATE)


def _day(weekday: int, after: int = 2) -> date:
    """The first ISO ``weekday`` at least ``after`` days from today (campus time)."""
    day = timezone.localdate() + timedelta(days=after)
    while day.isoweekday() != weekday:
        day += timedelta(days=1)
    return day


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=CAMPUS_TZ)


THURSDAY = _day(4)
FRIDAY = THURSDAY + timedelta(days=1)
SATURDAY = FRIDAY + timedelta(days=1)
SUMMER = _day(1, after=60)  # a Monday two months ahead: the summer vacation, two weeks of it


@pytest.fixture
def nic(campus):
    return create_or_update_operator(username="nic", password="pw-nic-123", role=Role.NIC)


@pytest.fixture
def student_affairs(campus):
    """A dorm manager of building D1 (学生工作处/宿管)."""
    return create_or_update_operator(
        username="sa-d1", password="pw-sa-123", role=Role.DORM_MANAGER, buildings=[campus.dorm]
    )


@pytest.fixture
def rules(campus, nic, student_affairs):
    """The campus's dorm rules: curfew closes the door at 23:00 on teaching days and exam weeks,
    at 23:30 on Friday nights; the summer vacation closes it to students but those staying; the
    east gate open 06:00–23:00 on teaching days. One student on the stay list."""
    summer = "\n".join(
        ["开始日期,结束日期,类型,备注", f"{SUMMER:%Y-%m-%d},{SUMMER + timedelta(days=13):%Y-%m-%d},暑假,"]
    )
    services.import_calendar(data=summer.encode(), filename="校历.csv", operator=nic, basis="教务处校历")
    dorms = services.save_door_group(
        group=DoorGroup(code="dorms", name="学生宿舍"), devices=[], buildings=[campus.dorm], operator=nic
    )
    gates = services.save_door_group(
        group=DoorGroup(code="gates", name="校门"), devices=[campus.gate], buildings=[], operator=nic
    )
    made = {
        "curfew": DoorRule(
            name="宿舍教学日作息",
            kind=RuleKind.DORM,
            group=dorms,
            day_types=[DayType.TEACHING, DayType.EXAM],
            curfew_start=time(23, 0),
            curfew_end=time(6, 0),
            curfew_closes=True,
        ),
        "friday": DoorRule(
            name="周五晚作息",
            kind=RuleKind.DORM,
            group=dorms,
            day_types=[DayType.TEACHING],
            weekdays=[5],
            curfew_start=time(23, 30),
            curfew_end=time(6, 0),
            curfew_closes=True,
        ),
        "summer": DoorRule(
            name="暑假闭楼", kind=RuleKind.DORM, group=dorms, day_types=[DayType.SUMMER_VACATION], vacation_closed=True
        ),
    }
    for rule in made.values():
        services.save_door_rule(rule=rule, operator=student_affairs)
    made["gate"] = services.save_door_rule(
        rule=DoorRule(
            name="校门教学日开放",
            kind=RuleKind.SCHEDULE,
            group=gates,
            day_types=[DayType.TEACHING],
            schedule="06:00-23:00",
        ),
        operator=nic,
    )
    services.add_stay(
        holder=campus.cards[0].holder,
        start=SUMMER,
        end=SUMMER + timedelta(days=6),
        operator=student_affairs,
        basis="留校申请 2026-017",
    )
    return made


def _published(redis_client) -> OutboxRelay:
    relay = OutboxRelay(redis_client, fanout=None)
    relay.ensure_feed()
    relay.run_once()
    return relay


def _as_agent_holds(tmp_path, redis_client) -> CredentialCache:
    """The feed as an agent holds it: its own sync (verify, parse) into its own cache."""
    cache = CredentialCache(tmp_path / "credentials.sqlite3")
    stop = threading.Event()
    sync = CredentialSync(
        cache, feed.FeedVerifier(PUBLIC_KEYS), lambda: redis.Redis.from_url(settings.REDIS_URL), stopping=stop
    )
    thread = threading.Thread(target=sync.run, daemon=True)
    thread.start()
    target = int(redis_client.get(names.CREDENTIALS_VERSION))
    try:
        wait_until(lambda: cache.version == target, 20, "the agent's cache at the feed's version")
    finally:
        stop.set()
        thread.join(5)
    return cache


# -- the calendar ----------------------------------------------------------------------------------
ICS = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//campus//calendar//ZH
BEGIN:VEVENT
UID:1@campus
DTSTART;VALUE=DATE:20270111
DTEND;VALUE=DATE:20270222
SUMMARY:寒假
END:VEVENT
BEGIN:VEVENT
UID:2@campus
DTSTART;VALUE=DATE:20261001
DTEND;VALUE=DATE:20261008
SUMMARY:国庆节放假
END:VEVENT
BEGIN:VEVENT
UID:3@campus
DTSTART;VALUE=DATE:20260927
SUMMARY:国庆调休上班
END:VEVENT
BEGIN:VEVENT
UID:4@campus
DTSTART;VALUE=DATE:20270104
DTEND;VALUE=DATE:20270109
SUMMARY:期末
CATEGORIES:考试周
END:VEVENT
END:VCALENDAR
"""


def test_the_calendar_imports_from_ics_and_csv_and_a_bad_file_names_its_rows_and_changes_nothing(nic):
    result = services.import_calendar(data=ICS.encode(), filename="2026-2027.ics", operator=nic, basis="校历〔2026〕")
    assert result.dates == 42 + 7 + 1 + 5 and result.created == result.dates
    types = dict(CalendarDay.objects.values_list("date", "day_type"))
    assert types[date(2027, 1, 11)] == types[date(2027, 2, 21)] == DayType.WINTER_VACATION
    assert date(2027, 2, 22) not in types  # DTEND is exclusive (RFC 5545)
    assert types[date(2026, 10, 7)] == DayType.HOLIDAY and types[date(2026, 9, 27)] == DayType.MAKEUP_WORKDAY
    assert types[date(2027, 1, 4)] == DayType.EXAM  # from CATEGORIES, not the summary's words
    assert AuditRecord.objects.filter(action="calendar.import", data__created=result.dates).exists()

    csv_text = "日期,类型,备注\n2027-05-01,法定节假日,劳动节\n2027-04-25,调休上班日,\n"
    assert (
        services.import_calendar(data=csv_text.encode("gb18030"), filename="x.csv", operator=nic, basis="补").created
        == 2
    )
    assert CalendarDay.objects.get(date=date(2027, 5, 1)).note == "劳动节"

    before = sorted(CalendarDay.objects.values_list("date", "day_type"))
    bad = (
        "开始日期,结束日期,类型,备注\n"
        "2027-07-10,2027-08-31,暑假,\n"  # row 2: fine
        "2027-13-01,2027-13-02,暑假,\n"  # row 3: no 13th month
        "2027-09-01,2027-09-01,开学典礼,\n"  # row 4: not a day type
        "2027-09-05,2027-09-02,考试周,\n"  # row 5: ends before it starts
        "2027-08-01,2027-08-01,法定节假日,\n"  # row 6: already summer vacation in row 2
    )
    with pytest.raises(services.CalendarImportError) as refused:
        services.import_calendar(data=bad.encode(), filename="bad.csv", operator=nic, basis="x")
    assert [p.row for p in refused.value.problems] == [3, 4, 5, 6]
    assert "第 3 行" in refused.value.messages[0] and "2027-13-01" in refused.value.messages[0]
    assert "第 2 行" in refused.value.messages[3]  # the conflict names the row it conflicts with
    assert sorted(CalendarDay.objects.values_list("date", "day_type")) == before  # nothing imported
    bad_ics = ICS.replace("SUMMARY:国庆节放假", "SUMMARY:运动会").replace(
        "UID:1@campus", "UID:1@campus\nRRULE:FREQ=YEARLY"
    )
    with pytest.raises(services.CalendarImportError) as refused:
        services.import_calendar(data=bad_ics.encode(), filename="bad.ics", operator=nic, basis="x")
    assert [p.row for p in refused.value.problems] == [4, 11]  # each event's BEGIN:VEVENT line
    assert "RRULE" in str(refused.value.problems[0]) and "运动会" in str(refused.value.problems[1])


# -- the acceptance, through the signed feed as an agent holds it ------------------------------------
def test_the_dorm_closes_at_curfew_later_on_friday_and_in_the_summer_to_all_but_the_stay_list(
    campus, rules, redis_client, tmp_path
):
    _published(redis_client)
    cache = _as_agent_holds(tmp_path, redis_client)
    policy = cache.policy
    assert policy is not None and {r.name for r in policy.rules} == {r.name for r in rules.values()}
    staying, other = campus.cards[0].uid, campus.cards[1].uid

    def reason(uid: str, moment: datetime) -> Reason:
        return decide(cache.lookup(uid), DORM_DOOR, moment, policy=policy).reason

    # a teaching day: closed at 23:00 until 06:00
    assert reason(other, at(THURSDAY, 22, 50)) == Reason.OK
    assert reason(other, at(THURSDAY, 23, 10)) == Reason.CURFEW_CLOSED
    assert reason(other, at(FRIDAY, 5, 50)) == Reason.CURFEW_CLOSED  # Thursday's night
    assert reason(other, at(FRIDAY, 6, 0)) == Reason.OK
    # Friday night: later
    assert reason(other, at(FRIDAY, 23, 10)) == Reason.OK
    assert reason(other, at(FRIDAY, 23, 40)) == Reason.CURFEW_CLOSED
    assert reason(other, at(SATURDAY, 0, 30)) == Reason.CURFEW_CLOSED  # Friday's night, on a weekend
    assert reason(other, at(SATURDAY, 23, 40)) == Reason.OK  # no weekend rule: open
    # an exit is never held
    assert decide(cache.lookup(other), DORM_DOOR, at(THURSDAY, 23, 10), direction=Direction.OUT, policy=policy).allowed
    # the summer vacation: closed to students, except the one on the stay list while it lasts
    noon = at(SUMMER + timedelta(days=2), 12)
    assert reason(other, noon) == Reason.VACATION_CLOSED
    assert reason(staying, noon) == Reason.OK
    assert reason(staying, at(SUMMER + timedelta(days=8), 12)) == Reason.VACATION_CLOSED  # the stay ended
    # the gate's opening hours (NIC's rule) hold every card type on teaching days only
    assert decide(cache.lookup(other), GATE, at(THURSDAY, 23, 10), policy=policy).reason == Reason.OUTSIDE_SCHEDULE
    assert decide(cache.lookup(other), GATE, at(SATURDAY, 23, 10), policy=policy).reason == Reason.OK
    # without the central policy the door's own configuration (none here) decides, as before
    assert decide(cache.lookup(other), DORM_DOOR, at(THURSDAY, 23, 10)).reason == Reason.OK
    cache.close()


def test_why_denied_names_the_rule(campus, rules):
    campus.gate.passback, campus.gate.passback_area = "hard", "campus"
    campus.gate.save()
    other = campus.cards[1].uid

    curfew = explain(uid=other, device_code="D1-01", now=at(THURSDAY, 23, 10))
    assert (curfew.allowed, curfew.reason, curfew.rule) == (False, "curfew_closed", "宿舍教学日作息")
    assert "宿舍教学日作息" in curfew.text and "23:00" in curfew.text
    friday = explain(uid=other, device_code="D1-01", now=at(SATURDAY, 0, 30))
    assert friday.rule == "周五晚作息" and "23:30" in friday.text and f"{FRIDAY:%Y-%m-%d}" in friday.text

    summer = explain(uid=other, device_code="D1-01", now=at(SUMMER + timedelta(days=2), 12))
    assert (summer.reason, summer.rule) == ("vacation_closed", "暑假闭楼")
    assert "留校名单" in summer.text and "暑假" in summer.text
    stays = explain(uid=campus.cards[0].uid, device_code="D1-01", now=at(SUMMER + timedelta(days=2), 12))
    assert stays.allowed and stays.rule == "暑假闭楼" and "留校名单" in stays.text

    gate = explain(uid=other, device_code="G-E-01", now=at(THURSDAY, 23, 10))
    assert (gate.reason, gate.rule) == ("outside_schedule", "校门教学日开放")
    assert "06:00–23:00" in gate.text and "教学日" in gate.text
    assert "防潜回" in gate.facts and "最近一次通行" in gate.facts["防潜回"]  # anti-passback named too


# -- a real reader agent follows policy changes --------------------------------------------------------
def _agent(state_dir) -> ReaderAgent:
    config = parse_config(
        {
            "feed_keys": PUBLIC_KEYS,
            "redis_url": settings.REDIS_URL,
            "confirm": "redis",
            "state_dir": str(state_dir),
            "heartbeat_s": 3600,
            "doors": [
                {
                    "device_id": "D1-01",
                    "key_hex": device_key("D1-01").hex(),
                    "kind": "dorm_door",
                    "building": "D1",
                    "direction": "in",
                }
            ],
        }
    )
    return ReaderAgent(config, client_factory(settings.REDIS_URL), sources=[])


def test_a_reader_agent_gets_a_policy_change_keeps_it_and_refuses_a_forged_one(
    campus, nic, student_affairs, redis_client, tmp_path
):
    relay = OutboxRelay(redis_client, fanout=None)
    relay.ensure_feed()
    agent = _agent(tmp_path / "agent")
    agent.start()
    late = at(THURSDAY, 23, 10)
    uid = campus.cards[1].uid
    try:
        wait_until(agent.synced.is_set, 20, "the agent's first sync")
        assert agent.tap("D1-01", uid, at=late).reason == Reason.OK  # no central rule yet
        dorms = services.save_door_group(
            group=DoorGroup(code="dorms", name="学生宿舍"), devices=[], buildings=[campus.dorm], operator=nic
        )
        rule = DoorRule(
            name="宿舍教学日作息",
            kind=RuleKind.DORM,
            group=dorms,
            day_types=[DayType.TEACHING],
            curfew_start=time(23, 0),
            curfew_end=time(6, 0),
            curfew_closes=True,
        )
        services.save_door_rule(rule=rule, operator=student_affairs)
        relay.run_once()
        wait_until(lambda: agent.tap("D1-01", uid, at=late).reason == Reason.CURFEW_CLOSED, 10, "the new rule")
        held = agent.cache.policy
        assert held is not None and held.version == agent.cache.version

        # someone with Redis rights writes a policy without the rule: signed by their own key,
        # and unsigned — refused like a forged card change, the signed policy stays in force
        now = int(redis_client.get(names.CREDENTIALS_VERSION))
        opened = feed.encode({**door_policy().wire(), "rules": []})
        attacker = feed.FeedSigner(Ed25519PrivateKey.generate())
        redis_client.xadd(
            names.CREDENTIALS,
            {"v": now + 1, "e": opened, "k": attacker.key_id, "s": attacker.sign(now + 1, opened)},
            id=f"{now + 1}-1",
        )
        redis_client.xadd(names.CREDENTIALS, {"v": now + 2, "e": opened}, id=f"{now + 2}-1")
        redis_client.hset(
            feed.SNAPSHOT,
            feed.POLICY_KEY,
            feed.SignedChange(now + 1, opened, attacker.key_id, attacker.sign(now + 1, opened)).snapshot_value(),
        )
        redis_client.set(names.CREDENTIALS_VERSION, now + 2)
        wait_until(lambda: agent.refused_changes >= 2, 10, "the forged policies to be refused")
        # the genuine feed goes on (a gap for the agent: it reloads the snapshot, whose policy
        # entry is forged too — refused, the signed policy kept)
        services.add_stay(
            holder=campus.cards[1].holder,
            start=SUMMER,
            end=SUMMER + timedelta(days=3),
            operator=student_affairs,
            basis="留校申请",
        )
        relay.run_once()
        wait_until(lambda: agent.cache.version == now + 3, 15, "the genuine change after the forgeries")
        assert agent.refused_changes >= 3
        assert agent.cache.policy is not None and agent.cache.policy.version == held.version
        assert agent.tap("D1-01", uid, at=late).reason == Reason.CURFEW_CLOSED
        card = agent.cache.lookup(uid)
        assert card is not None and card.stays  # the stay came with the card
    finally:
        agent.close()

    again = _agent(tmp_path / "agent")  # restarted with Redis unreachable: the cache holds the policy
    try:
        assert again.cache.policy is not None and again.cache.policy.version == held.version
        assert again.tap("D1-01", uid, at=late).reason == Reason.CURFEW_CLOSED
    finally:
        again.close()


# -- the contract ------------------------------------------------------------------------------------
def test_old_agents_keep_their_bytes_and_skip_the_policy(campus, rules):
    plain = credential_payload(Card.objects.get(pk=campus.cards[1].pk))
    assert "stays" not in plain and "grants" not in plain  # the bytes of before: old agents read them
    staying = credential_payload(Card.objects.get(pk=campus.cards[0].pk))
    assert len(staying["stays"]) == 1
    e = feed.encode(door_policy().wire())
    change = feed.SignedChange(9, e, SIGNER.key_id, SIGNER.sign(9, e))
    verifier = feed.FeedVerifier(PUBLIC_KEYS)
    assert isinstance(verifier.verify_entry(change), feed.DoorPolicy)
    with pytest.raises(ValueError):  # an agent that reads only cards refuses it as malformed
        verifier.verify(change)
    card_e = feed.encode(staying)
    with pytest.raises(ValueError):  # and a card is never read as a policy, nor the reverse
        feed.DoorPolicy.model_validate_json(card_e)
    with pytest.raises(ValueError):
        feed.CardCredential.model_validate_json(e)


# -- who may ------------------------------------------------------------------------------------------
def test_student_affairs_sets_curfews_for_its_buildings_and_nic_the_opening_hours(campus, nic, student_affairs):
    other = Building.objects.create(code="D2", name="2号学生公寓", is_dorm=True)
    make_device("D2-01", "2号学生公寓1号门", DeviceKind.DORM_DOOR, "2号学生公寓", campus.dept, building=other)
    d2 = services.save_door_group(group=DoorGroup(code="d2", name="2号楼"), devices=[], buildings=[other], operator=nic)
    d1 = services.save_door_group(
        group=DoorGroup(code="d1", name="1号楼"), devices=[], buildings=[campus.dorm], operator=nic
    )
    with pytest.raises(services.DoorRuleError, match="网信中心"):  # groups are NIC's
        services.save_door_group(
            group=DoorGroup(code="x", name="x"), devices=[], buildings=[], operator=student_affairs
        )
    curfew = dict(kind=RuleKind.DORM, day_types=[DayType.TEACHING], curfew_start=time(23), curfew_end=time(6))
    with pytest.raises(services.DoorRuleError):  # not their building
        services.save_door_rule(rule=DoorRule(name="2号楼", group=d2, **curfew), operator=student_affairs)
    with pytest.raises(services.DoorRuleError):  # opening hours are NIC's
        services.save_door_rule(
            rule=DoorRule(
                name="时段", kind=RuleKind.SCHEDULE, group=d1, day_types=["teaching"], schedule="06:00-23:00"
            ),
            operator=student_affairs,
        )
    with pytest.raises(services.DoorRuleError):  # a stay for a resident of another building
        holder = campus.cards[2].holder
        holder.dorm_building = other
        holder.save()
        services.add_stay(holder=holder, start=SUMMER, end=SUMMER, operator=student_affairs, basis="x")
    assert not DoorRule.objects.exists()
    rule = services.save_door_rule(rule=DoorRule(name="1号楼", group=d1, **curfew), operator=student_affairs)
    record = AuditRecord.objects.get(action="door_rule.save", object_id=str(rule.pk))
    assert record.actor_name == "sa-d1" and record.data["after"]["curfew"] == ["23:00", "06:00"]


# -- the admin ----------------------------------------------------------------------------------------
def test_the_admin_imports_a_calendar_and_shows_each_role_its_own_rules(campus, rules, client):
    client.post("/accounts/login/", {"username": "nic", "password": "pw-nic-123"})
    for page in ("calendarday", "doorgroup", "doorrule", "vacationstay"):
        assert client.get(f"/admin/door_calendar/{page}/").status_code == 200
        assert client.get(f"/admin/door_calendar/{page}/add/").status_code == 200
    bad = SimpleUploadedFile("bad.csv", "日期,类型\n2027-02-30,暑假\n".encode())
    page = client.post("/admin/door_calendar/calendarday/import/", {"file": bad, "basis": "校历"}).content.decode()
    assert "第 2 行" in page and "2027-02-30" in page
    good = SimpleUploadedFile("ok.csv", "日期,类型,备注\n2027-05-01,法定节假日,劳动节\n".encode())
    response = client.post("/admin/door_calendar/calendarday/import/", {"file": good, "basis": "校历"})
    assert response.status_code == 302 and CalendarDay.objects.filter(date=date(2027, 5, 1)).exists()

    client.logout()
    client.post("/accounts/login/", {"username": "sa-d1", "password": "pw-sa-123"})
    form = client.get("/admin/door_calendar/doorrule/add/").content.decode()
    assert 'value="dorm"' in form and 'value="schedule"' not in form  # opening hours are NIC's
    assert client.get(f"/admin/door_calendar/doorrule/{rules['gate'].pk}/change/").status_code == 200  # view only
    assert client.get("/admin/door_calendar/calendarday/import/").status_code == 403
    stays = client.get("/admin/door_calendar/vacationstay/").content.decode()
    assert campus.cards[0].holder.number in stays and campus.cards[0].holder.name not in stays  # masked
