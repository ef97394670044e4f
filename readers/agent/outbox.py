"""The agent's store-and-forward outbox: a durable FIFO of signed events waiting for Redis.

Every event is appended here *before* anything else happens with it, and deleted only after
Redis has accepted it — and, on a Redis with replicas, a replica holds it too
(:mod:`readers.agent.forwarder`), so nothing is lost while Redis or the
network is down (R-DEV-2: the upload is never switched off, only delayed).

Storage: one SQLite table, ``id INTEGER PRIMARY KEY AUTOINCREMENT`` giving the order (ids never
reused, even after the table empties). WAL with ``synchronous=NORMAL``: each append is its own
committed transaction, which survives a crash of the agent process at any point; on a *power
cut* the last commits since the WAL was last synced (at most a checkpoint's worth, typically a
fraction of a second) can be lost. ``synchronous="FULL"`` closes that window at the cost of one
fsync per event (hundreds per second on an SD card instead of tens of thousands) — pass it if
the hardware has no power-loss protection and the rate allows.

Capacity: ``capacity`` is an alarm level, not a limit. Nothing is ever refused or dropped — a
door must not stop recording because the server was away for a long time; :attr:`fill_ratio`
tells the agent when to raise the ``buffer_filling`` (80 %) and ``buffer_full`` (100 %) faults.
An event is ~400 bytes on disk, so 100,000 buffered events are ~40 MB.
"""

from __future__ import annotations

import threading
from pathlib import Path

from readers.agent.storage import open_db

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    payload BLOB NOT NULL,
    mac TEXT NOT NULL
);
"""


class Outbox:
    """Thread-safe: appends (card sources, heartbeats) and the forwarder share one connection
    behind a lock; each call is one short transaction."""

    def __init__(self, path: str | Path, capacity: int = 100_000, *, synchronous: str = "NORMAL") -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        if synchronous.upper() not in ("NORMAL", "FULL", "EXTRA"):
            raise ValueError(f"synchronous must be NORMAL, FULL or EXTRA, got {synchronous!r}")
        self.path = Path(path)
        self.capacity = capacity
        self._lock = threading.Lock()
        self._db = open_db(self.path, synchronous=synchronous.upper())
        self._db.executescript(_SCHEMA)
        self._count = int(self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])

    def append(self, payload: bytes, mac: str) -> int:
        """Store one event (committed when this returns); returns its id."""
        with self._lock:
            cursor = self._db.execute("INSERT INTO outbox (payload, mac) VALUES (?, ?)", (payload, mac))
            self._count += 1
            return int(cursor.lastrowid or 0)

    def peek(self, limit: int, *, after: int = 0) -> list[tuple[int, bytes, str]]:
        """The oldest ``limit`` events with an id above ``after``, oldest first (not removed)."""
        with self._lock:
            return [
                (int(i), bytes(p), str(m))
                for i, p, m in self._db.execute(
                    "SELECT id, payload, mac FROM outbox WHERE id > ? ORDER BY id LIMIT ?", (after, limit)
                )
            ]

    def delete_through(self, last_id: int) -> int:
        """Remove every event with id <= ``last_id`` (they reached Redis); returns how many."""
        with self._lock:
            cursor = self._db.execute("DELETE FROM outbox WHERE id <= ?", (last_id,))
            self._count -= cursor.rowcount
            return cursor.rowcount

    def __len__(self) -> int:
        return self._count

    @property
    def fill_ratio(self) -> float:
        return self._count / self.capacity

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
