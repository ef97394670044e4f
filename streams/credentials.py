"""The credential feed for reader agents (the contract both sides keep; issue 12, Build 6).

- The card: :class:`CardCredential`, one typed model built in one place in ``ops``
  (``ops.registry.lifecycle.outbox.credential_payload``) and parsed in one place in ``readers``
  (``readers.agent.cache``). On the wire: its JSON (``e``).
- Signed by the server (R-SEC-5, R-USE-1: a door must not take a card change from anyone but the
  card office): every change carries an Ed25519 signature (``s``, hex) by the feed key ``k`` (its
  key id, :func:`key_id`) over ``b"campuscard-credential\n<version>\n" + e``. The version is
  signed with the card, so a signed entry cannot be replayed at another version (an old "active"
  for a card since reported lost). Agents hold the public keys (``feed_keys``) and refuse and
  report anything unsigned or forged (:class:`FeedVerifier`).
- Stream ``campuscard:credentials``: one entry per card change, with the explicit entry id
  ``<version>-1`` and fields ``v`` (version), ``e``, ``k``, ``s``.
- Hash ``campuscard:credentials:snapshot`` (uid → ``{"v", "k", "s", "e"}`` as JSON: the card's
  latest change, signed as it went out), key ``campuscard:credentials:version`` (the state after
  the latest version) and key ``campuscard:credentials:key`` (the id of the key the feed is
  signed with: the relay re-signs the whole feed when NIC activates a new key).
- The door policy (issue 17): :class:`DoorPolicy`, the central door rules, the academic
  calendar for a horizon and the door groups, built in one place in ``ops``
  (``ops.registry.calendar.policy.door_policy``) and parsed in one place in ``readers``
  (``readers.agent.cache.policy_from_payload``). It is a feed entry like a card change — signed
  the same way, at the next version of the same sequence — told apart by its ``"type":
  "door_policy"`` (a card has no ``type``; each model forbids the other's fields, so one can never
  be read as the other); in the snapshot it is the field :data:`POLICY_KEY`, which no card UID
  can be. An agent that predates it refuses it as a malformed card and goes on.

The relay writes all of them in one Lua script, so they always agree; versions are chosen and
signed in Python, and the script refuses them if the feed moved on meanwhile (another relay), so
the relay tries again. It publishes each outbox row exactly once (:func:`publish_rows`: a row
sent again keeps its version), and only onto a feed that exists: a Redis that restarted empty
would otherwise get a one-card snapshot at version 1, which every agent would load — the whole
campus locked out. The relay first writes the whole card list as a new feed continuing *after*
every version ever used (:func:`reseed`: built under side keys and put in place at once, so no
agent sees half of it). An agent loads the snapshot (version and hash in one MULTI), then reads
the stream after ``<version>-1``; if the next entry is not version + 1 (the stream was trimmed
past it), it loads the snapshot again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Annotated, Any, Literal, cast

import redis
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from streams import names
from streams.calendar import DayType
from streams.cards import CardStatus, CardType
from streams.consumer import StreamReply

SNAPSHOT = "campuscard:credentials:snapshot"
FEED_KEY = "campuscard:credentials:key"  # the id of the key the feed in Redis is signed with
FORGED_FAULT = "forged_credential"  # the fault code an agent reports a refused entry with
POLICY_TYPE: Literal["door_policy"] = "door_policy"
POLICY_KEY = "policy:doors"  # the door policy's snapshot field: a colon, so never a card UID
_DOMAIN = b"campuscard-credential\n"


# -- the contract -----------------------------------------------------------------------------
def _utc(value: datetime) -> datetime:
    """A naive datetime is taken as UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None or value.utcoffset() is None else value


class Grant(BaseModel):
    """A temporary card's access to one place beyond its functions, until a time (R-CARD-7:
    "no dorms unless the policy grants it"): ``place`` is a building code (every door of it) or
    a device id (that door alone)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    place: Annotated[str, Field(min_length=1, max_length=40)]
    until: Annotated[datetime, AfterValidator(_utc)]


class Stay(BaseModel):
    """A student on the vacation stay list (留校名单, issue 17): their own dorm stays open to them
    from ``start`` until ``until`` while a vacation closes it to students."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    start: Annotated[datetime, AfterValidator(_utc)]
    until: Annotated[datetime, AfterValidator(_utc)]

    @model_validator(mode="after")
    def _ordered(self) -> Stay:
        if self.until <= self.start:
            raise ValueError("a stay ends after it starts")
        return self


