"""The one way Django-side code gets a Redis client: ``client()`` for what lives on REDIS_URL
(credential feed, fan-out sequences, counters of the alerts), ``stream_client()`` for the events
stream (REDIS_URL too, unless EVENTS_REDIS_URL / EVENTS_REDIS_CLUSTER put it on a cluster)."""

from __future__ import annotations

import redis
from django.conf import settings

from streams.connect import StreamClient, connect


def client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=30, health_check_interval=30)


def stream_client() -> StreamClient:
    if settings.EVENTS_REDIS_URL == settings.REDIS_URL and not settings.EVENTS_REDIS_CLUSTER:
        return client()
    return connect(
        settings.EVENTS_REDIS_URL, cluster=settings.EVENTS_REDIS_CLUSTER, socket_timeout=30, health_check_interval=30
    )
