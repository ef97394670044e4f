"""Servers of a test's own (the brief: fault tests kill and restart their own servers, never the
machine's shared ones), and the one way tests wait for something to become true."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import redis

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
PG_USER = "postgres"  # the OS user a private PostgreSQL runs as (it refuses to run as root)


def wait_until(condition: Callable[[], object], timeout: float, what: str, *, step: float = 0.1) -> None:
    """Poll ``condition`` until it is true; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(step)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_redis(directory: Path, *args: str, port: int | None = None) -> tuple[subprocess.Popen[bytes], int]:
    """A redis-server on 127.0.0.1 (a free port unless given) keeping its files in ``directory``;
    no RDB snapshots unless ``args`` say otherwise. Returns once it answers PING (and has loaded
    its AOF, if any)."""
    port = port or free_port()
    directory.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(directory), *args],
        stdout=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port)
    deadline = time.monotonic() + 20
    try:
        while True:
            try:
                client.ping()
                return proc, port
            except (redis.ConnectionError, redis.BusyLoadingError):
                if time.monotonic() > deadline or proc.poll() is not None:
                    proc.kill()
                    raise RuntimeError(f"redis-server on port {port} did not start") from None
                time.sleep(0.05)
    finally:
        client.close()


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _pg_bin(name: str) -> str:
    """``name`` from the newest PostgreSQL installed under /usr/lib/postgresql (Debian's layout)."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(Path(p).parts[-3]))
    if not found:
        raise RuntimeError(f"no /usr/lib/postgresql/*/bin/{name}: install the postgresql package")
    return found[-1]


def start_postgres(directory: Path, port: int | None = None) -> tuple[subprocess.Popen[bytes], int]:
    """A PostgreSQL of the test's own on 127.0.0.1 (a free port unless given), its data and its
    socket in ``directory`` (made by initdb on first use, trust auth, superuser ``postgres``);
    fsync off. Run as the ``postgres`` OS user: ``directory`` is handed to it, so its parents must
    be open to that user (``tempfile.mkdtemp()`` is; pytest's ``tmp_path`` is not). Start it again
    on the same ``directory`` and ``port`` after stopping it (``stop_postgres``: SIGINT, a fast
    shutdown). Returns once ``pg_isready`` says it accepts connections."""
    try:
        user = pwd.getpwnam(PG_USER)
    except KeyError:
        raise RuntimeError(f"no {PG_USER} OS user to run a private PostgreSQL as") from None
    port = port or free_port()
    directory.mkdir(parents=True, exist_ok=True)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
    if not (directory / "PG_VERSION").exists():
        os.chown(directory, user.pw_uid, user.pw_gid)
        directory.chmod(0o700)
        init = subprocess.run(
            [_pg_bin("initdb"), "-D", str(directory), "-A", "trust", "-U", PG_USER, "-E", "UTF8", "--no-sync"],
            capture_output=True,
            env=env,
            cwd=directory,
            user=user.pw_uid,
            group=user.pw_gid,
            extra_groups=[],
        )
        if init.returncode != 0:
            raise RuntimeError(f"initdb failed in {directory}: {init.stderr.decode(errors='replace')[-2000:]}")
    log = (directory / "postgres.log").open("ab")
    proc = subprocess.Popen(
        [
            _pg_bin("postgres"),
            *("-D", str(directory), "-p", str(port), "-k", str(directory)),
            *("-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "max_connections=200"),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=directory,
        user=user.pw_uid,
        group=user.pw_gid,
        extra_groups=[],
    )
    log.close()
    deadline = time.monotonic() + 30
    ready = [_pg_bin("pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(port), "-U", PG_USER, "-t", "1"]
    while subprocess.run(ready, env=env).returncode != 0:
        if time.monotonic() > deadline or proc.poll() is not None:
            stop_postgres(proc)
            tail = (directory / "postgres.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"PostgreSQL on port {port} did not start: {tail}")
        time.sleep(0.05)
    return proc, port


def stop_postgres(proc: subprocess.Popen[bytes]) -> None:
    """A fast shutdown (SIGINT: clients are disconnected, the data is left consistent)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
