"""Emergency modes on the readers' feed (issue 17, Build 2; R-OPS-2, R-SEC-5): the contract both
sides keep.

An emergency mode is a **lockdown** (only security staff pass) or an **unlock-all** (fire: the
doors are released, everyone gets out; taps are still recorded), for the whole campus, a
building or a door group. The readers get the whole set of modes in force as one small signed
message, :class:`EmergencyState`, with its own rising ``revision`` — not a credential version:

- *ahead of any other change*: it is not queued behind card changes. It lives under its own keys
  — :data:`STATE` (the latest signed state, what an agent reads when it connects) and
  :data:`STREAM` (one entry per revision, entry id ``<revision>-1``), which an agent reads in
  the same ``XREAD`` as the credential stream and applies first; the relay publishes it before
  any outbox row (``ops.pipeline.relay``);
- *signed* with the credential feed's Ed25519 key, under its own domain
  (``b"campuscard-emergency\\n<revision>\\n" + e``), so neither message can be replayed as the
  other and an old state cannot be replayed at a newer revision;
- *a state, not a change*: an agent takes a revision only if it is newer than the one it holds,
  and holds it (its SQLite) across restarts until a newer one ends it. The end of every mode is
  a new revision with no modes.

Who is "security staff" at the door: the card UIDs in :attr:`EmergencyState.security` (the
active staff cards of the security departments, ``EMERGENCY_SECURITY_DEPARTMENTS``), listed by
the server each time it publishes the state; the door still refuses such a card if it is lost,
cancelled, blacklisted or out of validity.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, cast

import redis
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from streams import names
from streams.consumer import StreamReply
from streams.credentials import FeedSigner, FeedVerifier, ForgedCredential, SignedChange

STATE = "campuscard:emergency"  # the latest signed state: JSON {"r", "k", "s", "e"}
STREAM = "campuscard:emergency:stream"  # one entry per revision, id "<revision>-1"
REVISION = "campuscard:emergency:revision"  # the revision STATE holds (the relay's cheap check)
SIGNED_BY = "campuscard:emergency:key"  # the id of the key STATE is signed with
STREAM_MAXLEN = 100
DOMAIN = b"campuscard-emergency\n"
EMERGENCY_TYPE: Literal["emergency"] = "emergency"

Kind = Literal["lockdown", "unlock_all"]
Scope = Literal["campus", "building", "group"]
LOCKDOWN: Kind = "lockdown"
UNLOCK_ALL: Kind = "unlock_all"
Code = Annotated[str, Field(min_length=1, max_length=40)]


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None or value.utcoffset() is None else value


class Mode(BaseModel):
    """One mode in force. ``scope`` campus: every door; building: the doors of ``buildings`` (the
    one building); group: a door group's ``devices`` and ``buildings`` as they were when it
    started (the message is complete in itself: no door needs the door policy to apply it)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: Annotated[int, Field(ge=1)]
    kind: Kind
    scope: Scope
    name: Annotated[str, Field(max_length=100)] = ""  # the building or group, for logs
    devices: Annotated[tuple[Code, ...], Field(max_length=5000)] = ()
    buildings: Annotated[tuple[Code, ...], Field(max_length=1000)] = ()
    started_at: Annotated[datetime, AfterValidator(_utc)]

    @model_validator(mode="after")
    def _scoped(self) -> Mode:
        if self.scope == "campus" and (self.devices or self.buildings):
            raise ValueError("a campus-wide mode names no doors")
        if self.scope == "building" and (len(self.buildings) != 1 or self.devices):
            raise ValueError("a building's mode names exactly its building")
        if self.scope == "group" and not (self.devices or self.buildings):
            raise ValueError("a door group's mode names its doors")
        return self


