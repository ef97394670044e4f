"""The credential feed for reader agents (the contract both sides keep).

- Stream ``campuscard:credentials``: one entry per card change, with the explicit entry id
  ``<version>-1`` and fields ``v`` (version) and ``e`` (the card as JSON: uid, card_type,
  status, blacklisted, valid_from, valid_until, dorm_building — ``readers.decide.Credential``).
- Hash ``campuscard:credentials:snapshot`` (uid → the same JSON) and key
  ``campuscard:credentials:version``: the state after the latest version.

The relay writes all three in one Lua script, so they always agree; it publishes each outbox row
exactly once (:func:`publish_rows`: a row sent again keeps its version), and only onto a feed
that exists: a Redis that restarted empty would otherwise get a
one-card snapshot at version 1, which every agent would load — the whole campus locked out. The
relay first writes the whole card list as a new feed continuing *after* every version ever used
(:func:`reseed`: built under side keys and put in place at once, so no agent sees half of it). An agent loads the
snapshot (version and hash in one MULTI), then reads the stream after ``<version>-1``; if the
next entry is not version + 1 (the stream was trimmed past it), it loads the snapshot again.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any, cast

import redis

from streams import names
from streams.consumer import StreamReply

SNAPSHOT = "campuscard:credentials:snapshot"

# KEYS: version, stream, snapshot. ARGV: maxlen, then uid, payload pairs.
_PUBLISH = """
local v = tonumber(redis.call('GET', KEYS[1]) or '0')
for i = 2, #ARGV, 2 do
  v = v + 1
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[1], v .. '-1', 'v', v, 'e', ARGV[i + 1])
  redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 1])
end
redis.call('SET', KEYS[1], v)
return v
"""


SEED_VERSION = names.CREDENTIALS_VERSION + ":seeding"
SEED_SNAPSHOT = SNAPSHOT + ":seeding"
# KEYS: version, snapshot, seed snapshot, seed version: the seeded feed takes the place of the old
_SEED_DONE = """
if redis.call('EXISTS', KEYS[3]) == 1 then redis.call('RENAME', KEYS[3], KEYS[2]) else redis.call('DEL', KEYS[2]) end
redis.call('SET', KEYS[1], redis.call('GET', KEYS[4]))
redis.call('DEL', KEYS[4])
return tonumber(redis.call('GET', KEYS[1]))
"""


PUBLISHED = "campuscard:credentials:published"  # ZSET outbox row id → the version it went out as
PUBLISHED_KEPT = 100_000
# KEYS: version, stream, snapshot, published. ARGV: maxlen, kept, then (outbox id, uid, payload)
# triples. A row already published (a relay that died after publishing, before its commit)
# keeps its version and is not sent again. Refuses a feed that is gone (see FeedReset).
_PUBLISH_ROWS = """
if not redis.call('GET', KEYS[1]) then return redis.error_reply('NOFEED the credential feed is gone') end
local v = tonumber(redis.call('GET', KEYS[1]))
local out = {}
for i = 3, #ARGV, 3 do
  local known = redis.call('ZSCORE', KEYS[4], ARGV[i])
  if known then
    out[#out + 1] = tonumber(known)
  else
    v = v + 1
    redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[1], v .. '-1', 'v', v, 'e', ARGV[i + 2])
    redis.call('HSET', KEYS[3], ARGV[i + 1], ARGV[i + 2])
    redis.call('ZADD', KEYS[4], v, ARGV[i])
    out[#out + 1] = v
  end
end
redis.call('SET', KEYS[1], v)
redis.call('ZREMRANGEBYRANK', KEYS[4], 0, -tonumber(ARGV[2]) - 1)
return out
"""


class FeedReset(redis.RedisError):
    """Redis no longer holds the credential feed (it restarted empty): reseed before publishing."""


def _args(cards: Iterable[dict[str, Any]]) -> list[Any]:
    args: list[Any] = [names.CREDENTIALS_MAXLEN]
    for card in cards:
        args += [card["uid"], json.dumps(card, ensure_ascii=False, sort_keys=True)]
    return args


def publish(client: redis.Redis, cards: Iterable[dict[str, Any]]) -> int:
    """Append card changes; returns the version of the last one (the first is that - n + 1).
    Tools and tests that play the server; the relay publishes with :func:`publish_rows`."""
    keys = [names.CREDENTIALS_VERSION, names.CREDENTIALS, SNAPSHOT]
    return int(client.eval(_PUBLISH, len(keys), *keys, *_args(cards)))


def publish_rows(client: redis.Redis, rows: Sequence[tuple[int, dict[str, Any]]]) -> list[int]:
    """The relay's publish: outbox rows ``(id, card)``, each exactly once however often it is
    sent (a relay killed between publishing and committing sends its rows again); returns each
    row's version. Raises :class:`FeedReset` if Redis holds no feed."""
    args: list[Any] = [names.CREDENTIALS_MAXLEN, PUBLISHED_KEPT]
    for row_id, card in rows:
        args += [row_id, card["uid"], json.dumps(card, ensure_ascii=False, sort_keys=True)]
    keys = [names.CREDENTIALS_VERSION, names.CREDENTIALS, SNAPSHOT, PUBLISHED]
    try:
        return [int(v) for v in client.eval(_PUBLISH_ROWS, len(keys), *keys, *args)]
    except redis.ResponseError as exc:
        if "NOFEED" in str(exc):
            raise FeedReset(str(exc)) from None
        raise


def reseed(client: redis.Redis, chunks: Iterable[list[dict[str, Any]]], *, after_version: int) -> int:
    """Write every card (``chunks`` of them) as the feed, at versions after ``after_version``;
    returns the feed's version. Agents see the old feed (or none) until the last step, then all
    of the new one; those behind find the gap and load the new snapshot."""
    client.delete(SEED_SNAPSHOT)
    client.set(SEED_VERSION, after_version)
    keys = [SEED_VERSION, names.CREDENTIALS, SEED_SNAPSHOT]
    for chunk in chunks:
        if chunk:
            client.eval(_PUBLISH, len(keys), *keys, *_args(chunk))
    done = [names.CREDENTIALS_VERSION, SNAPSHOT, SEED_SNAPSHOT, SEED_VERSION]
    return int(client.eval(_SEED_DONE, len(done), *done))


def load_snapshot(client: redis.Redis) -> tuple[int, dict[str, dict[str, Any]]]:
    pipe = client.pipeline(transaction=True)
    pipe.get(names.CREDENTIALS_VERSION)
    pipe.hgetall(SNAPSHOT)
    version, cards = pipe.execute()
    return int(version or 0), {(k.decode() if isinstance(k, bytes) else k): json.loads(v) for k, v in cards.items()}


def read_after(
    client: redis.Redis, version: int, *, count: int = 1000, block_ms: int | None = None
) -> list[tuple[int, dict[str, Any]]]:
    """Changes after ``version``, in order (the caller checks for a gap)."""
    reply = cast(StreamReply, client.xread({names.CREDENTIALS: f"{version}-1"}, count=count, block=block_ms))
    if not reply:
        return []
    return [(int(fields[b"v"]), json.loads(fields[b"e"])) for _id, fields in reply[0][1]]
