"""The reader's credential cache: what a door decides from while the network or the server is
down.

SQLite (WAL) is the durable copy: table ``credential`` keyed by card uid, table ``meta`` with the
credential ``version`` the cache reflects (the feed contract is in :mod:`streams.credentials`).
Every write — one delta or a whole snapshot — is one transaction that also sets the version, so
after a crash the cache is always exactly some version.

Lookups are served from an in-memory dict of ready :class:`~readers.decide.Credential` objects
mirrored from the table (loaded at open, updated after each committed write). Measured on the
development machine: ~0.2 µs per lookup from the dict against ~5 µs for a prepared SQLite
``SELECT`` plus building the Credential; more to the point, a lookup never waits for a
snapshot being written (``replace_all`` of 100,000 cards takes about a second). Memory is about
0.5 KB per card (50 MB for 100,000 cards), acceptable on a controller-class machine.

The door policy (issue 17: central door rules and the academic calendar) is one more feed entry:
kept as its JSON in ``meta`` (``policy``, with ``policy_version``), parsed once into a
:class:`~readers.decide.Policy` (:func:`policy_from_payload`, the one parser) and held in
memory like the cards, so it survives a restart with the cache. A policy that cannot be
understood, or a snapshot that holds none or an older one, leaves the policy held as it is: a
door keeps the last rules the card office signed rather than fall open.

Payloads are the feed's JSON objects (``uid, card_type, status, blacklisted, valid_from,
valid_until, dorm_building``; ISO datetimes). A naive datetime is taken as UTC. A payload that
cannot be understood fails *closed*: its uid is removed from the cache (the card is then
``unknown_card`` here) and the error is logged, but the version still advances — refusing the
version would stall every later change, including revocations (R-USE-1).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from readers.agent.storage import open_db
from readers.decide import Credential, DoorGroupMembers, Grant, Policy, Rule
from streams.credentials import CardCredential, DoorPolicy, is_policy

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS credential (uid TEXT PRIMARY KEY, payload TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
"""


class GapError(Exception):
    """A delta is not ``version + 1``: changes were missed, load the snapshot."""

    def __init__(self, have: int, got: int) -> None:
        super().__init__(f"credential delta {got} does not follow the cached version {have}")
        self.have = have
        self.got = got


