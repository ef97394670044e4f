"""The deployment's figures, read where they live at each scrape (issue 16, Build 3).

Whatever several processes share — the events stream and its partitions, what the processors
acknowledged, the dead letters, the devices, the open alerts, the outbox and the credential feed
— is read from Redis and the database when Prometheus asks, so every web worker answers the same
and no processor, relay or supervisor needs scraping. The cost is bounded and does not grow with
the tap history: two Redis round trips (a handful of O(1) commands per partition) and six small
queries (devices grouped by state, unresolved alerts grouped by kind — both small tables —, the
unpublished outbox rows through their partial index, the reporting devices' credential versions,
the notification delivery log by outcome, the notifications waiting).

A source that cannot be read (``events``: the events stream; ``redis``: REDIS_URL, the credential
feed; ``database``) leaves its figures out of that scrape and sets
``campuscard_metrics_source_up{source=…}`` to 0, so a broken Redis shows as such rather than as a
drained pipeline (the same names as ``/healthz``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

import redis
from django.db import DatabaseError
from django.db.models import Count, Max, Min, Q
from django.utils import timezone
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from ops.alerts.choices import AlertKind, AlertStatus, DeliveryStatus, NotificationStatus
from ops.alerts.models import Alert, DeliveryAttempt, Notification
from ops.registry.choices import DeviceState
from ops.registry.lifecycle.choices import Topic
from ops.registry.lifecycle.models import OutboxMessage
from ops.registry.models import Device
from streams import names
from streams.connect import StreamClient

log = logging.getLogger(__name__)
REDIS_ERRORS: tuple[type[BaseException], ...] = (redis.RedisError, OSError)
OPEN_STATUSES = (AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED)
PARTITION = ["partition"]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _id(entry_id: Any) -> tuple[int, int]:
    """A stream entry id as (milliseconds, sequence)."""
    ms, _, seq = _text(entry_id).partition("-")
    return int(ms), int(seq or 0)


def _reply(value: Any, empty: Any) -> Any:
    """A pipeline reply, or ``empty`` where Redis answered "no such key / group" (a partition
    nobody has written to yet); any other error is raised."""
    if isinstance(value, redis.ResponseError):
        return empty
    if isinstance(value, BaseException):
        raise value
    return value


class CampusCollector:
    """A prometheus-client collector (``collect()`` yields metric families)."""

    def __init__(self, *, streams: StreamClient, feed: redis.Redis, partitions: int, lease_ms: int) -> None:
        self.streams = streams  # the events stream (REDIS_URL, or its own Redis / cluster)
        self.feed = feed  # REDIS_URL: the credential feed
        self.partitions = partitions
        self.lease_ms = lease_ms

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "campuscard_metrics_source_up", "1 if this scrape could read the source, else 0", labels=["source"]
        )
        families: list[Metric] = []
        feed_version: int | None = None
        try:
            families += self._stream_figures()
            up.add_metric(["events"], 1)
        except REDIS_ERRORS as exc:
            log.warning("metrics: the events stream cannot be read (%s)", exc, extra={"event": "metrics.source_down"})
            up.add_metric(["events"], 0)
        try:
            feed_version = int(self.feed.get(names.CREDENTIALS_VERSION) or 0)
        except REDIS_ERRORS as exc:
            log.warning("metrics: the credential feed cannot be read (%s)", exc, extra={"event": "metrics.source_down"})
            up.add_metric(["redis"], 0)
        else:
            up.add_metric(["redis"], 1)
            families.append(
                GaugeMetricFamily(
                    "campuscard_credential_feed_version",
                    "Highest credential version the relay has published to the readers' feed",
                    value=feed_version,
                )
            )
        try:
            families += self._database_figures(feed_version)
            up.add_metric(["database"], 1)
        except DatabaseError as exc:
            log.warning("metrics: the database cannot be read (%s)", exc, extra={"event": "metrics.source_down"})
            up.add_metric(["database"], 0)
        yield up
        yield from families

    # -- Redis: the events stream --------------------------------------------------------------
    def _stream_figures(self) -> list[Metric]:
        added = CounterMetricFamily(
            "campuscard_events_added",
            "Entries appended to the partition of the events stream (Redis >= 7: XINFO entries-added)",
            labels=PARTITION,
        )
        processed = CounterMetricFamily(
            "campuscard_events_processed",
            "Entries the processors acknowledged after their batch's transaction committed (taps, "
            "heartbeats, faults, and the rejected ones)",
            labels=PARTITION,
        )
        dead_lettered = CounterMetricFamily(
            "campuscard_events_dead_lettered", "Entries sent to the partition's dead-letter stream", labels=PARTITION
        )
        length = GaugeMetricFamily("campuscard_stream_length", "Entries the partition's stream holds", labels=PARTITION)
        pending = GaugeMetricFamily(
            "campuscard_stream_pending", "Entries read by a processor and not yet acknowledged", labels=PARTITION
        )
        undelivered = GaugeMetricFamily(
            "campuscard_stream_undelivered",
            "Entries no processor has read yet (Redis >= 7: the consumer group's lag)",
            labels=PARTITION,
        )
        lag = GaugeMetricFamily(
            "campuscard_processing_lag_seconds",
            "Age of the partition's oldest entry not yet acknowledged (0: all caught up)",
            labels=PARTITION,
        )
        dead = GaugeMetricFamily(
            "campuscard_dead_letters", "Entries parked in the partition's dead-letter stream now", labels=PARTITION
        )
        leased = GaugeMetricFamily(
            "campuscard_partition_leased", "1 if a live processor holds the partition's lease", labels=PARTITION
        )
        flagged = CounterMetricFamily(
            "campuscard_events_flagged",
            "Messages the processors counted under an alert kind or as a duplicate",
            labels=["what"],
        )

        pipe = self.streams.pipeline(transaction=False)
        for p in range(self.partitions):
            stream = names.events_stream(p)
            pipe.xinfo_stream(stream)
            pipe.xinfo_groups(stream)
            pipe.xpending(stream, names.PROCESSOR_GROUP)
            pipe.xlen(names.dead_letter_stream(p))
            pipe.hgetall(names.stream_counters(p))
            pipe.exists(names.lease_key(p))
        pipe.hgetall(names.COUNTERS)
        pipe.zcount(names.PROCESSORS, int(time.time() * 1000) - self.lease_ms, "+inf")
        pipe.time()
        replies = pipe.execute(raise_on_error=False)
        seconds, micros = _reply(replies[-1], (0, 0))
        now_ms = int(seconds) * 1000 + int(micros) // 1000

        oldest: dict[int, tuple[int, int]] = {}  # partition → oldest unacknowledged entry id
        after: dict[int, str] = {}  # partition → last delivered id, where entries wait beyond it
        for p in range(self.partitions):
            info, groups, summary, dead_len, counts, lease = replies[p * 6 : p * 6 + 6]
            info = _reply(info, {})
            group = next(
                (g for g in _reply(groups, []) if _text(g.get("name")) == names.PROCESSOR_GROUP),
                None,
            )
            summary = _reply(summary, {}) or {}
            counts = {_text(k): int(v) for k, v in _reply(counts, {}).items()}
            label = [str(p)]
            if "entries-added" in info:
                added.add_metric(label, int(info["entries-added"]))
            processed.add_metric(label, counts.get("processed", 0))
            dead_lettered.add_metric(label, counts.get("dead_lettered", 0))
            length.add_metric(label, int(info.get("length", 0)))
            pending.add_metric(label, int(summary.get("pending", 0)))
            dead.add_metric(label, int(_reply(dead_len, 0)))
            leased.add_metric(label, 1 if _reply(lease, 0) else 0)
            if int(summary.get("pending", 0)) and summary.get("min"):
                oldest[p] = _id(summary["min"])
            if group is None:  # no processor has read this partition: all of it waits
                undelivered.add_metric(label, int(info.get("length", 0)))
                if info.get("first-entry"):
                    oldest[p] = min(oldest.get(p, (1 << 62, 0)), _id(info["first-entry"][0]))
                continue
            if group.get("lag") is not None:
                undelivered.add_metric(label, int(group["lag"]))
            last_delivered = _text(group.get("last-delivered-id", "0-0"))
            if info.get("last-generated-id") and _id(info["last-generated-id"]) > _id(last_delivered):
                after[p] = last_delivered
        if after:  # the first entry past what the group has read, per partition that has one
            pipe = self.streams.pipeline(transaction=False)
            for p, last_delivered in after.items():
                pipe.xrange(names.events_stream(p), min=f"({last_delivered}", count=1)
            for p, first in zip(after, pipe.execute(raise_on_error=False), strict=True):
                first = _reply(first, [])
                if first:
                    oldest[p] = min(oldest.get(p, (1 << 62, 0)), _id(first[0][0]))
        for p in range(self.partitions):
            age_ms = max(0, now_ms - oldest[p][0]) if p in oldest else 0
            lag.add_metric([str(p)], age_ms / 1000)

        for what, count in sorted(_reply(replies[-3], {}).items()):
            flagged.add_metric([_text(what)], int(count))
        alive = GaugeMetricFamily(
            "campuscard_processors_alive",
            "Processors whose heartbeat is younger than a lease (PROCESSOR_LEASE_MS)",
            value=int(_reply(replies[-2], 0)),
        )
        return [added, processed, dead_lettered, length, pending, undelivered, lag, dead, leased, flagged, alive]

    # -- the database: devices, alerts, the outbox -----------------------------------------------
    def _database_figures(self, feed_version: int | None) -> list[Metric]:
        devices = GaugeMetricFamily("campuscard_devices", "Registered devices by state", labels=["state"])
        by_state = {row["state"]: row["n"] for row in Device.objects.order_by().values("state").annotate(n=Count("id"))}
        for state in DeviceState:
            devices.add_metric([state.value], by_state.get(state.value, 0))

        alerts = GaugeMetricFamily(
            "campuscard_alerts_open",
            "Alerts not yet resolved, by kind and status (open, acknowledged)",
            labels=["kind", "status"],
        )
        open_rows = (
            Alert.objects.order_by()
            .exclude(status=AlertStatus.RESOLVED)
            .values("kind", "status")
            .annotate(n=Count("id"))
        )
        by_kind = {(row["kind"], row["status"]): row["n"] for row in open_rows}
        for kind in AlertKind:
            for status in OPEN_STATUSES:
                alerts.add_metric([kind.value, status.value], by_kind.pop((kind.value, status.value), 0))
        for (other, other_status), n in sorted(by_kind.items()):  # a kind no longer in the vocabulary
            alerts.add_metric([other, other_status], n)

        unpublished = GaugeMetricFamily(
            "campuscard_outbox_unpublished",
            "Committed card changes the relay has not yet published, by topic",
            labels=["topic"],
        )
        rows = list(
            OutboxMessage.objects.order_by()
            .filter(published_at__isnull=True)
            .values("topic")
            .annotate(n=Count("id"), oldest=Min("created_at"))
        )
        waiting = {row["topic"]: row["n"] for row in rows}
        for topic in Topic:
            unpublished.add_metric([topic.value], waiting.get(topic.value, 0))
        oldest = min((row["oldest"] for row in rows), default=None)
        relay_lag = GaugeMetricFamily(
            "campuscard_relay_lag_seconds",
            "Age of the oldest committed card change the relay has not yet published (0: none waits)",
            value=max(0.0, (timezone.now() - oldest).total_seconds()) if oldest else 0.0,
        )

        # the devices heard from and not silent: those whose reported version says something
        reporting = Device.objects.order_by().exclude(state=DeviceState.SILENT).filter(last_seen_at__isnull=False)
        spread = reporting.aggregate(
            low=Min("credential_version"),
            high=Max("credential_version"),
            behind=Count("id", filter=Q(credential_version__lt=feed_version or 0)),
        )
        families: list[Metric] = [devices, alerts, unpublished, relay_lag, *self._notification_figures()]
        if spread["low"] is not None:
            families += [
                GaugeMetricFamily(
                    "campuscard_device_credential_version_min",
                    "Lowest credential version a reporting device (heard from, not silent) holds",
                    value=spread["low"],
                ),
                GaugeMetricFamily(
                    "campuscard_device_credential_version_max",
                    "Highest credential version a reporting device holds",
                    value=spread["high"],
                ),
            ]
        if feed_version is not None:
            families.append(
                GaugeMetricFamily(
                    "campuscard_devices_behind_feed",
                    "Reporting devices holding a credential version below the feed's",
                    value=spread["behind"],
                )
            )
        return families

    def _notification_figures(self) -> list[Metric]:
        """Alert notifications (sent by ``campuscard supervise``): every send attempt, by outcome,
        from the delivery log (one row per attempt, a few a day per channel), and those waiting
        (pending or to be retried: few, through the status index)."""
        deliveries = CounterMetricFamily(
            "campuscard_notification_deliveries",
            "Attempts to send an alert notification, by outcome (sent; retrying: failed, tried again "
            "later; failed: given up)",
            labels=["status"],
        )
        attempts = DeliveryAttempt.objects.order_by().values("status").annotate(n=Count("id"))
        by_status = {row["status"]: row["n"] for row in attempts}
        for status in DeliveryStatus:
            deliveries.add_metric([status.value], by_status.get(status.value, 0))
        waiting = Notification.objects.filter(status__in=[NotificationStatus.PENDING, NotificationStatus.RETRYING])
        return [
            deliveries,
            GaugeMetricFamily(
                "campuscard_notifications_waiting",
                "Alert notifications not yet sent: collecting their group, due, or waiting to be retried",
                value=waiting.count(),
            ),
        ]
