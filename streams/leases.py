"""Which processor owns which partition of the events stream (issue 14): leases in Redis.

Every processor heartbeats into one sorted set; from the number alive each one's fair share is
``ceil(partitions / alive)``. A processor renews the leases it holds (a value with a time to live,
renewed only while it is still its own: one Lua check-and-set per lease), gives back what it holds
above its share, and takes free partitions up to it, in an order of its own so that processors
starting together do not all reach for the same ones. A processor that dies stops renewing; after
``ttl_ms`` its partitions are free and the others take them, with what it left unacknowledged.

A partition has one owner at a time, so a device's sequence checks and its per-partition state
live in one process (R-DEV-1, R-SEC-5), and processors need no lock among themselves: more
processors (on more machines) add throughput.
"""

from __future__ import annotations

import math
import time
import zlib

from streams import names
from streams.connect import StreamClient

_RENEW = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0"
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"


class PartitionLeases:
    def __init__(self, client: StreamClient, consumer: str, partitions: int, *, ttl_ms: int = 10_000) -> None:
        if partitions < 1:
            raise ValueError(f"partitions must be >= 1, got {partitions}")
        self.redis = client
        self.consumer = consumer
        self.partitions = partitions
        self.ttl_ms = ttl_ms
        self.owned: set[int] = set()
        start = zlib.crc32(consumer.encode()) % partitions
        self._order = [(start + i) % partitions for i in range(partitions)]

    def alive(self) -> int:
        """Heartbeat, forget processors silent for a lease's lifetime, and count the rest."""
        now = int(time.time() * 1000)
        pipe = self.redis.pipeline(transaction=False)
        pipe.zadd(names.PROCESSORS, {self.consumer: now})
        pipe.zremrangebyscore(names.PROCESSORS, 0, now - self.ttl_ms)
        pipe.zcard(names.PROCESSORS)
        return max(1, int(pipe.execute()[2]))

    def refresh(self) -> tuple[list[int], list[int]]:
        """Renew, give back above the fair share, take free partitions up to it: (gained, lost)."""
        share = math.ceil(self.partitions / self.alive())
        lost = [
            p
            for p in sorted(self.owned)
            if not self.redis.eval(_RENEW, 1, names.lease_key(p), self.consumer, self.ttl_ms)
        ]
        self.owned.difference_update(lost)
        surplus = [p for p in reversed(self._order) if p in self.owned][: max(0, len(self.owned) - share)]
        for p in surplus:
            self.release(p)
        lost += surplus
        gained: list[int] = []
        for p in self._order:
            if len(self.owned) >= share:
                break
            if p not in self.owned and self.redis.set(names.lease_key(p), self.consumer, nx=True, px=self.ttl_ms):
                self.owned.add(p)
                gained.append(p)
        return gained, lost

    def release(self, partition: int) -> None:
        self.owned.discard(partition)
        self.redis.eval(_RELEASE, 1, names.lease_key(partition), self.consumer)

    def release_all(self) -> None:
        """On a clean stop: hand every partition over now instead of after the time to live."""
        for p in sorted(self.owned):
            self.release(p)
        self.redis.zrem(names.PROCESSORS, self.consumer)
