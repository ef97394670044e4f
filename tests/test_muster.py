"""Musters (issue 17): who a roll call must account for, who is safe, ending it, who may see and
do what, the export — and the live board's snapshot + deltas against the real processor.

The people to account for are those inside the building when the muster starts by their latest
passage anywhere (the dorm desk's rule, over every door and gate); a person is safe once they
tap, allowed, at an assembly-point reader from a little before the start; the end writes the
result down; names are full while it runs and masked after, every view and export audited.
"""

from __future__ import annotations

import io
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.testing import HttpCommunicator
from django.conf import settings
from django.db import IntegrityError, transaction
from django.test import Client
from django.utils import timezone
from openpyxl import load_workbook

from dashboard.muster_board import MusterBoard
from ops.accounts.permissions import muster_scope
from ops.accounts.roles import Role
from ops.accounts.services import create_or_update_operator
from ops.asgi import application
from ops.audit.models import AuditRecord
from ops.muster import selectors, services
from ops.muster.choices import LIVE_GROUP
from ops.muster.models import Muster, MusterPerson, MusterPoint
from ops.push import current_seq
from ops.redis_client import client
from ops.registry.choices import HolderKind
from ops.registry.models import AccessEvent, Building, Card, Cardholder, Department, Device
from streams.cards import CardStatus, CardType, DeviceKind
from streams.reasons import Decision, Direction, Reason
from tests.factories import make_device, tap
from tests.live import Feed, Readers

# the rules run in a rolled-back transaction; what crosses processes or threads (the ASGI page,
# the processor and the Channels layer) needs committed data
pytestmark = pytest.mark.pipeline
SERVICE = pytest.mark.django_db
LIVE = pytest.mark.django_db(transaction=True)

DOOR, OTHER_DOOR, GATE, POINT, DESK = "D1-01", "D2-01", "G-E-01", "MP-01", "NIC-DESK-1"
PASSWORD = "muster-pass-1234"


@dataclass
class Site:
    campus: Any
    d2: Building
    point: Device  # an assembly-point desk reader
    desk: Device  # a desk reader that is not one
    staff: Card  # lives in no dorm

    @property
    def cards(self) -> list[Card]:
        return self.campus.cards

    # operators, made when a test first needs one (each costs a password hash)
    def _op(self, name: str, role: Role, **scope: Any) -> Any:
        return create_or_update_operator(username=name, password=PASSWORD, role=role, **scope)

    @cached_property
    def guard(self) -> Any:  # the security office
        return self._op("guard", Role.SECURITY)

    @cached_property
    def nic(self) -> Any:
        return self._op("nic", Role.NIC)

    @cached_property
    def manager(self) -> Any:  # dorm manager of D1
        return self._op("dorm-a", Role.DORM_MANAGER, buildings=[self.campus.dorm])

    @cached_property
    def finance(self) -> Any:
        return self._op("finance", Role.FINANCE)


@pytest.fixture
def site(campus, redis_client) -> Site:
    d2 = Building.objects.create(code="D2", name="2号学生公寓", is_dorm=True)
    make_device(OTHER_DOOR, "2号学生公寓1号门", DeviceKind.DORM_DOOR, "2号学生公寓", campus.dept, building=d2)
    point = make_device(POINT, "东操场集合点读卡器", DeviceKind.DESK_READER, "东操场", campus.dept)
    MusterPoint.objects.create(device=point, place="东操场集合点")
    desk = make_device(DESK, "网信中心服务窗口1", DeviceKind.DESK_READER, "网信中心", campus.dept)
    teacher = Cardholder.objects.create(kind=HolderKind.STAFF, number="T000001", name="王老师", department=campus.dept)
    staff = Card.objects.create(
        uid="C0000001",
        holder=teacher,
        card_type=CardType.STAFF,
        status=CardStatus.ACTIVE,
        valid_from=timezone.now() - timedelta(days=60),
    )
    return Site(campus, d2, point, desk, staff)


