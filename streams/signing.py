"""Device message signing (R-DEV-1, R-DEV-2, R-SEC-5): every reader message is the exact JSON
bytes of its envelope (stream field ``e``) plus an HMAC-SHA256 of those bytes under the
device's own key (field ``m``, lower-case hex). Signing the bytes as sent — not a re-encoding —
leaves nothing to canonicalise differently on the two sides."""

from __future__ import annotations

import hashlib
import hmac
import secrets

KEY_BYTES = 32
MAC_FIELD = "m"


def new_key() -> bytes:
    return secrets.token_bytes(KEY_BYTES)


def sign(key: bytes, payload: bytes) -> str:
    return hmac.new(key, payload, hashlib.sha256).hexdigest()


def verify(key: bytes, payload: bytes, mac: bytes | str | None) -> bool:
    if not mac:
        return False
    if isinstance(mac, bytes):
        try:
            mac = mac.decode("ascii")
        except UnicodeDecodeError:
            return False
    return hmac.compare_digest(sign(key, payload), mac)
