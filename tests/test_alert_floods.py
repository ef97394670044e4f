"""Issue 19, items 2 and 3: alert floods.

- A fleet-wide condition (the same kind on many devices at once) is ONE row on the NIC desk, its
  devices on expand (Alertmanager-style grouping by kind); the resolved alerts are folded.
- A condition alert clears when its condition clears, and closes itself once it stayed clear
  (``resolve_cleared``) — not a tamper or a forced door, which wait for a person (R-DEV-3).
- A cleared condition that closes itself does not escalate.
- The security desk ranks blacklist hits on top, then by severity (R-OPS-2, R-SEC-5); the alert
  page shows the holder's photo and masked name, as the desk does.
- The simulator never makes impossible travel by accident, lost and blacklisted cards included;
  its heartbeats carry the credential version its doors hold (R-USE-1).

Regulations: R-OPS-3, R-DEV-2, R-DEV-3, R-OPS-2, R-SEC-5, R-USE-1."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.test import Client
from django.utils import timezone

from dashboard import alert_view
from dashboard.pages.devices import DEVICE_KINDS
from dashboard.pages.gates import SECURITY
from ops.accounts.roles import Role
from ops.accounts.services import create_or_update_operator
from ops.alerts.choices import AlertKind, AlertStatus, LogAction
from ops.alerts.models import Alert, AlertLog
from ops.alerts.selectors import alert_snapshot
from ops.alerts.services import (
    RESOLVE_CLEARED_AFTER,
    acknowledge,
    clear_condition,
    escalate_overdue,
    raise_alert,
    resolve_cleared,
)
from ops.audit.models import AuditRecord
from ops.masking import mask_name, mask_uid
from ops.registry.choices import DeviceState
from ops.registry.models import Device
from readers.decide import Credential, Door
from readers.simulator import CampusSimulator, Trouble
from streams import envelopes
from streams.cards import CardStatus, CardType, DeviceKind
from tests.factories import make_device

pytestmark = pytest.mark.django_db
TZ = ZoneInfo("Asia/Shanghai")
SINCE = datetime(2020, 1, 1, tzinfo=UTC)


def _devices(campus, n: int) -> list[Device]:
    return [
        make_device(f"T-{i:02d}", f"测试门{i}", DeviceKind.DORM_DOOR, "1号学生公寓", campus.dept, building=campus.dorm)
        for i in range(n)
    ]


def _lag(devices: list[Device], at: datetime) -> None:
    for d in devices:
        raise_alert(kind=AlertKind.CREDENTIAL_LAG, subject=d.code, device_id=d.pk, at=at, detail={"holds": 0})


def _nic_rows() -> list[dict]:
    return alert_view.desk_order(alert_snapshot(kinds=DEVICE_KINDS)["rows"])


def _ids(component) -> list[str]:
    """Every component id in a rendered tree."""
    found = []

    def walk(c) -> None:
        if isinstance(c, list | tuple):
            for x in c:
                walk(x)
            return
        if getattr(c, "id", None):
            found.append(c.id)
        children = getattr(c, "children", None)
        if children is not None and not isinstance(children, str):
            walk(children)

    walk(component)
    return found


# -- the NIC desk: one row per fleet-wide kind --------------------------------------------------


def test_a_kind_on_many_devices_is_one_grouped_row_and_the_rest_stay_per_device(campus):
    now = timezone.now()
    many = _devices(campus, alert_view.FLEET_MIN_DEVICES + 3)
    _lag(many, now)
    raise_alert(kind=AlertKind.DEVICE_FAULT, subject=campus.gate.code, device_id=campus.gate.pk, at=now)
    board = alert_view.nic_board(_nic_rows(), TZ, new=set())
    ids = _ids(board)
    assert ids.count("fleet-credential_lag") == 1
    lag_ids = set(Alert.objects.filter(kind=AlertKind.CREDENTIAL_LAG).values_list("pk", flat=True))
    assert not {f"alert-{pk}" for pk in lag_ids} & set(ids), "no per-device row of a grouped kind"
    [fleet] = [c for c in board if getattr(c, "id", None) == "fleet-credential_lag"]
    assert fleet.to_plotly_json()["props"]["data-devices"] == str(len(many))
    # the device fault on one device keeps its own row; the devices of the group are listed on expand
    fault = Alert.objects.get(kind=AlertKind.DEVICE_FAULT)
    assert f"alert-{fault.pk}" in ids
    text = str(fleet.to_plotly_json())
    assert all(d.code in text for d in many)


def test_below_the_threshold_each_device_keeps_its_own_row(campus):
    few = _devices(campus, alert_view.FLEET_MIN_DEVICES - 1)
    _lag(few, timezone.now())
    ids = _ids(alert_view.nic_board(_nic_rows(), TZ, new=set()))
    assert "fleet-credential_lag" not in ids
    assert sum(1 for i in ids if str(i).startswith("alert-")) == len(few)


def test_resolved_alerts_are_folded_not_listed_row_by_row(campus):
    now = timezone.now()
    _lag(_devices(campus, 3), now)
    Alert.objects.update(status=AlertStatus.RESOLVED, resolved_at=now)
    board = alert_view.nic_board(_nic_rows(), TZ, new=set())
    assert [c.id for c in board] == ["resolved-alerts"]  # one line, the three inside it
    assert sorted(i for i in _ids(board) if str(i).startswith("alert-")) == sorted(
        f"alert-{pk}" for pk in Alert.objects.values_list("pk", flat=True)
    )
    assert board[0].to_plotly_json()["props"].get("open") is not True  # folded


# -- clearing and closing ----------------------------------------------------------------------


def test_a_cleared_condition_closes_itself_once_it_stayed_clear(campus):
    t0 = timezone.now() - timedelta(hours=1)
    [gate] = [campus.gate]
    raise_alert(kind=AlertKind.UPLOAD_STOPPED, subject=gate.code, device_id=gate.pk, at=t0)
    raise_alert(kind=AlertKind.TAMPER, subject=gate.code, device_id=gate.pk, at=t0)
    clear_condition(kinds=[AlertKind.UPLOAD_STOPPED, AlertKind.TAMPER], device_ids=[gate.pk], at=t0)
    cleared = t0
    assert resolve_cleared(now=cleared + RESOLVE_CLEARED_AFTER - timedelta(seconds=1)) == 0
    assert resolve_cleared(now=cleared + RESOLVE_CLEARED_AFTER) == 1
    silent = Alert.objects.get(kind=AlertKind.UPLOAD_STOPPED)
    assert silent.status == AlertStatus.RESOLVED and silent.resolved_by is None
    assert "自动关闭" in silent.resolution
    assert AlertLog.objects.filter(alert=silent, action=LogAction.RESOLVED, actor=None).exists()
    assert AuditRecord.objects.filter(action="alert.auto_resolved", object_id=str(silent.pk)).exists()
    # R-DEV-3: somebody was at the device — a person closes a tamper alert
    assert Alert.objects.get(kind=AlertKind.TAMPER).status == AlertStatus.OPEN


def test_an_alert_whose_condition_came_back_does_not_close(campus):
    t0 = timezone.now() - timedelta(hours=1)
    gate = campus.gate
    raise_alert(kind=AlertKind.UPLOAD_STOPPED, subject=gate.code, device_id=gate.pk, at=t0)
    clear_condition(kinds=[AlertKind.UPLOAD_STOPPED], device_ids=[gate.pk], at=t0 + timedelta(minutes=1))
    raise_alert(kind=AlertKind.UPLOAD_STOPPED, subject=gate.code, device_id=gate.pk, at=t0 + timedelta(minutes=2))
    assert resolve_cleared(now=t0 + timedelta(minutes=30)) == 0
    assert Alert.objects.get().status == AlertStatus.OPEN


def test_an_acknowledged_alert_that_recovered_closes_too(campus):
    nic = create_or_update_operator(username="nic", password="pw-nic-123", role=Role.NIC)
    t0 = timezone.now() - timedelta(hours=1)
    gate = campus.gate
    raise_alert(kind=AlertKind.DEVICE_FAULT, subject=gate.code, device_id=gate.pk, at=t0)
    acknowledge(Alert.objects.get().pk, by=nic, comment="去现场看")
    clear_condition(kinds=[AlertKind.DEVICE_FAULT], device_ids=[gate.pk], at=t0)
    assert resolve_cleared(now=t0 + RESOLVE_CLEARED_AFTER) == 1
    assert Alert.objects.get().status == AlertStatus.RESOLVED


def test_a_cleared_condition_that_closes_itself_does_not_escalate(campus, settings):
    settings.ALERT_ESCALATE_AFTER_S = {"critical": 60, "warning": 60, "info": 60}
    t0 = timezone.now() - timedelta(minutes=5)
    gate, door = campus.gate, campus.dorm_door
    for d in (gate, door):
        raise_alert(kind=AlertKind.CREDENTIAL_LAG, subject=d.code, device_id=d.pk, at=t0)
    clear_condition(kinds=[AlertKind.CREDENTIAL_LAG], device_ids=[gate.pk], at=t0 + timedelta(seconds=30))
    assert escalate_overdue(now=timezone.now()) == 2  # the door, twice over; the gate caught up
    assert Alert.objects.get(subject=gate.code).escalation == 0
    assert Alert.objects.get(subject=door.code).escalation == 2


def test_a_lag_alert_clears_when_the_device_catches_up_and_then_closes(campus):
    from ops.pipeline.supervision import mark_lagging_devices
    from ops.registry.lifecycle import services
    from ops.registry.lifecycle.models import OutboxMessage

    nic = create_or_update_operator(username="nic", password="pw-nic-123", role=Role.NIC)
    services.report_loss(card=campus.cards[0], operator=nic, basis="挂失")
    now = datetime.now(UTC)
    OutboxMessage.objects.filter(topic="credential").update(version=7, published_at=now - timedelta(minutes=1))
    Device.objects.filter(code="V-E-IN").update(credential_version=6, last_seen_at=now, state=DeviceState.ONLINE)
    assert mark_lagging_devices(now=now) == 1
    Device.objects.filter(code="V-E-IN").update(credential_version=7)
    assert mark_lagging_devices(now=now + timedelta(seconds=5)) == 0
    alert = Alert.objects.get(kind=AlertKind.CREDENTIAL_LAG)
    assert alert.cleared_at is not None and alert.status == AlertStatus.OPEN
    resolve_cleared(now=alert.cleared_at + RESOLVE_CLEARED_AFTER)
    alert.refresh_from_db()
    assert alert.status == AlertStatus.RESOLVED


# -- the security desk and the alert page ------------------------------------------------------


def _security_rows(campus) -> list[dict]:
    t0 = timezone.now() - timedelta(minutes=10)
    gate = campus.gate
    detail = {"card": mask_uid(campus.cards[0].uid), "holder_id": campus.cards[0].holder_id, "holder": "张*"}
    raise_alert(kind=AlertKind.BLACKLIST_HIT, subject=campus.cards[0].uid, device_id=gate.pk, at=t0, detail=detail)
    raise_alert(kind=AlertKind.PASSBACK_VIOLATION, subject=campus.cards[3].uid, device_id=gate.pk, at=t0)
    for i, card in enumerate(campus.cards[1:3]):  # newer, critical too
        raise_alert(
            kind=AlertKind.CLONE_SUSPECTED, subject=card.uid, device_id=gate.pk, at=t0 + timedelta(minutes=i + 1)
        )
    old_hit = campus.cards[4].uid
    raise_alert(kind=AlertKind.BLACKLIST_HIT, subject=old_hit, device_id=gate.pk, at=t0 - timedelta(minutes=5))
    Alert.objects.filter(subject=old_hit).update(status=AlertStatus.RESOLVED, resolved_at=timezone.now())
    return alert_view.security_order(alert_snapshot(kinds=SECURITY)["rows"])


def test_the_security_desk_ranks_blacklist_hits_on_top_then_by_severity(campus):
    rows = _security_rows(campus)
    kinds = [(r["kind"], r["status"]) for r in rows]
    assert kinds == [
        (AlertKind.BLACKLIST_HIT, AlertStatus.OPEN),  # older than the clones, still on top
        (AlertKind.CLONE_SUSPECTED, AlertStatus.OPEN),
        (AlertKind.CLONE_SUSPECTED, AlertStatus.OPEN),
        (AlertKind.PASSBACK_VIOLATION, AlertStatus.OPEN),  # a warning below the critical ones
        (AlertKind.BLACKLIST_HIT, AlertStatus.RESOLVED),  # what is done goes to the bottom
    ]
    assert rows[1]["last"] > rows[2]["last"]  # newest first within a rank


def test_the_alert_page_shows_the_holders_photo_and_masked_name(campus):
    holder = campus.cards[0].holder
    sec = create_or_update_operator(username="sec", password="pw-sec-123", role=Role.SECURITY)
    detail = {
        "card": mask_uid(campus.cards[0].uid),
        "holder_id": holder.pk,
        "holder": mask_name(holder.name),
        "photo": True,
        "card_type": CardType.STUDENT,
    }
    raise_alert(
        kind=AlertKind.BLACKLIST_HIT,
        subject=campus.cards[0].uid,
        device_id=campus.gate.pk,
        at=timezone.now(),
        detail=detail,
    )
    client = Client()
    client.force_login(sec)
    page = client.get(f"/alerts/{Alert.objects.get().pk}/").content.decode()
    assert f'src="/photos/holders/{holder.pk}.jpg"' in page
    assert mask_name(holder.name) in page and holder.name not in page
    # without a photo on file: said so, the masked name still shown
    Alert.objects.update(detail={**detail, "photo": False})
    page = client.get(f"/alerts/{Alert.objects.get().pk}/").content.decode()
    assert "/photos/holders/" not in page and 'id="alert-photo"' in page and mask_name(holder.name) in page


# -- the simulator -----------------------------------------------------------------------------


def _sim_campus(bad: int = 30) -> tuple[list[Credential], list[Door]]:
    creds = [Credential(f"{i:08X}", CardType.STUDENT, CardStatus.ACTIVE, False, SINCE, None) for i in range(300)] + [
        Credential(f"B{i:07X}", CardType.STUDENT, CardStatus.LOST, False, SINCE, None) for i in range(bad)
    ]
    doors = [Door(device_id=f"G-{side}-0{n}", kind=DeviceKind.PEDESTRIAN_GATE) for side in "ENSW" for n in (1, 2)]
    return creds, doors


def _impossible_travel(sim: CampusSimulator, seconds: float = 60.0) -> list[str]:
    """Cards tapped at two sites (as the simulator names them) less than ``seconds`` apart."""
    last: dict[str, tuple[str, float]] = {}
    out = []
    wall = 1_800_000_000.0
    for _ in range(1200):  # two simulated minutes, 0.1 s steps
        wall += 0.1
        for e in sim.step(wall, 0.1):
            if not isinstance(e, envelopes.Tap):
                continue
            site = e.device_id.rsplit("-", 1)[0]
            prev = last.get(e.card_uid)
            if prev and prev[0] != site and wall - prev[1] < seconds:
                out.append(e.card_uid)
            last[e.card_uid] = (site, wall)
    return out


def test_the_simulator_makes_no_impossible_travel_lost_cards_included():
    creds, doors = _sim_campus()
    trouble = Trouble(bad_card=0.2, device_fault_per_s=0, device_silence_per_s=0)
    sim = CampusSimulator(creds, doors, rate=80, rhythmic=False, seed=11, trouble=trouble, wall=lambda: 1_800_000_000.0)
    assert _impossible_travel(sim) == []


def test_the_simulator_makes_clones_only_when_its_trouble_says_so():
    creds, doors = _sim_campus()
    trouble = Trouble(clone=0.05, device_fault_per_s=0, device_silence_per_s=0)
    sim = CampusSimulator(creds, doors, rate=80, rhythmic=False, seed=11, trouble=trouble, wall=lambda: 1_800_000_000.0)
    assert len(_impossible_travel(sim)) > 10


def test_the_simulators_heartbeats_carry_the_version_its_doors_hold():
    creds, doors = _sim_campus()
    version = {"v": 41}
    sim = CampusSimulator(
        creds,
        doors,
        rate=0.0,
        heartbeat_s=1.0,
        seed=2,
        wall=lambda: 1_800_000_000.0,
        credential_version=lambda: version["v"],
    )
    beats = [e for e in sim.step(1_800_000_002.0, 2.0) if isinstance(e, envelopes.Heartbeat)]
    assert beats and {b.credential_version for b in beats} == {41}
    version["v"] = 42
    beats = [e for e in sim.step(1_800_000_004.0, 2.0) if isinstance(e, envelopes.Heartbeat)]
    assert {b.credential_version for b in beats} == {42}
