"""Door supervision at the edge (issue 17, Build 4; R-DEV-3, R-SEC-5): the door-position contact,
the request-to-exit button, the tamper switch and the lock output of each door, behind one small
interface, and the state machine that turns them into faults.

The agent raises a fault from what its own door inputs say — not from a simulator's dice:

- ``door_forced``: the contact opened while the lock was engaged (no allowed tap and no exit
  request within the unlock window); cleared when the door closes;
- ``door_held_open``: a door opened legitimately stayed open longer than ``held_open_s``;
  cleared when it closes. A forced door does not also count as held open: it is already alarmed;
- ``tamper``: the tamper switch of the reader or controller opened; cleared when it closes.

Contract for a door-input driver (GPIO, a serial I/O board, the simulator)
--------------------------------------------------------------------------
A driver implements :class:`DoorInputs` (three methods; a card source may implement it too, as
:class:`readers.sources.simulated.SimulatedSource` does):

``watch_doors(callback)``
    Begin reporting; returns once the inputs are watched (or raises
    :class:`~readers.sources.base.SourceError`, ``permanent`` as for card sources). From then on
    ``callback(DoorInput(door, signal, at))`` is called for every *change* of an input, on the
    driver's own thread, in the order the changes happened, debounced (a contact must stay put
    ~50 ms before it counts: a door bouncing in its frame is one opening). ``door`` is the
    door's ``device_id`` from the agent config (or its ``reader`` name). Signals:
    ``contact_open`` / ``contact_closed`` (the door-position switch), ``exit_pressed`` (the
    request-to-exit button or PIR on the inside), ``tamper`` / ``tamper_cleared`` (the tamper
    loop opened / closed again). Right after starting, report the current state once:
    ``contact_open`` for a door standing open (nobody was granted it: it is reported forced),
    ``tamper`` for an open tamper loop. The callback is quick and thread-safe; an exception in
    it is the agent's problem and never stops the driver.
``set_lock(door, released)``
    Drive the lock output: ``True`` releases the door (energise a fail-secure strike, cut a
    fail-safe maglock — the driver knows its wiring), ``False`` engages it. The agent calls it
    from any of its threads, including from inside the callback: quick, thread-safe,
    idempotent, never raises (a failure goes to the log and, if it will not fix itself, to the
    agent as a ``SourceError``).
``stop_doors()``
    No callback runs after it returns. Idempotent; never raises.

The agent releases a door's lock for ``unlock_s`` (door config, default 5 s) after an allowed tap
or an exit request, and engages it again when that window ends or as soon as the door closes.
Times are the agent's monotonic clock (:class:`DoorMonitor` takes ``now`` from its caller), so
a clock set back never shortens a window.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol, runtime_checkable

from streams.envelopes import DOOR_FORCED, DOOR_HELD_OPEN, TAMPER

UNLOCK_S = 5.0
HELD_OPEN_S = 30.0


class DoorSignal(StrEnum):
    CONTACT_OPEN = "contact_open"
    CONTACT_CLOSED = "contact_closed"
    EXIT_PRESSED = "exit_pressed"  # request to exit (REX)
    TAMPER = "tamper"
    TAMPER_CLEARED = "tamper_cleared"


@dataclass(frozen=True, slots=True)
class DoorInput:
    """One change of a door input, as a driver reports it."""

    door: str  # the door's device_id (or its reader name)
    signal: DoorSignal
    at: datetime  # aware

    def __post_init__(self) -> None:
        if self.at.tzinfo is None or self.at.utcoffset() is None:
            raise ValueError("DoorInput.at must be an aware datetime")


DoorCallback = Callable[[DoorInput], None]


@runtime_checkable
class DoorInputs(Protocol):
    """What a door-input driver implements (the module docstring is the contract)."""

    def watch_doors(self, callback: DoorCallback) -> None: ...
    def set_lock(self, door: str, released: bool) -> None: ...
    def stop_doors(self) -> None: ...


@dataclass(frozen=True, slots=True)
class DoorAlarm:
    """A fault to report (``cleared``: the condition ended)."""

    code: str
    cleared: bool
    detail: str = ""


@dataclass
class DoorMonitor:
    """One door's state. Each method takes ``now`` (monotonic seconds) and returns the alarms it
    raised or cleared; :attr:`lock_released` is what the lock output should be afterwards."""

    unlock_s: float = UNLOCK_S
    held_open_s: float = HELD_OPEN_S
    released_until: float | None = None  # the lock is released until then
    opened_at: float | None = None  # the contact is open since then
    authorised: bool = False  # the current opening followed an allowed tap or an exit request
    active: set[str] = field(default_factory=set)  # alarms raised and not yet cleared
    held: bool = False  # issue 17, Build 2: an unlock-all holds the lock released until it ends

    @property
    def lock_released(self) -> bool:
        return self.released_until is not None

    @property
    def is_open(self) -> bool:
        return self.opened_at is not None

    def release(self, now: float) -> list[DoorAlarm]:
        """An allowed tap or an exit request: the lock opens for ``unlock_s``."""
        self.released_until = now + self.unlock_s
        return []

    def contact(self, is_open: bool, now: float) -> list[DoorAlarm]:
        if is_open:
            if self.opened_at is not None:
                return []  # a repeated report: the same opening
            self.opened_at = now
            self.authorised = self.released_until is not None and now <= self.released_until
            if self.authorised:
                return []
            return self._raise(DOOR_FORCED, "opened with the lock engaged (no allowed tap or exit request)")
        if self.opened_at is None:
            return []
        detail = f"closed after {now - self.opened_at:.0f} s"
        self.opened_at, self.authorised = None, False
        # relock as soon as the door is shut: one grant, one passage (not while an unlock-all holds it)
        self.released_until = math.inf if self.held else None
        return self._clear(DOOR_FORCED, detail) + self._clear(DOOR_HELD_OPEN, detail)

    def hold(self, held: bool, now: float) -> list[DoorAlarm]:
        """An unlock-all began (``held``) or ended at this door (issue 17, Build 2): the lock
        stays released and an open door is no alarm while it holds; when it ends the lock
        engages again (at once if the door is shut, else as it shuts)."""
        if held == self.held:
            return []
        self.held = held
        if held:
            self.released_until = math.inf
            if self.opened_at is not None:
                self.authorised = True
            return self._clear(DOOR_HELD_OPEN, "unlock-all") + self._clear(DOOR_FORCED, "unlock-all")
        self.released_until = None if self.opened_at is None else now + self.unlock_s
        if self.opened_at is not None:
            self.opened_at = now  # the held-open clock starts again from the end of the unlock-all
        return []

    def tamper(self, active: bool, now: float) -> list[DoorAlarm]:
        if active:
            return self._raise(TAMPER, "tamper switch opened")
        return self._clear(TAMPER, "tamper switch closed")

    def tick(self, now: float) -> list[DoorAlarm]:
        """Time passing: the unlock window ends, a legitimately opened door overstays."""
        if self.released_until is not None and now > self.released_until:
            self.released_until = None
        if self.held:
            return []
        if self.opened_at is not None and self.authorised and now - self.opened_at >= self.held_open_s:
            return self._raise(DOOR_HELD_OPEN, f"open longer than {self.held_open_s:g} s")
        return []

    def _raise(self, code: str, detail: str) -> list[DoorAlarm]:
        if code in self.active:
            return []
        self.active.add(code)
        return [DoorAlarm(code, cleared=False, detail=detail)]

    def _clear(self, code: str, detail: str) -> list[DoorAlarm]:
        if code not in self.active:
            return []
        self.active.discard(code)
        return [DoorAlarm(code, cleared=True, detail=detail)]

    def apply(self, signal: DoorSignal, now: float) -> list[DoorAlarm]:
        """One input change."""
        if signal in (DoorSignal.CONTACT_OPEN, DoorSignal.CONTACT_CLOSED):
            return self.contact(signal == DoorSignal.CONTACT_OPEN, now)
        if signal == DoorSignal.EXIT_PRESSED:
            return self.release(now)
        return self.tamper(signal == DoorSignal.TAMPER, now)
