"""One stream-consumer base over the partitioned events stream (issue 14): the partitions it owns
by lease (:mod:`streams.leases`), XREADGROUP in batches, XACK after the handler commits, XAUTOCLAIM
of entries left by dead consumers, a dead-letter stream per partition, and a clean stop on SIGTERM /
Ctrl-C. On one Redis it reads every owned partition in one blocking call; on a Redis Cluster (one
slot per partition) it reads them in one pipeline and sleeps briefly when all are empty.

A concrete consumer writes ``decode()`` (bytes → object, raising :class:`InvalidEntry` for
entries that can never succeed) and ``handle(batch)`` (idempotent: the same entry may arrive
twice after a crash or a change of owner). Delivery is at-least-once; idempotent handlers make it
effectively once. A Redis outage (or a cluster failover) is one warning line and a retry with
backoff, never a crash: what was not acknowledged is read again.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Generic, TypeAlias, TypeVar, cast

import redis

from streams import names
from streams.connect import StreamClient, is_cluster
from streams.leases import PartitionLeases

log = logging.getLogger(__name__)
T = TypeVar("T")
DEAD_LETTER_FIELD_BYTES = 8192
LEASE_REFRESH_S = 1.0
CLUSTER_IDLE_S = 0.01  # a cluster read cannot block on several slots at once: poll this often when idle
BACKOFF_MAX_S = 5.0
# the database away: retried at least every second — a refused connection costs nothing, and
# what waited must be stored (and on the desks) within seconds of it coming back (issue 12, AC4)
DEPENDENCY_BACKOFF_MAX_S = 1.0
REDIS_ERRORS: tuple[type[BaseException], ...] = (redis.RedisError, OSError)

# Stream replies as this project's clients get them: RESP2 (redis-py's default protocol) and
# no decode_responses. redis-py types a reply as the union over every protocol and decoding.
RawEntry: TypeAlias = tuple[bytes, dict[bytes, bytes]]
StreamReply: TypeAlias = list[tuple[bytes, list[RawEntry]]]  # XREAD / XREADGROUP
Delivery: TypeAlias = tuple[int, RawEntry, bool]  # partition, entry, redelivered


class PartitionMismatch(RuntimeError):
    """The events stream is already partitioned differently from this process's setting."""


def ensure_partition_count(client: StreamClient, partitions: int) -> None:
    """Record the partition count on first use; refuse a process configured with another one (its
    agents' events would go to partitions nobody reads, or a device would span two)."""
    client.set(names.PARTITIONS_KEY, partitions, nx=True)
    current = int(cast(bytes, client.get(names.PARTITIONS_KEY)))
    if current != partitions:
        raise PartitionMismatch(
            f"the events stream has {current} partitions, this process is configured with {partitions} "
            "(EVENT_PARTITIONS): set the same number everywhere, or drain the stream before changing it"
        )


class InvalidEntry(ValueError):
    """An entry that will never be processable: dead-letter it at once."""


@dataclass(frozen=True)
class Entry(Generic[T]):
    id: str
    fields: dict[bytes, bytes]
    value: T
    # True when this delivery is a retry (our own pending entries after a restart, or entries
    # claimed from a dead consumer or a previous owner): a handler may have committed it already.
    redelivered: bool = False
    partition: int = 0