def passage(card: Card, device: str, ago: timedelta, *, out: bool = False, deny: bool = False) -> AccessEvent:
    """A tap already in the record (as the processor would have stored it)."""
    return AccessEvent.objects.create(
        event_id=uuid.uuid4(),
        device=Device.objects.get(code=device),
        card=card,
        card_uid=card.uid,
        holder_id=card.holder_id,
        occurred_at=timezone.now() - ago,
        direction=Direction.NONE
        if Device.objects.get(code=device).kind == DeviceKind.DESK_READER
        else (Direction.OUT if out else Direction.IN),
        decision=Decision.DENY if deny else Decision.ALLOW,
        reason=Reason.LOST if deny else Reason.OK,
    )


H = timedelta(hours=1)


def people_inside(site: Site) -> list[Card]:
    """A day at D1's door, and what each person's latest passage says of them."""
    r = site.cards
    passage(r[0], DOOR, 2 * H)  # in: inside
    passage(r[1], DOOR, 3 * H)
    passage(r[1], DOOR, H, out=True)  # in, then out: not inside
    passage(r[2], DOOR, 3 * H)
    passage(r[2], OTHER_DOOR, H)  # then into D2 without tapping out: in D2, not in D1
    passage(r[3], DOOR, 3 * H)
    passage(r[3], GATE, H, out=True)  # left the campus: not inside
    passage(r[4], DOOR, timedelta(days=40))  # older than the 30-day look-back
    passage(r[5], DOOR, H, deny=True)  # refused at the door: not inside
    passage(r[6], DOOR, 2 * H)
    passage(r[6], DESK, H)  # a desk reader has no direction: still inside
    passage(r[7], DOOR, 2 * H, out=True)
    passage(r[7], DOOR, H)  # out, then in: inside
    passage(site.staff, DOOR, H)  # not a resident, inside all the same
    return [r[0], r[6], r[7], site.staff]


def holders(*cards: Card) -> list[int]:
    return sorted(c.holder_id for c in cards)


def roster(muster: Muster) -> list[int]:
    return sorted(MusterPerson.objects.filter(muster=muster).values_list("holder_id", flat=True))


def audits(action: str) -> list[AuditRecord]:
    return list(AuditRecord.objects.filter(action=action).order_by("id"))


# -- who is to be accounted for --------------------------------------------------------------


@SERVICE
def test_the_people_to_account_for_are_those_whose_latest_passage_entered_the_building(site):
    inside = people_inside(site)

    muster = services.start_muster(building="D1", reason="3楼烟感报警", by=site.guard)

    assert roster(muster) == holders(*inside)
    assert [p.holder_id for p in selectors.inside_now(site.d2)] == [site.cards[2].holder_id]
    r7 = MusterPerson.objects.get(muster=muster, holder_id=site.cards[7].holder_id)
    assert r7.door is not None and r7.door.code == DOOR
    assert abs((timezone.now() - H) - r7.entered_at) < timedelta(seconds=30)  # the entry, not the exit
    # fixed at the start: someone who goes in afterwards is not added
    passage(site.cards[1], DOOR, timedelta(0))
    assert roster(Muster.objects.get(pk=muster.pk)) == holders(*inside)
    (started,) = audits("muster.start")
    assert started.actor_id == site.guard.pk and started.basis == "3楼烟感报警"
    assert started.data == {"building": "D1", "inside": 4}


# -- who is safe, and the end ----------------------------------------------------------------


