"""Every Redis key, stream, consumer group and channel-layer group name, in one place."""

from __future__ import annotations

# Durable pipeline (Redis Streams)
READER_EVENTS = "campuscard:events"  # taps, heartbeats, faults from reader agents
DEAD_LETTER = "campuscard:events:dead"  # entries that failed validation or kept failing
PROCESSOR_GROUP = "processor"
COUNTERS = "campuscard:counters"  # HINCRBY counters of what workers did
FANOUT_SEQ_PREFIX = "campuscard:fanout-seq:"  # + channel group: per-group delta sequence

CREDENTIALS = "campuscard:credentials"  # card changes for reader agents, versioned
CREDENTIALS_VERSION = "campuscard:credentials:version"
CREDENTIALS_MAXLEN = 1_000_000

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
