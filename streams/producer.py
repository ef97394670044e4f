"""The one way reader events enter the events stream: signed envelopes appended to the partition of
their agent (issue 14), one pipeline round trip per batch.

A reader agent's forwarder sends through :class:`StreamSink`: its batch as one MULTI/EXEC on the
partition's node and, on a Redis with replicas, ``WAIT`` on the same connection, so the agent
deletes from its outbox only what a replica holds too (a master that crashes and fails over
loses nothing an agent has let go of).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import redis
from redis.cluster import RedisCluster
from redis.connection import ConnectionInterface
from redis.typing import EncodableT, FieldT

from streams import names, signing
from streams.connect import StreamClient
from streams.envelopes import Fault, Heartbeat, Tap, dump

log = logging.getLogger(__name__)
STREAM_MAXLEN = 2_000_000  # approximate cap per partition; far above any backlog a processor can leave


def entry(event: Tap | Heartbeat | Fault, key: bytes) -> dict[str, bytes | str]:
    """The stream fields of one message: its JSON bytes and their HMAC under the device key."""
    payload = dump(event)
    return {names.FIELD: payload, signing.MAC_FIELD: signing.sign(key, payload)}


def append(target: Any, partition: int, fields: Mapping[str, bytes | str]) -> Any:
    """Append one entry (``entry``'s fields) to a partition of the events stream; ``target`` is a
    client or a pipeline (then the entry id comes with the pipeline's results)."""
    # built as redis-py's field dict (its own key/value types; a dict of str keys is not one)
    stream_fields: dict[FieldT, EncodableT] = {name: value for name, value in fields.items()}
    return target.xadd(names.events_stream(partition), stream_fields, maxlen=STREAM_MAXLEN, approximate=True)


def publish(
    client: StreamClient,
    events: Iterable[Tap | Heartbeat | Fault],
    keys: Mapping[str, bytes],
    *,
    partitions: int = names.EVENT_PARTITIONS,
    partition_key: Callable[[Tap | Heartbeat | Fault], str] = lambda event: event.device_id,
) -> list[str]:
    """Sign each event with its device's key (``keys[device_id]``) and append it to the partition
    of ``partition_key(event)`` (by default its device: the simulator plays one agent per door)."""
    pipe = client.pipeline(transaction=False)
    for event in events:
        append(pipe, names.partition_of(partition_key(event), partitions), entry(event, keys[event.device_id]))
    return [i.decode() if isinstance(i, bytes) else i for i in pipe.execute()]


def publish_raw(client: StreamClient, fields: dict[str, bytes | str], partition: int = 0) -> str:
    """Append an arbitrary entry (tests and tools use it to inject malformed input)."""
    entry_id = append(client, partition, fields)
    return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)


class NotReplicated(redis.RedisError):
    """Redis took the batch but no replica confirmed it within the wait."""


class StreamSink:
    """One agent's way into its partition: a connection of its own to the partition's master, so
    that ``WAIT`` counts exactly the batches written on it. ``generation`` changes whenever the
    connection is replaced (an error, a failover): batches sent on an earlier one and not
    confirmed must be sent again."""

    def __init__(
        self,
        client: StreamClient | Callable[[], StreamClient],
        partition: int,
        *,
        replicas: int = 0,
        wait_ms: int = 1000,
    ) -> None:
        # a factory: the client is made at the first send (a cluster client must reach the
        # cluster to be made, and an agent starts whether Redis is up or not)
        self._factory = client if callable(client) else None
        self.client: StreamClient | None = None if callable(client) else client
        self.partition = partition
        self.stream = names.events_stream(partition)
        self.replicas = replicas
        self.wait_ms = wait_ms
        self.generation = 0
        self._conn: ConnectionInterface | None = None

    def _connection(self) -> ConnectionInterface:
        if self._conn is None:
            if self.client is None and self._factory is not None:
                self.client = self._factory()
            assert self.client is not None  # noqa: S101 (made just above)
            if isinstance(self.client, RedisCluster):
                node = self.client.get_node_from_key(self.stream)
                node_client = self.client.get_redis_connection(node)
            else:
                node_client = self.client
            conn = node_client.connection_pool.make_connection()
            conn.connect()
            self._conn = conn
        return self._conn

    def _drop(self) -> None:
        self.generation += 1  # what was sent on the lost connection is not known to be held
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.disconnect()
        if isinstance(self.client, RedisCluster):
            # the slot may have moved (a failover): the next connection asks the cluster afresh
            client, self.client = self.client, None
            if self._factory is None:
                self.client = client
                try:
                    client.nodes_manager.initialize()
                except (redis.RedisError, OSError) as exc:
                    log.debug("cluster slots not refreshed (%s): tried again at the next send", exc)
            else:
                client.close()

    def send(self, rows: Sequence[tuple[bytes, str]]) -> int:
        """Append ``(payload, mac)`` rows as one transaction; returns how many replicas hold them
        (``replicas`` or more: confirmed; 0 without replicas wanted). Raises on any error, after
        which the next call uses a new connection."""
        commands: list[tuple[EncodableT, ...]] = [("MULTI",)]
        for payload, mac in rows:
            commands.append(
                ("XADD", self.stream, "MAXLEN", "~", STREAM_MAXLEN, "*", names.FIELD, payload, signing.MAC_FIELD, mac)
            )
        commands.append(("EXEC",))
        if self.replicas:
            commands.append(("WAIT", self.replicas, self.wait_ms))
        return self._run(commands, len(rows))

    def read(self, keys: Sequence[str]) -> list[bytes | None]:
        """MGET on this connection (keys of the partition's slot: the devices' acknowledgements).
        A connection that fails here is replaced like after a failed send."""
        if not keys:
            return []
        try:
            conn = self._connection()
            conn.send_command("MGET", *keys)
            reply = conn.read_response(disconnect_on_error=False)
        except BaseException:
            self._drop()
            raise
        return list(reply)

    def confirm(self) -> int:
        """How many replicas hold everything sent on this connection (``WAIT`` alone)."""
        return self._run([("WAIT", self.replicas, self.wait_ms)], None)

    def _run(self, commands: list[tuple[EncodableT, ...]], batch: int | None) -> int:
        try:
            conn = self._connection()
            conn.send_packed_command(conn.pack_commands(commands))
            replies = [conn.read_response(disconnect_on_error=False) for _ in commands]
        except BaseException:
            self._drop()
            raise
        if batch is not None:
            executed = replies[batch + 1]
            if not isinstance(executed, list) or len(executed) != batch:
                self._drop()
                raise redis.ResponseError(f"the batch was not executed: {executed!r}")
            failed = [r for r in executed if isinstance(r, Exception)]
            if failed:
                self._drop()
                raise failed[0]
        return int(replies[-1]) if self.replicas else 0

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.disconnect()
        if self._factory is not None and self.client is not None:
            client, self.client = self.client, None
            client.close()
