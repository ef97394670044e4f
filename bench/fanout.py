"""``campuscard bench fanout``: N real dashboards on the live gate page (/live/gates/) while
simulated gate taps flow at a steady rate; the figure is tap → page latency.

Each client is what a browser tab is to the server: it logs in (one Django session), opens the
page's websocket (``/live/gates/_dash-ws-callback``, with the session cookie and the page's
Origin) and sends the ``callback_request`` the Dash renderer sends to start the page's
persistent callback (``stream_gate_traffic``), with the callback id the page's
``_dash-dependencies`` gives. The server then runs, per client, the real callback — snapshot,
Channels subscription, a frame every ``dashboard.live.FRAME_S`` — and pushes ``set_props``
updates. A tap counts as shown on a page when its id first appears in the feed rows pushed to
that page (each row carries the tap's id as ``data-event``); latency = time the frame arrived − the
time the simulated reader produced the tap (same machine, same clock). The clients stop at
the socket: the time a browser then takes to lay the frame out is not included (``bench
soak`` drives a real Chromium page).

Every offered tap is at a gate (pedestrian or vehicle), so every tap is pushed to every page:
the worst case for the page. A page shows the newest ``LIVE_FEED_ROWS`` (50) rows per frame,
so a tap that is overtaken by 50 newer ones before its frame is drawn is never on screen;
``taps_seen_fraction`` says how many were (over all clients × taps).

The servers are real: daphne (``ops.asgi:application``) and ``campuscard process`` run as
separate processes, on the scratch database and Redis the bench command provides.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.cookiejar
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis
import websockets.asyncio.client
import websockets.exceptions
import websockets.typing
from django.conf import settings
from websockets.asyncio.client import ClientConnection

from bench.common import percentile, wait_http
from bench.pipeline import Listener
from ops.accounts.roles import Role
from ops.accounts.services import create_or_update_operator
from ops.demo.seed import seed_demo_campus
from ops.redis_client import client
from ops.registry import selectors
from ops.registry.models import AccessEvent
from readers.simulator import CampusSimulator, Trouble
from streams import envelopes, names, producer
from streams.cards import GATE_KINDS

PAGE = "/live/gates/"
BENCH_USER = "bench-security"
TICK_S = 0.02  # the simulated readers publish every 20 ms
HEARTBEAT_S = 30.0  # the Dash websocket worker's heartbeat interval
OPENING_AT_ONCE = 5  # pages being opened at the same moment
EVENT_ID = re.compile(rb'"data-event":\s*"([0-9a-f-]{36})"')


# -- the system under test ---------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_mb(pid: int) -> float:
    """Resident set size of a process, MiB (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Stack:
    """daphne (one or more processes, each on its own port, as behind a load balancer) + one
    processor on the bench's scratch database and Redis, a demo campus and one security
    operator to log in as."""

    bases: list[str]  # one per daphne process
    webs: list[subprocess.Popen[bytes]]
    processor: subprocess.Popen[bytes]
    username: str
    password: str
    log_dir: Path

    @property
    def base(self) -> str:
        return self.bases[0]

    @property
    def web(self) -> subprocess.Popen[bytes]:
        return self.webs[0]


def _stop(proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def live_stack(name: str, *, web: int = 1) -> Iterator[Stack]:
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    seed_demo_campus()
    password = secrets.token_urlsafe(12)
    create_or_update_operator(username=BENCH_USER, password=password, role=Role.SECURITY)
    from django.db import connection

    connection.close()  # the servers get their own connections; keep SQLite's writer free

    log_dir = Path(settings.VAR_DIR) / "bench-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    # CAMPUSCARD_BENCH_PROFILE=<dir>: run daphne under cProfile (its event-loop thread),
    # written to <dir>/<name>-daphne.prof when it stops.
    profile = os.environ.get("CAMPUSCARD_BENCH_PROFILE")
    ports = [_free_port() for _ in range(web)]
    webs: list[subprocess.Popen[bytes]] = []
    with open(log_dir / f"{name}-processor.log", "ab") as proc_log:
        for n, port in enumerate(ports):
            suffix = f"-{n + 1}" if web > 1 else ""
            wrap = ["-m", "cProfile", "-o", str(Path(profile) / f"{name}-daphne{suffix}.prof")] if profile else []
            with open(log_dir / f"{name}-daphne{suffix}.log", "ab") as web_log:
                daphne = ["-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "ops.asgi:application"]
                webs.append(
                    subprocess.Popen(
                        [sys.executable, *wrap, *daphne],
                        env=env,
                        stdout=web_log,
                        stderr=web_log,
                    )
                )
        processor = subprocess.Popen(
            [sys.executable, "-m", "ops.cli", "process", "--name", f"bench-{name}"],
            env=env,
            stdout=proc_log,
            stderr=proc_log,
        )
    stack = Stack([f"http://127.0.0.1:{port}" for port in ports], webs, processor, BENCH_USER, password, log_dir)
    try:
        for base, proc in zip(stack.bases, webs, strict=True):
            wait_http(f"{base}/healthz", proc=proc)
        yield stack
    finally:
        _stop(processor)
        for proc in webs:
            _stop(proc)


def log_in(stack: Stack) -> tuple[str, dict[str, Any]]:
    """Log in through the Django login form (with its CSRF token), as a browser does; open the
    gate page once. Returns the Cookie header for the websocket and the page's persistent
    callback (from ``_dash-dependencies``)."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    login_url = f"{stack.base}/accounts/login/?next={urllib.parse.quote(PAGE)}"
    form = opener.open(login_url, timeout=30).read().decode()
    token = re.findall(r'name="csrfmiddlewaretoken" value="([^"]+)"', form)[-1]
    data = urllib.parse.urlencode(
        {"csrfmiddlewaretoken": token, "username": stack.username, "password": stack.password, "next": PAGE}
    ).encode()
    request = urllib.request.Request(  # noqa: S310 (our own http:// server)
        login_url, data=data, headers={"Referer": login_url}
    )
    with opener.open(request, timeout=30) as response:
        if urllib.parse.urlparse(response.url).path != PAGE:
            raise RuntimeError(f"login did not reach {PAGE} (landed on {response.url})")
        page = response.read().decode()
    found = re.search(r'<script id="_dash-config" type="application/json">(.*?)</script>', page, re.S)
    if found is None:
        raise RuntimeError(f"{PAGE} has no Dash config")
    config = json.loads(found.group(1))
    opener.open(f"{stack.base}{PAGE}_dash-layout", timeout=30).read()
    deps = json.loads(opener.open(f"{stack.base}{PAGE}_dash-dependencies", timeout=30).read())
    persistent = [d for d in deps if d.get("persistent")]
    if len(persistent) != 1:
        raise RuntimeError(f"expected one persistent callback on {PAGE}, found {len(persistent)}")
    cookie = "; ".join(f"{c.name}={c.value}" for c in jar)
    return cookie, {"callback": persistent[0], "ws_path": config["websocket"]["url"]}


# -- taps --------------------------------------------------------------------------------------
def gate_simulator(rate: float, *, seed: int = 11) -> Any:
    """A flat-rate simulator over the campus gates only, without device trouble."""

    gates = [d for d in selectors.doors() if d.kind in GATE_KINDS]
    quiet = Trouble(device_fault_per_s=0, device_silence_per_s=0)
    return CampusSimulator(
        selectors.credentials(),
        gates,
        rate=rate,
        rhythmic=False,
        trouble=quiet,
        heartbeat_s=5.0,
        seed=seed,
        keys=selectors.device_keys(),
    )


@dataclass
class TapFlow:
    """Publishes the simulator's taps every ``TICK_S`` until ``stop`` (or ``seconds``)."""

    sim: Any
    remember: bool = True  # keep id → occurred time of every tap
    occurred: dict[str, float] = field(default_factory=dict)
    taps: int = 0
    started: float = 0.0
    last_tap: float = 0.0
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self, seconds: float) -> None:
        redis_client = client()
        self.started = last = time.time()
        while not self.stop.is_set() and (now := time.time()) - self.started < seconds:
            events = self.sim.step(now, now - last)
            last = now
            if events:
                producer.publish(redis_client, events, self.sim.keys, partitions=settings.EVENT_PARTITIONS)
                for event in events:
                    if isinstance(event, envelopes.Tap):
                        self.taps += 1
                        self.last_tap = event.occurred_at.timestamp()
                        if self.remember:
                            self.occurred[str(event.event_id)] = self.last_tap
            time.sleep(max(0.0, TICK_S - (time.time() - now)))

    def start(self, seconds: float) -> threading.Thread:
        thread = threading.Thread(target=self.run, args=(seconds,), name="taps", daemon=True)
        thread.start()
        return thread


def committed_since(since: float) -> tuple[int, float | None]:
    """Access events the processor committed since ``since`` (epoch s), and the last one's
    commit time (the scratch database holds only the bench's taps)."""
    from django.db import connection
    from django.db.models import Count, Max

    try:
        agg = AccessEvent.objects.filter(received_at__gte=datetime.fromtimestamp(since, UTC)).aggregate(
            n=Count("id"), last=Max("received_at")
        )
    finally:
        connection.close()
    return agg["n"], agg["last"].timestamp() if agg["last"] else None


def wait_committed(since: float, expected: int, timeout: float = 60.0) -> tuple[int, float | None]:
    deadline = time.monotonic() + timeout
    while True:
        count, last = committed_since(since)
        if count >= expected or time.monotonic() > deadline:
            return count, last
        time.sleep(0.2)


def stream_pending() -> int:
    """Entries the processor's consumer group has not finished (read but not acknowledged, or
    not read yet)."""

    total, redis_client = 0, client()
    for p in range(settings.EVENT_PARTITIONS):
        try:
            groups = redis_client.xinfo_groups(names.events_stream(p))
        except redis.ResponseError:  # no such partition yet
            continue
        for group in groups:
            if group["name"] in (names.PROCESSOR_GROUP, names.PROCESSOR_GROUP.encode()):
                total += int(group.get("pending") or 0) + int(group.get("lag") or 0)
    return total


# -- the dashboards ----------------------------------------------------------------------------
@dataclass
class PageStats:
    renderer_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    live: asyncio.Event = field(default_factory=asyncio.Event)
    seen: dict[str, float] = field(default_factory=dict)  # tap id → first arrival on this page
    frames: list[float] = field(default_factory=list)  # arrival of each feed update
    frame_bytes: int = 0
    messages: int = 0
    errors: list[str] = field(default_factory=list)
    closed: str | None = None


class WebSocketClient:
    """What the browser's websocket is to the server (the ``websockets`` library): one upgrade
    with the page's Origin and the session cookie, text frames both ways, pings answered.
    (autobahn cannot be used here: daphne has already bound txaio to Twisted.)"""

    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection

    @classmethod
    async def connect(cls, host: str, port: int, path: str, *, origin: str, cookie: str) -> WebSocketClient:
        connection = await websockets.asyncio.client.connect(
            f"ws://{host}:{port}{path}",
            origin=websockets.typing.Origin(origin),
            additional_headers={"Cookie": cookie},
            compression=None,  # as measured before: frame sizes are the page's, not deflate's
            max_size=2**24,
            ping_interval=None,  # the server's pings are answered; the page sends no pings of its own
            proxy=None,
        )
        return cls(connection)

    async def send(self, data: bytes) -> None:
        await self.connection.send(data.decode())  # Dash reads text frames

    async def receive(self) -> bytes | None:
        """The next whole message; None once the connection is closed."""
        try:
            message = await self.connection.recv()
        except websockets.exceptions.ConnectionClosed:
            return None
        return message.encode() if isinstance(message, str) else message

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.connection.close(reason="Client disconnect")


class Dashboards:
    """``count`` gate pages, each a websocket client running the page's persistent callback,
    on one event loop in a thread of their own; with several daphne processes the pages are
    dealt round-robin over them (as a load balancer does)."""

    def __init__(self, stack: Stack, cookie: str, page_info: dict[str, Any], count: int) -> None:
        self.stack, self.cookie, self.info, self.count = stack, cookie, page_info, count
        self.loop = asyncio.new_event_loop()
        self.pages: list[PageStats] = []
        self.sockets: list[WebSocketClient] = []
        self._heartbeat_task: asyncio.Task[None] | None = None
        self._thread = threading.Thread(target=self.loop.run_forever, name="dashboards", daemon=True)

    def open(self, timeout: float = 90.0) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._open(timeout), self.loop).result(timeout + 10)

    async def _open(self, timeout: float) -> None:
        # Desks open their pages a few at a time (as people do), not all in one instant.
        gate = asyncio.Semaphore(OPENING_AT_ONCE)

        async def connect(n: int) -> None:
            page = PageStats()
            self.pages.append(page)
            base = self.stack.bases[n % len(self.stack.bases)]
            host, port = urllib.parse.urlparse(base).netloc.split(":")
            async with gate:
                path = self.info["ws_path"]
                ws = await WebSocketClient.connect(host, int(port), path, origin=base, cookie=self.cookie)
                self.sockets.append(ws)
                await ws.send(
                    json.dumps(
                        {  # what the renderer sends to start the persistent callback
                            "type": "callback_request",
                            "rendererId": page.renderer_id,
                            "requestId": f"{page.renderer_id}-1",
                            "payload": {
                                "output": self.info["callback"]["output"],
                                "inputs": [],
                                "changedPropIds": [],
                                "parsedChangedPropsIds": [],
                            },
                        }
                    ).encode()
                )
                self.loop.create_task(self._receive(ws, page))
                await page.live.wait()

        await asyncio.wait_for(asyncio.gather(*(connect(n) for n in range(self.count))), timeout)
        broken = [p.errors[0] if p.errors else p.closed for p in self.pages if p.errors or p.closed]
        if broken:
            raise RuntimeError(f"{len(broken)} of {self.count} page(s) stopped: {broken[0]}")
        self._heartbeat_task = self.loop.create_task(self._heartbeats())

    @staticmethod
    async def _receive(ws: WebSocketClient, page: PageStats) -> None:
        while (payload := await ws.receive()) is not None:
            now = time.time()
            page.messages += 1
            if b'"gates-feed"' in payload:
                page.frames.append(now)
                page.frame_bytes += len(payload)
            for raw in EVENT_ID.findall(payload):
                key = raw.decode()
                if key not in page.seen:
                    page.seen[key] = now
            if not page.live.is_set() and b"status live" in payload:
                page.live.set()
            if b'"callback_response"' in payload:  # the persistent callback ended
                page.errors.append(payload[:500].decode(errors="replace"))
                page.live.set()
        page.closed = "closed"
        page.live.set()  # never wait for a page that is gone

    async def _heartbeats(self) -> None:
        while True:  # the Dash websocket worker's keep-alive
            await asyncio.sleep(HEARTBEAT_S)
            for ws in self.sockets:
                await ws.send(b'{"type":"heartbeat"}')

    def close(self) -> None:
        async def _close() -> None:
            if self._heartbeat_task is not None:
                self._heartbeat_task.cancel()
            await asyncio.gather(*(ws.close() for ws in self.sockets))
            await asyncio.sleep(0.5)

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(_close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)


# -- the benchmark -----------------------------------------------------------------------------
def _web_rss(stack: Stack) -> float:
    return round(sum(rss_mb(proc.pid) for proc in stack.webs), 1)


def _web_cpu(stack: Stack) -> float:
    return sum(cpu_seconds(proc.pid) for proc in stack.webs)


def run(*, clients: int, rate: float, seconds: float, web: int = 1) -> dict[str, Any]:
    load_before = os.getloadavg()[0]
    with live_stack("fanout", web=web) as stack:
        cookie, info = log_in(stack)
        rss_idle = _web_rss(stack)
        pages = Dashboards(stack, cookie, info, clients)
        listener = Listener([names.GROUP_GATES])  # tap → Channels layer, for the breakdown
        listener.start()
        pages.open()
        sim = gate_simulator(rate)
        time.sleep(2.0)  # connections settled, first frames drawn
        rss_before = _web_rss(stack)
        cpu0 = {
            "web": _web_cpu(stack),
            "proc": cpu_seconds(stack.processor.pid),
            "bench": sum(os.times()[:2]),
            "wall": time.time(),
        }
        flow = TapFlow(sim)
        flow.run(seconds)
        t_end = time.time()
        cpu1 = {
            "web": _web_cpu(stack),
            "proc": cpu_seconds(stack.processor.pid),
            "bench": sum(os.times()[:2]),
            "wall": time.time(),
        }
        committed, last_commit = wait_committed(flow.started, flow.taps)
        lag_end = pending_end = None
        if last_commit is not None:
            lag_end = max(0.0, last_commit - flow.last_tap)
        pending_end = stream_pending()
        time.sleep(max(1.5, 6 * 0.25))  # the last frames reach the pages
        rss_after = _web_rss(stack)
        pages.close()
        listener.close()

    offered = flow.occurred
    latencies: list[float] = []
    per_client: list[int] = []
    frame_gaps: list[float] = []
    frames = frame_bytes = 0
    for page in pages.pages:
        shown = [(page.seen[i] - ts) * 1000 for i, ts in offered.items() if i in page.seen]
        latencies.extend(shown)
        per_client.append(len(shown))
        during = [t for t in page.frames if flow.started <= t <= t_end]
        frame_gaps.extend(b - a for a, b in zip(during, during[1:], strict=False))
        frames += len(page.frames)
        frame_bytes += page.frame_bytes
    latencies.sort()
    layer = sorted(listener.latencies[i] * 1000 for i in offered if i in listener.latencies)
    errors = [e for p in pages.pages for e in p.errors]
    elapsed = cpu1["wall"] - cpu0["wall"]
    duration = (last_commit - flow.started) if last_commit else float("nan")
    figures: dict[str, Any] = {
        "clients": clients,
        "web_processes": web,
        "events_per_s": round(committed / duration, 1) if last_commit else 0.0,
        "offered_per_s": round(flow.taps / (t_end - flow.started), 1),
        "seconds": seconds,
        "taps_offered": flow.taps,
        "taps_committed": committed,
        "p50_ms": round(percentile(latencies, 50), 1),
        "p95_ms": round(percentile(latencies, 95), 1),
        "p99_ms": round(percentile(latencies, 99), 1),
        "max_ms": round(latencies[-1], 1) if latencies else None,
        "taps_seen_fraction": round(len(latencies) / (clients * len(offered)), 4) if offered else 0,
        "min_client_seen_fraction": round(min(per_client) / len(offered), 4) if offered else 0,
        "clients_seeing_taps": sum(1 for n in per_client if n),
        "layer_p50_ms": round(percentile(layer, 50), 1),
        "layer_p99_ms": round(percentile(layer, 99), 1),
        "frame_interval_ms": round(1000 * sum(frame_gaps) / len(frame_gaps), 1) if frame_gaps else None,
        "frame_interval_p99_ms": round(1000 * percentile(sorted(frame_gaps), 99), 1) if frame_gaps else None,
        "frame_kb": round(frame_bytes / frames / 1024, 1) if frames else None,
        "processor_lag_s": round(lag_end, 3) if lag_end is not None else None,
        "stream_pending_end": pending_end,
        "daphne_rss_idle_mb": rss_idle,
        "daphne_rss_before_mb": rss_before,
        "daphne_rss_after_mb": rss_after,
        "daphne_cpu_pct": round(100 * (cpu1["web"] - cpu0["web"]) / elapsed, 1),
        "processor_cpu_pct": round(100 * (cpu1["proc"] - cpu0["proc"]) / elapsed, 1),
        "bench_cpu_pct": round(100 * (cpu1["bench"] - cpu0["bench"]) / elapsed, 1),
        "page_errors": len(errors),
        "load_1m_before": round(load_before, 2),
    }
    if errors:
        print("page errors (first):", errors[0], file=sys.stderr)
    return figures
