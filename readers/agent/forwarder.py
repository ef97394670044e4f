"""Drains the outbox into the agent's partition of the events stream: oldest first, in batches,
never losing or reordering an event.

One loop: take the oldest ``batch`` events, XADD them to the agent's partition (fields ``e`` =
the envelope bytes as signed, ``m`` = the MAC) as one MULTI/EXEC on the partition's master, and
only then delete them from the outbox. While a backlog drains, a live event waits behind at most
the batches before it (FIFO per agent keeps every device's ``seq`` in order for the server's
checks). All of one agent's doors share its partition (``names.partition_of(agent id)``).

The transaction makes a batch land whole or not at all: a connection lost mid-batch cannot leave
half a batch in the stream to be sent again. The one remaining duplicate case is a batch that
Redis executed but whose reply was lost; it is resent whole (at-least-once: the server dedupes on
``event_id``, and identical bytes carry an identical MAC).

With ``replicas`` > 0 (a Redis with replicas, e.g. a Redis Cluster), ``WAIT`` follows the batch
on the same connection and the outbox keeps every event until that many replicas hold it: Redis
acknowledges a write before any replica or disk has it, and a master that dies and fails over
would lose what only it held. Events sent and not yet confirmed stay in the outbox while later
ones go on being sent (a live tap is never held back by a missing replica); a later confirmation
on the same connection covers them all, and if the connection is replaced they are sent again.

End-to-end acknowledgement (``confirm="commit"``, the default; issue 12): Redis taking a batch
is not the end of it — Redis answers before its AOF reaches the disk, and one that restarts
empty has lost everything it held. So the outbox keeps every event until the processors say it
is in the database: after each commit a processor writes, per device, the last ``(boot_epoch,
seq)`` it stored (``names.ack_key``); the forwarder reads its devices' keys (at most every
``ack_poll_s``, on its own connection) and trims the outbox up to them. What stays
unacknowledged is sent again, oldest first: at once on a new connection (Redis restarted or
failed over), and after ``resend_s`` without any acknowledgement (doubling to 5 minutes while
nothing moves: a processor down for an hour is not flooded). The processor takes a re-sent
event it already stored for a duplicate (same event id and MAC), never for a replay.
``confirm="redis"`` is the older contract (delete once Redis, and ``replicas`` replicas, took it).

On a Redis error the loop backs off (0.2 s doubling to 5 s) and retries the same batch.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import redis

from readers.agent.outbox import Outbox
from streams import names
from streams.connect import StreamClient
from streams.producer import StreamSink

log = logging.getLogger(__name__)

BACKOFF_START_S = 0.2
BACKOFF_MAX_S = 5.0
RESEND_START_S = 10.0
RESEND_MAX_S = 300.0
CONFIRM_MODES = ("commit", "redis")
REDIS_ERRORS: tuple[type[BaseException], ...] = (redis.RedisError, OSError)


class NotReplicatedYet(redis.RedisError):
    """Everything is sent, but no replica confirmed the last of it yet (the loop backs off)."""


class Forwarder:
    """``start()`` runs the loop on its own thread; :meth:`wake` after an append makes it send
    at once instead of at the next idle poll; :meth:`stop` sends what it can within
    ``flush_timeout_s`` and returns (what is left stays in the outbox for the next start)."""

    def __init__(
        self,
        outbox: Outbox,
        redis_client: StreamClient | Callable[[], StreamClient],
        batch: int = 500,
        *,
        agent_id: str,
        partitions: int = names.EVENT_PARTITIONS,
        replicas: int = 0,
        wait_ms: int = 1000,
        idle_s: float = 0.5,
        on_sent: Callable[[int], None] | None = None,
        confirm: str = "commit",
        devices: list[str] | None = None,
        ack_poll_s: float = 0.2,
        resend_s: float = RESEND_START_S,
    ) -> None:
        if batch < 1:
            raise ValueError(f"batch must be >= 1, got {batch}")
        if confirm not in CONFIRM_MODES:
            raise ValueError(f"confirm must be one of {CONFIRM_MODES}, got {confirm!r}")
        self.outbox = outbox
        self.confirm = confirm
        self.devices = devices  # None: the devices found in the outbox
        self.ack_poll_s = ack_poll_s
        self.resend_start_s = resend_s
        self._resend_s = resend_s
        self._acks_read_at = 0.0
        self._awaiting_since: float | None = None  # sent, no acknowledgement since (monotonic)
        self._sent_max = 0  # the highest outbox id ever sent
        self.resent = 0  # times the unacknowledged events were sent again after a timeout
        self.acknowledged = 0  # events removed by an acknowledgement
        self.partition = names.partition_of(agent_id, partitions)
        self.partitions = partitions
        self.sink = StreamSink(redis_client, self.partition, replicas=replicas, wait_ms=wait_ms)
        self.replicas = replicas
        self._sent_through = 0  # outbox id sent on the sink's current connection, not yet confirmed
        self._generation = 0
        self._unconfirmed_warned = False
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
        if self.sink.generation != self._generation:
            self._sent_through = 0  # sent on a connection that is gone: maybe lost, send again
        if self.confirm == "commit":
            return self._send_until_committed()
        rows = self.outbox.peek(self.batch, after=self._sent_through)
        if not rows and not self._sent_through:
            return 0
        held = self.sink.send([(p, m) for _id, p, m in rows]) if rows else self.sink.confirm()
        self._generation = self.sink.generation
        last = rows[-1][0] if rows else self._sent_through
        if held >= self.replicas:
            self.outbox.delete_through(last)
            self._sent_through = 0
            if self._unconfirmed_warned:
                log.info("replicas confirm again: the outbox holds %d events", len(self.outbox))
                self._unconfirmed_warned = False
        else:
            self._sent_through = last
            if not self._unconfirmed_warned:
                log.warning(
                    "Redis took the events but %d of %d replicas confirmed them: keeping them in the outbox",
                    held,
                    self.replicas,
                )
                self._unconfirmed_warned = True
            if not rows:
                raise NotReplicatedYet(f"{len(self.outbox)} events wait for a replica")
        self.sent += len(rows)
        if self.on_sent is not None and rows:
            self.on_sent(len(rows))
        return len(rows)

    def _send_until_committed(self) -> int:
        rows = self.outbox.peek(self.batch, after=self._sent_through)
        if rows:
            self.sink.send([(p, m) for _id, p, m in rows])
            self._generation = self.sink.generation
            self._sent_through = rows[-1][0]
            self._sent_max = max(self._sent_max, self._sent_through)
            if self._awaiting_since is None:
                self._awaiting_since = time.monotonic()
            if self.outbox.has_legacy:
                self.outbox.delete_legacy_through(self._sent_through)
            self.sent += len(rows)
            if self.on_sent is not None:
                self.on_sent(len(rows))
        self.read_acks(force=not rows)
        return len(rows)

    def read_acks(self, *, force: bool = False) -> int:
        """Trim the outbox up to the processors' acknowledgements; returns how many it removed.
        Resends the unacknowledged events when none came for ``resend_s``."""
        now = time.monotonic()
        if self._awaiting_since is None or (not force and now - self._acks_read_at < self.ack_poll_s):
            return 0
        if force and now - self._acks_read_at < min(self.ack_poll_s, self.idle_s) / 2:
            return 0
        self._acks_read_at = now
        devices = self.devices if self.devices is not None else self.outbox.devices()
        values = self.sink.read([names.ack_key(self.partition, d) for d in devices])
        acks: dict[str, tuple[int, int]] = {}
        for device, value in zip(devices, values, strict=True):
            if value:
                epoch, _, seq = value.partition(b":")
                acks[device] = (int(epoch), int(seq))
        removed = self.outbox.trim(acks, through=self._sent_max)
        self.acknowledged += removed
        oldest = self.outbox.oldest_id()
        if oldest is None or oldest > self._sent_max:
            self._awaiting_since = None  # everything sent is stored
            self._resend_s = self.resend_start_s
        elif removed:
            self._awaiting_since = now
            self._resend_s = self.resend_start_s
        elif now - self._awaiting_since >= self._resend_s:
            unconfirmed = len(self.outbox)
            log.warning(
                "no acknowledgement for %.0f s: sending the %d unconfirmed events again", self._resend_s, unconfirmed
            )
            self.resent += 1
            self._sent_through = 0
            self._awaiting_since = now
            self._resend_s = min(self._resend_s * 2, RESEND_MAX_S)
        return removed

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
    def close(self) -> None:
        self.sink.close()

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