class EmergencyState(BaseModel):
    """Every mode in force at ``revision`` (none: back to normal)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: Literal["emergency"] = EMERGENCY_TYPE
    revision: Annotated[int, Field(ge=1)]
    issued_at: Annotated[datetime, AfterValidator(_utc)]
    modes: Annotated[tuple[Mode, ...], Field(max_length=200)] = ()
    security: Annotated[tuple[Annotated[str, Field(min_length=1, max_length=64)], ...], Field(max_length=20000)] = ()

    def wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def encode(state: EmergencyState) -> bytes:
    return json.dumps(state.wire(), ensure_ascii=False, sort_keys=True).encode()


@dataclass(frozen=True)
class SignedState:
    """A state as read from Redis, not yet trusted."""

    revision: int
    e: bytes
    key: str
    sig: str

    def value(self) -> str:
        return json.dumps({"r": self.revision, "k": self.key, "s": self.sig, "e": self.e.decode()}, ensure_ascii=False)


def sign(state: EmergencyState, signer: FeedSigner) -> SignedState:
    e = encode(state)
    return SignedState(state.revision, e, signer.key_id, signer.sign_as(DOMAIN, state.revision, e))


def verify(signed: SignedState, verifier: FeedVerifier) -> EmergencyState:
    """The state, if a trusted feed key signed it at its revision (:class:`ForgedCredential`
    otherwise; ``ValueError`` if signed but malformed)."""
    verifier.check_as(DOMAIN, SignedChange(signed.revision, signed.e, signed.key, signed.sig))
    try:
        state = EmergencyState.model_validate_json(signed.e)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ValueError(f"emergency revision {signed.revision}: {first['loc']}: {first['msg']}") from None
    if state.revision != signed.revision:
        raise ForgedCredential(f"emergency revision {signed.revision} carries revision {state.revision}")
    return state


# KEYS: state, stream, revision, signed-by. ARGV: revision, state value, e, key, sig, maxlen. A
# revision older than the one held is not written (two relays; a stale retry): returns 0; the same
# revision is written again only signed by another key (NIC activated a new feed key), into the
# state alone (agents holding that revision keep it; one that connects reads it newly signed).
_PUBLISH = """
local cur = tonumber(redis.call('GET', KEYS[3]) or '0')
local r = tonumber(ARGV[1])
if r < cur or (r == cur and redis.call('GET', KEYS[4]) == ARGV[4]) then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
if r > cur then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[6], r .. '-1', 'r', r, 'e', ARGV[3], 'k', ARGV[4], 's', ARGV[5])
end
redis.call('SET', KEYS[3], r)
redis.call('SET', KEYS[4], ARGV[4])
return r
"""


def publish(client: redis.Redis, state: EmergencyState, signer: FeedSigner) -> bool:
    """Sign and publish ``state``; False if Redis already holds a newer revision, or this one
    signed by this key."""
    signed = sign(state, signer)
    done = client.eval(
        _PUBLISH,
        4,
        STATE,
        STREAM,
        REVISION,
        SIGNED_BY,
        signed.revision,
        signed.value(),
        signed.e,
        signed.key,
        signed.sig,
        STREAM_MAXLEN,
    )
    return bool(done)


def held(client: redis.Redis) -> tuple[int, str]:
    """(the revision Redis holds, the id of the key it is signed with): the relay's check."""
    revision, key = client.mget([REVISION, SIGNED_BY])
    return int(revision or 0), _text(key or b"")


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def load(client: redis.Redis) -> SignedState | None:
    """The latest state in Redis (None: none was ever published, or Redis lost it)."""
    raw = client.get(STATE)
    if raw is None:
        return None
    try:
        data = json.loads(raw)
        return SignedState(int(data["r"]), str(data["e"]).encode(), str(data.get("k", "")), str(data.get("s", "")))
    except (ValueError, KeyError, TypeError, AttributeError):
        return SignedState(0, _text(raw).encode(), "", "")  # refused by the verifier


def parse_entries(entries: list[tuple[bytes, dict[bytes, bytes]]]) -> list[SignedState]:
    out = []
    for entry_id, fields in entries:
        try:
            r = int(fields[b"r"])
        except (KeyError, ValueError):
            r = int(_text(entry_id).split("-")[0])
        out.append(SignedState(r, fields.get(b"e", b""), _text(fields.get(b"k", b"")), _text(fields.get(b"s", b""))))
    return out


def read_with_credentials(
    client: redis.Redis, credential_version: int, revision: int, *, count: int = 1000, block_ms: int | None = None
) -> tuple[list[SignedState], list[SignedChange]]:
    """One blocking ``XREAD`` of both streams: emergency states after ``revision`` and the
    credential stream's raw entries after ``credential_version`` (whichever comes first wakes
    the reader; the caller applies the emergency states first). The credential entries are read
    as :func:`streams.credentials.read_after` reads them."""
    reply = cast(
        StreamReply,
        client.xread(
            {STREAM: f"{revision}-1", names.CREDENTIALS: f"{credential_version}-1"}, count=count, block=block_ms
        ),
    )
    states: list[SignedState] = []
    changes: list[SignedChange] = []
    for stream, entries in reply or []:
        if _text(stream) == STREAM:
            states = parse_entries(entries)
            continue
        for entry_id, fields in entries:
            try:
                v = int(fields[b"v"])
            except (KeyError, ValueError):
                v = int(_text(entry_id).split("-")[0])
            changes.append(
                SignedChange(v, fields.get(b"e", b""), _text(fields.get(b"k", b"")), _text(fields.get(b"s", b"")))
            )
    return states, changes
