"""The credential feed for reader agents (the contract both sides keep).

- Stream ``campuscard:credentials``: one entry per card change, with the explicit entry id
  ``<version>-1`` and fields ``v`` (version) and ``e`` (the card as JSON: uid, card_type,
  status, blacklisted, valid_from, valid_until, dorm_building — ``readers.decide.Credential``).
- Hash ``campuscard:credentials:snapshot`` (uid → the same JSON) and key
  ``campuscard:credentials:version``: the state after the latest version.

The relay writes all three in one Lua script, so they always agree. An agent loads the
snapshot (version and hash in one MULTI), then reads the stream after ``<version>-1``; if the
next entry is not version + 1 (the stream was trimmed past it), it loads the snapshot again.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
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


def publish(client: redis.Redis, cards: Iterable[dict[str, Any]]) -> int:
    """Append card changes; returns the version of the last one (the first is that - n + 1)."""
    args: list[Any] = [names.CREDENTIALS_MAXLEN]
    for card in cards:
        args += [card["uid"], json.dumps(card, ensure_ascii=False, sort_keys=True)]
    keys = [names.CREDENTIALS_VERSION, names.CREDENTIALS, SNAPSHOT]
    return int(client.eval(_PUBLISH, len(keys), *keys, *args))


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
