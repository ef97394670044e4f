"""Decoding one stream entry from a reader: the frame parser. Any input either becomes a
:class:`Signed` envelope or raises :class:`streams.consumer.InvalidEntry` (then dead-lettered);
nothing else escapes it — a fuzz test drives it with 100,000 hostile inputs."""

from __future__ import annotations

from dataclasses import dataclass

from streams import envelopes, names, signing
from streams.consumer import InvalidEntry

_FIELD = names.FIELD.encode()
_MAC = signing.MAC_FIELD.encode()


@dataclass(frozen=True)
class Signed:
    """An envelope with the exact bytes it was sent as and the MAC that came with them."""

    event: envelopes.Tap | envelopes.Heartbeat | envelopes.Fault
    raw: bytes
    mac: bytes | None


def decode(fields: dict[bytes, bytes]) -> Signed:
    raw = fields.get(_FIELD)
    if raw is None:
        raise InvalidEntry(f"no {names.FIELD!r} field")
    if not isinstance(raw, bytes):
        raise InvalidEntry("payload is not bytes")
    try:
        event = envelopes.parse(raw)
    except envelopes.InvalidEnvelope as exc:
        raise InvalidEntry(str(exc)) from None
    mac = fields.get(_MAC)
    return Signed(event, raw, mac if isinstance(mac, bytes) else None)
