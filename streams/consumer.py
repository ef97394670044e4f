"""One stream-consumer base: XREADGROUP in batches, XACK after the handler commits, XAUTOCLAIM of
entries left by dead consumers, a dead-letter stream, and a clean stop on SIGTERM / Ctrl-C.

A concrete consumer writes ``decode()`` (bytes → object, raising :class:`InvalidEntry` for
entries that can never succeed) and ``handle(batch)`` (idempotent: the same entry may arrive
twice after a crash). Delivery is at-least-once; idempotent handlers make it effectively once.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeAlias, TypeVar, cast

import redis

from streams import names

log = logging.getLogger(__name__)
T = TypeVar("T")
DEAD_LETTER_FIELD_BYTES = 8192

# Stream replies as this project's clients get them: RESP2 (redis-py's default protocol) and
# no decode_responses. redis-py types a reply as the union over every protocol and decoding.
RawEntry: TypeAlias = tuple[bytes, dict[bytes, bytes]]
StreamReply: TypeAlias = list[tuple[bytes, list[RawEntry]]]  # XREAD / XREADGROUP


class InvalidEntry(ValueError):
    """An entry that will never be processable: dead-letter it at once."""


@dataclass(frozen=True)
class Entry(Generic[T]):
    id: str
    fields: dict[bytes, bytes]
    value: T
    # True when this delivery is a retry (our own pending entries after a restart, or entries
    # claimed from a dead consumer): a handler may have committed it already.
    redelivered: bool = False


class StreamConsumer(Generic[T]):
    stream: str = names.READER_EVENTS
    group: str = names.PROCESSOR_GROUP
    dead_letter_stream: str = names.DEAD_LETTER
    counters_key: str = names.COUNTERS

    def __init__(
        self,
        client: redis.Redis,
        *,
        consumer: str,
        batch_size: int = 500,
        block_ms: int = 500,
        claim_idle_ms: int = 30_000,
        max_failures: int = 3,
    ) -> None:
        self.redis = client
        self.consumer = consumer
        self.batch_size = batch_size
        self.block_ms = block_ms
        self.claim_idle_ms = claim_idle_ms
        self.max_failures = max_failures
        self.stopping = threading.Event()
        self._read_own_pending = True  # after a restart, first finish what we had taken
        self._failures: dict[str, int] = {}
        self._last_claim = 0.0
        self.stats = {"processed": 0, "dead_lettered": 0, "batches": 0, "claimed": 0, "retried": 0}

    # -- to implement -------------------------------------------------------------------------
    def decode(self, fields: dict[bytes, bytes]) -> T:
        raise NotImplementedError

    def handle(self, batch: Sequence[Entry[T]]) -> None:
        raise NotImplementedError

    # -- lifecycle ------------------------------------------------------------------------------
    def ensure_group(self) -> None:
        try:
            self.redis.xgroup_create(self.stream, self.group, id="0", mkstream=True)
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
        self.ensure_group()
        idle = 0
        while not self.stopping.is_set():
            processed = self.poll_once()
            idle = 0 if processed else idle + 1
            if max_idle_polls is not None and idle >= max_idle_polls:
                break
        log.info("consumer %s stopped: %s", self.consumer, self.stats)

    def poll_once(self) -> int:
        entries, redelivered = self._read()
        if not entries:
            return 0
        self._process(entries, redelivered=redelivered)
        return len(entries)

    # -- internals --------------------------------------------------------------------------------
    def _read(self) -> tuple[list[RawEntry], bool]:
        """The next batch, and whether it is a redelivery."""
        now = time.monotonic()
        if now - self._last_claim > self.claim_idle_ms / 1000:
            self._last_claim = now
            claimed = self._autoclaim()
            if claimed:
                return claimed, True
        if self._read_own_pending:
            reply = cast(
                StreamReply,
                self.redis.xreadgroup(self.group, self.consumer, {self.stream: "0"}, count=self.batch_size),
            )
            entries = reply[0][1] if reply else []
            if entries:
                return entries, True
            self._read_own_pending = False
        reply = cast(
            StreamReply,
            self.redis.xreadgroup(
                self.group,
                self.consumer,
                {self.stream: ">"},
                count=self.batch_size,
                block=self.block_ms,
            ),
        )
        return (reply[0][1] if reply else []), False

    def _autoclaim(self) -> list[RawEntry]:
        """Take over entries another consumer read but never acknowledged (it died)."""
        reply = self.redis.xautoclaim(
            self.stream,
            self.group,
            self.consumer,
            min_idle_time=self.claim_idle_ms,
            start_id="0-0",
            count=self.batch_size,
        )
        entries = [e for e in reply[1] if e[1] is not None]  # None: trimmed while pending
        if entries:
            self.stats["claimed"] += len(entries)
            log.warning("claimed %d entries left by a dead consumer", len(entries))
        return entries

    def _process(self, raw_entries: list[RawEntry], *, redelivered: bool = False) -> None:
        batch: list[Entry[T]] = []
        for raw_id, fields in raw_entries:
            entry_id = raw_id.decode() if isinstance(raw_id, bytes) else raw_id
            try:
                batch.append(Entry(entry_id, fields, self.decode(fields), redelivered))
            except InvalidEntry as exc:
                self._dead_letter(entry_id, fields, f"invalid: {exc}")
        if not batch:
            return
        try:
            self.handle(batch)
        except Exception:
            log.exception("batch of %d failed; retrying entries one by one", len(batch))
            self._retry_one_by_one(batch)
            return
        self._ack([e.id for e in batch])

    def _retry_one_by_one(self, batch: Sequence[Entry[T]]) -> None:
        for entry in batch:
            try:
                self.handle([entry])
            except Exception as exc:
                count = self._failures.get(entry.id, 0) + 1
                self._failures[entry.id] = count
                self.stats["retried"] += 1
                if count >= self.max_failures:
                    self._failures.pop(entry.id, None)
                    self._dead_letter(entry.id, entry.fields, f"failed {count}x: {exc!r}"[:500])
                else:
                    self._read_own_pending = True  # leave it pending; read it again soon
                continue
            self._failures.pop(entry.id, None)
            self._ack([entry.id])

    def _ack(self, ids: list[str]) -> None:
        pipe = self.redis.pipeline(transaction=False)
        pipe.xack(self.stream, self.group, *ids)
        pipe.hincrby(self.counters_key, "processed", len(ids))
        pipe.execute()
        self.stats["processed"] += len(ids)
        self.stats["batches"] += 1

    def _dead_letter(self, entry_id: str, fields: dict[bytes, bytes], reason: str) -> None:
        """Park the entry with why, count it, and acknowledge it so it stops blocking the group."""
        log.warning("dead-lettering %s: %s", entry_id, reason)
        record: dict[Any, Any] = {b"source_id": entry_id, b"reason": reason}
        for key, value in fields.items():
            name = key if isinstance(key, bytes) else key.encode()
            record[b"f:" + name] = value[:DEAD_LETTER_FIELD_BYTES]  # a huge payload is cut
        pipe = self.redis.pipeline(transaction=True)
        pipe.xadd(self.dead_letter_stream, record, maxlen=100_000, approximate=True)
        pipe.hincrby(self.counters_key, "dead_lettered", 1)
        pipe.xack(self.stream, self.group, entry_id)
        pipe.execute()
        self.stats["dead_lettered"] += 1
