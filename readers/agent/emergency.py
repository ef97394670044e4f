"""The emergency modes an agent holds (issue 17, Build 2): the latest signed
:class:`streams.emergency.EmergencyState` it heard, kept in its own SQLite file
(``emergency.sqlite3``, ``synchronous=FULL``: a lockdown must survive a power cut) and in memory
as a :class:`readers.decide.Emergency` that every tap reads.

Only a newer revision replaces the one held — an old state replayed, or a Redis that lost the
state, never ends a mode; only a person does, at the centre, which makes a newer revision with
the mode gone. An agent that was offline applies the newest state when it reconnects (the sync
reads :data:`streams.emergency.STATE` first), and one that restarts holds what it held.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from readers.agent.storage import open_db
from readers.decide import Emergency, EmergencyMode
from streams.emergency import EmergencyState

log = logging.getLogger(__name__)

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS emergency"
    " (id INTEGER PRIMARY KEY CHECK (id = 1), revision INTEGER NOT NULL, state TEXT NOT NULL)"
)


def emergency_from_payload(payload: Mapping[str, Any]) -> Emergency:
    """The feed's state as the :class:`Emergency` ``decide()`` reads (``ValueError`` naming the
    field): parsed by the contract, :class:`streams.emergency.EmergencyState`."""
    try:
        state = EmergencyState.model_validate(payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ValueError(f"{'.'.join(str(x) for x in first['loc']) or 'state'}: {first['msg']}") from None
    return emergency_from_state(state)


def emergency_from_state(state: EmergencyState) -> Emergency:
    """A parsed state as the :class:`Emergency` ``decide()`` reads."""
    return Emergency(
        revision=state.revision,
        modes=tuple(
            EmergencyMode(
                id=m.id,
                kind=m.kind,
                campus=m.scope == "campus",
                devices=frozenset(m.devices),
                buildings=frozenset(m.buildings),
            )
            for m in state.modes
        ),
        security=frozenset(uid.upper() for uid in state.security),
    )


class EmergencyHold:
    """Thread-safe: ``current`` is read lock-free by taps; :meth:`apply` is serialised."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._db = open_db(self.path, synchronous="FULL")
        self._db.execute(_SCHEMA)
        self.current = Emergency()
        self.applied_at: float | None = None  # monotonic: the last state taken was in force (bench, tests)
        self.stored_at: float | None = None  # monotonic: ... and kept on disk
        self.on_change: Callable[[Emergency], None] | None = None  # the agent drives its locks
        row = self._db.execute("SELECT revision, state FROM emergency WHERE id = 1").fetchone()
        if row is not None:
            try:
                self.current = emergency_from_payload(json.loads(row[1]))
            except (ValueError, TypeError) as exc:  # not expected: it was checked before it was kept
                log.error("kept emergency state %s does not parse (%s): holding none", row[0], exc)
            else:
                if self.current.modes:
                    log.warning(
                        "holding emergency state %d across the restart: %s",
                        self.current.revision,
                        ", ".join(f"{m.kind} #{m.id}" for m in self.current.modes),
                    )

    @property
    def revision(self) -> int:
        return self.current.revision

    def apply(self, payload: Mapping[str, Any]) -> bool:
        """Hold ``payload`` (a verified state) if it is newer than the one held: in force at once
        (the next tap decides by it), then kept on disk (a disk that fails does not keep a door
        out of an emergency: the error is raised after the state is in force). Returns whether it
        was taken."""
        return self._take(
            emergency_from_payload(payload), json.dumps(dict(payload), ensure_ascii=False, sort_keys=True)
        )

    def apply_state(self, state: EmergencyState, raw: bytes) -> bool:
        """:meth:`apply` for a state the sync has just verified and parsed (``raw``: its signed
        bytes, kept as they are): no second parse on the way to the door."""
        return self._take(emergency_from_state(state), raw.decode())

    def _take(self, parsed: Emergency, text: str) -> bool:
        with self._lock:
            if parsed.revision <= self.current.revision:
                return False
            self.current = parsed
            self.applied_at = time.monotonic()
            self._db.execute(
                "INSERT OR REPLACE INTO emergency (id, revision, state) VALUES (1, ?, ?)", (parsed.revision, text)
            )
            self.stored_at = time.monotonic()
        log.warning(
            "emergency state %d applied: %s",
            parsed.revision,
            ", ".join(f"{m.kind} #{m.id}" for m in parsed.modes) or "no mode in force",
        )
        if self.on_change is not None:
            try:
                self.on_change(parsed)
            except Exception:  # the state is held and decides taps whatever the lock outputs do
                log.exception("emergency state %d: driving the doors failed", parsed.revision)
        return True

    def close(self) -> None:
        with self._lock:
            self._db.close()
