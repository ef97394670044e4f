"""``campuscard bench revocation``: N reader agents online (real ``ReaderAgent``s, each with its
own SQLite credential cache, following the credential stream); loss reports are committed
through the card service; the relay (a separate process) publishes them; we measure, per
reader, the time from the loss report's commit to that reader holding the revocation (its
cache would refuse the card from then on). Genetec-class systems push every 15 s."""

from __future__ import annotations

import multiprocessing
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command

from bench.common import percentile
from ops.accounts.roles import Role
from ops.accounts.services import create_or_update_operator
from ops.demo.seed import seed_demo_campus
from ops.pipeline import feed_keys
from ops.redis_client import client
from ops.registry.lifecycle import services
from ops.registry.models import Card
from readers.agent.agent import ReaderAgent, client_factory
from readers.agent.config import parse_config
from streams import names


def _reader_process(
    first: int, count: int, redis_url: str, state: Path, version: int, keys: list[str], pipe: Any
) -> None:
    """One OS process hosting ``count`` reader agents; reports when each applied a loss."""
    received: dict[str, dict[int, float]] = {}
    lock = threading.Lock()
    agents: list[ReaderAgent] = []

    def watch(agent: ReaderAgent, index: int) -> None:
        original = agent.cache.apply

        def apply(version: int, payload: Mapping[str, Any]) -> bool:
            result = original(version, payload)
            if payload.get("status") == "lost":
                with lock:
                    received.setdefault(payload["uid"], {})[index] = time.time()
            return result

        agent.cache.apply = apply  # type: ignore[method-assign]  # the bench wraps the agent's method to time each change

    for i in range(first, first + count):
        config = parse_config(
            {
                "redis_url": redis_url,
                "feed_keys": keys,  # the relay's signing key (issue 12)
                "state_dir": str(state / f"r{i}"),
                "heartbeat_s": 3600,
                "doors": [
                    {
                        "device_id": f"BENCH-{i:04d}",
                        "key_hex": secrets.token_hex(32),
                        "kind": "pedestrian_gate",
                        "direction": "in",
                    }
                ],
            }
        )
        agent = ReaderAgent(config, client_factory(redis_url), sources=[])
        watch(agent, i)
        agent.start()
        agents.append(agent)
    while any(a.cache.version < version for a in agents):
        time.sleep(0.1)
    pipe.send("ready")
    pipe.recv()
    with ThreadPoolExecutor(64) as pool:  # each close waits for its sync thread's XREAD
        list(pool.map(lambda agent: agent.close(), agents))
    pipe.send(received)


def run(*, readers: int, revocations: int, processes: int = 10, holders: int = 2400) -> dict[str, Any]:
    call_command("migrate", verbosity=0, interactive=False)
    seed_demo_campus(holders=holders)
    nic = create_or_update_operator(username="bench-nic", password=secrets.token_urlsafe(12), role=Role.NIC)
    relay = subprocess.Popen(
        [sys.executable, "-m", "ops.cli", "relay"], env=dict(os.environ), stdout=subprocess.DEVNULL
    )
    redis_client = client()
    deadline = time.monotonic() + 60
    while int(redis_client.get(names.CREDENTIALS_VERSION) or 0) == 0:  # relay seeds the feed
        if time.monotonic() > deadline:
            raise RuntimeError("the relay did not seed the credential snapshot")
        time.sleep(0.1)

    state = Path(tempfile.mkdtemp(prefix="campuscard-revocation-"))
    version = int(redis_client.get(names.CREDENTIALS_VERSION) or 0)
    keys = feed_keys.trusted_public_keys()  # the relay made the key when it seeded the feed
    # Readers are separate controllers in reality: here they run in `processes` OS processes
    # (no shared interpreter lock between them), `readers / processes` agents each.
    from django.db import connections

    connections.close_all()
    context = multiprocessing.get_context("fork")
    pipes, workers = [], []
    per = -(-readers // processes)
    for first in range(0, readers, per):
        parent, child = context.Pipe()
        worker = context.Process(
            target=_reader_process,
            daemon=True,
            args=(first, min(per, readers - first), settings.REDIS_URL, state, version, keys, child),
        )
        worker.start()
        pipes.append(parent)
        workers.append(worker)
    committed: dict[str, float] = {}
    received: dict[str, dict[int, float]] = {}
    try:
        for pipe in pipes:
            if not pipe.poll(300) or pipe.recv() != "ready":
                raise RuntimeError("readers did not load the credential snapshot")
        time.sleep(1.0)
        cards = list(Card.objects.filter(status="active").order_by("?")[:revocations])
        for card in cards:
            services.report_loss(card=card, operator=nic, basis="bench: 挂失")
            committed[card.uid] = time.time()  # the service's transaction has committed
            time.sleep(0.3)
        time.sleep(5.0)
        for pipe in pipes:
            pipe.send("stop")
        for pipe in pipes:
            for uid, per_reader in pipe.recv().items():
                received.setdefault(uid, {}).update(per_reader)
        delays = [t - committed[uid] for uid in committed for t in received.get(uid, {}).values()]
        missing = readers * len(committed) - len(delays)
    finally:
        for worker in workers:
            worker.join(60)
        relay.send_signal(signal.SIGTERM)
        relay.wait(15)
    return {
        "readers": readers,
        "processes": len(workers),
        "revocations": len(committed),
        "deliveries": len(delays),
        "missing": missing,
        "p50_s": round(percentile(delays, 50), 3),
        "p99_s": round(percentile(delays, 99), 3),
        "max_s": round(max(delays), 3) if delays else None,
    }