_OPTIONAL_WHEN_EMPTY = ("grants", "stays")


class CardCredential(BaseModel):
    """What a door knows about a card (``readers.decide.Credential``'s fields)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    uid: Annotated[str, Field(min_length=1, max_length=64), AfterValidator(str.upper)]
    card_type: CardType
    status: CardStatus
    blacklisted: bool = False
    valid_from: Annotated[datetime, AfterValidator(_utc)]
    valid_until: Annotated[datetime, AfterValidator(_utc)] | None = None
    dorm_building: Annotated[str, Field(max_length=40)] | None = None
    grants: Annotated[tuple[Grant, ...], Field(max_length=32)] = ()  # temporary cards only (R-CARD-7)
    stays: Annotated[tuple[Stay, ...], Field(max_length=8)] = ()  # students on a stay list (issue 17)

    def wire(self) -> dict[str, Any]:
        """The JSON object as it is stored in the outbox and sent (ISO datetimes). A card with no
        grants and no stays is sent without those fields: the same bytes as before they existed
        (an agent that predates them keeps reading every such card)."""
        empty = {name for name in _OPTIONAL_WHEN_EMPTY if not getattr(self, name)}
        return self.model_dump(mode="json", exclude=empty or None)


# -- the door policy (issue 17) ----------------------------------------------------------------
def _naive(value: time) -> time:
    if value.tzinfo is not None:
        raise ValueError("a door rule's time is a naive local campus time")
    return value


LocalTime = Annotated[time, AfterValidator(_naive)]
Window = tuple[LocalTime, LocalTime]  # [start, end) local time; start > end runs past midnight


def _window(value: Window) -> Window:
    if value[0] == value[1]:
        raise ValueError(f"an empty window {value[0]}–{value[1]}")
    return value


TimeWindow = Annotated[Window, AfterValidator(_window)]
Code = Annotated[str, Field(min_length=1, max_length=40)]


class DoorGroup(BaseModel):
    """A set of doors central rules are set for: devices by id and whole buildings by code."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    code: Code
    name: Annotated[str, Field(max_length=100)] = ""
    devices: Annotated[tuple[Code, ...], Field(max_length=5000)] = ()
    buildings: Annotated[tuple[Code, ...], Field(max_length=1000)] = ()


class DoorRule(BaseModel):
    """One central rule: for the doors of ``group`` on days of ``day_types`` (and, if given, only
    on those ISO ``weekdays``, 1 = Monday: "Friday nights"), either a ``schedule`` (NIC: open
    windows; empty: closed all day) or a dorm rule (Student Affairs: a ``curfew`` window that
    flags late returns or, with ``curfew_closes``, closes the door to students; and
    ``vacation_closed``: students only with a stay in force)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: Annotated[int, Field(ge=1)]
    name: Annotated[str, Field(min_length=1, max_length=100)]
    kind: Literal["schedule", "dorm"]
    group: Code
    day_types: Annotated[tuple[DayType, ...], Field(min_length=1)]
    weekdays: tuple[Annotated[int, Field(ge=1, le=7)], ...] = ()
    schedule: Annotated[tuple[TimeWindow, ...], Field(max_length=8)] | None = None
    curfew: TimeWindow | None = None
    curfew_closes: bool = False
    vacation_closed: bool = False

    @model_validator(mode="after")
    def _one_kind(self) -> DoorRule:
        if self.kind == "schedule" and (self.curfew is not None or self.curfew_closes or self.vacation_closed):
            raise ValueError("a schedule rule sets no curfew and no vacation closure")
        if self.kind == "dorm" and self.schedule is not None:
            raise ValueError("a dorm rule sets no schedule")
        return self


class DoorPolicy(BaseModel):
    """The central door rules and the academic calendar from ``days_from`` until ``days_until``
    (exclusive): ``days`` names each date's type where the calendar says one (any other date:
    :func:`streams.calendar.default_day_type`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: Literal["door_policy"] = POLICY_TYPE
    issued_at: Annotated[datetime, AfterValidator(_utc)]
    days_from: date
    days_until: date
    days: Annotated[dict[date, DayType], Field(max_length=1000)] = {}
    groups: Annotated[tuple[DoorGroup, ...], Field(max_length=500)] = ()
    rules: Annotated[tuple[DoorRule, ...], Field(max_length=1000)] = ()

    @model_validator(mode="after")
    def _consistent(self) -> DoorPolicy:
        if self.days_until <= self.days_from:
            raise ValueError("days_until must be after days_from")
        codes = {g.code for g in self.groups}
        if len(codes) != len(self.groups):
            raise ValueError("a door group appears twice")
        for rule in self.rules:
            if rule.group not in codes:
                raise ValueError(f"rule {rule.id}: no door group {rule.group!r}")
        return self

    def wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


