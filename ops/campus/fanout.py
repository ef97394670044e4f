"""Best-effort fan-out of committed events to live pages through the Channels layer.

One ``group_send`` per group per batch (per event caps out near 400/s; per batch went past
5,000/s — DESIGN.md). Sends run on one private event loop in a background thread so the
processor never waits for browsers, and so the channel layer keeps one connection pool instead
of one per call. Each message carries a per-group sequence number from Redis; a page that sees
a gap reloads its snapshot (the Channels layer is at-most-once).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import Counter
from collections.abc import Iterable
from typing import Any

import redis
from channels.layers import get_channel_layer

from streams import names

log = logging.getLogger(__name__)
MESSAGE_TYPE = "live.batch"  # handled by ``live_batch`` in consumers


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
        self.closed = False
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
                await self.layer.group_send(group, message)
                self.sent += 1
                self.sent_to[group] += 1
            except Exception:  # best effort: the database is the record, pages resync
                self.failed += 1
                log.exception("fan-out to %s failed", group)

    def publish(self, rows_by_group: dict[str, list[dict[str, Any]]], *, watermark: int) -> None:
        """Queue one message per group (call after the DB commit). ``watermark``: the highest
        access-event id committed with these rows (see ``dashboard.live``)."""
        for group, rows in rows_by_group.items():
            if not rows:
                continue
            message = {
                "type": MESSAGE_TYPE,
                "group": group,
                "seq": next_seq(self.redis, group),
                "watermark": watermark,
                "rows": rows,
            }
            self.loop.call_soon_threadsafe(self.queue.put_nowait, (group, message))

    def send(self, group: str, message: dict[str, Any]) -> None:
        """Queue one ready-made message (alerts, device changes: see ``ops.live_push``)."""
        self.loop.call_soon_threadsafe(self.queue.put_nowait, (group, message))

    def close(self, timeout: float = 5.0) -> None:
        self.closed = True
        self.loop.call_soon_threadsafe(self.queue.put_nowait, None)
        self._thread.join(timeout)


def group_rows(rows: Iterable[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Which live page(s) a row belongs to (dorm rows only to their own building's group)."""
    from streams.cards import GATE_KINDS, DeviceKind

    out: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        kind = row["kind"]
        if kind in GATE_KINDS:
            group = names.GROUP_GATES
        elif kind == DeviceKind.DORM_DOOR:
            group = names.dorm_group(row["building"])
        elif kind == DeviceKind.LIBRARY_READER:
            group = names.GROUP_LIBRARY
        else:
            group = names.GROUP_DESK
        out.setdefault(group, []).append(row)
    return out
