"""The agent's store-and-forward outbox: a durable FIFO of signed events waiting for Redis.

Every event is appended here *before* anything else happens with it, and deleted only once the
server says it is stored: each row carries its device, boot epoch and sequence number, and
:meth:`Outbox.trim` removes what the processors' per-device acknowledgement (written after the
database commit, issue 12) covers — so nothing is lost while Redis, the processors, the database
or the network is down, nor when Redis crashes with events it had accepted but not yet written
(R-DEV-2: the upload is never switched off, only delayed). Rows without a device (appended by an
older agent, or by a forwarder in ``confirm="redis"`` mode) are deleted by id once Redis took
them (:meth:`Outbox.delete_through`).

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

import logging
import sqlite3
import threading
from collections import deque
from pathlib import Path

from readers.agent.storage import open_db

log = logging.getLogger(__name__)
HELD_MAX = 20_000  # events kept in memory while the disk is full (~8 MB)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    payload BLOB NOT NULL,
    mac TEXT NOT NULL
);
"""
# added with the end-to-end acknowledgement; an outbox written by an older agent gains them
_ACK_COLUMNS = (("device", "TEXT"), ("epoch", "INTEGER"), ("seq", "INTEGER"))


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
        present = {row[1] for row in self._db.execute("PRAGMA table_info(outbox)")}
        for column, kind in _ACK_COLUMNS:
            if column not in present:
                self._db.execute(f"ALTER TABLE outbox ADD COLUMN {column} {kind}")
        self._db.execute("CREATE INDEX IF NOT EXISTS outbox_device_seq ON outbox (device, epoch, seq)")
        self._count = int(self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])
        self.has_legacy = self._has_legacy()
        self._held: deque[tuple[bytes, str, str | None, int | None, int | None]] = deque()
        self.disk_full = False
        self.lost = 0  # events a full disk and a full memory buffer could not keep

    def append(
        self, payload: bytes, mac: str, *, device: str | None = None, epoch: int | None = None, seq: int | None = None
    ) -> int:
        """Store one event (committed when this returns); returns its id, or 0 if the disk is
        full and the event waits in memory (:attr:`held`). ``device``, ``epoch`` and ``seq`` let
        :meth:`trim` find it when the server acknowledges it.

        A full disk (issue 12: a door whose disk filled returned no verdict at all) never stops
        the door: the event is held in memory, in order, and written before any later one as soon
        as there is room (each append tries; the forwarder frees room as it sends). Up to
        ``HELD_MAX`` events; beyond that the newest are counted in :attr:`lost` and logged."""
        with self._lock:
            self._held.append((payload, mac, device, epoch, seq))
            return self._write_held()

    def flush_held(self) -> int:
        """Write what a full disk kept in memory, if there is room now; returns how many wait."""
        with self._lock:
            if self._held:
                self._write_held()
            return len(self._held)

    def _write_held(self) -> int:
        last = 0
        while self._held:
            payload, mac, device, epoch, seq = self._held[0]
            try:
                cursor = self._db.execute(
                    "INSERT INTO outbox (payload, mac, device, epoch, seq) VALUES (?, ?, ?, ?, ?)",
                    (payload, mac, device, epoch, seq),
                )
            except sqlite3.OperationalError as exc:
                if "full" not in str(exc):  # SQLITE_FULL: "database or disk is full"
                    self._held.pop()  # the newest, that this append brought: the caller sees why
                    raise
                if not self.disk_full:
                    log.error("outbox: the disk is full (%s): events held in memory until there is room", exc)
                    self.disk_full = True
                if len(self._held) > HELD_MAX:
                    self._held.pop()
                    self.lost += 1
                    log.error("outbox: disk full and %d events held in memory: event dropped", HELD_MAX)
                return 0
            self._held.popleft()
            self._count += 1
            if device is None:
                self.has_legacy = True
            last = int(cursor.lastrowid or 0)
        if self.disk_full:
            log.warning("outbox: room on the disk again: held events written")
            self.disk_full = False
        return last

    @property
    def held(self) -> int:
        """Events waiting in memory for room on a full disk."""
        return len(self._held)

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
            if self._held and cursor.rowcount:
                self._write_held()  # room again, perhaps
            return cursor.rowcount

    def trim(self, acks: dict[str, tuple[int, int]], *, through: int) -> int:
        """Remove every event (sent: id <= ``through``) at or before its device's acknowledged
        ``(boot_epoch, seq)``; returns how many. Rows without a device are not touched."""
        if not acks:
            return 0
        with self._lock:
            removed = 0
            self._db.execute("BEGIN")
            try:
                for device, (epoch, seq) in acks.items():
                    cursor = self._db.execute(
                        "DELETE FROM outbox WHERE device = ? AND id <= ? AND (epoch < ? OR (epoch = ? AND seq <= ?))",
                        (device, through, epoch, epoch, seq),
                    )
                    removed += cursor.rowcount
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._count -= removed
            if self._held and removed:
                self._write_held()
            return removed

    def delete_legacy_through(self, last_id: int) -> int:
        """Remove the rows without a device up to ``last_id`` (no acknowledgement names them)."""
        with self._lock:
            cursor = self._db.execute("DELETE FROM outbox WHERE device IS NULL AND id <= ?", (last_id,))
            self._count -= cursor.rowcount
            if cursor.rowcount:
                self.has_legacy = self._has_legacy()
            return cursor.rowcount

    def _has_legacy(self) -> bool:
        return self._db.execute("SELECT 1 FROM outbox WHERE device IS NULL LIMIT 1").fetchone() is not None

    def oldest_id(self) -> int | None:
        with self._lock:
            row = self._db.execute("SELECT MIN(id) FROM outbox").fetchone()
            return None if row[0] is None else int(row[0])

    def devices(self) -> list[str]:
        """The devices with events waiting for an acknowledgement."""
        with self._lock:
            return [str(d) for (d,) in self._db.execute("SELECT DISTINCT device FROM outbox WHERE device IS NOT NULL")]

    def __len__(self) -> int:
        return self._count + len(self._held)

    @property
    def fill_ratio(self) -> float:
        return (self._count + len(self._held)) / self.capacity

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
