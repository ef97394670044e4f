"""Credential sync (issue 12): load the signed snapshot, then follow the credential stream,
applying in order only what a trusted feed key signed; a gap (the next change is not version + 1)
reloads the snapshot; Redis errors back off and retry. One door for it: the reader agent and the
demo's simulated doors (``campuscard simulate``) both follow the feed through this class.

An unsigned, forged or replayed entry is never applied: it is counted, logged and handed to
``on_refused`` (the agent reports a ``forged_credential`` fault). Leaving a forged snapshot entry
out makes its card unknown at the door: a forgery can refuse a card, never admit one. A signed
entry that does not parse (a server bug) is kept as sent: the cache treats it as unknown.

The door policy (issue 17) travels in the same feed, told apart by its content
(:func:`streams.credentials.is_policy`), and is handed to the cache with its version; a refused
or malformed one leaves the policy the agent holds in place.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import Any

import redis

from readers.agent.cache import CredentialCache, GapError
from readers.agent.emergency import EmergencyHold
from readers.agent.forwarder import BACKOFF_MAX_S, BACKOFF_START_S, REDIS_ERRORS
from streams import credentials as feed
from streams import emergency as emergency_feed
from streams import names

log = logging.getLogger(__name__)
SYNC_BLOCK_MS = 1000


class CredentialSync:
    """``run()`` until ``stopping`` is set (on a thread of its own)."""

    def __init__(
        self,
        cache: CredentialCache,
        verifier: feed.FeedVerifier,
        client_factory: Callable[[], redis.Redis],
        *,
        stopping: threading.Event,
        on_refused: Callable[[str], None] = lambda detail: None,
        emergency: EmergencyHold | None = None,
    ) -> None:
        self.cache = cache
        self.emergency = emergency  # issue 17, Build 2: read first, in the same XREAD
        self.verifier = verifier
        self.client_factory = client_factory
        self._stopping = stopping
        self.on_refused = on_refused
        self.connected = False
        self.synced = threading.Event()  # set once the cache was checked against Redis
        self.refused_changes = 0  # unsigned or forged feed entries seen

    def run(self) -> None:
        client: redis.Redis | None = None
        need_snapshot, check_version = True, False
        backoff = BACKOFF_START_S
        cursor = 0
        while not self._stopping.is_set():
            try:
                if client is None:
                    client = self.client_factory()
                if need_snapshot or check_version:
                    self._load_emergency(client)  # before any card: an offline door hears it first
                if need_snapshot:
                    self._load_snapshot(client)
                    need_snapshot = check_version = False
                    cursor = self.cache.version
                elif check_version:
                    if int(client.get(names.CREDENTIALS_VERSION) or 0) < self.cache.version:
                        log.warning(
                            "Redis holds an older credential version than the cache (%d): Redis was reset, reloading",
                            self.cache.version,
                        )
                        self._load_snapshot(client)
                        cursor = self.cache.version
                    check_version = False
                self.synced.set()
                if not self.connected:
                    log.info("credential sync connected at version %d", self.cache.version)
                    self.connected = True
                backoff = BACKOFF_START_S
                # past refused entries too: a forged entry is read once, then the real feed
                # (whose next version then looks like a gap: the snapshot is loaded) goes on
                cursor = max(cursor, self.cache.version)
                for change in self._read(client, cursor):
                    cursor = max(cursor, change.version)
                    payload = self._verified(change)
                    if payload is None:
                        continue
                    try:
                        self.cache.apply(change.version, payload)
                    except GapError as exc:
                        log.warning("%s: reloading the credential snapshot", exc)
                        need_snapshot = True
                        break
            except Exception as exc:  # the sync thread must not die
                if not isinstance(exc, REDIS_ERRORS):
                    # a malformed feed entry or a local error: start over from the snapshot
                    log.exception("credential sync failed: reloading the snapshot")
                    need_snapshot = True
                elif self.connected:
                    log.warning(
                        "credential sync lost Redis (%s): deciding from cached version %d", exc, self.cache.version
                    )
                self.connected = False
                check_version = True
                self._stopping.wait(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX_S)
        if client is not None:
            client.close()

    def _read(self, client: redis.Redis, cursor: int) -> list[feed.SignedChange]:
        """The card changes after ``cursor``; with an emergency hold, one XREAD of both streams,
        and an emergency state applied before any card change it came with."""
        if self.emergency is None:
            return feed.read_after(client, cursor, block_ms=SYNC_BLOCK_MS)
        states, changes = emergency_feed.read_with_credentials(
            client, cursor, self.emergency.revision, block_ms=SYNC_BLOCK_MS
        )
        if states:
            self._apply_emergency(max(states, key=lambda signed: signed.revision))
        return changes

    def _load_emergency(self, client: redis.Redis) -> None:
        if self.emergency is not None:
            signed = emergency_feed.load(client)
            if signed is not None:
                self._apply_emergency(signed)

    def _apply_emergency(self, signed: emergency_feed.SignedState) -> None:
        """A state a trusted key signed, if newer than the one held (refused and reported
        otherwise: a forged one neither starts nor ends a mode)."""
        assert self.emergency is not None
        if signed.revision <= self.emergency.revision:
            return
        try:
            state = emergency_feed.verify(signed, self.verifier)
        except feed.ForgedCredential as exc:
            self.refused_changes += 1
            log.error("emergency state refused: %s", exc)
            self.on_refused(str(exc))
            return
        except ValueError as exc:
            log.error("emergency state is signed but malformed (%s): the state held is kept", exc)
            return
        self.emergency.apply_state(state, signed.e)

    def _load_snapshot(self, client: redis.Redis) -> None:
        version, cards = feed.load_snapshot(client)
        if version == 0 and not cards and self.cache.version > 0:
            # A Redis with no feed at all (new, or the relay has not seeded it yet): an empty
            # snapshot would make every card unknown. Keep the cached list until it has one.
            log.warning("Redis has no credential snapshot yet: keeping cached version %d", self.cache.version)
            while not self._stopping.wait(1.0):
                if int(client.get(names.CREDENTIALS_VERSION) or 0) > 0:
                    version, cards = feed.load_snapshot(client)
                    break
            else:
                return
        refused: list[str] = []
        trusted: dict[str, dict[str, Any]] = {}
        policy: tuple[int, dict[str, Any]] | None = None
        for uid, change in cards.items():
            payload = self._verified(change, refused)
            if payload is None:
                continue
            if feed.is_policy(payload):
                if policy is None or change.version > policy[0]:
                    policy = (change.version, payload)
            else:
                trusted[uid] = payload
        if refused:
            self.on_refused(f"snapshot at version {version}: {len(refused)} entries refused, first {refused[0]}")
        self.cache.replace_all(version, trusted, policy)

    def _verified(self, change: feed.SignedChange, refused: list[str] | None = None) -> dict[str, Any] | None:
        """The card change if a trusted key signed it, else ``None`` (with ``refused`` given, a
        snapshot's refusals are collected there and reported once)."""
        try:
            return self.verifier.verify_entry(change).wire()
        except feed.ForgedCredential as exc:
            self.refused_changes += 1
            log.error("credential feed entry refused: %s", exc)
            if refused is None:
                self.on_refused(str(exc))
            else:
                refused.append(str(exc))
            return None
        except ValueError as exc:
            log.error("credential feed entry is signed but malformed (%s): its card is treated as unknown", exc)
            return {"uid": _uid_of(change.e)}


def _uid_of(e: bytes) -> str:
    try:
        uid = json.loads(e).get("uid")
    except (ValueError, AttributeError):
        return ""
    return uid if isinstance(uid, str) else ""
