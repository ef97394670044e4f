"""``campuscard audit verify``: prove the audit chain intact, or name the first broken record."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from ops.audit import chain


class Command(BaseCommand):
    help = "Audit log tools (R-SEC-1): verify the HMAC chain."

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        sub = parser.add_subparsers(dest="what", required=True)
        sub.add_parser("verify", help="walk the chain; exit 1 and name the first broken record")

    def handle(self, *args, **opts):  # type: ignore[no-untyped-def]
        verdict = chain.verify()
        if verdict.ok:
            self.stdout.write(f"audit chain intact: {verdict.checked} records")
            return
        raise CommandError(f"audit chain broken at record #{verdict.broken_id} "
                           f"({verdict.reason}); {verdict.checked} records before it verify")