@SERVICE
def test_an_allowed_tap_at_a_muster_point_from_the_start_marks_safe_and_the_end_writes_it_down(site):
    r0, r6, r7, staff = people_inside(site)
    passage(r6, POINT, timedelta(minutes=30))  # long before the muster: not evidence of anything
    passage(r7, POINT, timedelta(minutes=2))  # at the assembly point before anyone started it
    muster = services.start_muster(building=site.campus.dorm, reason="消防演练", by=site.nic)
    assert settings.MUSTER_EARLY_TAP_S >= 120
    passage(r0, POINT, timedelta(0))  # at the assembly point: safe
    passage(r6, DESK, timedelta(0))  # a desk reader that is not an assembly point
    passage(staff, POINT, timedelta(0), deny=True)  # a refused card: could be in anyone's hand
    passage(site.cards[1], POINT, timedelta(0))  # not on the roster: counts for nothing

    running = selectors.report(muster, with_names=True)
    assert (running.inside, running.safe, running.unaccounted) == (4, 2, 2)
    safe = {p["number"]: p["point"] for p in running.persons if p["safe_at"]}
    assert safe == {r0.holder.number: "东操场集合点", r7.holder.number: "东操场集合点"}
    assert [p["number"] for p in running.persons[:2]] == sorted([r6.holder.number, staff.holder.number])

    ended = services.end_muster(muster.pk, by=site.guard, note="全部撤离")
    assert ended.ended_by == site.guard and ended.end_note == "全部撤离"
    stored = dict(MusterPerson.objects.filter(muster=muster).values_list("holder_id", "safe_point__code"))
    assert stored == {r0.holder_id: POINT, r7.holder_id: POINT, r6.holder_id: None, staff.holder_id: None}
    # the record stays as it was written: a later tap, or the point removed, changes nothing
    passage(r6, POINT, timedelta(0))
    MusterPoint.objects.all().delete()
    after = selectors.report(Muster.objects.get(pk=muster.pk), with_names=False)
    assert (after.inside, after.safe, after.unaccounted) == (4, 2, 2)
    assert {p["point"] for p in after.persons if p["safe_at"]} == {"东操场集合点读卡器"}  # the reader's name
    (end,) = audits("muster.end")
    assert end.data == {"building": "D1", "inside": 4, "safe": 2, "unaccounted": 2} and end.actor_id == site.guard.pk


# -- who may do what -------------------------------------------------------------------------


@SERVICE
def test_only_the_security_office_and_nic_start_and_end_and_one_muster_runs_per_building(site):
    for who in (site.manager, site.finance):
        with pytest.raises(services.MusterForbidden):
            services.start_muster(building="D1", reason="演练", by=who)
    for building, reason in (("D1", " "), ("NOPE", "演练"), ("D1", "x" * 201)):
        with pytest.raises(services.MusterError):
            services.start_muster(building=building, reason=reason, by=site.guard)
    assert not Muster.objects.exists() and not audits("muster.start")

    muster = services.start_muster(building="D1", reason="演练", by=site.guard)
    with pytest.raises(services.MusterError):
        services.start_muster(building="D1", reason="再来一次", by=site.nic)
    with pytest.raises(IntegrityError), transaction.atomic():  # the database holds it too
        Muster.objects.create(
            building=site.campus.dorm,
            reason="x",
            started_by=site.nic,
            started_at=timezone.now(),
            counted_from=timezone.now(),
        )
    services.start_muster(building="D2", reason="演练", by=site.nic)  # another building: fine
    with pytest.raises(services.MusterForbidden):
        services.end_muster(muster.pk, by=site.manager)
    services.end_muster(muster.pk, by=site.nic)
    with pytest.raises(services.MusterError):
        services.end_muster(muster.pk, by=site.nic)
    services.start_muster(building="D1", reason="复查", by=site.guard)  # ended: a new one may start
    assert len(audits("muster.start")) == 3 and len(audits("muster.end")) == 1


@SERVICE
def test_a_dorm_manager_sees_only_the_musters_of_their_own_buildings(site):
    d1 = services.start_muster(building="D1", reason="演练", by=site.guard)
    d2 = services.start_muster(building="D2", reason="演练", by=site.guard)

    assert [m["building"] for m in selectors.board_snapshot(muster_scope(site.manager))["musters"]] == ["D1"]
    assert [m["building"] for m in selectors.board_snapshot(muster_scope(site.guard))["musters"]] == ["D1", "D2"]
    assert selectors.board_snapshot(muster_scope(site.finance))["musters"] == []
    with pytest.raises(services.MusterForbidden):
        services.export_muster(d2.pk, by=site.manager)

    browser = Client()
    browser.force_login(site.manager)
    assert browser.get(f"/muster/{d1.pk}/").status_code == 200
    assert browser.get(f"/muster/{d1.pk}/export.xlsx").status_code == 200
    for path in (f"/muster/{d2.pk}/", f"/muster/{d2.pk}/export.xlsx", "/muster/999999/"):
        assert browser.get(path).status_code == 404, path  # as if it did not exist
    listed = browser.get("/muster/").content.decode()
    assert f"/muster/{d1.pk}/" in listed and f"/muster/{d2.pk}/" not in listed
    assert 'id="start-form"' not in listed  # dorm managers watch; they do not start
    assert browser.post(f"/muster/{d1.pk}/end/", {"note": "x"}).status_code == 302
    assert Muster.objects.get(pk=d1.pk).active  # refused (shown as an error message)
    browser.force_login(site.finance)
    assert browser.get("/muster/").status_code == 403
    assert browser.get(f"/muster/{d1.pk}/export.xlsx").status_code == 403


