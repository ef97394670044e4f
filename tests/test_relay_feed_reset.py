"""Redis restarting empty must not lock the campus out (issue 12): the relay finds the credential
feed gone, writes every card as a new feed at versions after every one ever used (never a version
an agent already holds), audits it, and only then publishes the next change; a change met by a
feed that vanished under it stays in the outbox. A real reader agent follows it all."""

from __future__ import annotations

import json
import threading
import time

import pytest

from ops.accounts.roles import Role
from ops.accounts.services import create_or_update_operator
from ops.audit.models import AuditRecord
from ops.pipeline.relay import RESEED_ACTION, OutboxRelay
from ops.registry.lifecycle.models import OutboxMessage
from ops.registry.lifecycle.services import report_loss
from readers.agent.agent import ReaderAgent, client_factory
from readers.agent.config import parse_config
from streams import credentials as feed
from streams import names
from tests.factories import device_key
from tests.private_servers import wait_until
from tests.signing_keys import PUBLIC_KEYS

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.pipeline]


def _snapshot(redis_client) -> dict[str, dict]:
    return {k.decode(): json.loads(json.loads(v)["e"]) for k, v in redis_client.hgetall(feed.SNAPSHOT).items()}


def test_redis_restarting_empty_gets_the_whole_feed_back_at_new_versions(campus, redis_client, tmp_path):
    from django.conf import settings

    nic = create_or_update_operator(username="nic", password="pw-nic-123", role=Role.NIC, is_superuser=True)
    relay = OutboxRelay(redis_client, fanout=None)
    assert relay.ensure_feed() == len(campus.cards)  # a new Redis: seeded
    report_loss(card=campus.cards[0], operator=nic, basis="本人挂失")
    relay.run_once()
    before = int(redis_client.get(names.CREDENTIALS_VERSION))
    assert before == len(campus.cards) + 1

    agent = ReaderAgent(
        parse_config(
            {
                "feed_keys": PUBLIC_KEYS,
                "redis_url": settings.REDIS_URL,
                "state_dir": str(tmp_path / "agent"),
                "doors": [{"device_id": "G-E-01", "key_hex": device_key("G-E-01").hex(), "kind": "pedestrian_gate"}],
            }
        ),
        client_factory(settings.REDIS_URL),
        sources=[],
    )
    agent.start()
    try:
        wait_until(lambda: agent.cache.version == before, 10, "the agent to follow the feed", step=0.05)
        held: list[int] = []
        sampling = threading.Event()

        def sample() -> None:
            while not sampling.is_set():
                held.append(len(agent.cache))
                time.sleep(0.005)

        sampler = threading.Thread(target=sample)
        sampler.start()
        redis_client.flushdb()  # Redis restarts with nothing

        report_loss(card=campus.cards[1], operator=nic, basis="本人挂失")
        with pytest.raises(feed.FeedReset):
            relay.run_once()  # never onto a feed that is gone (a one-card snapshot at version 1)
        assert OutboxMessage.objects.filter(published_at__isnull=True).count() == 2  # kept for later

        assert relay.ensure_feed() == len(campus.cards)
        relay.run_once()
        after = int(redis_client.get(names.CREDENTIALS_VERSION))
        assert after > before + len(campus.cards)  # every version new: none an agent already holds
        snapshot = _snapshot(redis_client)
        assert set(snapshot) == {c.uid for c in campus.cards}  # every card, not just the last change
        assert snapshot[campus.cards[0].uid]["status"] == "lost"
        assert snapshot[campus.cards[1].uid]["status"] == "lost"
        seed = AuditRecord.objects.get(action=RESEED_ACTION, data__after=before)
        assert seed.data["cards"] == len(campus.cards)

        # the agent never held fewer cards than the database, and ends with the new feed
        wait_until(lambda: agent.cache.version == after, 10, "the agent to take the new feed", step=0.05)
        sampling.set()
        sampler.join()
        assert len(agent.cache) == len(campus.cards)
        assert min(held) == len(campus.cards)  # never fewer, at any moment
        assert agent.tap("G-E-01", campus.cards[1].uid).reason == "lost"
        assert agent.tap("G-E-01", campus.cards[5].uid).reason == "ok"
    finally:
        agent.close()


def test_a_relay_that_dies_between_publishing_and_committing_publishes_each_change_once(
    campus, redis_client, monkeypatch
):
    """Issue 12: a relay killed after its publish and before its commit sent the same change
    again under a second version. The rows stay unpublished in the database, are sent again, and
    the feed keeps the first version for each."""
    nic = create_or_update_operator(username="nic", password="pw-nic-123", role=Role.NIC, is_superuser=True)
    relay = OutboxRelay(redis_client, fanout=None)
    relay.ensure_feed()
    report_loss(card=campus.cards[3], operator=nic, basis="本人挂失")
    seeded = int(redis_client.get(names.CREDENTIALS_VERSION))

    real_update = OutboxMessage.objects.bulk_update
    calls = {"n": 0}

    def dies_once(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("the relay died here")  # published, not committed
        return real_update(*args, **kwargs)

    monkeypatch.setattr(OutboxMessage.objects, "bulk_update", dies_once)
    with pytest.raises(RuntimeError):
        relay.run_once()
    assert OutboxMessage.objects.filter(published_at__isnull=True).count() == 2  # rolled back
    assert relay.run_once() == 2  # the restarted relay sends them again
    entries = redis_client.xrange(names.CREDENTIALS)
    assert len(entries) == len(campus.cards) + 1  # the change once, not twice
    assert int(redis_client.get(names.CREDENTIALS_VERSION)) == seeded + 1
    row = OutboxMessage.objects.get(topic="credential", published_at__isnull=False)
    assert row.version == seeded + 1
