"""Every Redis key, stream, consumer group and channel-layer group name, in one place."""

from __future__ import annotations

import zlib

# Durable pipeline (Redis Streams), partitioned (issue 14). Each partition is one stream with its
# own dead letters, counters, lease and per-device sequence state, all under one hash tag
# ``{pN}``: on a Redis Cluster a partition and everything acknowledged with it share a slot, so
# an agent's batch (MULTI) and a processor's acknowledgement (XACK with its counters) stay atomic.
# A reader agent's events always go to the partition of its own id; one processor at a time owns a
# partition (a lease), so a device's sequence checks run in one place.
EVENT_PARTITIONS = 16  # default; the server's EVENT_PARTITIONS and every agent must agree
PARTITIONS_KEY = "campuscard:events:partitions"  # the count in use, set by the first processor
PROCESSORS = "campuscard:events:processors"  # ZSET: processor name → last heartbeat (ms)
PROCESSOR_GROUP = "processor"
JOBS_PREFIX = "campuscard:jobs:"  # + timed job: which processor runs it this interval
NOTIFY_RATE_PREFIX = "campuscard:notify-rate:"  # + channel id: ZSET of its sends in the last minute
COUNTERS = "campuscard:counters"  # HINCRBY counters of what the processors saw (alerts, duplicates)


def partition_of(key: str, partitions: int) -> int:
    """The partition of an agent (or simulated device) id: the same in every process."""
    return zlib.crc32(key.encode()) % partitions


def _tag(partition: int) -> str:
    return f"campuscard:events:{{p{partition}}}"


def events_stream(partition: int) -> str:
    """Taps, heartbeats and faults of the agents of this partition."""
    return _tag(partition)


def dead_letter_stream(partition: int) -> str:
    """Entries of the partition that failed validation or kept failing."""
    return f"{_tag(partition)}:dead"


def stream_counters(partition: int) -> str:
    """HINCRBY counters of what the consumers did with the partition (processed, dead_lettered)."""
    return f"{_tag(partition)}:counters"


def lease_key(partition: int) -> str:
    """Which processor owns the partition (a value with a time to live)."""
    return f"{_tag(partition)}:lease"


def seq_state_key(partition: int) -> str:
    """HASH device id → "boot_epoch:seq" of the last message acknowledged from the partition."""
    return f"{_tag(partition)}:seq"


def ack_key(partition: int, device_code: str) -> str:
    """ "boot_epoch:seq" of the last message of this device committed to the database (issue 12,
    end-to-end acknowledgement): its agent deletes from its outbox only what this covers. One key
    per device so that a device's Redis user can be allowed to read its own and no other."""
    return f"{_tag(partition)}:ack:{device_code}"


FANOUT_SEQ_PREFIX = "campuscard:fanout-seq:"  # + channel group: per-group delta sequence

CREDENTIALS = "campuscard:credentials"  # card changes for reader agents, versioned
CREDENTIALS_VERSION = "campuscard:credentials:version"
CREDENTIALS_MAXLEN = 1_000_000

# Raised (INCR) after every change of a device's key: processors reload their keys when it moved
# (issue 20: a key issued again takes effect within a second, no restart)
DEVICE_KEYS_VERSION = "campuscard:devices:keys-version"

# Entry field that carries the JSON envelope
FIELD = "e"

# Best-effort fan-out to browsers (Channels groups)
GROUP_GATES = "live.gates"


def dorm_group(building_code: str) -> str:
    """Channel group of one dorm building's doors (dorm managers see only their own)."""
    return f"live.dorm.{building_code}"


GROUP_LIBRARY = "live.library"
GROUP_CARD_ACTIONS = "live.cards"  # issuance, loss, replacement, cancellation … (R-OPS-5)
GROUP_DESK = "live.desk"
GROUP_ALERTS = "live.alerts"  # ids of alerts that changed (pages refetch them)
GROUP_DEVICES = "live.devices"  # ids of devices whose state or heartbeat changed
