"""The one small interface every card source (a PC/SC reader, later perhaps a serial or network
controller) sits behind.

Contract
--------
``source.start(callback)``
    Begins watching. Returns once the source is watching (or raises :class:`SourceError`).
    From then on ``callback(CardPresented(...))`` is called once per card *placed* on a reader,
    on a thread the source owns (not the caller's): the callback must be quick and thread-safe
    (hand the event to a queue, a stream producer, ...). An exception raised by the callback is
    logged and swallowed; it never stops the source. Starting a started source raises
    ``SourceError(permanent=True)`` (a programming error).
``source.stop()``
    Stops watching; no callback runs after it returns. Idempotent; never raises.

Errors are :class:`SourceError` with ``permanent`` saying whether retrying can help:
``permanent=False`` — try again (a timeout, a card lifted mid-read, a reader unplugged for a
moment); ``permanent=True`` — this will not fix itself (no PC/SC service, no reader at all, the
driver library is not installed): tell an operator. Problems while watching (a card that could
not be read) go to the optional ``on_error`` callback given to the source, and are logged.

A :class:`CardPresented` carries the reader's name (several readers may share one host: the
name says which door or desk), the card UID as upper-case hex without separators, and when it
was read as an aware UTC datetime.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CardPresented:
    reader: str
    uid: str  # upper-case hex, e.g. "04A1B2C3D4"
    at: datetime  # aware, UTC

    def __post_init__(self) -> None:
        if self.at.tzinfo is None or self.at.utcoffset() is None:
            raise ValueError("CardPresented.at must be an aware datetime")
        if not self.uid or self.uid != self.uid.upper() or any(c not in "0123456789ABCDEF" for c in self.uid):
            raise ValueError(f"CardPresented.uid must be upper-case hex, got {self.uid!r}")

    @classmethod
    def now(cls, reader: str, uid: bytes | str) -> CardPresented:
        """A report stamped with the current UTC time; ``uid`` as raw bytes or hex."""
        hex_uid = uid.hex() if isinstance(uid, bytes | bytearray) else uid.replace(" ", "").replace(":", "")
        return cls(reader=reader, uid=hex_uid.upper(), at=datetime.now(UTC))


class SourceError(Exception):
    """A card source failed. ``permanent``: True if retrying cannot help (tell an operator)."""

    def __init__(self, message: str, permanent: bool) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent

    def __str__(self) -> str:
        return f"{self.message} ({'permanent' if self.permanent else 'transient'})"


Callback = Callable[[CardPresented], None]
ErrorCallback = Callable[[SourceError], None]


class CardSource:
    """Base class: see the module docstring for the contract. Subclasses implement
    :meth:`_start` and :meth:`_stop` and call :meth:`_emit` / :meth:`_error` from their thread."""

    def __init__(self, on_error: ErrorCallback | None = None) -> None:
        self._callback: Callback | None = None
        self._on_error = on_error
        # Held while a callback runs and while stop() clears it: no callback runs after stop()
        # returns. Re-entrant so a callback may call stop() itself.
        self._emit_lock = threading.RLock()

    @property
    def running(self) -> bool:
        return self._callback is not None

    def start(self, callback: Callback) -> None:
        if self._callback is not None:
            raise SourceError(f"{self!r} is already started", permanent=True)
        self._callback = callback
        try:
            self._start()
        except BaseException:
            self._callback = None
            raise

    def stop(self) -> None:
        with self._emit_lock:
            if self._callback is None:
                return
            self._callback = None
        try:
            self._stop()
        except Exception:
            log.exception("stopping %r failed", self)

    def _start(self) -> None:
        raise NotImplementedError

    def _stop(self) -> None:
        raise NotImplementedError

    def _emit(self, event: CardPresented) -> None:
        with self._emit_lock:
            callback = self._callback
            if callback is None:  # stopped meanwhile
                return
            try:
                callback(event)
            except Exception:
                log.exception("card source callback failed for %s", event)

    def _error(self, error: SourceError) -> None:
        log.warning("%r: %s", self, error)
        if self._on_error is not None:
            try:
                self._on_error(error)
            except Exception:
                log.exception("card source error callback failed")

    def __enter__(self) -> CardSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
