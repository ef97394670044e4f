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
from datetime import UTC, datetime
from typing import Annotated, Any, cast

import redis
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from streams import names
from streams.cards import CardStatus, CardType
from streams.consumer import StreamReply

SNAPSHOT = "campuscard:credentials:snapshot"
FEED_KEY = "campuscard:credentials:key"  # the id of the key the feed in Redis is signed with
FORGED_FAULT = "forged_credential"  # the fault code an agent reports a refused entry with
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

    def wire(self) -> dict[str, Any]:
        """The JSON object as it is stored in the outbox and sent (ISO datetimes). A card with no
        grants is sent without the field: the same bytes as before grants existed."""
        return self.model_dump(mode="json", exclude=None if self.grants else {"grants"})


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

    def verify(self, change: SignedChange) -> CardCredential:
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
            args += ["" if row_id is None else row_id, card["uid"], v, e, change.sig, change.snapshot_value()]
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
