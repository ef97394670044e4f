"""The outbox relay: publishes committed card changes. Credential changes go to the readers'
stream with a rising version (agents apply them in order and resync on a gap); card actions go
to the live card-action feed. Run one relay (``campuscard relay``); on PostgreSQL several may
run, since each claims rows with SKIP LOCKED."""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

import redis
from django.db import transaction
from django.utils import timezone

from ops.push import Fanout
from ops.registry.lifecycle.choices import Topic
from ops.registry.lifecycle.models import OutboxMessage
from ops.registry.lifecycle.outbox import credential_payload
from ops.registry.models import Card
from streams import credentials as credential_feed
from streams import names

log = logging.getLogger(__name__)


class OutboxRelay:
    def __init__(self, client: redis.Redis, *, fanout: Fanout | None, poll_s: float = 0.1) -> None:
        self.redis = client
        self.fanout = fanout
        self.poll_s = poll_s
        self.stopping = threading.Event()
        self.published = 0

    def run_once(self, limit: int = 1000) -> int:
        live: list[dict[str, Any]] = []
        with transaction.atomic():
            rows = list(
                OutboxMessage.objects.select_for_update(skip_locked=True)
                .filter(published_at__isnull=True)
                .order_by("id")[:limit]
            )
            if not rows:
                return 0
            credentials = [r for r in rows if r.topic == Topic.CREDENTIAL]
            if credentials:
                top = credential_feed.publish(self.redis, [r.payload for r in credentials])
                for offset, row in enumerate(credentials):
                    row.version = top - len(credentials) + 1 + offset
            now = timezone.now()
            for row in rows:
                row.published_at = now
                if row.topic == Topic.CARD_ACTION:
                    live.append({**row.payload, "id": row.id, "ts": row.created_at.timestamp()})
            OutboxMessage.objects.bulk_update(rows, ["published_at", "version"])
            watermark = rows[-1].id
        if live and self.fanout is not None:
            self.fanout.publish({names.GROUP_CARD_ACTIONS: live}, watermark=watermark)
        self.published += len(rows)
        return len(rows)

    def seed_snapshot(self) -> int:
        """A fresh Redis has no credential snapshot: publish every card once (agents then
        load it). Cards seeded or restored straight into the database get there this way."""
        if self.redis.exists(credential_feed.SNAPSHOT):
            return 0

        cards = Card.objects.select_related("holder", "holder__dorm_building").order_by("id")
        batch: list[dict[str, Any]] = []
        count = 0
        for card in cards.iterator(chunk_size=5000):
            batch.append(credential_payload(card))
            if len(batch) == 5000:
                credential_feed.publish(self.redis, batch)
                count, batch = count + len(batch), []
        if batch:
            credential_feed.publish(self.redis, batch)
            count += len(batch)
        log.info("credential snapshot seeded with %d cards", count)
        return count

    def run(self) -> None:
        self.seed_snapshot()
        while not self.stopping.is_set():
            try:
                if self.run_once():
                    continue
            except (redis.RedisError, OSError) as exc:  # keep the rows; try again shortly
                log.warning("relay could not publish: %s", exc)
            self.stopping.wait(self.poll_s)

    def install_signal_handlers(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: self.stopping.set())
