"""``campuscard bench emergency``: N reader agents online (real ``ReaderAgent``s, each with its own
SQLite credential cache and emergency hold, its own credential-sync thread and Redis
connection), hosted in a few OS processes; the security office's page starts a lockdown of their
building and then ends it, ``--rounds`` times (an HTTP POST through Django's test client to
``/emergency/start/`` and ``/emergency/<id>/end/``: the view, the service and its commit — the
browser's own round trip is not in it); the relay (a separate process, ``campuscard relay``)
sends each new state. Measured per reader and per change: from the moment the POST is sent to the
moment that agent holds the new state (``p50_s``/``p99_s``: in force, its next tap decides by
it; ``kept_p99_s``: also kept in its SQLite, ``synchronous=FULL`` — the 500 agents share one disk
here, each controller has its own in reality); and, to tell the server's share from the
readers', from the POST to the relay having sent the state (``sent_*``)."""

from __future__ import annotations

import secrets
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.test import Client

from bench import common
from bench.common import percentile
from ops.accounts.roles import Role
from ops.accounts.services import create_or_update_operator
from ops.pipeline import feed_keys
from ops.redis_client import client
from ops.registry.emergency.models import EmergencyMode
from ops.registry.models import Building
from readers.agent.agent import ReaderAgent
from streams import credentials
from streams.emergency import EmergencyState

BUILDING = "BENCH-B"


def _reader_process(first: int, count: int, redis_url: str, state: Path, keys: list[str], pipe: Any) -> None:
    """One OS process hosting ``count`` reader agents; reports when each took each revision."""
    received: dict[int, dict[int, tuple[float, float, float]]] = {}
    lock = threading.Lock()

    def watch(agent: ReaderAgent, index: int) -> None:
        hold = agent.emergency
        original = hold.apply_state

        def apply_state(state: EmergencyState, raw: bytes) -> bool:
            taken = original(state, raw)
            if taken and hold.applied_at is not None:
                now, mono = time.time(), time.monotonic()  # in force, and kept on disk: wall clock
                in_force, stored = now - (mono - hold.applied_at), now - (mono - (hold.stored_at or mono))
                issued = state.issued_at.timestamp()  # the relay built it
                with lock:
                    received.setdefault(state.revision, {})[index] = (in_force, stored, issued)
            return taken

        hold.apply_state = apply_state  # type: ignore[method-assign]  # the bench times each state taken

    agents = common.start_bench_agents(first, count, redis_url, state, keys, watch, building=BUILDING)
    common.serve_fleet(agents, lambda: all(a.synced.is_set() for a in agents), pipe, received)


def run(*, readers: int, rounds: int, processes: int = 10) -> dict[str, Any]:
    call_command("migrate", verbosity=0, interactive=False)
    Building.objects.get_or_create(code=BUILDING, defaults={"name": "基准测试楼"})
    guard = create_or_update_operator(username="bench-guard", password=secrets.token_urlsafe(12), role=Role.SECURITY)
    redis_client = client()
    relay = common.start_relay(  # the relay is up: it made the feed
        lambda: bool(redis_client.exists(credentials.FEED_KEY)), "the relay did not start"
    )
    keys = feed_keys.trusted_public_keys()
    state = Path(tempfile.mkdtemp(prefix="campuscard-emergency-"))
    # Readers are separate controllers in reality: here `processes` OS processes host them,
    # `readers / processes` agents each, each agent with its own sync thread blocked in its own XREAD.
    pipes, workers = common.fork_fleet(
        _reader_process,
        readers,
        processes,
        lambda first, count, pipe: (first, count, settings.REDIS_URL, state, keys, pipe),
    )
    clicked: dict[int, float] = {}
    http = Client(HTTP_HOST=settings.ALLOWED_HOSTS[0] if settings.ALLOWED_HOSTS else "127.0.0.1")
    http.force_login(guard)
    try:
        common.await_fleet(pipes, "readers did not start")
        time.sleep(1.0)
        revision = 0
        for n in range(rounds):
            form = {"kind": "lockdown", "scope": "building", "building": BUILDING, "reason": f"bench {n}"}
            at = time.time()
            response = http.post("/emergency/start/", {**form, "confirm": "yes"})
            if response.status_code != 302:
                raise RuntimeError(f"start: HTTP {response.status_code}")
            revision += 1
            clicked[revision] = at
            time.sleep(1.5)
            mode = EmergencyMode.objects.get(status="active")
            at = time.time()
            response = http.post(f"/emergency/{mode.pk}/end/", {"confirm": "yes", "note": "bench"})
            if response.status_code != 302:
                raise RuntimeError(f"end: HTTP {response.status_code}")
            revision += 1
            clicked[revision] = at
            time.sleep(1.5)
        time.sleep(2.0)
        received = common.collect_fleet(pipes)
        delays = [t[0] - clicked[rev] for rev in clicked for t in received.get(rev, {}).values()]
        kept = [t[1] - clicked[rev] for rev in clicked for t in received.get(rev, {}).values()]
        missing = readers * len(clicked) - len(delays)
        # when the relay built each state (its signed issued_at, a millisecond before it is
        # sent): the server's share of the delay, the rest is the readers'
        server = [min(t[2] for t in received[rev].values()) - clicked[rev] for rev in clicked if received.get(rev)]
    finally:
        common.end_fleet(workers, relay)
    return {
        "readers": readers,
        "processes": len(workers),
        "changes": len(clicked),
        "deliveries": len(delays),
        "missing": missing,
        "sent_p50_s": round(percentile(server, 50), 3),
        "sent_max_s": round(max(server), 3) if server else None,
        "p50_s": round(percentile(delays, 50), 3),
        "p99_s": round(percentile(delays, 99), 3),
        "max_s": round(max(delays), 3) if delays else None,
        "kept_p99_s": round(percentile(kept, 99), 3),
    }
