"""The demo follows the real path (issue 12, Build 7; R-USE-1): the simulated doors decide from a
credential cache that follows the signed feed, through the reader agent's own sync — so a loss
report made on a desk is refused at the simulated doors within a second, as at real ones.

Real parts: ``campuscard simulate``, ``campuscard relay`` and ``campuscard process`` as
processes, the test's Redis and database; the loss report through the card service."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from datetime import timedelta

import pytest
import redis
from django.conf import settings

from ops.accounts.roles import Role
from ops.accounts.services import create_or_update_operator
from ops.pipeline.relay import OutboxRelay
from ops.registry import selectors
from ops.registry.lifecycle.services import replace_card, report_loss
from ops.registry.models import AccessEvent
from readers.agent.cache import CredentialCache
from readers.agent.sync import CredentialSync
from readers.simulator import CampusSimulator
from streams import credentials as feed
from streams import envelopes
from streams.reasons import Reason
from tests.conftest import campuscard_cmd
from tests.private_servers import wait_until
from tests.signing_keys import PUBLIC_KEYS

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.pipeline]


def test_a_loss_report_is_refused_at_the_simulated_doors_within_a_second(
    campus, redis_client, subprocess_env, tmp_path
):
    logs = {name: tmp_path / f"{name}.log" for name in ("relay", "process", "simulate")}
    commands = {
        "relay": campuscard_cmd("relay"),
        "process": campuscard_cmd("process"),
        "simulate": campuscard_cmd("simulate", "--rate", "60", "--heartbeat", "2", "--seed", "3"),
    }
    procs = {
        name: subprocess.Popen(cmd, env=subprocess_env, stdout=logs[name].open("w"), stderr=subprocess.STDOUT)
        for name, cmd in commands.items()
    }
    try:
        # the simulated doors use the campus's cards (they are in their pool) and admit them; the
        # card reported lost is one they have admitted (which one depends on the hour's rhythm)
        uids = {c.uid: c for c in campus.cards}
        admitted = AccessEvent.objects.filter(card_uid__in=uids, reason=Reason.OK)
        wait_until(admitted.exists, 60, "an admitted tap of a campus card")
        card = uids[admitted.values_list("card_uid", flat=True).first()]
        nic = create_or_update_operator(username="nic", password="pw-nic-123", role=Role.NIC, is_superuser=True)
        reported_at = report_loss(card=card, operator=nic, basis="本人挂失").updated_at
        wait_until(
            lambda: AccessEvent.objects.filter(card_uid=card.uid, reason=Reason.LOST).exists(),
            30,
            "a refused tap of the lost card",
        )
        # every tap of the card made more than a second after the report was refused
        late = AccessEvent.objects.filter(card_uid=card.uid, occurred_at__gt=reported_at + timedelta(seconds=1))
        wait_until(lambda: late.count() >= 3, 60, "more taps of the lost card")
        assert set(late.values_list("reason", flat=True)) == {Reason.LOST}
    finally:
        for proc in procs.values():
            proc.send_signal(signal.SIGTERM)
        for proc in procs.values():
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
    for name, proc in procs.items():
        assert proc.returncode == 0, logs[name].read_text()[-2000:]


def test_the_simulator_decides_from_the_synced_cache(campus, redis_client, tmp_path):
    """In process, the timing: the loss report reaches the simulated doors' cache within a
    second of the relay publishing it, and the next simulated tap of the card is refused."""
    relay = OutboxRelay(redis_client, fanout=None)
    relay.ensure_feed()
    stop = threading.Event()
    cache = CredentialCache(tmp_path / "credentials.sqlite3")
    sync = CredentialSync(
        cache, feed.FeedVerifier(PUBLIC_KEYS), lambda: redis.Redis.from_url(settings.REDIS_URL), stopping=stop
    )
    thread = threading.Thread(target=sync.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: len(cache) == len(campus.cards), 20, "the synced snapshot")
        card = campus.cards[2]
        doors = [d for d in selectors.doors() if d.device_id == "G-E-01"]
        sim = CampusSimulator(
            selectors.credentials(), doors, rate=100, rhythmic=False, seed=1, keys={}, lookup=cache.lookup
        )
        sim._pick_card = lambda door: (None, card.uid)  # type: ignore[method-assign]  # always this card

        def taps() -> list[envelopes.Tap]:
            return [e for e in sim.step(time.time(), 0.05) if isinstance(e, envelopes.Tap)]

        assert {t.reason for t in taps()} == {Reason.OK}
        nic = create_or_update_operator(username="nic", password="pw-nic-123", role=Role.NIC, is_superuser=True)
        report_loss(card=card, operator=nic, basis="本人挂失")
        relay.run_once()
        published = time.monotonic()
        wait_until(lambda: (c := cache.lookup(card.uid)) is not None and c.status == "lost", 1.0, "the loss", step=0.01)
        assert time.monotonic() - published < 1.0
        assert {t.reason for t in taps()} == {Reason.LOST}
    finally:
        stop.set()
        thread.join(5)
        cache.close()


def test_a_replaced_card_is_refused_and_its_replacement_admitted_at_the_simulated_doors(campus, redis_client, tmp_path):
    """Issue 19, item 1 (R-USE-1, R-USE-2): after 挂失 and then 补卡, the simulated doors refuse the
    old card (dead forever: 已注销) and admit the new one — both within a second of the relay
    publishing the change, through the same synced cache the demo's doors decide from."""
    relay = OutboxRelay(redis_client, fanout=None)
    relay.ensure_feed()
    stop = threading.Event()
    cache = CredentialCache(tmp_path / "credentials.sqlite3")
    sync = CredentialSync(
        cache, feed.FeedVerifier(PUBLIC_KEYS), lambda: redis.Redis.from_url(settings.REDIS_URL), stopping=stop
    )
    thread = threading.Thread(target=sync.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: len(cache) == len(campus.cards), 20, "the synced snapshot")
        old = campus.cards[3]
        doors = [d for d in selectors.doors() if d.device_id == "G-E-01"]
        sim = CampusSimulator(
            selectors.credentials(), doors, rate=100, rhythmic=False, seed=1, keys={}, lookup=cache.lookup
        )
        presented = {"uid": old.uid}
        sim._pick_card = lambda door: (None, presented["uid"])  # type: ignore[method-assign]  # the card shown

        def reasons(uid: str) -> set[str]:
            presented["uid"] = uid
            return {t.reason for t in sim.step(time.time(), 0.05) if isinstance(t, envelopes.Tap)}

        new_uid = "C0FFEE19"
        assert reasons(old.uid) == {Reason.OK}
        assert reasons(new_uid) == {Reason.UNKNOWN_CARD}  # not issued yet: not admitted either
        nic = create_or_update_operator(username="nic", password="pw-nic-123", role=Role.NIC, is_superuser=True)
        report_loss(card=old, operator=nic, basis="本人挂失")
        relay.run_once()
        wait_until(lambda: (c := cache.lookup(old.uid)) is not None and c.status == "lost", 1.0, "the loss", step=0.01)
        assert reasons(old.uid) == {Reason.LOST}
        replace_card(card=old, new_uid=new_uid, operator=nic, reason="loss", basis="补卡", window="W1")
        relay.run_once()
        published = time.monotonic()
        wait_until(
            lambda: (
                cache.lookup(new_uid) is not None
                and (o := cache.lookup(old.uid)) is not None
                and o.status == "replaced"
            ),
            1.0,
            "the replacement",
            step=0.01,
        )
        assert time.monotonic() - published < 1.0
        assert reasons(old.uid) == {Reason.CANCELLED}  # the old card is dead forever
        assert reasons(new_uid) == {Reason.OK}  # the new one opens the doors the old one did
    finally:
        stop.set()
        thread.join(5)
        cache.close()
