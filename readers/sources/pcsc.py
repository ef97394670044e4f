"""The real reader path: PC/SC through ``pyscard`` (optional extra; imported lazily, so the rest of
``readers`` imports without it).

A contactless desk or door reader answers the PC/SC part 3 pseudo-APDU ``FF CA 00 00 00`` with
the UID of the card on it. :class:`PcscSource` watches every reader of the host (or the ones
named) with pyscard's ``CardMonitor``; each card placed is read on the source's own worker
thread and reported as :class:`~readers.sources.base.CardPresented` with the reader's name, so
one agent serves several doors. :func:`read_one_uid` is the issuance desk's "read the card now".

pyscard behaviour this module relies on or works around (pyscard 2.3.1):

* ``CardMonitor`` is a process-wide singleton whose thread starts with the first ``CardMonitor()``
  and never restarts: if pcscd was not running then, or stopped later, the thread is dead for
  good. :func:`_card_monitor` checks the service first and replaces a dead singleton.
* A new observer is told at once (on the caller's thread) about the cards already on the readers
  — so a card lying on the reader when watching starts counts as placed. ``update()`` otherwise
  runs on pyscard's thread; it only queues cards, the reading happens on our worker thread so a
  slow card never delays the events of the other readers.
* The monitor compares (reader, ATR) lists: a card lifted and another card of the same type
  placed before pcscd's next presence poll (~0.4 s) looks like no change and is not reported.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterable
from typing import Any

from readers.sources.base import CardPresented, CardSource, ErrorCallback, SourceError

log = logging.getLogger(__name__)

GET_UID_APDU = [0xFF, 0xCA, 0x00, 0x00, 0x00]
_STOP = object()


def _scard() -> Any:
    try:
        from smartcard import scard
    except ImportError as exc:
        raise SourceError(
            f"pyscard is not installed ({exc}): install the PC/SC extra (scripts/pcsc_setup.sh)", permanent=True
        ) from exc
    return scard


def list_readers() -> list[str]:
    """Names of the PC/SC readers on this host. ``SourceError(permanent=True)`` if pyscard or the
    PC/SC service (pcscd) is missing; an empty list if the service runs but has no reader."""
    scard = _scard()
    hresult, hcontext = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if hresult != scard.SCARD_S_SUCCESS:
        raise SourceError(
            f"no PC/SC service: {scard.SCardGetErrorMessage(hresult).strip()} (is pcscd running?)", permanent=True
        )
    try:
        hresult, names = scard.SCardListReaders(hcontext, [])
        if hresult == scard.SCARD_E_NO_READERS_AVAILABLE:
            return []
        if hresult != scard.SCARD_S_SUCCESS:
            raise SourceError(
                f"cannot list PC/SC readers: {scard.SCardGetErrorMessage(hresult).strip()}",
                permanent=hresult in (scard.SCARD_E_NO_SERVICE, scard.SCARD_E_SERVICE_STOPPED),
            )
        return list(names)
    finally:
        scard.SCardReleaseContext(hcontext)


def _card_monitor() -> Any:
    """pyscard's CardMonitor singleton, with a live monitoring thread."""
    from smartcard import CardMonitoring

    thread = CardMonitoring.CardMonitoringThread.instance
    if CardMonitoring.CardMonitor.instance is not None and (thread is None or not thread.is_alive()):
        log.warning("pyscard's card monitor thread had stopped (PC/SC service went away?): restarting it")
        with CardMonitoring.CardMonitor.lock, CardMonitoring.CardMonitoringThread.lock:
            CardMonitoring.CardMonitor.instance = None
            CardMonitoring.CardMonitoringThread.instance = None
    return CardMonitoring.CardMonitor()


def _monitor_alive() -> bool:
    from smartcard import CardMonitoring

    thread = CardMonitoring.CardMonitoringThread.instance
    return thread is not None and thread.is_alive()


def read_uid(reader: str) -> bytes:
    """Connect to the card on ``reader`` and return its UID (``FF CA 00 00 00``). Raises
    ``SourceError``: transient if the card went away or the exchange failed, permanent if the
    card/reader refuses the command (retrying with this card will not help)."""
    _scard()
    from smartcard.Exceptions import SmartcardException
    from smartcard.pcsc.PCSCReader import PCSCReader

    try:
        connection = PCSCReader(reader).createConnection()
    except SmartcardException as exc:
        raise SourceError(f"{reader}: cannot open a PC/SC context: {exc}", permanent=False) from exc
    try:
        connection.connect()
        data, sw1, sw2 = connection.transmit(GET_UID_APDU)
    except SmartcardException as exc:
        raise SourceError(f"{reader}: reading the card failed (lifted too soon?): {exc}", permanent=False) from exc
    finally:
        try:
            connection.release()  # disconnects, then releases the context
        except SmartcardException:
            log.debug("%s: release failed", reader, exc_info=True)
    if (sw1, sw2) != (0x90, 0x00) or not data:
        raise SourceError(f"{reader}: the card refused GET UID (SW {sw1:02X} {sw2:02X})", permanent=True)
    return bytes(data)


