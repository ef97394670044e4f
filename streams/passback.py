"""Anti-passback shared across a zone (issue 17, Build 5; R-SEC-5): the contract between the
server, which publishes, and the reader agents of a zone, which follow.

A **zone** is an anti-passback area (``Device.passback_area``; a door with none is a zone of
its own, ``readers.decide.Door.passback_area``). Each zone has one stream,
``campuscard:passback:<zone>`` (:func:`zone_stream`), written only by the server — the processor
after it stored an allowed, directed passage at an anti-passback door of the zone, and the
security desk's forgiveness service — and read by the agents serving a door of the zone (their
Redis ACL user may read exactly these streams, ``streams.device_acl``; an agent cannot write it).

Entries (field ``e``, JSON):

- a **passage**: ``{"t": "p", "uid", "dir": "in"|"out", "at": ISO, "dev": device}``;
- a **forgiveness**: ``{"t": "f", "uids": [...] | null, "at": ISO, "id": n}`` — the passages
  of those cards (``null``: every card) in the zone up to ``at`` are forgotten.

The stream keeps about :data:`KEEP` (XADD ``MINID``): a zone resets daily (04:00), so an agent
that was away for longer than that has nothing to catch up that still matters. An agent keeps
its cursor per zone (``readers.agent.passback``) and reads on from it after a restart.

Not signed (the server's processes do not hold the feed key, ``ops.pipeline.feed_keys``): the
ACL is what keeps the stream the server's. A forged passage could only refuse a card at a hard
anti-passback door, never admit one that is not valid; a forged forgiveness could only lift
anti-passback — the card must still pass every other check. docs/decisions.md says so.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import redis

from streams.consumer import StreamReply
from streams.reasons import Direction

PREFIX = "campuscard:passback:"
KEEP = timedelta(days=2)
FIELD = "e"


def zone_stream(zone: str) -> str:
    """The stream of one anti-passback zone."""
    return f"{PREFIX}{zone}"


@dataclass(frozen=True, slots=True)
class ZonePassage:
    uid: str
    direction: Direction
    at: datetime
    device: str = ""


@dataclass(frozen=True, slots=True)
class ZoneForgiveness:
    uids: tuple[str, ...] | None  # None: every card of the zone
    at: datetime
    id: int = 0


ZoneEntry = ZonePassage | ZoneForgiveness


def encode(entry: ZoneEntry) -> str:
    if isinstance(entry, ZonePassage):
        data: dict[str, Any] = {
            "t": "p",
            "uid": entry.uid.upper(),
            "dir": entry.direction.value,
            "at": entry.at.astimezone(UTC).isoformat(),
            "dev": entry.device,
        }
    else:
        data = {
            "t": "f",
            "uids": sorted(u.upper() for u in entry.uids) if entry.uids is not None else None,
            "at": entry.at.astimezone(UTC).isoformat(),
            "id": entry.id,
        }
    return json.dumps(data, separators=(",", ":"), sort_keys=True)


def _aware(text: str) -> datetime:
    at = datetime.fromisoformat(text)
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def decode(raw: bytes | str) -> ZoneEntry:
    """One entry's ``e`` (raises ``ValueError`` if it is not one)."""
    try:
        data = json.loads(raw)
        if data["t"] == "p":
            direction = Direction(data["dir"])
            if direction == Direction.NONE:
                raise ValueError("a passage has a direction")
            return ZonePassage(str(data["uid"]).upper(), direction, _aware(data["at"]), str(data.get("dev", "")))
        if data["t"] == "f":
            uids = data["uids"]
            return ZoneForgiveness(
                tuple(str(u).upper() for u in uids) if uids is not None else None, _aware(data["at"]), int(data["id"])
            )
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"not a zone entry: {exc!r}") from None
    raise ValueError(f"not a zone entry: {data.get('t')!r}")


def _minid(now: datetime) -> str:
    return f"{int((now - KEEP).timestamp() * 1000)}-0"


def publish(pipe: Any, zone: str, entry: ZoneEntry, *, now: datetime | None = None) -> None:
    """XADD one entry to the zone's stream (on a client or a pipeline), trimming what is older
    than :data:`KEEP`."""
    now = now or datetime.now(UTC)
    pipe.xadd(zone_stream(zone), {FIELD: encode(entry)}, minid=_minid(now), approximate=True)


def read(
    client: redis.Redis, cursors: Mapping[str, str], *, count: int = 1000, block_ms: int | None = None
) -> list[tuple[str, str, ZoneEntry | None]]:
    """Entries after each zone's cursor (``"0"``: from the oldest kept): ``(zone, entry id,
    entry)`` in stream order per zone; an entry that does not parse is ``None`` (skipped by the
    caller, its cursor still advances)."""
    if not cursors:
        return []
    streams: dict[Any, Any] = {zone_stream(z): c for z, c in cursors.items()}  # redis-py's key/id unions
    reply = cast(StreamReply, client.xread(streams, count=count, block=block_ms))
    out: list[tuple[str, str, ZoneEntry | None]] = []
    for stream, entries in reply or []:
        zone = _text(stream)[len(PREFIX) :]
        for entry_id, fields in entries:
            try:
                entry: ZoneEntry | None = decode(fields.get(FIELD.encode(), b""))
            except ValueError:
                entry = None
            out.append((zone, _text(entry_id), entry))
    return out


def zones_of(doors: Iterable[tuple[str, str | None, str]]) -> list[str]:
    """The zones of ``(device id, area, passback mode)`` doors that check anti-passback."""
    return sorted({area or device for device, area, mode in doors if mode != "off"})


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
