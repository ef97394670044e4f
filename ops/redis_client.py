"""The one way Django-side code gets a Redis client for the streams."""

from __future__ import annotations

import redis
from django.conf import settings


def client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=30, health_check_interval=30)
