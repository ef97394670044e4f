"""``campuscard process``: run one processor of the consumer group until SIGTERM / Ctrl-C."""

from __future__ import annotations

import socket

from django.conf import settings
from django.core.management.base import BaseCommand

from ops import push
from ops.pipeline.processor import ReaderEventProcessor
from ops.redis_client import stream_client


class Command(BaseCommand):
    help = "Consume reader events from Redis Streams into the database and the live pages."

    def add_arguments(self, parser):
        parser.add_argument(
            "--name", default=f"{socket.gethostname()}-1", help="consumer name; keep it stable across restarts"
        )
        parser.add_argument("--batch", type=int, default=settings.PROCESSOR_BATCH_SIZE)
        parser.add_argument(
            "--claim-idle-ms",
            type=int,
            default=settings.PROCESSOR_CLAIM_IDLE_MS,
            help="take over entries another consumer left unacknowledged this long",
        )
        parser.add_argument("--no-fanout", action="store_true", help="do not push to live pages")

    def handle(self, *args, **opts):
        redis_client = stream_client()
        fanout = None if opts["no_fanout"] else push.fanout()  # taps, alerts, devices: one sender
        processor = ReaderEventProcessor(
            redis_client,
            fanout=fanout,
            consumer=opts["name"],
            batch_size=opts["batch"],
            claim_idle_ms=opts["claim_idle_ms"],
            lease_ttl_ms=settings.PROCESSOR_LEASE_MS,
        )
        processor.install_signal_handlers()
        self.stdout.write(f"processor {opts['name']} consuming (Ctrl-C to stop)")
        try:
            processor.run()
        finally:
            push.close()
        self.stdout.write(f"processor stopped: {processor.stats}")