class StreamConsumer(Generic[T]):
    group: str = names.PROCESSOR_GROUP
    # errors meaning a dependency is away (the processor's database), not a bad entry: the batch
    # stays pending and is read again when it is back — never retried one by one, never
    # dead-lettered (an outage must not turn good taps into dead letters)
    transient_errors: tuple[type[BaseException], ...] = ()

    def __init__(
        self,
        client: StreamClient,
        *,
        consumer: str,
        partitions: int = names.EVENT_PARTITIONS,
        batch_size: int = 500,
        block_ms: int = 500,
        claim_idle_ms: int = 30_000,
        lease_ttl_ms: int = 10_000,
        max_failures: int = 3,
        prefetch: bool = True,
        linger_s: float = 0.0,
        linger_from: int = 100,
    ) -> None:
        self.redis = client
        self.consumer = consumer
        self.partitions = partitions
        self.batch_size = batch_size
        self.block_ms = block_ms
        self.claim_idle_ms = claim_idle_ms
        self.max_failures = max_failures
        self.cluster = is_cluster(client)
        self.leases = PartitionLeases(client, consumer, partitions, ttl_ms=lease_ttl_ms)
        self.stopping = threading.Event()
        self._own_pending: set[int] = set()  # partitions whose pending entries we read first
        self._failures: dict[str, int] = {}
        self._last_claim = 0.0
        self._leases_at = 0.0
        self._outage_since: float | None = None
        self._dependency_since: float | None = None
        self.prefetch = prefetch
        # Under a high load, bigger batches: a read that brought at least ``linger_from`` new
        # entries, but not a full batch, makes the next read wait until ``linger_s`` after it
        # began. Every batch costs the same fixed work (a transaction, a push per live group, the
        # acknowledgements), so at 4,500 taps/s reads of ~130 entries cost the processor twice the
        # CPU per event of full ones (docs/benchmarks.md). Under a light load every read goes at
        # once: a tap reaches the desks within milliseconds.
        self.linger_s = linger_s
        self.linger_from = linger_from
        self._next_read_at = 0.0
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{consumer}-read")
        self._prefetched: Future[list[Entry[T]]] | None = None
        self.stats = {"processed": 0, "dead_lettered": 0, "batches": 0, "claimed": 0, "retried": 0}

    # -- to implement -------------------------------------------------------------------------
    def decode(self, fields: dict[bytes, bytes]) -> T:
        raise NotImplementedError

    def handle(self, batch: Sequence[Entry[T]]) -> None:
        raise NotImplementedError

    def on_gained(self, partitions: Sequence[int]) -> None:
        """Partitions this consumer now owns (before any of their entries is read)."""

    def on_ack(self, pipe: Any, partition: int) -> None:
        """Add to the acknowledgement of ``partition``'s entries (same pipeline, same slot)."""

    def on_transient_error(self, exc: BaseException) -> None:
        """A ``transient_errors`` error happened (e.g. drop a broken database connection)."""

    # -- lifecycle ------------------------------------------------------------------------------
    def ensure_group(self, partition: int) -> None:
        try:
            self.redis.xgroup_create(names.events_stream(partition), self.group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def install_signal_handlers(self) -> None:
        def _stop(signum: int, _frame: Any) -> None:
            log.info("signal %s: finishing the current batch, then stopping", signum)
            self.stopping.set()

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)

    def run(self, *, max_idle_polls: int | None = None) -> None:
        """Consume until stopped (or, for tests and benches, until ``max_idle_polls`` empty reads)."""
        ensure_partition_count(self.redis, self.partitions)
        idle = 0
        backoff = 0.2
        try:
            while not self.stopping.is_set():
                try:
                    processed = self.poll_once()
                except REDIS_ERRORS as exc:
                    self._prefetched = None
                    self._redis_lost(exc)
                    self.stopping.wait(backoff)
                    backoff = min(backoff * 2, BACKOFF_MAX_S)
                    continue
                except self.transient_errors as exc:
                    self._prefetched = None
                    self._dependency_lost(exc)
                    backoff = min(backoff, DEPENDENCY_BACKOFF_MAX_S)
                    self.stopping.wait(backoff)
                    backoff = min(backoff * 2, DEPENDENCY_BACKOFF_MAX_S)
                    continue
                if self._outage_since is not None:
                    log.warning("Redis reachable again after %.1f s", time.monotonic() - self._outage_since)
                    self._outage_since = None
                if self._dependency_since is not None:
                    log.warning("storing again after %.1f s", time.monotonic() - self._dependency_since)
                    self._dependency_since = None
                backoff = 0.2
                idle = 0 if processed else idle + 1
                if max_idle_polls is not None and idle >= max_idle_polls:
                    break
            self._finish_prefetched()
        finally:
            try:
                self.leases.release_all()
            except REDIS_ERRORS as exc:
                log.warning("could not hand the partitions over (%s): others take them when the leases expire", exc)
        log.info("consumer %s stopped: %s", self.consumer, self.stats)

    def _finish_prefetched(self) -> None:
        """A batch read ahead is handled before stopping, not left pending for the next owner."""
        try:
            entries = self._take_prefetched()
        except REDIS_ERRORS as exc:
            log.warning("the batch read ahead was lost with Redis (%s): it is read again", exc)
            return
        for start in range(0, len(entries or []), self.batch_size):
            self._process((entries or [])[start : start + self.batch_size])

    def _dependency_lost(self, exc: BaseException) -> None:
        """Like a Redis outage: one line, then retries; what was read is read again."""
        if self._dependency_since is None:
            self._dependency_since = time.monotonic()
            log.warning("cannot store (%s: %s): retrying; the entries stay pending", type(exc).__name__, exc)
        self._own_pending.update(self.leases.owned)
        self.on_transient_error(exc)

    def _redis_lost(self, exc: BaseException) -> None:
        """One line per outage, not a stack trace per retry; what was read and not acknowledged
        is read again (our own pending entries first)."""
        if self._outage_since is None:
            self._outage_since = time.monotonic()
            log.warning("Redis unreachable (%s): retrying; nothing is acknowledged until it is back", exc)
        self._own_pending.update(self.leases.owned)
        self._leases_at = 0.0

    def poll_once(self) -> int:
        handled = 0
        if self._leases_due() and self._prefetched is not None:
            # Never change owners with a read in flight: a partition handed over while its next
            # batch was being read would reach the new owner without that batch (the group's
            # cursor is past it), and the new owner would take the following events for a
            # sequence gap. What was read ahead is handled here, while this is still its owner.
            ahead = self._take_prefetched() or []
            for start in range(0, len(ahead), self.batch_size):
                self._process(ahead[start : start + self.batch_size])
            handled = len(ahead)
        self._keep_leases()
        entries = self._take_prefetched()
        if entries is None:
            entries = self._decode(self._read())
        if self.prefetch and not self._own_pending and self.leases.owned and not self._claim_due():
            # the next batch is read and decoded while this one waits on the database
            self._prefetched = self._pool.submit(
                lambda owned: self._decode(self._read_partitions(owned, ">")), self.owned
            )
        for start in range(0, len(entries), self.batch_size):
            self._process(entries[start : start + self.batch_size])
        return handled + len(entries)

    def _read_ahead(self, owned: list[int]) -> list[Entry[T]]:
        return self._decode(self._read_partitions(owned, ">"))

    def _take_prefetched(self) -> list[Entry[T]] | None:
        future, self._prefetched = self._prefetched, None
        return None if future is None else future.result()

    def _claim_due(self) -> bool:
        return time.monotonic() - self._last_claim > self.claim_idle_ms / 1000

    @property
    def owned(self) -> list[int]:
        return sorted(self.leases.owned)

    # -- internals --------------------------------------------------------------------------------
    def _leases_due(self) -> bool:
        return time.monotonic() - self._leases_at >= LEASE_REFRESH_S

    def _keep_leases(self) -> None:
        if not self._leases_due():
            return
        self._leases_at = time.monotonic()
        gained, lost = self.leases.refresh()
        if lost:
            handed = {"event": "partitions.lost", "consumer": self.consumer, "partitions": sorted(lost)}
            log.info("consumer %s handed over partitions %s", self.consumer, lost, extra=handed)
            self._own_pending.difference_update(lost)
        if gained:
            for p in gained:
                self.ensure_group(p)
                self._take_pending(p)
            self._own_pending.update(gained)
            self.on_gained(gained)
            taken = {"event": "partitions.gained", "consumer": self.consumer, "partitions": sorted(gained)}
            log.info("consumer %s owns partitions %s", self.consumer, self.owned, extra=taken)

    def _take_pending(self, partition: int) -> None:
        """Make every entry of a newly owned partition that its previous owner read and never
        acknowledged ours (it stopped, or died): they are read again first, as redeliveries."""
        stream, start = names.events_stream(partition), "0-0"
        while True:
            # (not JUSTID: redis-py then drops the cursor from the reply)
            reply = self.redis.xautoclaim(
                stream, self.group, self.consumer, min_idle_time=0, start_id=start, count=1000
            )
            start = reply[0].decode() if isinstance(reply[0], bytes) else str(reply[0])
            if start == "0-0":
                return

    def _read(self) -> list[Delivery]:
        """The next deliveries: claimed from dead consumers, our own pending ones, or new ones."""
        if self._claim_due():
            self._last_claim = time.monotonic()
            claimed = self._autoclaim()
            if claimed:
                return claimed
        if self._own_pending:
            pending = self._read_partitions(sorted(self._own_pending), "0")
            done = self._own_pending - {p for p, _e, _r in pending}
            self._own_pending -= done
            if pending:
                return [(p, e, True) for p, e, _r in pending]
        owned = self.owned
        if not owned:
            self.stopping.wait(self.block_ms / 1000)  # every partition has another owner
            return []
        return self._read_partitions(owned, ">")

    def _read_partitions(self, partitions: list[int], start: str) -> list[Delivery]:
        if start == ">" and (wait := self._next_read_at - time.monotonic()) > 0:
            self.stopping.wait(wait)
        began = time.monotonic()
        streams: dict[Any, Any] = {names.events_stream(p): start for p in partitions}  # redis-py's key/id unions
        by_stream = {names.events_stream(p): p for p in partitions}
        if not self.cluster:
            block = self.block_ms if start == ">" else None
            reply = cast(
                StreamReply,
                self.redis.xreadgroup(self.group, self.consumer, streams, count=self.batch_size, block=block),
            )
            replies = reply or []
        else:
            pipe = self.redis.pipeline(transaction=False)
            for stream in streams:
                pipe.xreadgroup(self.group, self.consumer, {stream: start}, count=self.batch_size)
            replies = [r[0] for r in cast(list[StreamReply], pipe.execute()) if r]
        out: list[Delivery] = []
        for raw_stream, entries in replies:
            stream = raw_stream.decode() if isinstance(raw_stream, bytes) else str(raw_stream)
            out.extend((by_stream[stream], entry, False) for entry in entries)
        if start == ">":
            high = self.linger_from <= len(out) < self.batch_size
            self._next_read_at = began + self.linger_s if high else 0.0
        if not out and self.cluster and start == ">":
            self.stopping.wait(CLUSTER_IDLE_S)
        return out

    def _autoclaim(self) -> list[Delivery]:
        """Take over entries another consumer read but never acknowledged (it died)."""
        out: list[Delivery] = []
        for p in self.owned:
            reply = self.redis.xautoclaim(
                names.events_stream(p),
                self.group,
                self.consumer,
                min_idle_time=self.claim_idle_ms,
                start_id="0-0",
                count=self.batch_size,
            )
            out.extend((p, e, True) for e in reply[1] if e[1] is not None)  # None: trimmed while pending
        if out:
            self.stats["claimed"] += len(out)
            log.warning("claimed %d entries left by a dead consumer", len(out))
        return out

    def _decode(self, deliveries: list[Delivery]) -> list[Entry[T]]:
        """The deliveries as entries; one that can never be processed is dead-lettered here."""
        batch: list[Entry[T]] = []
        for partition, (raw_id, fields), redelivered in deliveries:
            entry_id = raw_id.decode() if isinstance(raw_id, bytes) else raw_id
            try:
                batch.append(Entry(entry_id, fields, self.decode(fields), redelivered, partition))
            except InvalidEntry as exc:
                self._dead_letter(partition, entry_id, fields, f"invalid: {exc}")
        return batch

    def _process(self, batch: list[Entry[T]]) -> None:
        if not batch:
            return
        try:
            self.handle(batch)
        except (*REDIS_ERRORS, *self.transient_errors):
            raise  # an outage, not a bad entry: nothing acknowledged, read again when it is back
        except Exception:
            log.exception("batch of %d failed; retrying entries one by one", len(batch))
            self._retry_one_by_one(batch)
            return
        self._ack(batch)

    def _retry_one_by_one(self, batch: Sequence[Entry[T]]) -> None:
        for entry in batch:
            try:
                self.handle([entry])
            except (*REDIS_ERRORS, *self.transient_errors):
                raise
            except Exception as exc:
                count = self._failures.get(entry.id, 0) + 1
                self._failures[entry.id] = count
                self.stats["retried"] += 1
                if count >= self.max_failures:
                    self._failures.pop(entry.id, None)
                    self._dead_letter(entry.partition, entry.id, entry.fields, f"failed {count}x: {exc!r}"[:500])
                else:
                    self._own_pending.add(entry.partition)  # leave it pending; read it again soon
                continue
            self._failures.pop(entry.id, None)
            self._ack([entry])

    def _ack(self, batch: Sequence[Entry[T]]) -> None:
        by_partition: dict[int, list[str]] = {}
        for entry in batch:
            by_partition.setdefault(entry.partition, []).append(entry.id)
        pipe = self.redis.pipeline(transaction=False)
        for partition, ids in by_partition.items():
            pipe.xack(names.events_stream(partition), self.group, *ids)
            pipe.hincrby(names.stream_counters(partition), "processed", len(ids))
            self.on_ack(pipe, partition)
        pipe.execute()
        self.stats["processed"] += len(batch)
        self.stats["batches"] += 1
        if log.isEnabledFor(logging.DEBUG):  # one line per batch, for LOG_LEVEL=DEBUG only
            log.debug(
                "batch of %d committed",
                len(batch),
                extra={"event": "batch", "entries": len(batch), "first_entry": batch[0].id, "last_entry": batch[-1].id},
            )

    def _dead_letter(self, partition: int, entry_id: str, fields: dict[bytes, bytes], reason: str) -> None:
        """Park the entry with why, count it, and acknowledge it so it stops blocking the group
        (one transaction: the three keys share the partition's slot)."""
        detail: dict[str, Any] = {"event": "dead_letter", "entry_id": entry_id, "partition": partition}
        detail["reason"] = reason
        if event_id := _event_id(fields):
            detail["event_id"] = event_id
        log.warning("dead-lettering %s: %s", entry_id, reason, extra=detail)
        record: dict[Any, Any] = {b"source_id": entry_id, b"reason": reason}
        for key, value in fields.items():
            name = key if isinstance(key, bytes) else key.encode()
            record[b"f:" + name] = value[:DEAD_LETTER_FIELD_BYTES]  # a huge payload is cut
        pipe = self.redis.pipeline(transaction=True)
        pipe.xadd(names.dead_letter_stream(partition), record, maxlen=100_000, approximate=True)
        pipe.hincrby(names.stream_counters(partition), "dead_lettered", 1)
        pipe.xack(names.events_stream(partition), self.group, entry_id)
        pipe.execute()
        self.stats["dead_lettered"] += 1


