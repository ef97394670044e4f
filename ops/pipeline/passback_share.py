"""The processor's half of shared anti-passback (issue 17, Build 5; R-SEC-5): after a batch of
taps is committed, each allowed, directed passage at an anti-passback door is published on its
zone's stream (:mod:`streams.passback`), which the zone's other agents follow — so an IN at one
gate of the campus is known at every gate of the campus within about a second (the agent's
upload, the processor's batch, the follower's block).

Published after the commit, never before (an agent must not learn of a passage the database
does not hold, nor twice: a redelivered tap is not inserted again, so not published again). A
Redis that refuses the publication loses it for the zone's other readers only — the reader that
took the tap knows it already — and is logged; anti-passback is a deterrent, the record is the
database's.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

import redis
from django.conf import settings
from django.db import transaction

from ops import redis_client
from ops.registry.models import Device
from streams import envelopes
from streams import passback as zone_feed
from streams.reasons import Decision, Direction

log = logging.getLogger(__name__)
RELOAD_S = 30.0  # a door's anti-passback zone changed in the registry is followed within this


class ZoneShare:
    def __init__(self) -> None:
        self._zones: dict[str, str] = {}  # device code → zone (anti-passback doors only)
        self._loaded_at = -RELOAD_S

    def zone_of(self, device_code: str) -> str | None:
        if time.monotonic() - self._loaded_at > RELOAD_S:
            self._loaded_at = time.monotonic()
            self._zones = {
                code: area or code
                for code, mode, area in Device.objects.exclude(passback="off").values_list(
                    "code", "passback", "passback_area"
                )
            }
        return self._zones.get(device_code)

    def publish_on_commit(self, taps: Iterable[tuple[envelopes.Tap, str]]) -> None:
        """``taps``: the batch's newly stored taps with their device codes."""
        out: list[tuple[str, zone_feed.ZonePassage]] = []
        for tap, code in taps:
            if tap.decision != Decision.ALLOW or tap.direction == Direction.NONE:
                continue
            zone = self.zone_of(code)
            if zone is not None:
                out.append((zone, zone_feed.ZonePassage(tap.card_uid, tap.direction, tap.occurred_at, code)))
        if out:
            transaction.on_commit(lambda: publish(out))


_clients: dict[str, redis.Redis] = {}  # one connection pool per Redis URL, made on first use


def publish(passages: list[tuple[str, zone_feed.ZonePassage]]) -> None:
    try:
        client = _clients.get(settings.REDIS_URL)
        if client is None:
            client = _clients[settings.REDIS_URL] = redis_client.client()
        pipe = client.pipeline(transaction=False)
        for zone, passage in passages:
            zone_feed.publish(pipe, zone, passage)
        pipe.execute()
    except (redis.RedisError, OSError) as exc:
        log.error("%d passages not shared with their anti-passback zones: %s", len(passages), exc)
