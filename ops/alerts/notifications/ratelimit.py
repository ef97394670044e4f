"""Per-channel send limits shared by every supervisor, held in Redis.

A sliding window, not a token bucket: DingTalk and WeCom count a robot's messages per minute
and DingTalk blocks a robot for ten minutes once it sees a 21st. A bucket of 20 refilling at
20/min lets ~40 through in some 60-second span; a log of the sends in the last minute (a
sorted set, checked and appended in one Lua script, so two supervisors cannot both take the
20th place) never lets more than the limit into any 60 seconds. The clock is the caller's
(``now``), so tests drive time without sleeping."""

from __future__ import annotations

import uuid
from datetime import datetime

import redis

from streams import names

WINDOW_MS = 60_000

# KEYS[1] the channel's log; ARGV: now (ms), limit, window (ms), a unique member.
# Returns 0 when the send may go (and records it), else the milliseconds until a place frees.
_ACQUIRE = """
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], now, ARGV[4])
  redis.call('PEXPIRE', KEYS[1], window)
  return 0
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return math.max(1, tonumber(oldest[2]) + window - now + 1)
"""


class RateLimiter:
    """``acquire(channel_id, limit, now)``: 0.0 if a message may be sent now (the place is
    taken), else the seconds to wait. ``limit`` 0 means no limit."""

    def __init__(self, client: redis.Redis):
        self.redis = client
        self._script = client.register_script(_ACQUIRE)

    def acquire(self, channel_id: int, *, limit: int, now: datetime) -> float:
        if limit <= 0:
            return 0.0
        now_ms = int(now.timestamp() * 1000)
        key = f"{names.NOTIFY_RATE_PREFIX}{channel_id}"
        wait_ms = int(self._script(keys=[key], args=[now_ms, limit, WINDOW_MS, f"{now_ms}:{uuid.uuid4().hex}"]))
        return wait_ms / 1000.0
