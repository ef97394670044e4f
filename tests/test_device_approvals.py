"""Device approvals (issue 18, Build 2; R-DEV-1, R-DEV-2): installing, moving or removing a
device is a request its department (or NIC) files and NIC approves — a second NIC operator when
NIC filed it. A device reporting from another address or site than approved is "moved without
approval" (设备未经批准移位); an approved move is not; a pending install is not trusted until
approved; a rejection changes nothing. Heartbeats go through the real processor (signed, over
Redis), one of them built and signed by a real reader agent."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ops.accounts.roles import Role
from ops.accounts.services import create_or_update_operator
from ops.alerts.choices import AlertKind
from ops.alerts.models import Alert
from ops.audit.models import AuditRecord
from ops.pipeline.processor import ReaderEventProcessor
from ops.registry.approvals import services
from ops.registry.approvals.choices import RequestKind, RequestStatus
from ops.registry.approvals.models import DeviceRequest
from ops.registry.choices import DeviceApproval, DeviceState
from ops.registry.models import AccessEvent, Department, Device
from ops.registry.selectors import device_health, gate_devices
from ops.registry.services import DeviceNotApproved, issue_device_key
from streams import envelopes, names, producer
from tests.factories import device_key, publish, tap

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.pipeline]


@pytest.fixture
def people(campus, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # seconds saved: not under test
    lib = Department.objects.create(code="LIB", name="图书馆")
    return {
        "nic": create_or_update_operator(username="nic1", password="pw-nic-123", role=Role.NIC),
        "nic2": create_or_update_operator(username="nic2", password="pw-nic-456", role=Role.NIC),
        "guard": create_or_update_operator(
            username="guard", password="pw-guard-1", role=Role.SECURITY, department=campus.dept
        ),
        "librarian": create_or_update_operator(
            username="librarian", password="pw-lib-1", role=Role.LIBRARY, department=lib
        ),
    }


def _process(redis_client):
    ReaderEventProcessor(redis_client, fanout=None, consumer="t", block_ms=50).run(max_idle_polls=1)


_seq = iter(range(1, 10_000))


def _beat(code: str, **where) -> envelopes.Heartbeat:
    return envelopes.Heartbeat(
        event_id=envelopes.new_id(),
        device_id=code,
        boot_epoch=1,
        seq=next(_seq),
        occurred_at=datetime.now(UTC),
        **where,
    )


def _moved(code: str) -> list[Alert]:
    return list(Alert.objects.filter(kind=AlertKind.DEVICE_MOVED, subject=code))


def test_a_device_reporting_from_another_address_or_site_is_moved_without_approval(campus, redis_client):
    Device.objects.filter(code="G-E-01").update(approved_address="10.1.2.3", site="东门")
    Device.objects.filter(code="V-E-IN").update(approved_address="10.1.2.4")
    publish(
        redis_client,
        [
            _beat("G-E-01", address="10.1.2.3", site="东门"),  # where approved: nothing
            _beat("V-E-IN"),  # an old agent says nothing of where it is: not compared
            _beat("D1-01", address="192.168.9.9"),  # no approved address on record: not compared
        ],
    )
    _process(redis_client)
    assert not Alert.objects.filter(kind=AlertKind.DEVICE_MOVED).exists()

    publish(redis_client, [_beat("G-E-01", address="10.9.9.9", site="东门"), _beat("V-E-IN", site="西门")])
    _process(redis_client)
    [gate] = _moved("G-E-01")
    assert gate.detail["address"] == "10.9.9.9" and gate.detail["approved_address"] == "10.1.2.3"
    assert gate.severity == "critical" and gate.get_kind_display() == "设备未经批准移位"
    [vehicle] = _moved("V-E-IN")  # its site is its location (东门) when it has no site of its own
    assert vehicle.detail["site"] == "西门" and vehicle.detail["approved_site"] == "东门"
    # still heard from: a moved device is alerted, not silenced
    assert Device.objects.get(code="G-E-01").state == DeviceState.ONLINE

    # back where it was approved: the alert's condition clears (a person still resolves it)
    publish(redis_client, [_beat("G-E-01", address="10.1.2.3")])
    _process(redis_client)
    gate.refresh_from_db()
    assert gate.cleared_at is not None and gate.status != "resolved"


def test_an_approved_move_does_not_alert_and_moves_the_device(campus, people, redis_client, client):
    Device.objects.filter(code="G-E-01").update(approved_address="10.1.2.3")
    # the security office asks to move its gate to the west gate, on another network
    req = services.file_move(
        by=people["guard"], device=campus.gate, location="西门", site="西门", address="10.5.0.7", reason="西门改造"
    )
    assert Device.objects.get(code="G-E-01").location == "东门"  # not before approval
    # moved before the approval came: alerted
    publish(redis_client, [_beat("G-E-01", address="10.5.0.7", site="西门")])
    _process(redis_client)
    [early] = _moved("G-E-01")
    client.force_login(people["nic"])  # the alert's page says where it reported from, and where approved
    page = client.get(f"/alerts/{early.pk}/").content.decode()
    assert "10.5.0.7 · 西门" in page and "10.1.2.3 · 东门" in page

    services.approve(req.pk, by=people["nic"], note="同意")
    gate = Device.objects.get(code="G-E-01")
    assert (gate.location, gate.site, gate.approved_address) == ("西门", "西门", "10.5.0.7")
    publish(redis_client, [_beat("G-E-01", address="10.5.0.7", site="西门")])
    _process(redis_client)
    [same] = _moved("G-E-01")
    assert same.count == early.count  # no new occurrence: it is where NIC approved it
    assert same.cleared_at is not None  # and the early alert's condition is over
    assert AuditRecord.objects.filter(action="device.move_approved", object_id="G-E-01", actor_name="nic1").exists()
    assert AuditRecord.objects.filter(action="device.move_requested", object_id="G-E-01", actor_name="guard").exists()


def test_a_pending_install_is_not_trusted_until_approved(campus, people, redis_client):
    req = services.file_install(
        by=people["librarian"],
        code="L-01",
        name="图书馆入口闸",
        kind="library_reader",
        owner=Department.objects.get(code="LIB"),
        location="图书馆一楼",
        address="10.7.0.2",
        reason="新馆开放",
    )
    device = Device.objects.get(code="L-01")
    assert device.approval == DeviceApproval.PENDING and not device.key_hex
    assert device.pk not in device_health()  # not on NIC's grid before it is approved
    with pytest.raises(DeviceNotApproved):
        issue_device_key(device=device, operator=people["nic"])
    # even holding a key (given behind the service's back), its messages are not taken
    Device.objects.filter(code="L-01").update(key_hex=device_key("L-01").hex())
    publish(redis_client, [_beat("L-01", address="10.7.0.2"), tap("L-01", campus.cards[0].uid, seq=500)])
    _process(redis_client)
    assert Device.objects.get(code="L-01").last_seen_at is None
    assert not AccessEvent.objects.exists()
    assert Alert.objects.filter(kind=AlertKind.UNKNOWN_DEVICE, subject="L-01").exists()

    services.approve(req.pk, by=people["nic"])
    issue_device_key(device=device, operator=people["nic"])  # now it may have one
    Device.objects.filter(code="L-01").update(key_hex=device_key("L-01").hex())
    publish(redis_client, [_beat("L-01", address="10.7.0.2"), tap("L-01", campus.cards[0].uid, seq=501)])
    _process(redis_client)
    assert Device.objects.get(code="L-01").last_seen_at is not None
    assert AccessEvent.objects.filter(device__code="L-01").count() == 1
    assert not _moved("L-01")
    assert device.pk in device_health()


def test_a_rejection_leaves_the_device_unchanged(campus, people):
    before = Device.objects.values("location", "site", "building", "approved_address", "key_hex").get(code="G-E-01")
    req = services.file_move(by=people["guard"], device=campus.gate, location="北门", reason="想挪一下")
    with pytest.raises(services.ApprovalError, match="审批意见"):
        services.reject(req.pk, by=people["nic"], note="")  # a rejection says why
    services.reject(req.pk, by=people["nic"], note="北门无网络")
    req.refresh_from_db()
    assert req.status == RequestStatus.REJECTED and req.decided_by == people["nic"]
    after = Device.objects.values("location", "site", "building", "approved_address", "key_hex").get(code="G-E-01")
    assert after == before
    with pytest.raises(services.ApprovalError):  # decided once
        services.approve(req.pk, by=people["nic"])
    # a rejected install stays pending: never trusted
    install = services.file_install(
        by=people["guard"], code="G-N-01", name="北门闸", kind="pedestrian_gate", owner=campus.dept,
        location="北门", reason="新门",
    )  # fmt: skip
    services.reject(install.pk, by=people["nic"], note="不需要")
    assert Device.objects.get(code="G-N-01").approval == DeviceApproval.PENDING
    assert AuditRecord.objects.filter(action="device.install_rejected", object_id="G-N-01").exists()


def test_four_eyes_and_who_may_file_and_decide(campus, people):
    own = services.file_move(by=people["nic"], device=campus.gate, location="北门", reason="NIC 自己提出")
    with pytest.raises(services.ApprovalError, match="另一名网信中心操作员"):
        services.approve(own.pk, by=people["nic"])
    with pytest.raises(services.ApprovalError, match="另一名网信中心操作员"):
        services.reject(own.pk, by=people["nic"], note="撤回")
    with pytest.raises(services.ApprovalError, match="只有网信中心"):
        services.approve(own.pk, by=people["guard"])
    assert Device.objects.get(code="G-E-01").location == "东门"
    # one open request per device
    with pytest.raises(services.ApprovalError, match="待审批"):
        services.file_removal(by=people["guard"], device=campus.gate, reason="拆除")
    services.approve(own.pk, by=people["nic2"])
    assert Device.objects.get(code="G-E-01").location == "北门"
    # a department files only for its own devices (R-DEV-4)
    with pytest.raises(services.ApprovalError, match="本部门"):
        services.file_move(by=people["librarian"], device=campus.vehicle_gate, location="西门", reason="x")
    with pytest.raises(services.ApprovalError, match="申请理由"):
        services.file_move(by=people["guard"], device=campus.vehicle_gate, location="西门", reason=" ")
    with pytest.raises(services.ApprovalError, match="IP"):
        services.file_move(by=people["guard"], device=campus.vehicle_gate, location="西门", address="10.1", reason="x")
    assert DeviceRequest.objects.count() == 1


def test_an_approved_removal_withdraws_the_key(campus, people, redis_client):
    req = services.file_removal(by=people["guard"], device=campus.vehicle_gate, reason="车辆入口停用")
    assert Device.objects.get(code="V-E-IN").key_hex  # not before approval
    services.approve(req.pk, by=people["nic"])
    gone = Device.objects.get(code="V-E-IN")
    assert gone.approval == DeviceApproval.REMOVED and not gone.key_hex
    assert gone.pk not in device_health() and "V-E-IN" not in {g["code"] for g in gate_devices()}  # off the desks
    publish(redis_client, [tap("V-E-IN", campus.cards[0].uid)])
    _process(redis_client)
    assert not AccessEvent.objects.exists()
    with pytest.raises(services.ApprovalError):  # nothing more to request for it
        services.file_move(by=people["guard"], device=gone, location="西门", reason="再装")


DOOR = {"device_id": "G-E-01", "key_hex": device_key("G-E-01").hex(), "kind": "pedestrian_gate"}


def config_data(settings, tmp_path) -> dict:
    from tests.signing_keys import PUBLIC_KEYS

    return {
        "redis_url": settings.REDIS_URL,
        "state_dir": str(tmp_path / "agent"),
        "feed_keys": list(PUBLIC_KEYS),
        "site": "东门",
        "doors": [DOOR],
    }


def test_a_real_agents_heartbeat_carries_its_address_and_site(campus, redis_client, settings, tmp_path):
    """The agent fills the optional fields itself; signed with its key, through the processor."""
    from readers.agent.agent import ReaderAgent, local_address
    from readers.agent.config import parse_config

    config = parse_config(config_data(settings, tmp_path))
    door_site = parse_config({**config_data(settings, tmp_path), "doors": [{**DOOR, "site": "东门岗亭"}]}).doors[0]
    assert door_site.site == "东门岗亭"  # a door's own site wins over the agent's
    with pytest.raises(ValueError, match="site"):
        parse_config({**config_data(settings, tmp_path), "site": "x" * 41})
    agent = ReaderAgent(config, sources=[])
    try:
        agent.address = local_address(settings.REDIS_URL)
        assert agent.address  # the machine's own end of its route to Redis
        Device.objects.filter(code="G-E-01").update(approved_address="10.200.0.1")  # approved elsewhere
        agent.heartbeat("G-E-01")
        [(_id, payload, mac)] = agent.outbox.peek(10)
    finally:
        agent.close()
    beat = envelopes.parse(payload)
    assert isinstance(beat, envelopes.Heartbeat) and beat.site == "东门" and beat.address == agent.address
    producer.publish_raw(redis_client, {names.FIELD: payload, "m": mac})
    _process(redis_client)
    [alert] = _moved("G-E-01")
    assert alert.detail["address"] == str(agent.address) and alert.detail["approved_address"] == "10.200.0.1"


def test_the_requests_page_files_and_nic_decides(campus, people, client):
    client.force_login(people["guard"])
    page = client.get("/devices/requests/")
    assert page.status_code == 200 and "设备安装/移位申请" in page.content.decode()
    response = client.post(
        "/devices/requests/change/",
        {"device": "G-E-01", "kind": "move", "location": "南门", "address": "10.3.3.3", "reason": "南门启用"},
    )
    assert response.status_code == 302
    req = DeviceRequest.objects.get()
    assert (req.kind, req.status, req.requested_by) == (RequestKind.MOVE, RequestStatus.PENDING, people["guard"])
    # a department cannot approve, not even by posting
    client.post(f"/devices/requests/{req.pk}/approve/")
    req.refresh_from_db()
    assert req.status == RequestStatus.PENDING
    refused = client.post("/devices/requests/change/", {"device": "G-E-01", "kind": "remove", "reason": ""})
    assert "请填写申请理由" in client.get(refused["Location"]).content.decode()

    client.force_login(people["nic"])
    page = client.get("/devices/requests/").content.decode()
    assert f'id="approve-{req.pk}"' in page and "南门" in page
    done = client.post(f"/devices/requests/{req.pk}/approve/", {"note": "同意"})
    assert "已批准" in client.get(done["Location"]).content.decode()
    assert Device.objects.get(code="G-E-01").location == "南门"
    client.force_login(people["librarian"])  # another department sees none of it
    assert "G-E-01" not in client.get("/devices/requests/").content.decode()


def test_a_device_added_in_the_admin_waits_for_a_second_nic_operator(campus, people, client):
    client.force_login(people["nic"])
    form = {
        "code": "G-W-01",
        "name": "西门人行1号闸",
        "kind": "pedestrian_gate",
        "location": "西门",
        "owner": campus.dept.pk,
        "state": "unknown",
        "credential_version": 0,
        "buffered": 0,
        "boot_epoch": 0,
        "last_seq": 0,
        "heartbeat_s": 10,
        "passback": "off",
        "approved_address": "10.8.0.1",
    }
    response = client.post("/admin/campus/device/add/", form)
    assert response.status_code == 302, response.content.decode()[:2000]
    device = Device.objects.get(code="G-W-01")
    assert device.approval == DeviceApproval.PENDING and not device.key_hex
    [req] = DeviceRequest.objects.filter(device=device)
    assert (req.kind, req.requested_by, str(req.address)) == (RequestKind.INSTALL, people["nic"], "10.8.0.1")
    # its place is not edited in the admin any more: the change form shows it read-only
    page = client.get(f"/admin/campus/device/{campus.gate.pk}/change/").content.decode()
    assert 'name="location"' not in page and 'name="name"' in page
    with pytest.raises(services.ApprovalError):
        services.approve(req.pk, by=people["nic"])
    services.approve(req.pk, by=people["nic2"])
    assert Device.objects.get(code="G-W-01").approval == DeviceApproval.APPROVED
