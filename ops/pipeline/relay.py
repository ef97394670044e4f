"""The outbox relay: publishes committed card changes. Credential changes go to the readers'
stream with a rising version (agents apply them in order and resync on a gap); card actions go
to the live card-action feed. Run one relay (``campuscard relay``); on PostgreSQL several may
run, since each claims rows with SKIP LOCKED."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from typing import Any

import redis
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import Max
from django.utils import timezone

from ops.audit import services as audit
from ops.audit.models import AuditRecord
from ops.pipeline import feed_keys
from ops.push import Fanout
from ops.registry.calendar import policy as door_policy
from ops.registry.emergency import selectors as emergency_modes
from ops.registry.emergency.choices import AuditAction as EmergencyAction
from ops.registry.emergency.models import EmergencyRevision
from ops.registry.lifecycle.choices import Topic
from ops.registry.lifecycle.models import OutboxMessage
from ops.registry.lifecycle.outbox import credential_payload
from ops.registry.models import Card
from streams import credentials as credential_feed
from streams import emergency as emergency_feed
from streams import names
from streams.credentials import FeedSigner

log = logging.getLogger(__name__)
RESEED_ACTION = "credential_feed.reseed"


class OutboxRelay:
    def __init__(self, client: redis.Redis, *, fanout: Fanout | None, poll_s: float = 0.1) -> None:
        self.redis = client
        self.fanout = fanout
        self.poll_s = poll_s
        self.stopping = threading.Event()
        self.published = 0
        self._signer: FeedSigner | None = None

    @property
    def signer(self) -> FeedSigner:
        """The active feed key (re-read each ``ensure_feed``, so an activation takes effect)."""
        if self._signer is None:
            self._signer = feed_keys.signer()
        return self._signer

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
                versions = credential_feed.publish_rows(
                    self.redis, [(r.id, r.payload) for r in credentials], self.signer
                )
                for row, version in zip(credentials, versions, strict=True):
                    row.version = version
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

    def ensure_emergency(self) -> int:
        """Send the emergency modes in force (issue 17, Build 2) when the database's revision is
        newer than the one Redis holds — or Redis lost it — before any other change: called
        first in each round of :meth:`run`. Returns the revision sent (0: nothing to send)."""
        wanted, _published = emergency_modes.revision()
        if wanted == 0:
            return 0
        held, signed_by = emergency_feed.held(self.redis)
        if held > wanted or (held == wanted and signed_by == self.signer.key_id):
            return 0
        with transaction.atomic():
            state = emergency_modes.reader_state(wanted)
        if not emergency_feed.publish(self.redis, state, self.signer):
            return 0
        EmergencyRevision.objects.filter(pk=1, published__lt=wanted).update(published=wanted)
        audit.record(
            actor=None,
            action=EmergencyAction.PUBLISH,
            object_type="emergency_state",
            object_id=wanted,
            data={
                "revision": wanted,
                "modes": [f"{m.kind}:{m.scope}:{m.name}" for m in state.modes],
                "security_cards": len(state.security),
                "key": self.signer.key_id,
            },
        )
        log.warning("emergency state %d sent to the readers: %d modes in force", wanted, len(state.modes))
        return wanted

    def ensure_feed(self) -> int:
        """Make sure Redis holds the credential feed; if it does not (a new Redis, or one that
        restarted empty), write every card as a new feed, at versions after every version ever
        published — never one an agent already holds (issue 12: a reused version 1 with a
        one-card snapshot locked the whole campus out). Audited. Returns the cards written."""
        self._signer = feed_keys.signer()
        present = self.redis.exists(names.CREDENTIALS_VERSION)
        signed_by = credential_feed.feed_key(self.redis) if present else ""
        if present and signed_by == self._signer.key_id:
            return 0
        # no feed, or one signed by another key (NIC activated a new one): the whole feed again
        basis = "Redis held no credential feed" if not present else f"re-signed with feed key {self._signer.key_id}"
        published = OutboxMessage.objects.filter(topic=Topic.CREDENTIAL).aggregate(v=Max("version"))["v"] or 0
        last_seed = (
            AuditRecord.objects.filter(action=RESEED_ACTION).order_by("-id").values_list("data", flat=True).first()
        )
        current = int(self.redis.get(names.CREDENTIALS_VERSION) or 0) if present else 0
        after = max(published, int((last_seed or {}).get("version", 0)), current)
        cards = Card.objects.select_related("holder", "holder__dorm_building").order_by("id")
        stays = door_policy.live_stays_by_holder()  # the vacation stay list, one query (issue 17)
        count = 0

        def chunks() -> Iterator[list[dict[str, Any]]]:
            nonlocal count
            batch: list[dict[str, Any]] = []
            for card in cards.iterator(chunk_size=5000):
                batch.append(credential_payload(card, stays=stays.get(card.holder_id, ())))
                if len(batch) == 5000:
                    count += len(batch)
                    yield batch
                    batch = []
            count += len(batch)
            yield batch
            policy = door_policy.current_payload()  # the door rules and calendar, if any (issue 17)
            if policy is not None:
                yield [policy]

        version = credential_feed.reseed(self.redis, chunks(), after_version=after, signer=self._signer)
        audit.record(
            actor=None,
            action=RESEED_ACTION,
            object_type="credential_feed",
            object_id=version,
            basis=basis,
            data={"version": version, "after": after, "cards": count, "key": self._signer.key_id},
        )
        if present:
            log.warning(
                "credential feed re-signed with key %s: %d cards, versions %d..%d",
                *(self._signer.key_id, count, after + 1, version),
            )
        elif after:
            log.warning(
                "Redis had lost the credential feed: reseeded %d cards, versions %d..%d", count, after + 1, version
            )
        else:
            log.info("credential feed seeded with %d cards", count)
        return count

    def run(self) -> None:
        quiet = False
        while not self.stopping.is_set():
            try:
                self.ensure_emergency()  # ahead of any other change, a reseed too (issue 17, Build 2)
                self.ensure_feed()
                published = self.run_once()
                quiet = False
                if published:
                    continue
            except (redis.RedisError, OSError) as exc:  # keep the rows; try again shortly
                if not quiet:
                    log.warning("relay could not publish (%s): retrying; the changes wait in the outbox", exc)
                quiet = True
                self.stopping.wait(1.0)
                continue
            except (OperationalError, InterfaceError) as exc:  # the database away: the same
                if not quiet:
                    log.warning("relay cannot read the outbox (%s): retrying", exc)
                quiet = True
                connection.close()
                self.stopping.wait(1.0)
                continue
            self.stopping.wait(self.poll_s)

    def install_signal_handlers(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: self.stopping.set())
