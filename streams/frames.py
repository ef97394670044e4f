"""Decoding one stream entry from a reader: the frame parser. Any input either becomes a
:class:`Signed` envelope or raises :class:`streams.consumer.InvalidEntry` (then dead-lettered);
nothing else escapes it — a fuzz test drives it with 100,000 hostile inputs."""

from __future__ import annotations

from dataclasses import dataclass

from streams import envelopes, names, signing
from streams.consumer import InvalidEntry

_FIELD = names.FIELD.encode()
_MAC = signing.MAC_FIELD.encode()
_KNOWN = frozenset({_FIELD, _MAC})
# the whole entry, every field counted: the payload's limit plus the MAC's hex (issue 20)
MAX_FIELDS_BYTES = envelopes.MAX_ENTRY_BYTES + 64 + len(_FIELD) + len(_MAC)  # 64: an HMAC-SHA256 in hex


@dataclass(frozen=True)
class Signed:
    """An envelope with the exact bytes it was sent as and the MAC that came with them."""

    event: envelopes.Tap | envelopes.Heartbeat | envelopes.Fault
    raw: bytes
    mac: bytes | None


def decode(fields: dict[bytes, bytes]) -> Signed:
    unknown = [k for k in fields if k not in _KNOWN]
    if unknown:  # a reader sends exactly these two fields: anything else rides on a valid entry
        names_ = ", ".join(repr(k)[:40] for k in unknown[:3])
        raise InvalidEntry(f"unknown field(s): {names_}")
    size = sum(len(k) + (len(v) if isinstance(v, bytes | str) else 0) for k, v in fields.items())
    if size > MAX_FIELDS_BYTES:
        raise InvalidEntry(f"entry too large: {size} bytes > {MAX_FIELDS_BYTES}")
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