FeedEntry = CardCredential | DoorPolicy


def is_policy(entry: Mapping[str, Any]) -> bool:
    """Whether a feed entry's JSON object is the door policy (else it is a card change)."""
    return isinstance(entry, Mapping) and entry.get("type") == POLICY_TYPE


def entry_key(entry: Mapping[str, Any]) -> str:
    """The entry's field in the snapshot: the card's UID, or :data:`POLICY_KEY`."""
    return POLICY_KEY if is_policy(entry) else str(entry["uid"])


def encode(card: Mapping[str, Any]) -> bytes:
    """A card's wire bytes (sorted keys): what is signed and sent."""
    return json.dumps(card, ensure_ascii=False, sort_keys=True).encode()


# -- signing ----------------------------------------------------------------------------------
def key_id(public_key: Ed25519PublicKey) -> str:
    """A key's id: the first 8 bytes of the SHA-256 of its raw public key, in hex."""
    return hashlib.sha256(public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)).hexdigest()[:16]


def public_hex(public_key: Ed25519PublicKey) -> str:
    return public_key.public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


def _signed_bytes(version: int, e: bytes) -> bytes:
    return _DOMAIN + str(version).encode() + b"\n" + e


class FeedSigner:
    """The server's half: signs each change with its version."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key
        self.key_id = key_id(private_key.public_key())

    def sign(self, version: int, e: bytes) -> str:
        return self._key.sign(_signed_bytes(version, e)).hex()

    def sign_as(self, domain: bytes, number: int, e: bytes) -> str:
        """Another message the feed key signs under a domain of its own (the emergency state,
        ``streams.emergency``; issue 17): never valid as a card change, nor the reverse."""
        if domain == _DOMAIN:
            raise ValueError("sign_as: the credential domain is sign()'s")
        return self._key.sign(domain + str(number).encode() + b"\n" + e).hex()


@dataclass(frozen=True)
class SignedChange:
    """One card change as read from the feed (stream entry or snapshot value), not yet trusted."""

    version: int
    e: bytes
    key: str
    sig: str

    def snapshot_value(self) -> str:
        return json.dumps({"v": self.version, "k": self.key, "s": self.sig, "e": self.e.decode()}, ensure_ascii=False)


class ForgedCredential(ValueError):
    """An entry not signed by a trusted feed key: refused (and reported) by the agent."""


class FeedVerifier:
    """The agent's half: the public keys it trusts (the active one, and during a rotation the
    next or the previous one). :meth:`verify` returns the card, or raises
    :class:`ForgedCredential` (unsigned, unknown key, bad signature) or ``ValueError`` (signed
    but malformed: a server bug, fails closed)."""

    def __init__(self, public_keys_hex: Iterable[str]) -> None:
        self.keys: dict[str, Ed25519PublicKey] = {}
        for text in public_keys_hex:
            public = Ed25519PublicKey.from_public_bytes(bytes.fromhex(text))
            self.keys[key_id(public)] = public
        if not self.keys:
            raise ValueError("no feed key: an agent must hold the credential feed's public key")

    def check_as(self, domain: bytes, change: SignedChange) -> None:
        """:class:`ForgedCredential` unless a trusted key signed ``change`` under ``domain``
        (:meth:`FeedSigner.sign_as`)."""
        public = self.keys.get(change.key)
        if public is None or domain == _DOMAIN:
            raise ForgedCredential(f"{domain.decode().strip()} {change.version}: not signed by a trusted key")
        try:
            public.verify(bytes.fromhex(change.sig), domain + str(change.version).encode() + b"\n" + change.e)
        except (InvalidSignature, ValueError):
            raise ForgedCredential(f"{domain.decode().strip()} {change.version}: bad signature") from None

    def verify(self, change: SignedChange) -> CardCredential:
        """A card change (a door policy here is malformed: ``ValueError``)."""
        entry = self.verify_entry(change)
        if not isinstance(entry, CardCredential):
            raise ValueError(f"version {change.version}: a door policy where a card change was expected")
        return entry

    def verify_entry(self, change: SignedChange) -> FeedEntry:
        """A card change or the door policy, whichever the signed bytes hold."""
        public = self.keys.get(change.key)
        if public is None:
            raise ForgedCredential(
                f"version {change.version}: not signed by a trusted key ({change.key or 'unsigned'})"
            )
        try:
            public.verify(bytes.fromhex(change.sig), _signed_bytes(change.version, change.e))
        except (InvalidSignature, ValueError):
            raise ForgedCredential(f"version {change.version}: bad signature (key {change.key})") from None
        try:
            if b'"type"' in change.e and is_policy(json.loads(change.e)):
                return DoorPolicy.model_validate_json(change.e)
            return CardCredential.model_validate_json(change.e)
        except ValidationError as exc:
            raise ValueError(f"version {change.version}: {exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}") from None


# KEYS: version, stream, snapshot, published, (feed key: unused). ARGV: expected version, maxlen, kept,
# key id, then (outbox id or "", uid, version, e, sig, snapshot value) sextuples. Refuses a feed
# that is gone (NOFEED, see FeedReset) or that moved on since the versions were chosen (MOVED).
_PUBLISH = """
local cur = redis.call('GET', KEYS[1])
if not cur then return redis.error_reply('NOFEED the credential feed is gone') end
if cur ~= ARGV[1] then return redis.error_reply('MOVED the credential feed moved on') end
local v = tonumber(cur)
for i = 5, #ARGV, 6 do
  v = tonumber(ARGV[i + 2])
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], v .. '-1',
             'v', v, 'e', ARGV[i + 3], 'k', ARGV[4], 's', ARGV[i + 4])
  redis.call('HSET', KEYS[3], ARGV[i + 1], ARGV[i + 5])
  if ARGV[i] ~= '' then redis.call('ZADD', KEYS[4], v, ARGV[i]) end
