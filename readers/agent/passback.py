"""Anti-passback that holds (issue 17, Build 5; R-SEC-5): the agent's passback memory, kept in
SQLite so that a restart does not forget who is inside, and shared with the other agents of
each zone through the server (:mod:`streams.passback`).

- :class:`SharedPassback` is the :class:`~readers.decide.EdgeState` :func:`~readers.decide.decide`
  reads: the last passage of each card in each zone, from this agent's own taps (written through
  to ``passback.sqlite3`` as they are recorded) and from the zone streams (the passages the
  server stored from the zone's other readers, and the security desk's forgiveness). A passage
  newer than the one held replaces it; a forgiveness forgets the passages up to its time, and a
  passage from before it that arrives late (an agent that was offline) is not taken.
- :class:`ZoneFollower` follows the streams of the agent's zones (a thread of its own), from the
  cursor kept with the state. While it cannot reach Redis the agent decides from what it knows —
  its own doors' passages and what it had received — and says so: the taps at its anti-passback
  doors carry the flag ``passback_offline`` (``readers.agent.agent``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path

import redis

from readers.agent.forwarder import BACKOFF_MAX_S, BACKOFF_START_S, REDIS_ERRORS
from readers.agent.storage import open_db
from readers.decide import Door, EdgeState, Passage, Verdict
from streams import passback as zone_feed
from streams.reasons import Direction

log = logging.getLogger(__name__)
FOLLOW_BLOCK_MS = 1000
EVERY = "*"  # a forgiveness of the whole zone, as kept in the ``forgiven`` table

_SCHEMA = """
CREATE TABLE IF NOT EXISTS passage (
    uid TEXT NOT NULL, zone TEXT NOT NULL, direction TEXT NOT NULL, at_us INTEGER NOT NULL,
    PRIMARY KEY (uid, zone)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS forgiven (
    zone TEXT NOT NULL, uid TEXT NOT NULL, at_us INTEGER NOT NULL, PRIMARY KEY (zone, uid)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS cursor (zone TEXT PRIMARY KEY, entry_id TEXT NOT NULL) WITHOUT ROWID;
"""


def _us(at: datetime) -> int:
    return int(at.timestamp() * 1_000_000)


def _at(us: int) -> datetime:
    return datetime.fromtimestamp(us / 1_000_000, UTC)


class SharedPassback(EdgeState):
    """The passback memory of one agent, durable and shared (see the module's docstring).
    Thread-safe: the tap path records, the follower applies, under one lock."""

    __slots__ = ("_db", "_lock", "_forgiven", "_cursors")

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._db = open_db(Path(path))
        self._db.executescript(_SCHEMA)
        self._forgiven: dict[tuple[str, str], datetime] = {}
        self._cursors: dict[str, str] = {}
        self._load()

    def _load(self) -> None:
        self._last.clear()
        for uid, zone, direction, at_us in self._db.execute("SELECT uid, zone, direction, at_us FROM passage"):
            self._last[(uid, zone)] = Passage(Direction(direction), _at(at_us))
        self._forgiven = {
            (zone, uid): _at(at_us) for zone, uid, at_us in self._db.execute("SELECT zone, uid, at_us FROM forgiven")
        }
        self._cursors = dict(self._db.execute("SELECT zone, entry_id FROM cursor"))

    # -- the tap path -----------------------------------------------------------------------------
    def record(self, verdict: Verdict, uid: str, door: Door, now: datetime, *, direction: Direction | None) -> None:
        key = (uid, door.passback_area)
        with self._lock:
            before = self._last.get(key)
            super().record(verdict, uid, door, now, direction=direction)
            after = self._last.get(key)
            if after is not None and after is not before:
                self._db.execute(
                    "INSERT OR REPLACE INTO passage (uid, zone, direction, at_us) VALUES (?, ?, ?, ?)",
                    (uid, door.passback_area, after.direction.value, _us(after.at)),
                )

    # -- the zone streams -------------------------------------------------------------------------
    def cursor(self, zone: str) -> str:
        return self._cursors.get(zone, "0")

    def forgiven_at(self, uid: str, zone: str) -> datetime | None:
        """When the card's passages in the zone were last forgiven (for it or the whole zone)."""
        times = [t for t in (self._forgiven.get((zone, uid)), self._forgiven.get((zone, EVERY))) if t is not None]
        return max(times) if times else None

    def apply(self, zone: str, entry_id: str, entry: zone_feed.ZoneEntry | None) -> None:
        """One entry of a zone's stream, and the cursor after it, in one transaction."""
        self.apply_all([(zone, entry_id, entry)])

    def apply_all(self, entries: Iterable[tuple[str, str, zone_feed.ZoneEntry | None]]) -> None:
        """Entries of the zone streams as read (``streams.passback.read``), and the cursors
        after them, in one transaction (an agent catching up reads a thousand at a time). On an
        error nothing is kept, memory included: the state is reloaded from the file."""
        with self._lock:
            cursors: dict[str, str] = {}
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for zone, entry_id, entry in entries:
                    if isinstance(entry, zone_feed.ZonePassage):
                        self._passage(zone, entry)
                    elif isinstance(entry, zone_feed.ZoneForgiveness):
                        self._forgive(zone, entry)
                    cursors[zone] = entry_id
                self._db.executemany("INSERT OR REPLACE INTO cursor (zone, entry_id) VALUES (?, ?)", cursors.items())
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                self._load()
                raise
            self._cursors.update(cursors)

    def _passage(self, zone: str, entry: zone_feed.ZonePassage) -> None:
        forgiven = self.forgiven_at(entry.uid, zone)
        if forgiven is not None and entry.at <= forgiven:
            return  # forgiven already: a late passage does not bring it back
        held = self._last.get((entry.uid, zone))
        if held is not None and held.at >= entry.at:
            return  # this agent knows a later passage (or this very one: its own tap came back)
        self._last[(entry.uid, zone)] = Passage(entry.direction, entry.at)
        self._db.execute(
            "INSERT OR REPLACE INTO passage (uid, zone, direction, at_us) VALUES (?, ?, ?, ?)",
            (entry.uid, zone, entry.direction.value, _us(entry.at)),
        )

    def _forgive(self, zone: str, entry: zone_feed.ZoneForgiveness) -> None:
        uids: Iterable[str] = entry.uids if entry.uids is not None else [uid for uid, z in self._last if z == zone]
        for uid in list(uids):
            held = self._last.get((uid, zone))
            if held is not None and held.at <= entry.at:
                del self._last[(uid, zone)]
                self._db.execute("DELETE FROM passage WHERE uid = ? AND zone = ?", (uid, zone))
        for uid in entry.uids if entry.uids is not None else (EVERY,):
            if (zone, uid) not in self._forgiven or self._forgiven[(zone, uid)] < entry.at:
                self._forgiven[(zone, uid)] = entry.at
                self._db.execute(
                    "INSERT OR REPLACE INTO forgiven (zone, uid, at_us) VALUES (?, ?, ?)", (zone, uid, _us(entry.at))
                )
        log.info(
            "anti-passback forgiven in zone %s: %s (forgiveness %d)",
            zone,
            "every card" if entry.uids is None else ", ".join(entry.uids),
            entry.id,
        )

    # -- housekeeping -----------------------------------------------------------------------------
    def prune(self, before: datetime) -> int:
        with self._lock:
            dropped = super().prune(before)
            self._db.execute("DELETE FROM passage WHERE at_us < ?", (_us(before),))
            stale = [key for key, at in self._forgiven.items() if at < before]
            for key in stale:
                del self._forgiven[key]
            self._db.execute("DELETE FROM forgiven WHERE at_us < ?", (_us(before),))
            return dropped

    def close(self) -> None:
        with self._lock:
            self._db.close()


class ZoneFollower:
    """``run()`` until ``stopping`` is set: applies the zone streams of ``zones`` to ``state``."""

    def __init__(
        self,
        state: SharedPassback,
        zones: Iterable[str],
        client_factory: Callable[[], redis.Redis],
        *,
        stopping: threading.Event,
    ) -> None:
        self.state = state
        self.zones = sorted(set(zones))
        self.client_factory = client_factory
        self._stopping = stopping
        self.connected = False
        self.caught_up = threading.Event()  # set after the first read that found nothing more

    def run(self) -> None:
        if not self.zones:
            return
        client: redis.Redis | None = None
        backoff = BACKOFF_START_S
        while not self._stopping.is_set():
            try:
                if client is None:
                    client = self.client_factory()
                entries = zone_feed.read(
                    client, {z: self.state.cursor(z) for z in self.zones}, block_ms=FOLLOW_BLOCK_MS
                )
                if not self.connected:
                    log.info("anti-passback zones %s followed", ", ".join(self.zones))
                    self.connected = True
                backoff = BACKOFF_START_S
                for zone, entry_id, entry in entries:
                    if entry is None:
                        log.error("zone %s entry %s is not a passage or a forgiveness: skipped", zone, entry_id)
                self.state.apply_all(entries)
                if not entries:
                    self.caught_up.set()
            except Exception as exc:  # the thread must not die
                if not isinstance(exc, REDIS_ERRORS):
                    log.exception("anti-passback zone follow failed")
                elif self.connected:
                    log.warning("anti-passback zones not followed (%s): deciding from this agent's own passages", exc)
                self.connected = False
                if client is not None:
                    client.close()
                    client = None
                self._stopping.wait(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX_S)
        if client is not None:
            client.close()
