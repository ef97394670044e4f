"""Shared plumbing for ``campuscard bench …``: a scratch system, figures, the record file."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ops.paths import PROJECT_ROOT
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