end
redis.call('SET', KEYS[1], v)
redis.call('ZREMRANGEBYRANK', KEYS[4], 0, -tonumber(ARGV[3]) - 1)
return v
"""


SEED_VERSION = names.CREDENTIALS_VERSION + ":seeding"
SEED_SNAPSHOT = SNAPSHOT + ":seeding"
SEED_KEY = FEED_KEY + ":seeding"
# KEYS: version, snapshot, seed snapshot, seed version, feed key, seed key: the seeded feed
# takes the place of the old
_SEED_DONE = """
if redis.call('EXISTS', KEYS[3]) == 1 then redis.call('RENAME', KEYS[3], KEYS[2]) else redis.call('DEL', KEYS[2]) end
redis.call('SET', KEYS[1], redis.call('GET', KEYS[4]))
redis.call('SET', KEYS[5], redis.call('GET', KEYS[6]))
redis.call('DEL', KEYS[4], KEYS[6])
return tonumber(redis.call('GET', KEYS[1]))
"""


PUBLISHED = "campuscard:credentials:published"  # ZSET outbox row id → the version it went out as
PUBLISHED_KEPT = 100_000


class FeedReset(redis.RedisError):
    """Redis no longer holds the credential feed (it restarted empty): reseed before publishing."""


def _write(
    client: redis.Redis,
    signer: FeedSigner,
    rows: Sequence[tuple[int | None, Mapping[str, Any]]],
    *,
    keys: tuple[str, str, str, str, str],
    attempts: int = 20,
) -> list[int]:
    """Choose the next versions, sign, write; again if another writer moved the feed on. Rows
    with an outbox id already published keep their version and are not sent again."""
    ids = [str(row_id) for row_id, _ in rows if row_id is not None]
    for _attempt in range(attempts):
        pipe = client.pipeline(transaction=True)
        pipe.get(keys[0])
        if ids:
            pipe.zmscore(keys[3], ids)
        replies = pipe.execute()
        current = replies[0]
        if current is None:
            raise FeedReset("NOFEED the credential feed is gone")
        known = dict(zip(ids, replies[1], strict=True)) if ids else {}
        v = int(current)
        out: list[int] = []
        args: list[Any] = [int(current), names.CREDENTIALS_MAXLEN, PUBLISHED_KEPT, signer.key_id]
        for row_id, card in rows:
            score = known.get(str(row_id)) if row_id is not None else None
            if score is not None:
                out.append(int(score))
                continue
            v += 1
            e = encode(card)
            change = SignedChange(v, e, signer.key_id, signer.sign(v, e))
            args += ["" if row_id is None else row_id, entry_key(card), v, e, change.sig, change.snapshot_value()]
            out.append(v)
        if len(args) == 4:
            return out
        try:
            client.eval(_PUBLISH, len(keys), *keys, *args)
            return out
        except redis.ResponseError as exc:
            if "NOFEED" in str(exc):
                raise FeedReset(str(exc)) from None
            if "MOVED" not in str(exc):
                raise
    raise redis.RedisError("the credential feed kept moving on: too many writers")


_LIVE_KEYS = (names.CREDENTIALS_VERSION, names.CREDENTIALS, SNAPSHOT, PUBLISHED, FEED_KEY)


def publish(client: redis.Redis, cards: Iterable[Mapping[str, Any]], signer: FeedSigner) -> int:
    """Append card changes; returns the version of the last one (the first is that - n + 1).
    Tools and tests that play the server; the relay publishes with :func:`publish_rows`. A
    Redis with no feed yet gets one, starting at version 1."""
    if client.set(names.CREDENTIALS_VERSION, 0, nx=True):
        client.set(FEED_KEY, signer.key_id)
    versions = _write(client, signer, [(None, card) for card in cards], keys=_LIVE_KEYS)
    return versions[-1] if versions else int(client.get(names.CREDENTIALS_VERSION) or 0)


def publish_rows(client: redis.Redis, rows: Sequence[tuple[int, Mapping[str, Any]]], signer: FeedSigner) -> list[int]:
    """The relay's publish: outbox rows ``(id, card)``, each exactly once however often it is
    sent (a relay killed between publishing and committing sends its rows again); returns each
    row's version. Raises :class:`FeedReset` if Redis holds no feed."""
    return _write(client, signer, list(rows), keys=_LIVE_KEYS)


