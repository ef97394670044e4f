"""An emulated contactless card for the vpcd virtual reader (Debian package ``vsmartcard-vpcd``),
so the real PC/SC stack — pcscd, its reader driver, pyscard — can be driven without hardware.

How it plugs in: pcscd loads the vpcd driver (``/etc/reader.conf.d/vpcd``), which exposes
readers named ``Virtual PCD 00 00``, ``Virtual PCD 00 01``, ... and, for each, *listens* on a TCP
port (35963 for slot 00, 35964 for slot 01, ...; the config's ``CHANNELID 0x8C7B`` is 35963).
A virtual card is a TCP *client*: connecting is placing the card on the reader, disconnecting is
lifting it off. (vpcd listens on all interfaces: keep these ports firewalled on a real host.)

Wire protocol (both directions): frames of a 2-byte big-endian length, then the payload.
vpcd → card:

* 1-byte control messages: ``0`` power off, ``1`` power on, ``2`` reset — no answer;
  ``4`` get ATR — answered with the ATR (vpcd polls this to know the card is still there).
* anything longer is a command APDU, answered with the response APDU (data + SW1 SW2).

This card answers the PC/SC part 3 pseudo-APDU ``FF CA 00 00 00`` (GET DATA: UID), as a
contactless desk or door reader does, with its UID + ``90 00``; ``FF CA 00 00 Le`` with a
non-zero ``Le`` gets the UID cut to ``Le`` bytes. Every other command gets ``6D 00`` (INS not
supported), or ``6A 81`` (function not supported) for other ``FF CA`` variants. The ATR is the
PC/SC part 3 one for an ISO 14443 card as a contactless reader builds it.

Run one by hand until Ctrl-C (or SIGTERM)::

    python -m tests.card_emulator --uid 04A1B2C3D4 [--port 35963]
"""

from __future__ import annotations

import argparse
import logging
import signal
import socket
import struct
import sys
import threading
import time

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 35963
#: PC/SC part 3 ATR of a contactless (ISO 14443) storage card as a PC/SC reader reports it.
DEFAULT_ATR = bytes.fromhex("3B8F8001804F0CA000000306030001000000006A")

CTRL_POWER_OFF = 0
CTRL_POWER_ON = 1
CTRL_RESET = 2
CTRL_GET_ATR = 4

SW_OK = b"\x90\x00"
SW_FUNCTION_NOT_SUPPORTED = b"\x6a\x81"
SW_INS_NOT_SUPPORTED = b"\x6d\x00"
_QUICKACK = getattr(socket, "TCP_QUICKACK", None)  # Linux only


def answer_apdu(uid: bytes, apdu: bytes) -> bytes:
    """The response APDU this card gives to ``apdu``."""
    if len(apdu) >= 4 and apdu[0] == 0xFF and apdu[1] == 0xCA:
        if apdu[2] != 0x00 or apdu[3] != 0x00:  # P1=01 would be "historical bytes": not kept
            return SW_FUNCTION_NOT_SUPPORTED
        le = apdu[4] if len(apdu) >= 5 else 0
        return (uid[:le] if le else uid) + SW_OK
    return SW_INS_NOT_SUPPORTED


def _recv_exact(sock: socket.socket, n: int) -> bytes | None:
    buf = bytearray()
    while len(buf) < n:
        if _QUICKACK is not None:
            # vpcd writes the length and the payload in two writes: with Nagle on its side and a
            # delayed ACK on ours, each command would wait ~40 ms for the second segment.
            sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
        chunk = sock.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


