"""A simulated card source behind the same interface as PC/SC: cards "placed" on the named
readers at a given mean rate — mostly cards the agent knows, now and then an unknown one. For
trying an agent (or a whole site) without hardware.

It is also a simulated door-input driver (:class:`readers.doors.DoorInputs`, issue 17): a test
or a demo scripts the doors — :meth:`open_door`, :meth:`close_door`, :meth:`press_exit`,
:meth:`tamper`, and :meth:`present` for one card — and reads the lock output the agent drives
in :attr:`locks`. Scripted inputs reach the agent on the scripting thread, in order; with
``rate = 0`` no card is placed but the scripted ones."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from readers.doors import DoorCallback, DoorInput, DoorSignal
from readers.sources.base import CardPresented, CardSource, ErrorCallback


class SimulatedSource(CardSource):
    def __init__(
        self,
        readers: Sequence[str],
        uids: Callable[[], Sequence[str]],
        *,
        rate: float = 0.5,
        unknown_share: float = 0.03,
        seed: int | None = None,
        on_error: ErrorCallback | None = None,
    ) -> None:
        super().__init__(on_error)
        self.readers = list(readers)
        self.uids = uids
        self.rate = rate
        self.unknown_share = unknown_share
        self.rng = random.Random(seed)
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._doors: DoorCallback | None = None
        self._doors_lock = threading.RLock()  # no door callback runs after stop_doors() returns
        self.locks: dict[str, bool] = {}  # door → lock released (the output the agent drives)

    def __repr__(self) -> str:
        return f"SimulatedSource({self.readers!r}, rate={self.rate})"

    def _start(self) -> None:
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="simulated-cards", daemon=True)
        self._thread.start()

    def _stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(5)

    def _run(self) -> None:
        while not self._stopping.wait(self.rng.expovariate(self.rate) if self.rate > 0 else 0.2):
            if self.rate <= 0:
                continue  # scripted cards only
            known = self.uids()
            if not known or self.rng.random() < self.unknown_share:
                uid = f"{self.rng.getrandbits(32):08X}"
            else:
                uid = self.rng.choice(known)
            self._emit(CardPresented.now(self.rng.choice(self.readers), uid))

    def present(self, reader: str, uid: str) -> None:
        """One card placed on ``reader`` now (scripted)."""
        self._emit(CardPresented.now(reader, uid))

    # -- door inputs (readers.doors.DoorInputs) --------------------------------------------------
    def watch_doors(self, callback: DoorCallback) -> None:
        with self._doors_lock:
            self._doors = callback

    def stop_doors(self) -> None:
        with self._doors_lock:
            self._doors = None

    def set_lock(self, door: str, released: bool) -> None:
        self.locks[door] = released

    def open_door(self, door: str) -> None:
        self._door(door, DoorSignal.CONTACT_OPEN)

    def close_door(self, door: str) -> None:
        self._door(door, DoorSignal.CONTACT_CLOSED)

    def press_exit(self, door: str) -> None:
        self._door(door, DoorSignal.EXIT_PRESSED)

    def tamper(self, door: str, active: bool = True) -> None:
        self._door(door, DoorSignal.TAMPER if active else DoorSignal.TAMPER_CLEARED)

    def _door(self, door: str, signal: DoorSignal) -> None:
        with self._doors_lock:
            if self._doors is not None:
                self._doors(DoorInput(door, signal, datetime.now(UTC)))
