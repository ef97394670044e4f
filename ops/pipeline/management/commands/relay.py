"""``campuscard relay``: publish committed card changes (outbox) to readers and live pages."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from ops import push
from ops.pipeline.relay import OutboxRelay
from ops.redis_client import client


class Command(BaseCommand):
    help = "Publish card changes from the outbox: credential stream + live card-action feed."

    def handle(self, *args, **opts):
        redis_client = client()
        fanout = push.fanout()
        relay = OutboxRelay(redis_client, fanout=fanout)
        relay.install_signal_handlers()
        self.stdout.write("relay publishing card changes (Ctrl-C to stop)")
        try:
            relay.run()
        finally:
            push.close()
        self.stdout.write(f"relay stopped after {relay.published} messages")
