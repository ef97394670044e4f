"""Redis may crash — or come back with nothing — without losing or doubling a tap (issue 12,
acceptance 3; Build 4's end-to-end acknowledgement, Build 5's self-healing restarts).

Real parts: a private redis-server with AOF ``everysec`` (SIGKILLed and restarted here), two
``campuscard process`` processes and a ``campuscard relay`` against it, the test's PostgreSQL,
and 20 reader agents (one door each, heartbeats every 2 s) deciding taps at ~300/s while Redis
dies — with the processors a second behind (paused), so that Redis holds taps nobody stored.
An agent deletes an event only once its device's acknowledgement says it is in the database,
so a Redis that loses everything (restarted empty) loses nothing: the agents send again what
was not acknowledged and the processors take what they already stored for duplicates. With
Redis empty the relay reseeds the credential feed at new versions: no agent ever holds fewer
cards than the database, and a loss report made after the restart is refused at all 20 doors
within 2 s. The long version (60 s, 300/s) is ``campuscard bench`` territory; this one runs
~10 s of load."""

from __future__ import annotations

import shutil
import signal
import subprocess
import threading
import time
from collections import Counter

import pytest

from ops.accounts.roles import Role
from ops.accounts.services import create_or_update_operator
from ops.alerts.choices import AlertKind
from ops.alerts.models import Alert
from ops.registry.choices import DeviceKind
from ops.registry.lifecycle.services import report_loss
from ops.registry.models import AccessEvent, Card
from readers.agent.agent import ReaderAgent, client_factory
from readers.agent.config import parse_config
from tests.conftest import campuscard_cmd
from tests.factories import device_key, make_device
from tests.private_servers import start_redis, stop, wait_until
from tests.signing_keys import PUBLIC_KEYS

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.pipeline, pytest.mark.slow]

AGENTS = 20
RATE = 300  # taps per second, over all agents
BEFORE_S, DOWN_S, AFTER_S = 3.0, 1.5, 4.0


def _agent(url: str, code: str, state_dir) -> ReaderAgent:
    config = parse_config(
        {
            "feed_keys": PUBLIC_KEYS,
            "redis_url": url,
            "state_dir": str(state_dir),
            "heartbeat_s": 2,
            "doors": [{"device_id": code, "key_hex": device_key(code).hex(), "kind": "pedestrian_gate"}],
        }
    )
    return ReaderAgent(config, client_factory(url), sources=[])


@pytest.mark.parametrize("restart", ["from_aof", "empty"])
def test_redis_killed_mid_load_loses_and_doubles_no_tap(campus, subprocess_env, tmp_path, restart):
    nic = create_or_update_operator(username="nic", password="pw-nic-123", role=Role.NIC, is_superuser=True)
    codes = [f"G-K-{i:02d}" for i in range(AGENTS)]
    for code in codes:
        make_device(code, f"测试闸机{code}", DeviceKind.PEDESTRIAN_GATE, "东门", campus.dept)
    redis_dir = tmp_path / "redis"
    aof = ("--appendonly", "yes", "--appendfsync", "everysec")
    server, port = start_redis(redis_dir, *aof)
    url = f"redis://127.0.0.1:{port}/0"
    env = dict(subprocess_env, REDIS_URL=url, PROCESSOR_LEASE_MS="2000")
    logs = {name: (tmp_path / f"{name}.log").open("w") for name in ("p1", "p2", "relay")}
    procs = [
        subprocess.Popen(campuscard_cmd("process", "--name", name, "--no-fanout"), env=env, stderr=logs[name])
        for name in ("p1", "p2")
    ]
    procs.append(subprocess.Popen(campuscard_cmd("relay"), env=env, stderr=logs["relay"]))
    agents = [_agent(url, code, tmp_path / code) for code in codes]
    valid = [c.uid for c in campus.cards[1:]]
    lost_later = campus.cards[0]
    allowed: Counter[str] = Counter()
    made: Counter[str] = Counter()
    stop_load = threading.Event()
    held: list[int] = []  # the smallest cache of the 20, sampled through the outage
    try:
        for agent in agents:
            agent.start()
        wait_until(lambda: all(len(a.cache) == len(campus.cards) for a in agents), 30, "the feed at every agent")

        def load() -> None:
            k = 0
            start = time.monotonic()
            while not stop_load.is_set():
                # read the clock once: between a check and a second reading the wait can go negative
                wait = start + k / RATE - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                agent = agents[k % AGENTS]
                verdict = agent.tap(codes[k % AGENTS], valid[k % len(valid)])
                made[codes[k % AGENTS]] += 1
                allowed[verdict.reason] += 1
                k += 1

        def sample() -> None:
            while not stop_load.is_set():
                held.append(min(len(a.cache) for a in agents))
                time.sleep(0.01)

        threads = [threading.Thread(target=load), threading.Thread(target=sample)]
        for t in threads:
            t.start()
        time.sleep(BEFORE_S - 1.0)
        for p in procs[:2]:  # the processors fall a second behind: Redis holds taps nobody stored yet
            p.send_signal(signal.SIGSTOP)
        time.sleep(1.0)
        server.send_signal(signal.SIGKILL)  # mid-load
        server.wait()
        for p in procs[:2]:
            p.send_signal(signal.SIGCONT)
        if restart == "empty":
            shutil.rmtree(redis_dir)
        time.sleep(DOWN_S)  # the doors go on deciding from their caches
        server, _port = start_redis(redis_dir, *aof, port=port)
        time.sleep(AFTER_S)
        if restart == "empty":
            # a loss report after the restart reaches every door within 2 s
            report_loss(card=lost_later, operator=nic, basis="本人挂失")
            reported = time.monotonic()
            wait_until(
                lambda: all((c := a.cache.lookup(lost_later.uid)) is not None and c.status == "lost" for a in agents),
                2.0,
                "the loss report at all 20 doors",
                step=0.02,
            )
            assert time.monotonic() - reported <= 2.0
        stop_load.set()
        for t in threads:
            t.join()
        total = sum(made.values())
        assert total > RATE * (BEFORE_S + DOWN_S + AFTER_S) * 0.6  # the load really ran
        assert allowed["ok"] > 0 and set(allowed) <= {"ok", "lost"}
        assert min(held) == len(campus.cards), "an agent held fewer cards than the database"

        wait_until(lambda: all(len(a.outbox) == 0 for a in agents), 90, "every event acknowledged")
        stored = Counter(
            AccessEvent.objects.filter(device__code__in=codes).values_list("device__code", flat=True).iterator()
        )
        assert stored == made  # 0 lost, 0 doubled, per door
        seqs = AccessEvent.objects.filter(device__code__in=codes).values_list("device__code", "boot_epoch", "seq")
        assert len(set(seqs)) == total
        assert all(p.poll() is None for p in procs), "a process stopped"
        alerts = Alert.objects.filter(kind__in=[AlertKind.REPLAY, AlertKind.SEQUENCE_GAP, AlertKind.DUPLICATE_DEVICE])
        assert not alerts.exists(), list(alerts.values("kind", "subject", "detail"))
        assert Card.objects.get(pk=lost_later.pk).status == ("lost" if restart == "empty" else "active")
    finally:
        stop_load.set()
        for agent in agents:
            agent.close()
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
        for out in logs.values():
            out.close()
        stop(server)
    for name in ("p1", "p2", "relay"):
        text = (tmp_path / f"{name}.log").read_text()
        assert "Traceback" not in text, f"{name}: {text[-3000:]}"