class EmulatedCard:
    """A card that can be placed on (``insert()``) and lifted off (``remove()``) a vpcd reader.

    The connection is served by a daemon thread. ``insert()`` returns once connected; the reader
    sees the card at pcscd's next presence poll (~0.4 s). Usable as a context manager (closes on
    exit). ``commands`` records every APDU received, for tests.
    """

    def __init__(self, uid: str, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, atr: bytes = DEFAULT_ATR) -> None:
        cleaned = uid.replace(" ", "").replace(":", "")
        try:
            self.uid = bytes.fromhex(cleaned)
        except ValueError:
            raise ValueError(f"uid must be hex, got {uid!r}") from None
        if not 1 <= len(self.uid) <= 10:
            raise ValueError(f"uid must be 1 to 10 bytes (ISO 14443: 4, 7 or 10), got {len(self.uid)}")
        self.host = host
        self.port = port
        self.atr = atr
        self.powered = False
        self.commands: list[bytes] = []
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = False

    @property
    def uid_hex(self) -> str:
        return self.uid.hex().upper()

    @property
    def inserted(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive()

    def insert(self, timeout: float = 5.0) -> None:
        """Place the card on the reader: connect to vpcd (retrying while it is not listening yet,
        e.g. just after pcscd started). Raises ``ConnectionError`` after ``timeout`` seconds."""
        with self._lock:
            if self._closed:
                raise RuntimeError("EmulatedCard is closed")
            if self.inserted:
                return
            deadline = time.monotonic() + timeout
            while True:
                try:
                    sock = socket.create_connection((self.host, self.port), timeout=1.0)
                    break
                except OSError as exc:
                    if time.monotonic() >= deadline:
                        raise ConnectionError(
                            f"vpcd is not listening on {self.host}:{self.port} ({exc}); is pcscd running "
                            "with the vsmartcard-vpcd driver?"
                        ) from exc
                    time.sleep(0.1)
            sock.settimeout(None)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._sock = sock
            self._thread = threading.Thread(
                target=self._serve, args=(sock,), daemon=True, name=f"emulated-card-{self.uid_hex}"
            )
            self._thread.start()
            log.debug("card %s placed on vpcd %s:%s", self.uid_hex, self.host, self.port)

    def remove(self) -> None:
        """Lift the card off the reader (disconnect). Idempotent."""
        with self._lock:
            sock, thread = self._sock, self._thread
            self._sock = self._thread = None
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()
            if thread is not None and thread is not threading.current_thread():
                thread.join(timeout=5)
            self.powered = False

    def close(self) -> None:
        self.remove()
        self._closed = True

    def __enter__(self) -> EmulatedCard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _serve(self, sock: socket.socket) -> None:
        try:
            while True:
                header = _recv_exact(sock, 2)
                if header is None:
                    break
                (length,) = struct.unpack(">H", header)
                payload = _recv_exact(sock, length) if length else b""
                if payload is None:
                    break
                answer = self._handle(payload)
                if answer is not None:
                    sock.sendall(struct.pack(">H", len(answer)) + answer)
        except OSError:
            pass  # remove() closed the socket, or vpcd went away
        log.debug("card %s: connection closed", self.uid_hex)

    def _handle(self, payload: bytes) -> bytes | None:
        if len(payload) == 1:
            ctrl = payload[0]
            if ctrl == CTRL_GET_ATR:
                return self.atr
            if ctrl in (CTRL_POWER_ON, CTRL_RESET):
                self.powered = True
            elif ctrl == CTRL_POWER_OFF:
                self.powered = False
            else:
                log.warning("card %s: unknown vpcd control message %d", self.uid_hex, ctrl)
            return None
        self.commands.append(payload)
        return answer_apdu(self.uid, payload)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.card_emulator",
        description="Place an emulated contactless card on a vpcd virtual reader.",
    )
    parser.add_argument("--uid", required=True, help="card UID in hex, e.g. 04A1B2C3D4")
    parser.add_argument("--host", default=DEFAULT_HOST)
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help="vpcd port: 35963 for 'Virtual PCD 00 00', 35964 for '... 00 01'"
    )
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(levelname)s %(message)s"
    )
    try:
        card = EmulatedCard(args.uid, host=args.host, port=args.port)
    except ValueError as exc:
        parser.error(str(exc))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # lift the card off cleanly on `kill`
    try:
        card.insert(timeout=10)
        log.info("card %s on vpcd %s:%d; Ctrl-C to lift it off", card.uid_hex, args.host, args.port)
        while card.inserted:
            time.sleep(0.2)
        log.info("vpcd closed the connection")
        return 1
    except KeyboardInterrupt:
        return 0
    except ConnectionError as exc:
        log.error("%s", exc)
        return 1
    finally:
        card.close()


if __name__ == "__main__":
    raise SystemExit(main())
