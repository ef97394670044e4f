"""Pushes to live pages: the one door every emitter goes through.

Two kinds of message reach a page's Channels group, both with the group's next sequence number
(a page that sees a gap reloads its snapshot: the Channels layer is at-most-once):
- the processor's committed taps, one message per group per batch (``Fanout.publish``: one
  ``group_send`` per event caps out near 400/s, per batch went past 5,000/s — DESIGN.md);
- single changes (an alert, a device's state, a card action) from services, sent once the
  transaction that made them commits (``push``).

Sends run on one private event loop in a background thread (``Fanout``) so a writer never waits
for browsers and the channel layer keeps one connection pool. Each process has one such sender,
made on first use (``fanout()``), like Django's database connection; ``close()`` flushes it at
exit. Best effort: a failed push is logged, never raised — the database is the record and the
next push reveals the gap.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import Counter
from typing import Any

import redis
from channels.layers import get_channel_layer
from django.db import transaction

from ops.redis_client import client
from streams import names

log = logging.getLogger(__name__)
MESSAGE_TYPE = "live.batch"  # handled by ``live_batch`` in consumers
MAX_QUEUED = 2000  # messages waiting for the layer; past it the oldest is dropped (pages resync)


def next_seq(client: redis.Redis, group: str) -> int:
    return int(client.incr(names.FANOUT_SEQ_PREFIX + group))


def current_seq(client: redis.Redis, group: str) -> int:
    return int(client.get(names.FANOUT_SEQ_PREFIX + group) or 0)


class Fanout:
    def __init__(self, client: redis.Redis) -> None:
        self.redis = client
        self.layer = get_channel_layer()
        self.loop = asyncio.new_event_loop()
        self.queue: asyncio.Queue[tuple[str, dict[str, Any]] | None] = asyncio.Queue()
        self.sent = 0
        self.sent_to: Counter[str] = Counter()  # pushes per group (tests, diagnostics)
        self.failed = 0
        self.dropped = 0  # oldest messages dropped because the layer fell MAX_QUEUED behind
        self.closed = False
        self._layer_down = 0  # pushes failed since the layer's Redis went away (0: it is there)
        self._thread = threading.Thread(target=self._run, name="fanout", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._worker())

    async def _worker(self) -> None:
        while True:
            item = await self.queue.get()
            if item is None:
                return
            group, message = item
            try:
                if self.layer is None:
                    raise RuntimeError("CHANNEL_LAYERS is not configured")
                await self.layer.group_send(group, message)
                self.sent += 1
                self.sent_to[group] += 1
                if self._layer_down:
                    log.warning("live fan-out reaches Redis again (%d pushes lost meanwhile)", self._layer_down)
                    self._layer_down = 0
            except (redis.RedisError, OSError) as exc:  # Redis away: one line per outage, pages resync
                self.failed += 1
                if not self._layer_down:
                    log.warning("live fan-out cannot reach Redis (%s): pushes are lost until it is back", exc)
                self._layer_down += 1
            except Exception:  # best effort: the database is the record, pages resync
                self.failed += 1
                log.exception("fan-out to %s failed", group)

    def publish(self, rows_by_group: dict[str, list[dict[str, Any]]], *, watermark: int) -> None:
        """Queue one message per group (call after the DB commit). ``watermark``: the highest
        access-event id committed with these rows (see ``dashboard.live``)."""
        groups = [group for group, rows in rows_by_group.items() if rows]
        if not groups:
            return
        pipe = self.redis.pipeline(transaction=False)  # every group's next number, one round trip
        for group in groups:
            pipe.incr(names.FANOUT_SEQ_PREFIX + group)
        for group, seq in zip(groups, pipe.execute(), strict=True):
            message = {
                "type": MESSAGE_TYPE,
                "group": group,
                "seq": int(seq),
                "watermark": watermark,
                "rows": rows_by_group[group],
            }
            self.loop.call_soon_threadsafe(self._enqueue, (group, message))

    def _enqueue(self, item: tuple[str, dict[str, Any]] | None) -> None:
        """On the sender's loop: queue ``item``; a layer that cannot keep up (Redis slow or
        gone) must not make the process grow without bound, so past ``MAX_QUEUED`` the oldest
        message goes — the pages it was for see the gap in the sequence and reload."""
        if item is not None and self.queue.qsize() >= MAX_QUEUED:
            self.queue.get_nowait()
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning("live fan-out %d messages behind: %d dropped so far", MAX_QUEUED, self.dropped)
        self.queue.put_nowait(item)

    def send(self, group: str, message: dict[str, Any]) -> None:
        """Queue one ready-made message (alerts, device and card changes: see ``push``)."""
        self.loop.call_soon_threadsafe(self._enqueue, (group, message))

    def close(self, timeout: float = 5.0) -> None:
        self.closed = True
        self.loop.call_soon_threadsafe(self._enqueue, None)
        self._thread.join(timeout)


_lock = threading.Lock()
_process_fanout: Fanout | None = None


def fanout() -> Fanout:
    """This process's sender, made on first use (and again after ``close``)."""
    global _process_fanout
    with _lock:
        if _process_fanout is None or _process_fanout.closed:
            _process_fanout = Fanout(client())
        return _process_fanout


def close(timeout: float = 5.0) -> None:
    """Flush and stop this process's sender (commands call it on their way out)."""
    global _process_fanout
    with _lock:
        sender, _process_fanout = _process_fanout, None
    if sender is not None:
        sender.close(timeout)


def push(group: str, payload: dict[str, Any]) -> None:
    """Send ``payload`` (plus type, group and seq) to ``group`` once the current transaction
    commits (at once outside a transaction)."""
    transaction.on_commit(lambda: _send(group, payload))


_push_down = [False]  # Redis unreachable at the last push: said once, not per push


def _send(group: str, payload: dict[str, Any]) -> None:
    try:
        sender = fanout()
        sender.send(group, {"type": MESSAGE_TYPE, "group": group, "seq": next_seq(sender.redis, group), **payload})
    except (redis.RedisError, OSError) as exc:  # best effort: pages resync; one line per outage
        if not _push_down[0]:
            log.warning("live push cannot reach Redis (%s): pushes are lost until it is back", exc)
        _push_down[0] = True
        return
    except Exception:
        log.exception("live push to %s failed", group)
        return
    _push_down[0] = False