def reseed(
    client: redis.Redis, chunks: Iterable[list[dict[str, Any]]], *, after_version: int, signer: FeedSigner
) -> int:
    """Write every card (``chunks`` of them) as the feed, signed by ``signer``, at versions
    after ``after_version``; returns the feed's version. Agents see the old feed (or none) until
    the last step, then all of the new one; those behind find the gap and load the new
    snapshot."""
    client.delete(SEED_SNAPSHOT)
    client.set(SEED_VERSION, after_version)
    keys = (SEED_VERSION, names.CREDENTIALS, SEED_SNAPSHOT, PUBLISHED, SEED_KEY)
    for chunk in chunks:
        if chunk:
            _write(client, signer, [(None, card) for card in chunk], keys=keys)
    client.set(SEED_KEY, signer.key_id)
    done = [names.CREDENTIALS_VERSION, SNAPSHOT, SEED_SNAPSHOT, SEED_VERSION, FEED_KEY, SEED_KEY]
    return int(client.eval(_SEED_DONE, len(done), *done))


def feed_key(client: redis.Redis) -> str:
    """The id of the key the feed in Redis is signed with ("" if none)."""
    raw = client.get(FEED_KEY)
    return raw.decode() if isinstance(raw, bytes) else str(raw or "")


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _from_snapshot(raw: bytes | str) -> SignedChange:
    try:
        data = json.loads(raw)
        return SignedChange(int(data["v"]), str(data["e"]).encode(), str(data.get("k", "")), str(data.get("s", "")))
    except (ValueError, KeyError, TypeError, AttributeError):
        return SignedChange(0, _text(raw).encode(), "", "")  # not a signed value: refused by the verifier


def load_snapshot(client: redis.Redis) -> tuple[int, dict[str, SignedChange]]:
    pipe = client.pipeline(transaction=True)
    pipe.get(names.CREDENTIALS_VERSION)
    pipe.hgetall(SNAPSHOT)
    version, cards = pipe.execute()
    return int(version or 0), {_text(k).upper(): _from_snapshot(v) for k, v in cards.items()}


def read_after(
    client: redis.Redis, version: int, *, count: int = 1000, block_ms: int | None = None
) -> list[SignedChange]:
    """Changes after ``version``, in order (the caller checks for a gap and verifies each)."""
    reply = cast(StreamReply, client.xread({names.CREDENTIALS: f"{version}-1"}, count=count, block=block_ms))
    if not reply:
        return []
    out = []
    for entry_id, fields in reply[0][1]:
        try:
            v = int(fields[b"v"])
        except (KeyError, ValueError):
            v = int(_text(entry_id).split("-")[0])
        out.append(SignedChange(v, fields.get(b"e", b""), _text(fields.get(b"k", b"")), _text(fields.get(b"s", b""))))
    return out
