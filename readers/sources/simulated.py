"""A simulated card source behind the same interface as PC/SC: cards "placed" on the named
readers at a given mean rate — mostly cards the agent knows, now and then an unknown one. For
trying an agent (or a whole site) without hardware."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Sequence

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
        while not self._stopping.wait(self.rng.expovariate(self.rate) if self.rate > 0 else 1.0):
            known = self.uids()
            if not known or self.rng.random() < self.unknown_share:
                uid = f"{self.rng.getrandbits(32):08X}"
            else:
                uid = self.rng.choice(known)
            self._emit(CardPresented.now(self.rng.choice(self.readers), uid))
