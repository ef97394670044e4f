"""/healthz: 200 when the database, Redis and the events stream answer, 503 naming the part that
does not; the number of live processors is shown (for NIC), without failing a web process."""

from __future__ import annotations

import socket

import pytest

from streams.leases import PartitionLeases

pytestmark = pytest.mark.django_db


def test_healthy_with_the_processors_alive_counted(client, redis_client):
    PartitionLeases(redis_client, "p1", 16).alive()  # one processor's heartbeat
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"database": "ok", "redis": "ok", "events": "ok", "processors": 1}


def test_an_unreachable_events_stream_is_named_and_answers_503(client, redis_client, settings):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings.EVENTS_REDIS_URL = f"redis://127.0.0.1:{port}/0"
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["database"] == "ok" and body["redis"] == "ok"
    assert body["events"].startswith("error: ") and body["processors"] is None
