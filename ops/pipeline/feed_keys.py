"""The credential feed's signing keys (issue 12, Build 6; R-SEC-5): Ed25519, kept in one key-ring
file only the relay and NIC's CLI need (``CREDENTIAL_KEYRING``; never in the database, never in
Redis, not given to the web or processor processes).

A key is ``next`` (made, its public key being given to the reader agents), ``active`` (the relay
signs with it) or ``retired`` (its private half erased). Rotation with an overlap window
(``campuscard feedkey``):

1. ``new``: a ``next`` key; its public key goes into every agent's ``feed_keys`` beside the
   active one (agents trust both: the overlap).
2. ``activate``: the next key signs from now on; the relay, seeing the feed in Redis signed by
   another key, re-signs the whole feed with it at new versions (``OutboxRelay.ensure_feed``),
   and agents load the new snapshot. The old key is retired and its private half erased.
3. Once every agent reports the new feed, the old public key is taken out of their configs.

Each step is audited. The first key is made when the relay first needs one (audited too).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from django.conf import settings
from django.utils import timezone

from ops.audit import services as audit
from streams.credentials import FeedSigner, key_id, public_hex

NEXT, ACTIVE, RETIRED = "next", "active", "retired"


class KeyringError(Exception):
    """A rotation step out of order (no next key to activate, a next key already made)."""


@dataclass(frozen=True)
class FeedKey:
    id: str
    public: str
    state: str
    created: str


def _path() -> Path:
    return Path(settings.CREDENTIAL_KEYRING)


def _read() -> dict[str, Any]:
    path = _path()
    if not path.exists():
        return {"keys": []}
    return json.loads(path.read_text(encoding="utf-8"))


def _write(ring: dict[str, Any]) -> None:
    """Atomically (a rename), readable by its owner only."""
    path = _path()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".keyring-")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(ring, f, indent=1)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _make(state: str) -> dict[str, Any]:
    private = Ed25519PrivateKey.generate()
    raw = private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    return {
        "id": key_id(private.public_key()),
        "public": public_hex(private.public_key()),
        "private": raw.hex(),
        "state": state,
        "created": timezone.now().isoformat(),
    }


def keys() -> list[FeedKey]:
    return [FeedKey(k["id"], k["public"], k["state"], k["created"]) for k in _read()["keys"]]


def trusted_public_keys() -> list[str]:
    """What an agent's ``feed_keys`` should hold now: the active key and, during a rotation, the
    next one."""
    return [k.public for k in keys() if k.state in (ACTIVE, NEXT)]


_cache: dict[tuple[str, int], FeedSigner] = {}


def signer() -> FeedSigner:
    """The active key's signer; the first key is made here if the ring has none (audited).
    Cheap to call often: read again only when the file changed."""
    path = _path()
    try:
        stamp = (str(path), path.stat().st_mtime_ns)
    except FileNotFoundError:
        stamp = (str(path), -1)
    cached = _cache.get(stamp)
    if cached is not None:
        return cached
    ring = _read()
    active = [k for k in ring["keys"] if k["state"] == ACTIVE]
    if not active:
        key = _make(ACTIVE)
        ring["keys"].append(key)
        _write(ring)
        audit.record(
            actor=None,
            action="feed_key.create",
            object_type="feed_key",
            object_id=key["id"],
            basis="the credential feed had no signing key",
            data={"public": key["public"], "state": ACTIVE},
        )
        active = [key]
    made = FeedSigner(Ed25519PrivateKey.from_private_bytes(bytes.fromhex(active[0]["private"])))
    _cache.clear()
    _cache[(str(path), path.stat().st_mtime_ns)] = made
    return made


def new_key(*, actor: Any, basis: str) -> FeedKey:
    """Step 1 of a rotation: a next key (one at a time)."""
    ring = _read()
    if any(k["state"] == NEXT for k in ring["keys"]):
        raise KeyringError("a next key is already waiting to be activated")
    if not any(k["state"] == ACTIVE for k in ring["keys"]):
        raise KeyringError("there is no active key yet (the relay makes the first one)")
    key = _make(NEXT)
    ring["keys"].append(key)
    _write(ring)
    audit.record(
        actor=actor,
        action="feed_key.create",
        object_type="feed_key",
        object_id=key["id"],
        basis=basis,
        data={"public": key["public"], "state": NEXT},
    )
    return FeedKey(key["id"], key["public"], NEXT, key["created"])


def activate(*, actor: Any, basis: str) -> FeedKey:
    """Step 2: the next key signs from now on; the old one is retired, its private half erased."""
    ring = _read()
    waiting = [k for k in ring["keys"] if k["state"] == NEXT]
    if not waiting:
        raise KeyringError("no next key: make one with 'campuscard feedkey new' first")
    retired = []
    for k in ring["keys"]:
        if k["state"] == ACTIVE:
            k["state"] = RETIRED
            k["private"] = ""
            retired.append(k["id"])
    waiting[0]["state"] = ACTIVE
    _write(ring)
    audit.record(
        actor=actor,
        action="feed_key.activate",
        object_type="feed_key",
        object_id=waiting[0]["id"],
        basis=basis,
        data={"retired": retired},
    )
    return FeedKey(waiting[0]["id"], waiting[0]["public"], ACTIVE, waiting[0]["created"])
