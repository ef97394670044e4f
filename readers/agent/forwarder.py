"""Drains the outbox into the events stream: oldest first, in batches, never losing or
reordering an event.

One loop: take the oldest ``batch`` events, XADD them to ``campuscard:events`` (fields ``e`` =
the envelope bytes as signed, ``m`` = the MAC) in one pipeline, and only then delete them from
the outbox. While a backlog drains, a live event waits behind at most the batches before it
(FIFO per agent keeps every device's ``seq`` in order for the server's checks).

The pipeline is a MULTI/EXEC transaction, so a batch lands whole or not at all: a connection
lost mid-batch cannot leave half a batch in the stream to be sent again. The one remaining
duplicate case is a batch that Redis executed but whose reply was lost; it is resent whole
(at-least-once: the server dedupes on ``event_id``, and identical bytes carry an identical MAC).

On a Redis error the loop backs off (0.2 s doubling to 5 s) and retries the same batch.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import redis

from readers.agent.outbox import Outbox
from streams import names, producer
from streams.signing import MAC_FIELD

log = logging.getLogger(__name__)

BACKOFF_START_S = 0.2
BACKOFF_MAX_S = 5.0
REDIS_ERRORS: tuple[type[BaseException], ...] = (redis.RedisError, OSError)


class Forwarder:
    """``start()`` runs the loop on its own thread; :meth:`wake` after an append makes it send
    at once instead of at the next idle poll; :meth:`stop` sends what it can within
    ``flush_timeout_s`` and returns (what is left stays in the outbox for the next start)."""

    def __init__(
        self,
        outbox: Outbox,
        redis_client: redis.Redis,
        batch: int = 500,
        *,
        idle_s: float = 0.5,
        on_sent: Callable[[int], None] | None = None,
    ) -> None:
        if batch < 1:
            raise ValueError(f"batch must be >= 1, got {batch}")
        self.outbox = outbox
        self.redis = redis_client
        self.batch = batch
        self.idle_s = idle_s
        self.on_sent = on_sent
        self.sent = 0  # events Redis accepted, since this forwarder was made
        self.failures = 0  # failed attempts (each one retried)
        self.connected = True  # False while the last attempt failed
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    # -- one step -------------------------------------------------------------------------------
    def send_batch(self) -> int:
        """Send the oldest batch; returns how many events were sent (0: outbox empty). Raises
        the Redis error if the batch could not be sent (the outbox is then unchanged)."""
        rows = self.outbox.peek(self.batch)
        if not rows:
            return 0
        pipe = self.redis.pipeline(transaction=True)
        for _id, payload, mac in rows:
            producer.append(pipe, {names.FIELD: payload, MAC_FIELD: mac})
        pipe.execute()
        self.outbox.delete_through(rows[-1][0])
        self.sent += len(rows)
        if self.on_sent is not None:
            self.on_sent(len(rows))
        return len(rows)

    def drain(self, deadline: float | None = None) -> int:
        """Send batches until the outbox is empty (or ``deadline``, a ``time.monotonic()``
        value, passes). Raises on a Redis error."""
        total = 0
        while deadline is None or time.monotonic() < deadline:
            n = self.send_batch()
            if n == 0:
                break
            total += n
        return total

    # -- the loop -------------------------------------------------------------------------------
    def wake(self) -> None:
        self._wake.set()

    def run(self) -> None:
        backoff = BACKOFF_START_S
        while not self._stopping.is_set():
            try:
                n = self.send_batch()
            except Exception as exc:  # Redis (expected) or local (logged in full); retried alike
                self.failures += 1
                if not isinstance(exc, REDIS_ERRORS):
                    log.exception("forwarding failed: retrying")
                elif self.connected:
                    log.warning("cannot forward to Redis (%s): %d events buffered, retrying", exc, len(self.outbox))
                self.connected = False
                self._stopping.wait(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX_S)
                continue
            if not self.connected:
                log.info("forwarding to Redis again; %d events buffered", len(self.outbox))
                self.connected = True
            backoff = BACKOFF_START_S
            if n < self.batch:  # caught up: wait for the next event
                self._wake.wait(self.idle_s)
                self._wake.clear()

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("forwarder already started")
        self._stopping.clear()
        self._thread = threading.Thread(target=self.run, name="outbox-forwarder", daemon=True)
        self._thread.start()

    def stop(self, flush_timeout_s: float = 2.0) -> None:
        thread, self._thread = self._thread, None
        self._stopping.set()
        self._wake.set()
        if thread is not None:
            thread.join()
        try:
            self.drain(deadline=time.monotonic() + flush_timeout_s)
        except REDIS_ERRORS as exc:
            log.warning("stopping with %d events unsent (%s); they are sent at the next start", len(self.outbox), exc)
