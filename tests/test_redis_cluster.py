"""The events stream on a real Redis Cluster (issue 14, AC4): three masters and three replicas
started here (``redis-server --cluster-enabled yes``, ``redis-cli --cluster create``), real reader
agents sending to their partitions with ``WAIT 1``, two real processors owning the partitions by
lease. A master is SIGKILLed mid-run: its replica takes over, the pipeline goes on, and every tap
is stored exactly once. The killed node comes back as a replica (until then its shard has no
replica, and the agents keep what no replica confirmed)."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
import redis
from redis.cluster import RedisCluster

from ops.alerts.models import Alert
from ops.registry.models import AccessEvent, Device
from readers.agent.agent import ReaderAgent, client_factory
from readers.agent.config import parse_config
from streams import consumer, names
from streams.cards import DeviceKind
from tests.conftest import campuscard_cmd
from tests.factories import device_key, make_device
from tests.private_servers import wait_until
from tests.signing_keys import PUBLIC_KEYS

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.pipeline]

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
REDIS_CLI = shutil.which("redis-cli") or "/usr/bin/redis-cli"
AGENTS = 8
RATE_PER_AGENT = 25.0  # taps/s
SECONDS = 14.0


def _free_ports(n: int) -> list[int]:
    """n free ports p whose cluster bus ports p + 10000 are free too."""
    ports: list[int] = []
    while len(ports) < n:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port + 10000 > 65535 or port in ports:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        ports.append(port)
    return ports


class Cluster:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.ports = _free_ports(6)
        self.procs: dict[int, subprocess.Popen] = {}

    def start_node(self, port: int) -> None:
        node_dir = self.root / str(port)
        node_dir.mkdir(exist_ok=True)
        self.procs[port] = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-node-timeout",
                "1000",
                "--save",
                "",
                "--appendonly",
                "no",
                "--repl-diskless-sync-delay",
                "0",
                "--cluster-replica-validity-factor",
                "0",
                "--dir",
                str(node_dir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            if self.procs[port].poll() is not None:  # it could not listen there: exited at once
                raise RuntimeError(f"redis-server on {port} did not start")
            try:
                redis.Redis(port=port, socket_timeout=2).ping()
                return
            except (redis.ConnectionError, redis.TimeoutError):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server on {port} did not start") from None
                time.sleep(0.05)

    def create(self) -> None:
        for i in range(len(self.ports)):
            for attempt in range(3):
                try:
                    self.start_node(self.ports[i])
                    break
                except RuntimeError:
                    # its port was taken between the check and the start (an ephemeral port a
                    # client of the suite got meanwhile): another pair of free ports
                    self.procs.pop(self.ports[i]).kill()
                    if attempt == 2:
                        raise
                    fresh = _free_ports(1)[0]
                    while fresh in self.ports:
                        fresh = _free_ports(1)[0]
                    self.ports[i] = fresh
        subprocess.run(
            [REDIS_CLI, "--cluster", "create", *[f"127.0.0.1:{p}" for p in self.ports], "--cluster-replicas", "1"],
            input="yes\n",
            text=True,
            check=True,
            capture_output=True,
            timeout=60,
        )
        self.wait_ok()
        self.wait_replicated()

    def wait_replicated(self, timeout: float = 30) -> None:
        """Every master has a replica in sync (before that, a master's death is not survivable)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            masters = self.masters()
            infos = [redis.Redis(port=port).info("replication") for port in masters]
            if len(masters) == 3 and all(
                any(
                    isinstance(v, dict) and v.get("state") == "online" for k, v in info.items() if k.startswith("slave")
                )
                for info in infos
            ):
                return
            time.sleep(0.2)
        raise AssertionError("the replicas did not come in sync")

    def wait_ok(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            states = []
            for port, proc in self.procs.items():
                if proc.poll() is None:
                    try:
                        states.append(redis.Redis(port=port).cluster("info")["cluster_state"])
                    except redis.RedisError:
                        states.append("down")
            if states and all(s == "ok" for s in states):
                return
            time.sleep(0.2)
        raise AssertionError(f"the cluster did not become ok: {states}")

    def masters(self) -> dict[int, str]:
        """port → node id of every live master."""
        client = redis.Redis(port=next(p for p, proc in self.procs.items() if proc.poll() is None))
        out = {}
        for address, node in client.cluster("nodes").items():
            if "master" in node["flags"] and "fail" not in node["flags"] and node["connected"]:
                out[int(address.split(":")[1].split("@")[0])] = node["node_id"]
        return out

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path / "cluster")
    c.root.mkdir()
    try:
        c.create()
        yield c
    finally:
        c.stop()


def _agent(code: str, state_dir: Path, main_url: str, node_url: str) -> ReaderAgent:
    config = parse_config(
        {
            "feed_keys": PUBLIC_KEYS,
            "redis_url": main_url,
            "events_redis_url": node_url,
            "events_cluster": True,
            "wait_replicas": 1,
            "state_dir": str(state_dir),
            "heartbeat_s": 2,
            "forward_batch": 50,
            "doors": [
                {"device_id": code, "key_hex": device_key(code).hex(), "kind": "pedestrian_gate", "direction": "in"}
            ],
        }
    )
    return ReaderAgent(config, client_factory(main_url), sources=[])


def test_a_master_killed_mid_run_loses_no_tap_and_stores_none_twice(
    campus, redis_client, subprocess_env, tmp_path, cluster
):
    from django.conf import settings

    node_url = f"redis://127.0.0.1:{cluster.ports[0]}"
    codes = [f"G-C-{i:02d}" for i in range(AGENTS)]
    for code in codes:
        make_device(code, f"集群测试闸{code}", DeviceKind.PEDESTRIAN_GATE, "东门", campus.dept)
    stream = RedisCluster.from_url(node_url)
    partitions_by_master: dict[int, set[int]] = {}
    for code in codes:
        p = names.partition_of(code, settings.EVENT_PARTITIONS)
        node = stream.get_node_from_key(names.events_stream(p))
        partitions_by_master.setdefault(int(node.port), set()).add(p)
    # the master to kill: the one holding the most of the agents' partitions
    victim = max(partitions_by_master, key=lambda port: len(partitions_by_master[port]))
    assert victim in cluster.masters()

    env = dict(subprocess_env, EVENTS_REDIS_URL=node_url, EVENTS_REDIS_CLUSTER="1", PROCESSOR_CLAIM_IDLE_MS="2000")
    processors = [
        subprocess.Popen(campuscard_cmd("process", "--name", f"c{i}", "--no-fanout"), env=env) for i in range(2)
    ]
    agents = [_agent(code, tmp_path / code, settings.REDIS_URL, node_url) for code in codes]
    for agent in agents:
        agent.start()
    stop = threading.Event()
    made: dict[str, int] = dict.fromkeys(codes, 0)

    def tapping(agent: ReaderAgent, code: str) -> None:
        i = 0
        while not stop.wait(1 / RATE_PER_AGENT):
            agent.tap(code, campus.cards[i % len(campus.cards)].uid)
            made[code] += 1
            i += 1

    threads = [threading.Thread(target=tapping, args=(a, c)) for a, c in zip(agents, codes, strict=True)]
    try:
        for thread in threads:
            thread.start()
        wait_until(lambda: AccessEvent.objects.count() > 100, 60, "taps flowing through the cluster")

        def owners() -> set[object]:
            return {stream.get(names.lease_key(p)) for p in range(settings.EVENT_PARTITIONS)}

        wait_until(lambda: owners() == {b"c0", b"c1"}, 20, "the two processors sharing the partitions")
        cluster.procs[victim].send_signal(signal.SIGKILL)  # the master dies mid-run
        cluster.procs[victim].wait()
        wait_until(lambda: len(cluster.masters()) == 3 and victim not in cluster.masters(), 30, "a replica taking over")
        stored_at_failover = AccessEvent.objects.count()
        time.sleep(SECONDS / 2)
        assert AccessEvent.objects.count() > stored_at_failover + 100, "the pipeline did not go on after the failover"
        cluster.start_node(victim)  # it comes back, as a replica of the node that took over
        cluster.wait_ok()
        cluster.wait_replicated()
        time.sleep(SECONDS / 2)
        stop.set()
        for thread in threads:
            thread.join()
        wait_until(lambda: all(len(a.outbox) == 0 for a in agents), 60, "every agent's outbox confirmed and emptied")
        total = sum(made.values())
        wait_until(
            lambda: AccessEvent.objects.filter(device__code__in=codes).count() >= total,
            60,
            f"all {total} taps stored",
        )
        wait_until(lambda: consumer.pending(stream, settings.EVENT_PARTITIONS) == 0, 60, "every entry acknowledged")
    finally:
        stop.set()
        for agent in agents:
            agent.close()
        for proc in processors:
            proc.send_signal(signal.SIGTERM)
        for proc in processors:
            proc.wait(20)
        stream.close()

    rows = AccessEvent.objects.filter(device__code__in=codes)
    assert rows.count() == total  # exactly once: none lost, none twice
    assert rows.values("event_id").distinct().count() == total
    for code in codes:
        assert rows.filter(device__code=code).count() == made[code]
        seqs = sorted(rows.filter(device__code=code).values_list("seq", flat=True))
        assert len(set(seqs)) == len(seqs)
    assert victim in {int(p) for p in cluster.procs} and victim not in cluster.masters()
    # both processors owned partitions (the leases spread them), and no sequence alarm was false
    assert set(Device.objects.filter(code__in=codes).values_list("state", flat=True)) <= {"online"}
    assert not Alert.objects.filter(kind__in=["replay", "sequence_gap", "duplicate_device"]).exists()
