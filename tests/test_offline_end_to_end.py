"""Acceptance (issue 4, point 1): with Redis stopped for the whole run, an agent keeps deciding
(a lost card already in its cache is refused, a valid one admitted) while 20,000 taps happen;
after Redis returns, the database holds exactly those 20,000 events with their original times
and decisions. The test runs its own Redis server (started, stopped and restarted here); the
machine's shared Redis is left alone."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from ops.pipeline.processor import ReaderEventProcessor
from ops.registry.lifecycle.outbox import credential_payload
from ops.registry.models import AccessEvent
from readers.agent.agent import ReaderAgent, client_factory
from readers.agent.config import parse_config
from streams import credentials as feed
from streams.reasons import Decision, Reason
from tests.factories import device_key
from tests.private_servers import wait_until
from tests.signing_keys import PUBLIC_KEYS, SIGNER
from tests.test_agent_offline import server  # noqa: F401 (fixture: a Redis server of its own)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.pipeline, pytest.mark.slow]
TAPS = 20_000


def test_twenty_thousand_offline_taps_reach_the_database_exactly(campus, server, tmp_path):  # noqa: F811
    valid, lost = campus.cards[0], campus.cards[1]
    lost.status = "lost"
    lost.save()
    client = server.client()
    feed.publish(client, [credential_payload(c) for c in campus.cards], SIGNER)
    agent = ReaderAgent(
        parse_config(
            {
                "feed_keys": PUBLIC_KEYS,
                "redis_url": server.url,
                "confirm": "redis",  # no processor here: the agent-to-Redis contract alone
                "state_dir": str(tmp_path / "agent"),
                "heartbeat_s": 3600,
                "doors": [
                    {
                        "device_id": "G-E-01",
                        "key_hex": device_key("G-E-01").hex(),
                        "kind": "pedestrian_gate",
                        "direction": "in",
                    }
                ],
            }
        ),
        client_factory(server.url),
        sources=[],
    )
    agent.start()
    try:
        wait_until(lambda: agent.cache.version == len(campus.cards), 30.0, "the credential snapshot", step=0.01)
        wait_until(lambda: len(agent.outbox) == 0, 30.0, "the boot heartbeat", step=0.01)
        server.stop()  # the network/server is down

        base = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
        expected = {}
        for i in range(TAPS):
            card = lost if i % 4 == 0 else valid
            at = base + timedelta(milliseconds=5 * i)
            verdict = agent.tap("G-E-01", card.uid, at=at)
            expected[at] = (card.uid, verdict.decision, verdict.reason)
        assert {v for v in expected.values()} == {
            (lost.uid, Decision.DENY, Reason.LOST),
            (valid.uid, Decision.ALLOW, Reason.OK),
        }
        assert len(agent.outbox) == TAPS

        server.start()  # it comes back
        wait_until(lambda: len(agent.outbox) == 0, 120, "the backlog to drain", step=0.01)
    finally:
        agent.close()

    processor = ReaderEventProcessor(server.client(), fanout=None, consumer="offline", block_ms=100)
    deadline = time.monotonic() + 120
    while AccessEvent.objects.count() < TAPS and time.monotonic() < deadline:
        processor.poll_once()
    processor.run(max_idle_polls=2)

    rows = list(AccessEvent.objects.values_list("occurred_at", "card_uid", "decision", "reason"))
    assert len(rows) == TAPS
    assert {at: (uid, Decision(d), Reason(r)) for at, uid, d, r in rows} == expected
    assert processor.stats["dead_lettered"] == 0
