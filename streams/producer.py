"""The one way reader events enter the events stream: signed envelopes appended in one
pipeline round trip per batch. The reader agent's forwarder appends what its outbox holds
(already signed) through ``append`` too."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import redis
from redis.typing import EncodableT, FieldT

from streams import names, signing
from streams.envelopes import Fault, Heartbeat, Tap, dump

STREAM_MAXLEN = 2_000_000  # approximate cap; far above any backlog the processor can leave


def entry(event: Tap | Heartbeat | Fault, key: bytes) -> dict[str, bytes | str]:
    """The stream fields of one message: its JSON bytes and their HMAC under the device key."""
    payload = dump(event)
    return {names.FIELD: payload, signing.MAC_FIELD: signing.sign(key, payload)}


def append(target: redis.Redis | redis.client.Pipeline, fields: Mapping[str, bytes | str]) -> Any:
    """Append one entry (``entry``'s fields) to the events stream; ``target`` is a client or a
    pipeline (then the entry id comes with the pipeline's results)."""
    # built as redis-py's field dict (its own key/value types; a dict of str keys is not one)
    stream_fields: dict[FieldT, EncodableT] = {name: value for name, value in fields.items()}
    return target.xadd(names.READER_EVENTS, stream_fields, maxlen=STREAM_MAXLEN, approximate=True)


def publish(client: redis.Redis, events: Iterable[Tap | Heartbeat | Fault], keys: Mapping[str, bytes]) -> list[str]:
    """Sign each event with its device's key (``keys[device_id]``) and append it."""
    pipe = client.pipeline(transaction=False)
    for event in events:
        append(pipe, entry(event, keys[event.device_id]))
    return [i.decode() if isinstance(i, bytes) else i for i in pipe.execute()]


def publish_raw(client: redis.Redis, fields: dict[str, bytes | str]) -> str:
    """Append an arbitrary entry (tests and tools use it to inject malformed input)."""
    entry_id = append(client, fields)
    return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
