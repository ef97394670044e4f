"""The one way a process gets a client for the events stream: a single Redis, or a Redis Cluster
(issue 14) when the deployment says so. Everything else Redis holds (credential feed, fan-out
sequences, the Channels layer) stays on its own single-Redis clients."""

from __future__ import annotations

from typing import Any, TypeAlias

import redis
from redis.cluster import RedisCluster

StreamClient: TypeAlias = redis.Redis | RedisCluster


def connect(url: str, *, cluster: bool = False, **kwargs: Any) -> StreamClient:
    """A client for ``url``; with ``cluster`` the URL is any one node of the cluster (the client
    discovers the others and follows a failover)."""
    if cluster:
        return RedisCluster.from_url(url, **kwargs)
    return redis.Redis.from_url(url, **kwargs)


def is_cluster(client: StreamClient) -> bool:
    return isinstance(client, RedisCluster)
