"""Append signed reader envelopes to the events stream (one pipeline round trip per batch)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import redis

from streams import names, signing
from streams.envelopes import Fault, Heartbeat, Tap, dump

STREAM_MAXLEN = 2_000_000  # approximate cap; far above any backlog the processor can leave


def entry(event: Tap | Heartbeat | Fault, key: bytes) -> dict[str, bytes | str]:
    """The stream fields of one message: its JSON bytes and their HMAC under the device key."""
    payload = dump(event)
    return {names.FIELD: payload, signing.MAC_FIELD: signing.sign(key, payload)}


def publish(client: redis.Redis, events: Iterable[Tap | Heartbeat | Fault], keys: Mapping[str, bytes]) -> list[str]:
    """Sign each event with its device's key (``keys[device_id]``) and append it."""
    pipe = client.pipeline(transaction=False)
    for event in events:
        pipe.xadd(
            names.READER_EVENTS,
            entry(event, keys[event.device_id]),  # type: ignore[arg-type]
            maxlen=STREAM_MAXLEN,
            approximate=True,
        )
    return [i.decode() if isinstance(i, bytes) else i for i in pipe.execute()]


def publish_raw(client: redis.Redis, fields: dict[str, bytes | str]) -> str:
    """Append an arbitrary entry (tests and tools use it to inject malformed input)."""
    entry_id = client.xadd(names.READER_EVENTS, fields)  # type: ignore[arg-type]
    return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
