"""``campuscard simulate``: a simulated campus publishing reader events into Redis."""

from __future__ import annotations

import signal
import threading
import time

import redis
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from ops.paths import var_dir
from ops.pipeline import feed_keys
from ops.redis_client import stream_client
from ops.registry import selectors
from readers.agent.cache import CredentialCache
from readers.agent.emergency import EmergencyHold
from readers.agent.sync import CredentialSync
from readers.simulator import CampusSimulator
from streams.credentials import FeedVerifier


class Command(BaseCommand):
    help = "Simulate every registered reader tapping with a campus-day rhythm."

    def add_arguments(self, parser):
        parser.add_argument("--rate", type=float, default=20.0, help="mean taps per second")
        parser.add_argument(
            "--speed", type=float, default=1.0, help="simulated seconds per real second (shapes the rhythm only)"
        )
        parser.add_argument("--heartbeat", type=float, default=10.0, help="heartbeat interval, s")
        parser.add_argument("--max-events", type=int, default=None)
        parser.add_argument("--seed", type=int, default=None)

    def handle(self, *args, **opts):
        if opts["rate"] <= 0 or opts["speed"] <= 0 or opts["heartbeat"] <= 0:
            raise CommandError("--rate, --speed and --heartbeat must be positive")
        creds, doors = selectors.credentials(), selectors.doors()
        if not doors:
            raise CommandError("no devices registered: run `campuscard demo` or register devices")
        keys = selectors.device_keys()
        doors = [d for d in doors if d.device_id in keys]  # only registered, keyed devices
        stop = threading.Event()
        # The simulated doors decide as real ones do (issue 12, Build 7): from a credential cache
        # that follows the signed feed, through the agent's own sync (readers.agent.sync).
        public = _feed_public_keys()
        state = var_dir() / "simulator"
        state.mkdir(parents=True, exist_ok=True)
        cache = CredentialCache(state / "credentials.sqlite3")
        hold = EmergencyHold(state / "emergency.sqlite3")  # lockdown / unlock-all (issue 17, Build 2)
        sync = CredentialSync(
            cache,
            FeedVerifier(public),
            lambda: redis.Redis.from_url(settings.REDIS_URL),
            stopping=stop,
            emergency=hold,
        )
        syncing = threading.Thread(target=sync.run, name="credential-sync", daemon=True)
        syncing.start()
        sim = CampusSimulator(
            creds,
            doors,
            rate=opts["rate"],
            speed=opts["speed"],
            heartbeat_s=opts["heartbeat"],
            seed=opts["seed"],
            keys=keys,
            lookup=cache.lookup,
            emergency=lambda: hold.current,
            policy=lambda: cache.policy,
            credential_version=lambda: cache.version,  # in the heartbeats, as an agent's (issue 19)
        )
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        self.stdout.write(f"simulating {len(doors)} readers, {len(creds)} cards at ~{opts['rate']}/s")
        sync.synced.wait(30)  # decide from the feed from the first tap (a Redis away: the cache)
        try:
            sent = sim.run(stream_client(), stop, max_events=opts["max_events"], partitions=settings.EVENT_PARTITIONS)
        finally:
            stop.set()
            syncing.join(5)
            cache.close()
            hold.close()
        self.stdout.write(f"simulator stopped after {sent} events")


def _feed_public_keys(wait_s: float = 30.0) -> list[str]:
    """The feed's public keys from the key ring the relay keeps (it makes the first key when it
    starts: the demo starts both at once). A demo tool's shortcut: a real reader gets them in
    its configuration."""
    deadline = time.monotonic() + wait_s
    while not (keys := feed_keys.trusted_public_keys()):
        if time.monotonic() > deadline:
            raise CommandError(
                f"no credential feed key in {settings.CREDENTIAL_KEYRING}: start `campuscard relay` first "
                "(it makes the key), or give this process the relay's key ring"
            )
        time.sleep(0.5)
    return keys
