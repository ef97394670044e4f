"""Processors share the partitions of the events stream by lease (issue 14): each takes its fair
share, a newcomer gets half, a stopped or dead one's partitions move to the others, and a lease
is never renewed by anyone but its holder."""

from __future__ import annotations

import time

import pytest

from streams import names
from streams.consumer import PartitionMismatch, ensure_partition_count
from streams.leases import PartitionLeases


def test_two_processors_split_the_partitions_and_one_takes_all_when_the_other_stops(redis_client):
    a = PartitionLeases(redis_client, "a", 16)
    assert sorted(a.refresh()[0]) == list(range(16))  # alone: everything
    b = PartitionLeases(redis_client, "b", 16)
    assert b.refresh()[0] == []  # all taken
    gained, lost = a.refresh()  # a sees two alive: gives back half
    assert gained == [] and len(lost) == 8 and len(a.owned) == 8
    assert len(b.refresh()[0]) == 8
    assert a.owned.isdisjoint(b.owned) and a.owned | b.owned == set(range(16))
    for p in b.owned:
        assert redis_client.get(names.lease_key(p)) == b"b"
    a.release_all()  # a clean stop hands over at once
    b.refresh()
    assert b.owned == set(range(16))


def test_a_dead_processors_partitions_move_after_the_lease_expires(redis_client):
    a = PartitionLeases(redis_client, "a", 4, ttl_ms=300)
    b = PartitionLeases(redis_client, "b", 4, ttl_ms=300)
    a.refresh()
    b.refresh()
    a.refresh()
    b.refresh()
    assert len(a.owned) == 2 and len(b.owned) == 2
    held_by_a = set(a.owned)
    time.sleep(0.4)  # a stalls: stops renewing (b's leases lapse too, with no renewal this long)
    b.refresh()
    assert b.owned == set(range(4))  # a counts as dead: b takes everything
    gained, lost = a.refresh()  # a wakes up: its leases are b's now, never renewed over b
    assert gained == [] and set(lost) == held_by_a and a.owned == set()
    assert all(redis_client.get(names.lease_key(p)) == b"b" for p in range(4))
    b.refresh()  # two alive again: b gives half back, a takes it
    a.refresh()
    assert len(a.owned) == 2 and len(b.owned) == 2


def test_a_process_configured_with_another_partition_count_is_refused(redis_client):
    ensure_partition_count(redis_client, 16)
    ensure_partition_count(redis_client, 16)
    with pytest.raises(PartitionMismatch, match="16 partitions"):
        ensure_partition_count(redis_client, 8)