def credential_from_payload(payload: Mapping[str, Any]) -> Credential:
    """The feed's JSON object as a :class:`Credential` (raises ``ValueError`` naming the field):
    parsed by the feed's one contract, :class:`streams.credentials.CardCredential`."""
    try:
        card = CardCredential.model_validate(payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"]) or "card"
        raise ValueError(f"{where}: {'missing' if first['type'] == 'missing' else first['msg']}") from None
    return Credential(
        uid=card.uid,
        card_type=card.card_type,
        status=card.status,
        blacklisted=card.blacklisted,
        valid_from=card.valid_from,
        valid_until=card.valid_until,
        dorm_building=card.dorm_building,
        grants=tuple(Grant(g.place, g.until) for g in card.grants),
        stays=tuple((stay.start, stay.until) for stay in card.stays),
    )


def policy_from_payload(payload: Mapping[str, Any], version: int = 0) -> Policy:
    """The feed's door policy as a :class:`Policy` (raises ``ValueError`` naming the field):
    parsed by the feed's contract, :class:`streams.credentials.DoorPolicy`."""
    try:
        policy = DoorPolicy.model_validate(payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"]) or "policy"
        raise ValueError(f"{where}: {'missing' if first['type'] == 'missing' else first['msg']}") from None
    return Policy(
        version=version,
        days=policy.days,
        days_from=policy.days_from,
        days_until=policy.days_until,
        groups={g.code: DoorGroupMembers(frozenset(g.devices), frozenset(g.buildings)) for g in policy.groups},
        rules=[
            Rule(
                id=r.id,
                name=r.name,
                kind=r.kind,
                group=r.group,
                day_types=frozenset(r.day_types),
                weekdays=frozenset(r.weekdays),
                schedule=r.schedule,
                curfew=r.curfew,
                curfew_closes=r.curfew_closes,
                vacation_closed=r.vacation_closed,
            )
            for r in policy.rules
        ],
    )


def _parse_or_none(uid: str, payload: Mapping[str, Any], version: int) -> Credential | None:
    try:
        return credential_from_payload(payload)
    except (ValueError, TypeError) as exc:
        log.error("credential version %d for card %s is malformed (%s): card treated as unknown", version, uid, exc)
        return None


class CredentialCache:
    """Credentials by card uid, at a known feed version. Thread-safe: lookups from any thread
    (lock-free dict reads), writes serialised by a lock."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._db = open_db(self.path)
        self._db.executescript(_SCHEMA)
        row = self._db.execute("SELECT value FROM meta WHERE key = 'version'").fetchone()
        self._version = int(row[0]) if row else 0
        cards: dict[str, Credential] = {}
        for uid, text in self._db.execute("SELECT uid, payload FROM credential"):
            cred = _parse_or_none(uid, json.loads(text), self._version)
            if cred is not None:
                cards[uid] = cred
        self._cards = cards
        self._policy: Policy | None = None
        meta = dict(self._db.execute("SELECT key, value FROM meta WHERE key IN ('policy', 'policy_version')"))
        if "policy" in meta:
            self._policy = self._parse_policy(json.loads(meta["policy"]), int(meta.get("policy_version", 0)))

    # -- reading ------------------------------------------------------------------------------
    @property
    def version(self) -> int:
        return self._version

    def __len__(self) -> int:
        return len(self._cards)

    def lookup(self, uid: str) -> Credential | None:
        return self._cards.get(uid.upper())

    @property
    def policy(self) -> Policy | None:
        """The central door policy held (issue 17), or None (the doors' own configuration)."""
        return self._policy

    @staticmethod
    def _parse_policy(payload: Mapping[str, Any], version: int) -> Policy | None:
        try:
            return policy_from_payload(payload, version)
        except (ValueError, TypeError) as exc:
            log.error("door policy version %d is malformed (%s): the policy held is kept", version, exc)
            return None

    def _store_policy(self, version: int, payload: Mapping[str, Any]) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('policy', ?), ('policy_version', ?)",
            (json.dumps(payload, ensure_ascii=False, sort_keys=True), str(version)),
        )

    # -- writing ------------------------------------------------------------------------------
    def replace_all(
        self,
        version: int,
        cards: Mapping[str, Mapping[str, Any]],
        policy: tuple[int, Mapping[str, Any]] | None = None,
    ) -> None:
        """Replace the whole cache with a snapshot at ``version`` (one transaction). ``policy``:
        the snapshot's door policy ``(its version, payload)``; taken only if it parses and is not
        older than the one held (None, or older: the policy held is kept)."""
        if version < 0:
            raise ValueError(f"version must be >= 0, got {version}")
        new_policy = None
        if policy is not None:
            held = self._policy.version if self._policy is not None else 0
            if policy[0] < held:
                log.error("snapshot's door policy (version %d) is older than the one held (%d): kept", policy[0], held)
            else:
                new_policy = self._parse_policy(policy[1], policy[0])
        rows: list[tuple[str, str]] = []
        mirror: dict[str, Credential] = {}
        for key, payload in cards.items():
            uid = str(payload.get("uid") or key).upper()
            rows.append((uid, json.dumps(payload, ensure_ascii=False, sort_keys=True)))
            cred = _parse_or_none(uid, payload, version)
            if cred is not None:
                mirror[uid] = cred
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute("DELETE FROM credential")
                self._db.executemany("INSERT OR REPLACE INTO credential (uid, payload) VALUES (?, ?)", rows)
                if new_policy is not None and policy is not None:
                    self._store_policy(policy[0], policy[1])
                self._set_version(version)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._cards = mirror  # one reference swap: a lookup sees the old or the new, whole
            if new_policy is not None:
                self._policy = new_policy
            self._version = version
        log.info("credential cache replaced: version %d, %d cards", version, len(mirror))

    def known_uids(self) -> list[str]:
        """The UIDs held (a simulated card source picks from them)."""
        return list(self._cards)

    def apply(self, version: int, payload: Mapping[str, Any]) -> bool:
        """Apply one delta. Returns False (and changes nothing) if ``version`` is already held;
        raises :class:`GapError` if it is not ``version + 1``."""
        with self._lock:
            if version <= self._version:
                return False
            if version != self._version + 1:
                raise GapError(self._version, version)
            if is_policy(payload):
                return self._apply_policy(version, payload)
            uid = str(payload.get("uid") or "").upper() if isinstance(payload, Mapping) else ""
            cred = _parse_or_none(uid or "?", payload, version) if uid else None
            self._db.execute("BEGIN IMMEDIATE")
            try:
                if uid and cred is not None:
                    self._db.execute(
                        "INSERT OR REPLACE INTO credential (uid, payload) VALUES (?, ?)",
                        (uid, json.dumps(payload, ensure_ascii=False, sort_keys=True)),
                    )
                elif uid:
                    self._db.execute("DELETE FROM credential WHERE uid = ?", (uid,))
                else:
                    log.error("credential version %d has no uid: skipped", version)
                self._set_version(version)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            if uid and cred is not None:
                self._cards[uid] = cred
            elif uid:
                self._cards.pop(uid, None)
            self._version = version
            return True

    def _apply_policy(self, version: int, payload: Mapping[str, Any]) -> bool:
        """A new door policy (under the lock): stored with the version, or, if it does not parse,
        the version advances and the policy held is kept (a later change must not stall)."""
        parsed = self._parse_policy(payload, version)
        self._db.execute("BEGIN IMMEDIATE")
        try:
            if parsed is not None:
                self._store_policy(version, payload)
            self._set_version(version)
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        if parsed is not None:
            self._policy = parsed
            log.info("door policy version %d: %d rules", version, len(parsed.rules))
        self._version = version
        return True

    def _set_version(self, version: int) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('version', ?)", (str(version),))

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> CredentialCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
