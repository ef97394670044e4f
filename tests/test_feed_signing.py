"""Signed card changes at the edge (issue 12, Build 6 and acceptance 6; R-SEC-5, R-USE-1): the
credential feed is one typed contract, signed by the server with Ed25519 over each change's
version and bytes. A reader agent applies only what a key in its ``feed_keys`` signed: a forged,
unsigned or replayed change written into Redis with admin rights is refused by the agent,
reported, and raised as an alert; a genuine change after it still arrives. NIC rotates the key
with an overlap window, every step audited.

Real parts: the test's Redis, the test database, a real relay (in-process), a real reader agent,
a real processor (in a thread) turning the agent's report into an alert."""

from __future__ import annotations

import json
import threading

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.management import CommandError, call_command
from django.db import connection

from ops.accounts.roles import Role
from ops.accounts.services import create_or_update_operator
from ops.alerts.choices import AlertKind
from ops.alerts.models import Alert
from ops.audit.models import AuditRecord
from ops.pipeline import feed_keys
from ops.pipeline.processor import ReaderEventProcessor
from ops.pipeline.relay import OutboxRelay
from ops.registry.lifecycle.services import report_loss
from readers.agent.agent import ReaderAgent, client_factory
from readers.agent.config import parse_config
from streams import credentials as feed
from streams import names
from streams.reasons import Reason
from tests.factories import device_key
from tests.private_servers import wait_until
from tests.signing_keys import PUBLIC_KEYS, SIGNER

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.pipeline]


def _card(uid: str, status: str = "active") -> dict[str, object]:
    return feed.CardCredential.model_validate(
        {"uid": uid, "card_type": "student", "status": status, "valid_from": "2025-09-01T00:00:00+00:00"}
    ).wire()


# -- the contract and the signature -----------------------------------------------------------
def test_a_change_verifies_only_with_its_own_version_and_a_trusted_key():
    verifier = feed.FeedVerifier(PUBLIC_KEYS)
    e = feed.encode(_card("04A1B2C3"))
    good = feed.SignedChange(7, e, SIGNER.key_id, SIGNER.sign(7, e))
    assert verifier.verify(good).uid == "04A1B2C3"
    replayed = feed.SignedChange(9, e, SIGNER.key_id, good.sig)  # a signed change at another version
    with pytest.raises(feed.ForgedCredential, match="bad signature"):
        verifier.verify(replayed)
    edited = feed.SignedChange(7, e.replace(b"active", b"lost__"), SIGNER.key_id, good.sig)
    with pytest.raises(feed.ForgedCredential, match="bad signature"):
        verifier.verify(edited)
    with pytest.raises(feed.ForgedCredential, match="unsigned"):
        verifier.verify(feed.SignedChange(7, e, "", ""))
    other = feed.FeedSigner(Ed25519PrivateKey.generate())
    with pytest.raises(feed.ForgedCredential, match="not signed by a trusted key"):
        verifier.verify(feed.SignedChange(7, e, other.key_id, other.sign(7, e)))
    malformed = b'{"uid": "04A1B2C3", "status": "vanished"}'
    with pytest.raises(ValueError, match="card_type"):  # signed but not the contract: fails closed
        verifier.verify(feed.SignedChange(8, malformed, SIGNER.key_id, SIGNER.sign(8, malformed)))
    with pytest.raises(ValueError, match="no feed key"):
        feed.FeedVerifier([])


def test_the_relay_signs_what_it_publishes_and_the_snapshot(campus, redis_client):
    relay = OutboxRelay(redis_client, fanout=None)
    assert relay.ensure_feed() == len(campus.cards)
    verifier = feed.FeedVerifier(PUBLIC_KEYS)
    version, snapshot = feed.load_snapshot(redis_client)
    assert len(snapshot) == len(campus.cards)
    assert all(verifier.verify(change).uid == uid for uid, change in snapshot.items())
    nic = create_or_update_operator(username="nic", password="pw-nic-123", role=Role.NIC, is_superuser=True)
    report_loss(card=campus.cards[1], operator=nic, basis="本人挂失")
    assert relay.run_once() >= 1
    [change] = feed.read_after(redis_client, version)
    assert change.version == version + 1 and change.key == SIGNER.key_id
    assert verifier.verify(change).status == "lost"
    assert verifier.verify(feed.load_snapshot(redis_client)[1][campus.cards[1].uid.upper()]).status == "lost"


