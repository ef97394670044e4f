"""Typed envelopes for every message a reader agent sends (documented in ``docs/events.md``).

Each envelope has a literal ``type`` and forbids unknown fields, so a malformed or spoofed entry
fails validation and is dead-lettered rather than half-understood. ``(device_id, boot_epoch,
seq)`` identify a message's place in a device's own sequence (gaps and replays are detectable).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, IPvAnyAddress, TypeAdapter, ValidationError

from streams.reasons import Decision, Direction, Reason

MAX_ENTRY_BYTES = 4096  # larger entries are rejected before parsing (a reader never sends more)

# Every number a reader sends is bounded here, at the door of the server (issue 20): the columns
# it lands in are 64-bit (``buffered`` 32-bit), so a signed heartbeat claiming credential version
# 10^30 is refused as malformed instead of overflowing the processor's UPDATE.
MAX_BIGINT = 2**63 - 1
MAX_BUFFERED = 2**31 - 1

# Fault codes the server turns into alerts of their own (docs/events.md); any other code is a
# device fault. The door codes come from the agent's door inputs (readers/doors.py, issue 17).
TAMPER = "tamper"
DOOR_FORCED = "door_forced"
DOOR_HELD_OPEN = "door_held_open"
DOOR_CODES = frozenset({DOOR_FORCED, DOOR_HELD_OPEN})

DeviceId = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_.-]+$")]
CardUid = Annotated[str, Field(min_length=4, max_length=20, pattern=r"^[0-9A-F]+$")]


class _Envelope(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: uuid.UUID
    device_id: DeviceId
    boot_epoch: int = Field(ge=0, le=MAX_BIGINT)
    seq: int = Field(ge=0, le=MAX_BIGINT)
    occurred_at: AwareDatetime


class Tap(_Envelope):
    """A card presented at a reader, and what the reader decided (the edge decides)."""

    type: Literal["tap"] = "tap"
    card_uid: CardUid
    direction: Direction
    decision: Decision
    reason: Reason
    # an allowed tap the edge noted: an entry during a dorm curfew, a soft anti-passback
    flags: tuple[Literal["late_return", "passback", "passback_offline", "emergency_open"], ...] = ()


class Heartbeat(_Envelope):
    """A reader saying it is alive, and which credential version it holds."""

    type: Literal["heartbeat"] = "heartbeat"
    credential_version: int = Field(default=0, ge=0, le=MAX_BIGINT)
    buffered: int = Field(default=0, ge=0, le=MAX_BUFFERED)
    # issue 18, Build 2 (R-DEV-1, R-DEV-2): where the agent is — its own IP address as it sees
    # it, and the site its installer configured. Optional: an agent without them is never
    # compared (old agents); one reporting from elsewhere than approved is "moved without approval".
    address: IPvAnyAddress | None = None
    site: Annotated[str, Field(min_length=1, max_length=40)] | None = None


class Fault(_Envelope):
    """A reader reporting a hardware or software fault (R-DEV-3), or its recovery."""

    type: Literal["fault"] = "fault"
    code: Annotated[str, Field(min_length=1, max_length=40)]
    detail: Annotated[str, Field(max_length=200)] = ""
    cleared: bool = False


ReaderEvent = Annotated[Tap | Heartbeat | Fault, Field(discriminator="type")]
_adapter: TypeAdapter[Tap | Heartbeat | Fault] = TypeAdapter(ReaderEvent)


class InvalidEnvelope(ValueError):
    """The entry is not a valid reader message; it is dead-lettered, never retried."""


def parse(raw: bytes | str) -> Tap | Heartbeat | Fault:
    """Parse one stream entry's payload or raise :class:`InvalidEnvelope` with the reason."""
    if len(raw) > MAX_ENTRY_BYTES:
        raise InvalidEnvelope(f"entry too large: {len(raw)} bytes > {MAX_ENTRY_BYTES}")
    try:
        return _adapter.validate_json(raw)
    except ValidationError as exc:  # the first error, named by its field: what a reader got wrong
        first = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "entry"
        raise InvalidEnvelope(f"{where}: {first['msg']}"[:300]) from None
    except ValueError as exc:
        raise InvalidEnvelope(str(exc).splitlines()[0][:300]) from None


def dump(event: Tap | Heartbeat | Fault) -> bytes:
    # the optional fields a message leaves out are not sent (a heartbeat without its address is
    # the same bytes an agent before issue 18 sent, which every server reads)
    return event.model_dump_json(exclude_none=True).encode()


def new_id() -> uuid.UUID:
    return uuid.uuid4()


__all__ = [
    "DOOR_CODES",
    "DOOR_FORCED",
    "DOOR_HELD_OPEN",
    "TAMPER",
    "Tap",
    "Heartbeat",
    "Fault",
    "ReaderEvent",
    "InvalidEnvelope",
    "parse",
    "dump",
    "new_id",
]