@LIVE
def test_the_live_muster_board_opens_for_the_roles_that_may_see_musters(site):
    def status(who: str | None) -> int:
        headers = [(b"host", b"127.0.0.1")]
        if who is not None:
            browser = Client()
            browser.force_login(getattr(site, who))
            session = browser.cookies[settings.SESSION_COOKIE_NAME].value
            headers.append((b"cookie", f"{settings.SESSION_COOKIE_NAME}={session}".encode()))

        async def get() -> Any:
            return await HttpCommunicator(application, "GET", "/live/muster/", headers=headers).get_response(timeout=20)

        return async_to_sync(get)()["status"]

    seen = {who: status(who) for who in ("guard", "nic", "manager", "finance", None)}
    assert seen == {"guard": 200, "nic": 200, "manager": 200, "finance": 403, None: 302}


# -- the export -----------------------------------------------------------------------------


def _sheets(content: bytes) -> dict[str, list[list[Any]]]:
    book = load_workbook(io.BytesIO(content))
    formulas = [c.coordinate for s in book.worksheets for row in s.iter_rows() for c in row if c.data_type == "f"]
    assert formulas == [], "no cell of an export may be a formula"
    return {s.title: [[c.value for c in row] for row in s.iter_rows()] for s in book.worksheets}


@SERVICE
def test_the_export_names_everyone_while_the_muster_runs_masks_them_after_and_neutralises_formulas(site):
    people_inside(site)
    dept = Department.objects.create(code="EVIL", name="@SUM(A1:A9)")
    forger = Cardholder.objects.create(kind=HolderKind.STUDENT, number="2025XX00001", name="=1+2", department=dept)
    card = Card.objects.create(
        uid="E0000001",
        holder=forger,
        card_type=CardType.STUDENT,
        status=CardStatus.ACTIVE,
        valid_from=timezone.now() - 2 * H,
    )
    passage(card, DOOR, H)
    muster = services.start_muster(building="D1", reason="-2+3 演练", by=site.guard)
    passage(site.cards[0], POINT, timedelta(0))
    browser = Client()
    browser.force_login(site.manager)

    response = browser.get(f"/muster/{muster.pk}/export.xlsx")
    assert response["Content-Type"].startswith("application/vnd.openxmlformats")
    assert response["Cache-Control"] == "private, no-store"
    sheets = _sheets(response.content)
    summary = dict(row[:2] for row in sheets["清点概况"])
    assert summary["清点原因"] == "'-2+3 演练" and summary["楼内人数"] == 5 and summary["已确认安全"] == 1
    people = sheets["人员"]
    assert people[0][:3] == ["状态", "学工号", "姓名"]
    names = {row[1]: (row[0], row[2], row[3]) for row in people[1:]}
    assert names[site.cards[0].holder.number] == ("已确认安全", "张三0", site.campus.dept.name)
    assert names[site.cards[6].holder.number][:2] == ("未确认", "张三6")
    assert names["2025XX00001"][1:] == ("'=1+2", "'@SUM(A1:A9)")
    assert len(names) == 5
    (exported,) = audits("muster.export")
    assert exported.actor_id == site.manager.pk and exported.data["names"] == "full"

    services.end_muster(muster.pk, by=site.guard)
    masked = _sheets(browser.get(f"/muster/{muster.pk}/export.xlsx").content)["人员"]
    assert {row[2] for row in masked[1:]} >= {"张*0", "张*6", "王*师"}
    assert not {"张三0", "张三6", "王老师"} & {row[2] for row in masked[1:]}
    assert audits("muster.export")[-1].data["names"] == "masked"