def _event_id(fields: dict[bytes, bytes]) -> str | None:
    """The reader event's id in an entry's payload, if it has one that reads (for the log)."""
    try:
        payload = json.loads(fields.get(names.FIELD.encode(), b""))
        value = payload.get("event_id") if isinstance(payload, dict) else None
    except ValueError:
        return None
    return str(value)[:64] if value else None


def counters(client: StreamClient, partitions: int = names.EVENT_PARTITIONS) -> dict[str, int]:
    """What the consumers did, summed over the partitions (``processed``, ``dead_lettered``)."""
    pipe = client.pipeline(transaction=False)
    for p in range(partitions):
        pipe.hgetall(names.stream_counters(p))
    total: dict[str, int] = {}
    for counts in pipe.execute():
        for key, value in counts.items():
            name = key.decode() if isinstance(key, bytes) else str(key)
            total[name] = total.get(name, 0) + int(value)
    return total


def dead_letters(client: StreamClient, partitions: int = names.EVENT_PARTITIONS) -> list[RawEntry]:
    """Every dead-lettered entry, partition by partition."""
    out: list[RawEntry] = []
    for p in range(partitions):
        out.extend(cast(list[RawEntry], client.xrange(names.dead_letter_stream(p))))
    return out


@dataclass(frozen=True)
class DeadLetter:
    partition: int
    id: str
    source_id: str
    reason: str
    fields: dict[bytes, bytes]  # the entry's own fields, as they were (cut at 8 KiB)


