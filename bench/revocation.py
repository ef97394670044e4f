"""``campuscard bench revocation``: N reader agents online (real ``ReaderAgent``s, each with its
own SQLite credential cache, following the credential stream); loss reports are committed
through the card service; the relay (a separate process) publishes them; we measure, per
reader, the time from the loss report's commit to that reader holding the revocation (its
cache would refuse the card from then on). Genetec-class systems push every 15 s."""

from __future__ import annotations

import secrets
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command

from bench import common
from bench.common import percentile
from ops.accounts.roles import Role
from ops.accounts.services import create_or_update_operator
from ops.demo.seed import seed_demo_campus
from ops.pipeline import feed_keys
from ops.redis_client import client
from ops.registry.lifecycle import services
from ops.registry.models import Card
from readers.agent.agent import ReaderAgent
from streams import names


def _reader_process(
    first: int, count: int, redis_url: str, state: Path, version: int, keys: list[str], pipe: Any
) -> None:
    """One OS process hosting ``count`` reader agents; reports when each applied a loss."""
    received: dict[str, dict[int, float]] = {}
    lock = threading.Lock()

    def watch(agent: ReaderAgent, index: int) -> None:
        original = agent.cache.apply

        def apply(version: int, payload: Mapping[str, Any]) -> bool:
            result = original(version, payload)
            if payload.get("status") == "lost":
                with lock:
                    received.setdefault(payload["uid"], {})[index] = time.time()
            return result

        agent.cache.apply = apply  # type: ignore[method-assign]  # the bench wraps the agent's method to time each change

    agents = common.start_bench_agents(first, count, redis_url, state, keys, watch)  # keys: the relay's (issue 12)
    common.serve_fleet(agents, lambda: all(a.cache.version >= version for a in agents), pipe, received)


def run(*, readers: int, revocations: int, processes: int = 10, holders: int = 2400) -> dict[str, Any]:
    call_command("migrate", verbosity=0, interactive=False)
    seed_demo_campus(holders=holders)
    nic = create_or_update_operator(username="bench-nic", password=secrets.token_urlsafe(12), role=Role.NIC)
    redis_client = client()
    relay = common.start_relay(  # the relay seeds the feed
        lambda: int(redis_client.get(names.CREDENTIALS_VERSION) or 0) != 0,
        "the relay did not seed the credential snapshot",
    )

    state = Path(tempfile.mkdtemp(prefix="campuscard-revocation-"))
    version = int(redis_client.get(names.CREDENTIALS_VERSION) or 0)
    keys = feed_keys.trusted_public_keys()  # the relay made the key when it seeded the feed
    # `readers / processes` agents in each of `processes` OS processes
    pipes, workers = common.fork_fleet(
        _reader_process,
        readers,
        processes,
        lambda first, count, pipe: (first, count, settings.REDIS_URL, state, version, keys, pipe),
    )
    committed: dict[str, float] = {}
    try:
        common.await_fleet(pipes, "readers did not load the credential snapshot")
        time.sleep(1.0)
        cards = list(Card.objects.filter(status="active").order_by("?")[:revocations])
        for card in cards:
            services.report_loss(card=card, operator=nic, basis="bench: 挂失")
            committed[card.uid] = time.time()  # the service's transaction has committed
            time.sleep(0.3)
        time.sleep(5.0)
        received = common.collect_fleet(pipes)
        delays = [t - committed[uid] for uid in committed for t in received.get(uid, {}).values()]
        missing = readers * len(committed) - len(delays)
    finally:
        common.end_fleet(workers, relay)
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
