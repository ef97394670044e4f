"""The processor's database connection is killed under it (issue 12: "one transient database
error silently loses a batch"; the brief: an outage never loses data): the batch stays pending,
the processor reconnects and stores every tap, nothing is dead-lettered. PostgreSQL only: the
connection is ended with pg_terminate_backend."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from ops.pipeline.processor import ReaderEventProcessor
from ops.registry.models import AccessEvent
from streams import consumer
from tests.factories import publish, tap
from tests.private_servers import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_killed_database_connection_loses_no_tap(campus, redis_client):
    if connection.vendor != "postgresql":
        pytest.fail("this test needs PostgreSQL (pass 1 of scripts/test.sh)")
    processor = ReaderEventProcessor(redis_client, fanout=None, consumer="t", block_ms=50)
    pids: list[int] = []

    def run() -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            pids.append(cursor.fetchone()[0])
        try:
            processor.run()
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    try:
        publish(redis_client, [tap(uid=campus.cards[i].uid, seq=i + 1) for i in range(5)])
        wait_until(lambda: AccessEvent.objects.count() == 5, 20, "the first taps", step=0.05)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pids[0]])
        publish(redis_client, [tap(uid=campus.cards[i].uid, seq=i + 6) for i in range(10)])
        wait_until(lambda: AccessEvent.objects.count() == 15, 30, "the taps after the connection was killed", step=0.05)
    finally:
        processor.stopping.set()
        thread.join(20)
    assert not thread.is_alive()
    assert consumer.dead_letters(redis_client) == []
    assert consumer.pending(redis_client) == 0
    assert not redis_client.hget("campuscard:counters", "duplicate")