class PcscSource(CardSource):
    """Reports every card placed on the PC/SC readers of this host (or on ``readers`` only).

    ``start()`` raises ``SourceError(permanent=True)`` if pyscard or pcscd is missing, if the
    host has no reader, or if a named reader does not exist. Cards that cannot be read, and the
    PC/SC service going away while watching, go to ``on_error`` (and the log).
    """

    def __init__(self, readers: Iterable[str] | None = None, *, on_error: ErrorCallback | None = None) -> None:
        super().__init__(on_error=on_error)
        self.readers = frozenset(readers) if readers is not None else None
        self._queue: queue.Queue[Any] = queue.Queue()
        self._worker: threading.Thread | None = None
        self._monitor: Any = None
        self._observer: Any = None

    def __repr__(self) -> str:
        return f"PcscSource({sorted(self.readers) if self.readers is not None else 'all readers'})"

    def _start(self) -> None:
        available = list_readers()
        if not available:
            raise SourceError("the PC/SC service has no reader (is one plugged in / configured?)", permanent=True)
        if self.readers is not None and (unknown := self.readers - set(available)):
            raise SourceError(f"no PC/SC reader named {sorted(unknown)}; readers: {available}", permanent=True)

        from smartcard.CardMonitoring import CardObserver

        source = self

        class _Observer(CardObserver):
            def update(self, observable: Any, handlers: Any) -> None:
                added, _removed = handlers
                for card in added:
                    if source.readers is None or str(card.reader) in source.readers:
                        source._queue.put((str(card.reader), time.monotonic()))

        self._queue = queue.Queue()
        self._worker = threading.Thread(target=self._work, args=(self._queue,), daemon=True, name=repr(self))
        self._worker.start()
        try:
            self._observer = _Observer()
            self._monitor = _card_monitor()
            self._monitor.addObserver(self._observer)  # reports cards already present, synchronously
        except Exception as exc:
            self._stop()
            raise SourceError(f"cannot start pyscard's card monitor: {exc}", permanent=False) from exc

    def _stop(self) -> None:
        if self._monitor is not None and self._observer is not None:
            try:
                self._monitor.deleteObserver(self._observer)
            except ValueError:
                pass
        self._monitor = self._observer = None
        self._queue.put(_STOP)
        worker, self._worker = self._worker, None
        if worker is not None and worker is not threading.current_thread():
            worker.join(timeout=10)

    def _work(self, q: queue.Queue[Any]) -> None:
        service_lost = False
        while True:
            try:
                item = q.get(timeout=1.0)
            except queue.Empty:
                if not service_lost and not _monitor_alive():
                    service_lost = True
                    self._error(
                        SourceError("pyscard's card monitor stopped: the PC/SC service went away", permanent=True)
                    )
                continue
            if item is _STOP:
                return
            reader, seen_at = item
            try:
                uid = read_uid(reader)
            except SourceError as exc:
                self._error(exc)
                continue
            event = CardPresented.now(reader, uid)
            log.debug(
                "%s: card %s read %.0f ms after the monitor saw it",
                reader,
                event.uid,
                (time.monotonic() - seen_at) * 1000,
            )
            self._emit(event)


def read_one_uid(timeout_s: float, reader: str | None = None) -> CardPresented:
    """For the issuance desk: wait up to ``timeout_s`` for a card on ``reader`` (any reader if
    None) and return it. A card already lying on the reader counts (the operator often puts it
    down before clicking "read"). Raises ``SourceError(permanent=False)`` on timeout and
    ``SourceError(permanent=True)`` without pyscard, PC/SC service or reader (or if the service
    goes away while waiting). A card that cannot be read (lifted too soon) is logged and the
    wait goes on; if the card refuses the UID command, that error is raised."""
    results: queue.Queue[CardPresented | SourceError] = queue.Queue()

    def on_error(error: SourceError) -> None:
        if error.permanent:
            results.put(error)

    source = PcscSource(readers=[reader] if reader is not None else None, on_error=on_error)
    deadline = time.monotonic() + timeout_s
    source.start(results.put)
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise SourceError(f"no card on {reader or 'any PC/SC reader'} within {timeout_s:g} s", permanent=False)
            try:
                result = results.get(timeout=remaining)
            except queue.Empty:
                continue
            if isinstance(result, SourceError):
                raise result
            return result
    finally:
        source.stop()