def dead_letter_list(client: StreamClient, partitions: int = names.EVENT_PARTITIONS) -> list[DeadLetter]:
    """Every dead-lettered entry with where it came from and why."""
    out: list[DeadLetter] = []
    for p in range(partitions):
        for raw_id, record in cast(list[RawEntry], client.xrange(names.dead_letter_stream(p))):
            out.append(
                DeadLetter(
                    partition=p,
                    id=raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id),
                    source_id=record.get(b"source_id", b"").decode(),
                    reason=record.get(b"reason", b"").decode(errors="replace"),
                    fields={k[2:]: v for k, v in record.items() if k.startswith(b"f:")},
                )
            )
    return out


def replay_dead_letter(client: StreamClient, letter: DeadLetter) -> str:
    """Put a dead-lettered entry back on its partition (once what failed it is fixed) and take it
    off the dead-letter stream, in one transaction (same slot); returns its new entry id."""
    pipe = client.pipeline(transaction=True)
    pipe.xadd(names.events_stream(letter.partition), dict(letter.fields))  # type: ignore[arg-type]  # redis-py's field unions
    pipe.xdel(names.dead_letter_stream(letter.partition), letter.id)
    new_id, _deleted = pipe.execute()
    return new_id.decode() if isinstance(new_id, bytes) else str(new_id)


def stream_entries(client: StreamClient, partitions: int = names.EVENT_PARTITIONS) -> list[RawEntry]:
    """Every entry the events stream holds, partition by partition (each in its order)."""
    out: list[RawEntry] = []
    for p in range(partitions):
        out.extend(cast(list[RawEntry], client.xrange(names.events_stream(p))))
    return out


def pending(client: StreamClient, partitions: int = names.EVENT_PARTITIONS, group: str = names.PROCESSOR_GROUP) -> int:
    """Entries read by a consumer and not yet acknowledged, over every partition."""
    total = 0
    for p in range(partitions):
        try:
            total += int(client.xpending(names.events_stream(p), group)["pending"])
        except redis.ResponseError:  # no such stream or group yet: nothing pending there
            continue
    return total
