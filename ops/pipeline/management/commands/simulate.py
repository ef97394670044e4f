"""``campuscard simulate``: a simulated campus publishing reader events into Redis."""

from __future__ import annotations

import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from ops.redis_client import stream_client
from ops.registry import selectors
from readers.simulator import CampusSimulator


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
        sim = CampusSimulator(
            creds,
            doors,
            rate=opts["rate"],
            speed=opts["speed"],
            heartbeat_s=opts["heartbeat"],
            seed=opts["seed"],
            keys=keys,
        )
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        self.stdout.write(f"simulating {len(doors)} readers, {len(creds)} cards at ~{opts['rate']}/s")
        sent = sim.run(stream_client(), stop, max_events=opts["max_events"], partitions=settings.EVENT_PARTITIONS)
        self.stdout.write(f"simulator stopped after {sent} events")
