"""Shared plumbing for ``campuscard bench …``: a scratch system, figures, the record file."""

from __future__ import annotations

import json
import multiprocessing
import os
import platform
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ops.paths import PROJECT_ROOT
from readers.agent.agent import ReaderAgent, client_factory
from readers.agent.config import parse_config
from streams import embedded_redis

CHILD_FLAG = "CAMPUSCARD_BENCH_CHILD"


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores ({cpu}), {mem_gib:.0f} GiB, {platform.system()} {platform.release()}"


def slope_per_10min(points: Sequence[tuple[float, float]]) -> float | None:
    """Least-squares growth of y per 10 minutes (t in seconds); None for fewer than 2 points."""
    if len(points) < 2:
        return None
    n = len(points)
    mt = sum(t for t, _ in points) / n
    my = sum(y for _, y in points) / n
    var = sum((t - mt) ** 2 for t, _ in points)
    if not var:
        return None
    return sum((t - mt) * (y - my) for t, y in points) / var * 600


def percentile(values: Sequence[float], pct: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=1000, method="inclusive")[int(pct * 10) - 1]


def rerun_in_scratch_system(argv: list[str], *, database_url: str | None, redis_url: str | None) -> int:
    """Run this bench again in a child process bound to a throw-away database and Redis, so a
    benchmark never touches live data. Returns the child's exit code."""
    scratch = Path(tempfile.mkdtemp(prefix="campuscard-bench-"))
    env = dict(os.environ, CAMPUSCARD_VAR_DIR=str(scratch), **{CHILD_FLAG: "1"})
    env["DATABASE_URL"] = database_url or f"sqlite:///{scratch / 'bench.sqlite3'}"
    if redis_url:
        env["REDIS_URL"] = redis_url
    else:
        env.pop("REDIS_URL", None)  # the embedded server, private to the scratch directory
    try:
        return subprocess.call([sys.executable, "-m", "ops.cli", *argv], env=env)
    finally:
        if not redis_url:
            embedded_redis.stop(scratch / "redis")


def record(title: str, figures: dict[str, Any], notes: str = "") -> Path:
    """Append the figures with machine and date to docs/benchmarks.md."""
    path = PROJECT_ROOT / "docs" / "benchmarks.md"
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"\n### {title} — {stamp}\n", f"Machine: {machine()}\n\n", "| figure | value |\n|---|---|\n"]
    lines += [f"| {k} | {v} |\n" for k, v in figures.items()]
    if notes:
        lines.append(f"\n{notes}\n")
    with path.open("a", encoding="utf-8") as fh:
        fh.writelines(lines)
    return path


def emit(figures: dict[str, Any], as_json: bool, write: Any) -> None:
    for key, value in figures.items():
        write(f"{key:>16}: {value}")
    if as_json:
        write(json.dumps(figures))


def wait_http(url: str, timeout: float = 60.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Wait until ``url`` answers; fail at once if the server ``proc`` exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before answering {url}")
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 (localhost only)
                return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer in {timeout}s")


# ---------------------------------------------------------------- a fleet of reader agents
# (``bench revocation`` and ``bench emergency``: real ``ReaderAgent``s hosted in a few OS
# processes, the relay as a separate process)


def start_relay(ready: Callable[[], bool], failure: str) -> subprocess.Popen[bytes]:
    """``campuscard relay`` as a separate process; returns once ``ready()`` (what the relay
    made on Redis), or raises ``RuntimeError(failure)`` after 60 s."""
    command = [sys.executable, "-m", "ops.cli", "relay"]
    relay = subprocess.Popen(command, env=dict(os.environ), stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not ready():
        if time.monotonic() > deadline:
            raise RuntimeError(failure)
        time.sleep(0.1)
    return relay


def start_bench_agents(
    first: int,
    count: int,
    redis_url: str,
    state: Path,
    keys: list[str],
    watch: Callable[[ReaderAgent, int], None],
    **door: str,
) -> list[ReaderAgent]:
    """Reader agents ``BENCH-<first>`` … (one pedestrian gate each, ``door`` added to it), each
    with its own state directory under ``state``, trusting the feed keys ``keys`` (issue 12);
    each handed to ``watch(agent, index)`` before it starts."""
    agents = []
    for i in range(first, first + count):
        config = parse_config(
            {
                "redis_url": redis_url,
                "feed_keys": keys,
                "state_dir": str(state / f"r{i}"),
                "heartbeat_s": 3600,
                "doors": [
                    {
                        "device_id": f"BENCH-{i:04d}",
                        "key_hex": secrets.token_hex(32),
                        "kind": "pedestrian_gate",
                        **door,
                        "direction": "in",
                    }
                ],
            }
        )
        agent = ReaderAgent(config, client_factory(redis_url), sources=[])
        watch(agent, i)
        agent.start()
        agents.append(agent)
    return agents


def serve_fleet(agents: list[ReaderAgent], ready: Callable[[], bool], pipe: Any, received: Any) -> None:
    """In a fleet process: once ``ready()``, say so on ``pipe``; on the parent's word close
    every agent and send back what they ``received``."""
    while not ready():
        time.sleep(0.1)
    pipe.send("ready")
    pipe.recv()
    with ThreadPoolExecutor(64) as pool:  # each close waits for its sync thread's XREAD
        list(pool.map(lambda agent: agent.close(), agents))
    pipe.send(received)


def fork_fleet(
    target: Callable[..., None], readers: int, processes: int, args: Callable[[int, int, Any], tuple[Any, ...]]
) -> tuple[list[Any], list[Any]]:
    """``readers`` agents over at most ``processes`` forked processes (readers are separate
    controllers in reality: no interpreter lock shared between them), each running
    ``target(*args(first, count, pipe))``; returns the parent's pipes and the processes."""
    from django.db import connections

    connections.close_all()  # a forked child must not share the parent's database connection
    context = multiprocessing.get_context("fork")
    pipes, workers = [], []
    per = -(-readers // processes)
    for first in range(0, readers, per):
        parent, child = context.Pipe()
        worker = context.Process(target=target, daemon=True, args=args(first, min(per, readers - first), child))
        worker.start()
        pipes.append(parent)
        workers.append(worker)
    return pipes, workers


def await_fleet(pipes: list[Any], failure: str) -> None:
    """Every fleet process said it is ready (5 minutes at most), or ``RuntimeError(failure)``."""
    for pipe in pipes:
        if not pipe.poll(300) or pipe.recv() != "ready":
            raise RuntimeError(failure)


def collect_fleet(pipes: list[Any]) -> dict[Any, dict[int, Any]]:
    """Stop every fleet process's agents; what each reader received, merged by key."""
    received: dict[Any, dict[int, Any]] = {}
    for pipe in pipes:
        pipe.send("stop")
    for pipe in pipes:
        for key, per_reader in pipe.recv().items():
            received.setdefault(key, {}).update(per_reader)
    return received


def end_fleet(workers: list[Any], relay: subprocess.Popen[bytes]) -> None:
    for worker in workers:
        worker.join(60)
    relay.send_signal(signal.SIGTERM)
    relay.wait(15)
