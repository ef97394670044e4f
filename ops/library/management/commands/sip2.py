"""``campuscard sip2``: the library's SIP2 server (issue 18, Build 5; R-CARD-2)."""

from __future__ import annotations

import anyio
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from ops.library.sip2 import serve


class Command(BaseCommand):
    help = "SIP2 server for the library's circulation system: patron status and information from the card registry."

    def add_arguments(self, parser):
        parser.add_argument("--bind", default=None, help="address to listen on (default SIP2_BIND)")
        parser.add_argument("--port", type=int, default=None, help="TCP port (default SIP2_PORT)")

    def handle(self, *args, **opts):
        if not settings.SIP2_ACCOUNTS:
            raise CommandError(
                "SIP2_ACCOUNTS is empty: set at least one login of the library's circulation system "
                "as name:password (docs/configuration.md); without one every login would be refused."
            )
        host = opts["bind"] or settings.SIP2_BIND
        port = opts["port"] if opts["port"] is not None else settings.SIP2_PORT
        self.stdout.write(f"sip2 listening on {host}:{port} (Ctrl-C to stop)")
        anyio.run(serve, host, port)
        self.stdout.write("sip2 stopped")
