"""A SIP2 client written from the 3M spec (its own checksum and parsing, not the server's
library), and a real `campuscard sip2` process for tests (issue 18, Build 5)."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.utils import timezone

from tests.browser import free_port
from tests.conftest import campuscard_cmd

LOGIN, PASSWORD = "LIB-SC01", "sc01-secret-pw"


def checksum(data: bytes) -> str:
    """3M SIP2: the two's complement of the 16-bit sum of every byte up to and including 'AZ'."""
    return f"{(-sum(data)) & 0xFFFF:04X}"


class Reply:
    """One ACS message: its command id, fixed part and identified fields."""

    def __init__(self, raw: bytes, fixed: int) -> None:
        assert raw.endswith(b"\r"), raw
        self.raw = raw
        body = raw[:-1]
        if b"AZ" in body[-6:]:  # error detection: AZ + 4 hex digits, verified here
            assert (sum(body[:-4]) + int(body[-4:], 16)) & 0xFFFF == 0, f"bad checksum from the server: {raw!r}"
        text = body.decode("utf-8")
        self.command = text[:2]
        self.fixed = text[2 : 2 + fixed]
        self.fields: dict[str, list[str]] = {}
        rest = text[2 + fixed :]
        trailer = rest.rfind("AY")
        if trailer != -1 and rest[trailer + 3 : trailer + 5] == "AZ":
            self.fields["AY"] = [rest[trailer + 2]]
            rest = rest[:trailer]
        elif rest.startswith("AZ"):
            rest = ""
        for part in rest.split("|"):
            if part:
                self.fields.setdefault(part[:2], []).append(part[2:])

    def field(self, fid: str) -> str:
        return self.fields[fid][0]


FIXED = {"94": 1, "98": 6 + 3 + 3 + 18 + 4, "24": 14 + 3 + 18, "64": 14 + 3 + 18 + 24, "96": 0}


class SIP2Client:
    """A self-check / circulation client: sequence numbers 0–9 in turn, each message checksummed."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.seq = 0
        self.buffer = b""

    def close(self) -> None:
        self.sock.close()

    def frame(self, body: str, *, seq: int | None = None) -> bytes:
        seq = self.seq if seq is None else seq
        self.seq = (self.seq + 1) % 10
        data = f"{body}AY{seq}AZ".encode()
        return data + checksum(data).encode() + b"\r"

    def send(self, raw: bytes) -> Reply | None:
        self.sock.sendall(raw)
        return self.receive()

    def receive(self) -> Reply | None:
        while b"\r" not in self.buffer:
            chunk = self.sock.recv(4096)
            if not chunk:
                return None  # the server closed the connection
            self.buffer += chunk
        raw, _, self.buffer = self.buffer.partition(b"\r")
        return Reply(raw + b"\r", FIXED[raw[:2].decode()])

    def request(self, body: str) -> Reply:
        frame = self.frame(body)
        reply = self.send(frame)
        assert reply is not None, f"no answer to {frame!r}"
        assert reply.field("AY") == chr(frame[frame.index(b"AY") + 2]), (
            "the answer carries the request's sequence number"
        )
        return reply

    def login(self, user: str = LOGIN, password: str = PASSWORD) -> Reply:
        return self.request(f"9300CN{user}|CO{password}|CPLIB-1F|")

    def patron_status(self, patron: str, language: str = "019") -> Reply:
        return self.request(f"23{language}{sip2_now()}AOCAMPUSLIB|AA{patron}|AC|AD|")

    def patron_information(self, patron: str, language: str = "019") -> Reply:
        return self.request(f"63{language}{sip2_now()}{' ' * 10}AOCAMPUSLIB|AA{patron}|")


def sip2_now() -> str:
    return timezone.localtime().strftime("%Y%m%d    %H%M%S")


def wait_for_port(port: int, proc: subprocess.Popen, log: Path, timeout: float = 30) -> None:
    """Until the process listens on ``port`` (it must not exit meanwhile)."""
    deadline = time.monotonic() + timeout
    while True:
        assert proc.poll() is None, log.read_text()[-3000:]
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)


@contextmanager
def running_sip2(subprocess_env: dict[str, str], log: Path) -> Iterator[int]:
    """A real `campuscard sip2` on a free port (two SC accounts); stopped with SIGTERM, which it
    must survive cleanly (exit 0)."""
    port = free_port()
    env = dict(
        subprocess_env,
        SIP2_ACCOUNTS=f"{LOGIN}:{PASSWORD},LIB-SC02:other-secret-pw",
        SIP2_BIND="127.0.0.1",
        SIP2_PORT=str(port),
        SIP2_LOGIN_FAILURE_DELAY_MS="50",
    )
    with log.open("w") as out:
        proc = subprocess.Popen(campuscard_cmd("sip2"), env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, proc, log)
        yield port
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
        assert code == 0, log.read_text()[-3000:]
        assert "sip2 stopped" in log.read_text()