# -- a forged change at a real agent ----------------------------------------------------------
def _agent(redis_url: str, state_dir, keys: list[str]) -> ReaderAgent:
    config = parse_config(
        {
            "feed_keys": keys,
            "redis_url": redis_url,
            "confirm": "redis",
            "state_dir": str(state_dir),
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
    )
    return ReaderAgent(config, client_factory(redis_url), sources=[])


def _xadd(client, version: int, e: bytes, key: str = "", sig: str = "") -> None:
    fields = {"v": version, "e": e} | ({"k": key, "s": sig} if key else {})
    client.xadd(names.CREDENTIALS, fields, id=f"{version}-1")


def test_forged_changes_written_with_admin_rights_are_refused_reported_and_alerted(
    campus, redis_client, settings, tmp_path
):
    from django.conf import settings as live

    relay = OutboxRelay(redis_client, fanout=None)
    relay.ensure_feed()
    processor = ReaderEventProcessor(redis_client, fanout=None, consumer="t", block_ms=50)

    def run() -> None:
        try:
            processor.run()
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    agent = _agent(live.REDIS_URL, tmp_path / "agent", PUBLIC_KEYS)
    agent.start()
    try:
        valid, lost = campus.cards[0], campus.cards[1]
        version = int(redis_client.get(names.CREDENTIALS_VERSION))
        wait_until(lambda: agent.cache.version == version, 30, "the signed snapshot")
        nic = create_or_update_operator(username="nic", password="pw-nic-123", role=Role.NIC, is_superuser=True)
        report_loss(card=lost, operator=nic, basis="本人挂失")
        relay.run_once()
        wait_until(lambda: agent.tap("G-E-01", lost.uid).reason == Reason.LOST, 10, "the loss report")
        old_active = next(
            c for c in feed.read_after(redis_client, 0, count=10_000) if json.loads(c.e)["uid"] == lost.uid.upper()
        )

        # Someone with full Redis rights (a stolen controller before per-device ACLs, an admin
        # password) writes card changes of their own at the next versions:
        now = int(redis_client.get(names.CREDENTIALS_VERSION))
        # the lost card's old, genuinely signed "active", replayed at a new version
        _xadd(redis_client, now + 1, old_active.e, old_active.key, old_active.sig)
        # a new card "signed" with a key of the attacker's own
        attacker = feed.FeedSigner(Ed25519PrivateKey.generate())
        fake = feed.encode(_card("DEADBEEF01"))
        _xadd(redis_client, now + 2, fake, attacker.key_id, attacker.sign(now + 2, fake))
        # and one with no signature at all
        _xadd(redis_client, now + 3, feed.encode(_card("DEADBEEF02")))
        redis_client.set(names.CREDENTIALS_VERSION, now + 3)  # so that the relay can go on after them

        wait_until(lambda: agent.refused_changes >= 3, 10, "the forgeries to be refused")
        assert agent.cache.version == now  # none applied
        assert agent.tap("G-E-01", lost.uid).reason == Reason.LOST  # the replayed "active" did not open
        assert agent.tap("G-E-01", "DEADBEEF01").reason == Reason.UNKNOWN_CARD
        assert agent.tap("G-E-01", "DEADBEEF02").reason == Reason.UNKNOWN_CARD
        wait_until(
            lambda: Alert.objects.filter(kind=AlertKind.FORGED_CREDENTIAL, subject="G-E-01").exists(),
            20,
            "the forged_credential alert",
        )

        # a forged snapshot entry (adding a card) is refused when the agent next loads it
        redis_client.hset(
            feed.SNAPSHOT,
            "DEADBEEF03",
            feed.SignedChange(now, feed.encode(_card("DEADBEEF03")), attacker.key_id, "00" * 64).snapshot_value(),
        )
        # the genuine feed goes on: the next real change follows the forgeries (a gap for this
        # agent, which loads the snapshot and gets it)
        report_loss(card=valid, operator=nic, basis="本人挂失")
        relay.run_once()
        wait_until(lambda: agent.tap("G-E-01", valid.uid).reason == Reason.LOST, 15, "the genuine change")
        assert agent.cache.version == now + 4
        assert agent.tap("G-E-01", "DEADBEEF03").reason == Reason.UNKNOWN_CARD
        assert agent.tap("G-E-01", lost.uid).reason == Reason.LOST
        assert agent.refused_changes >= 4
    finally:
        agent.close()
        processor.stopping.set()
        thread.join(20)


# -- rotation ---------------------------------------------------------------------------------
def test_rotation_with_an_overlap_window_resigns_the_feed_and_is_audited(campus, redis_client, settings, tmp_path):
    from django.conf import settings as live

    settings.CREDENTIAL_KEYRING = str(tmp_path / "ring" / "keyring.json")  # a ring of this test's own
    relay = OutboxRelay(redis_client, fanout=None)
    relay.ensure_feed()  # the relay makes the first key
    [first] = feed_keys.keys()
    assert first.state == feed_keys.ACTIVE
    assert AuditRecord.objects.filter(action="feed_key.create", object_id=first.id).exists()
    with pytest.raises(CommandError, match="no next key"):
        call_command("feedkey", "activate", "--basis", "too early")

    call_command("feedkey", "new", "--basis", "yearly rotation")
    nxt = next(k for k in feed_keys.keys() if k.state == feed_keys.NEXT)
    assert feed_keys.trusted_public_keys() == [first.public, nxt.public]  # what the agents get now
    with pytest.raises(CommandError, match="already waiting"):
        call_command("feedkey", "new", "--basis", "twice")

    both = _agent(live.REDIS_URL, tmp_path / "both", [first.public, nxt.public])  # the overlap
    old_only = _agent(live.REDIS_URL, tmp_path / "old", [first.public])  # an agent nobody updated
    for agent in (both, old_only):
        agent.start()
    try:
        before = int(redis_client.get(names.CREDENTIALS_VERSION))
        wait_until(lambda: both.cache.version == before and old_only.cache.version == before, 30, "the feed")

        call_command("feedkey", "activate", "--basis", "yearly rotation")
        assert relay.ensure_feed() == len(campus.cards)  # re-signed with the new key, at new versions
        after = int(redis_client.get(names.CREDENTIALS_VERSION))
        assert after == before + len(campus.cards) and feed.feed_key(redis_client) == nxt.id
        record = AuditRecord.objects.get(action="feed_key.activate")
        assert record.object_id == nxt.id and record.data["retired"] == [first.id]
        assert json.loads(open(settings.CREDENTIAL_KEYRING).read())["keys"][0]["private"] == ""  # erased

        wait_until(lambda: both.cache.version == after, 30, "the re-signed snapshot")
        assert len(both.cache) == len(campus.cards)
        # the agent that never got the new key refuses the whole re-signed feed and says so (one
        # report, not one per card); it keeps deciding from what the old key signed, and its
        # heartbeats, stuck at the old version, raise credential_lag on the NIC desk
        wait_until(lambda: old_only.refused_changes >= len(campus.cards), 30, "the old-key agent to refuse")
        assert old_only.cache.version == before and len(old_only.cache) == len(campus.cards)
        assert old_only._refused_unreported == len(campus.cards) - 1
    finally:
        both.close()
        old_only.close()
