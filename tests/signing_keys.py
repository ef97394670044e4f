"""The credential feed key the tests sign with (issue 12, Build 6): one fixed Ed25519 key, written
into the test session's key ring (``conftest``) so the relays the tests start sign with it too,
and given to every reader agent the tests configure (``feed_keys``)."""

from __future__ import annotations

import json
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from streams.credentials import FeedSigner, key_id, public_hex

PRIVATE = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))  # a test key, never a real one
SIGNER = FeedSigner(PRIVATE)
PUBLIC_KEYS = [public_hex(PRIVATE.public_key())]


def write_keyring(path: str | Path) -> None:
    """The key ring file ``ops.pipeline.feed_keys`` reads, holding the test key as active."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    key = {
        "id": key_id(PRIVATE.public_key()),
        "public": PUBLIC_KEYS[0],
        "private": bytes(range(32)).hex(),
        "state": "active",
        "created": "2026-01-01T00:00:00+00:00",
    }
    path.write_text(json.dumps({"keys": [key]}), encoding="utf-8")
    path.chmod(0o600)