# -- the live board: snapshot + deltas -------------------------------------------------------


def _load(codes: list[str] | None = None) -> tuple[int, dict[str, Any]]:
    """What the page's loader does: the group's sequence number first, then the snapshot."""
    return current_seq(client(), LIVE_GROUP), selectors.board_snapshot(codes)


def _reload(board: MusterBoard, codes: list[str] | None = None) -> None:
    seq, snapshot = _load(codes)
    board.load(snapshot, seq=seq)


def _board(codes: list[str] | None = None) -> MusterBoard:
    """A page's board, as ``dashboard.pages.muster`` makes it."""
    board = MusterBoard(counter=lambda: current_seq(client(), LIVE_GROUP), loader=lambda: _load(codes))
    _reload(board, codes)
    return board


class Taps(Readers):
    def __init__(self, redis_client: Any) -> None:
        super().__init__(redis_client)
        self.n = 0

    def at(self, device: str, card: Card, *, deny: bool = False, when: datetime | None = None):
        self.n += 1
        event = tap(
            device,
            card.uid,
            seq=self.n,
            decision=Decision.DENY if deny else Decision.ALLOW,
            reason=Reason.LOST if deny else Reason.OK,
            when=when or datetime.now(UTC),
        )
        return event.model_copy(update={"direction": Direction.NONE})


@pytest.fixture
def taps(redis_client):
    readers = Taps(redis_client)
    yield readers
    readers.close()


@LIVE
def test_the_board_follows_the_taps_at_muster_points_and_equals_a_fresh_snapshot(site, taps):
    r0, r6, r7, staff = people_inside(site)
    feed = Feed(LIVE_GROUP)
    board = _board()  # a page open before the muster starts
    assert board.musters == {}

    services.start_muster(building="D1", reason="演练", by=site.guard)
    (started,) = feed.take(1)
    assert board.apply(started) is False, "a muster started: the page reloads"
    _reload(board)
    (muster,) = board.musters.values()
    assert board.counts(muster["id"]) == (4, 0)
    assert {p["name"] for p in muster["persons"]} == {"张三0", "张三6", "张三7", "王老师"}  # in full: an emergency

    long_ago = datetime.now(UTC) - timedelta(minutes=30)  # uploaded late, from before the muster
    taps.process(
        [taps.at(POINT, r0), taps.at(DESK, r7), taps.at(POINT, staff, deny=True), taps.at(POINT, r7, when=long_ago)]
    )
    taps.process([taps.at(POINT, r6), taps.at(POINT, r0), taps.at(POINT, site.cards[1])])
    pushes = feed.take(2)
    assert all(board.apply(p) for p in pushes)

    assert board.comparable() == _board().comparable()
    assert sorted(board.safe[muster["id"]]) == holders(r0, r6)
    assert board.counts(muster["id"]) == (4, 2)
    assert board.resyncs == 0


@LIVE
def test_a_lost_push_is_noticed_by_a_gap_or_by_the_counter_and_the_board_reloads(site, taps):
    r0, r6, _r7, _staff = people_inside(site)
    services.start_muster(building="D1", reason="演练", by=site.guard)
    feed = Feed(LIVE_GROUP)
    board = _board()
    muster_id = next(iter(board.musters))
    taps.process([taps.at(POINT, r0)])
    taps.process([taps.at(POINT, r6)])
    dropped, second = feed.take(2)

    assert board.apply(second) is False, "a gap in the sequence must be reported"
    _reload(board)  # what run_feed does on a gap
    assert sorted(board.safe[muster_id]) == holders(r0, r6)

    # the muster ends and its announcement is lost, with nothing after it: the counter shows it
    board.settle()
    assert board.resyncs == 0, "in step: nothing to reload"
    services.end_muster(muster_id, by=site.guard)
    board.settle()
    assert board.musters and board.resyncs == 0, "one look: the push may be on its way"
    board.settle()
    assert board.musters == {} and board.resyncs == 1
