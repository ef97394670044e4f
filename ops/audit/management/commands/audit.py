"""``campuscard audit verify``: prove the audit chain intact, or name the first broken record.
``campuscard audit purge``: delete records past the retention period (≥ 184 days), keeping the
chain verifiable from an anchor; it refuses anything younger.
``campuscard audit checkpoint``: append a signed checkpoint of the chain's head to
``AUDIT_CHECKPOINT_FILE`` (the supervisor does it every ``AUDIT_CHECKPOINT_S``; issue 20)."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from ops.audit import chain, checkpoints, services


class Command(BaseCommand):
    help = "Audit log tools (R-SEC-1): verify the HMAC chain; purge past the retention period."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="what", required=True)
        verify = sub.add_parser("verify", help="walk the chain; exit 1 and name the first broken record")
        verify.add_argument(
            "--checkpoint",
            type=Path,
            help="the checkpoints to check the tail against (default: AUDIT_CHECKPOINT_FILE; "
            "or a log collector's copy of the audit.checkpoint lines)",
        )
        checkpoint = sub.add_parser("checkpoint", help="append a signed checkpoint of the chain's head now")
        checkpoint.add_argument("--force", action="store_true", help="also when the head has not moved")
        purge = sub.add_parser("purge", help="delete records older than the retention period")
        when = purge.add_mutually_exclusive_group()
        when.add_argument(
            "--before", type=datetime.fromisoformat, help="delete records before this date (YYYY-MM-DD, local time)"
        )
        when.add_argument(
            "--older-than-days", type=int, help=f"default: AUDIT_RETENTION_DAYS ({settings.AUDIT_RETENTION_DAYS})"
        )

    def handle(self, *args, **opts):
        if opts["what"] == "purge":
            self._purge(opts)
            return
        if opts["what"] == "checkpoint":
            try:
                cp = checkpoints.write(force=opts["force"])
            except checkpoints.CheckpointError as exc:
                raise CommandError(f"no checkpoint written: {exc}") from exc
            self.stdout.write(
                f"checkpoint: #{cp.last_id} ({cp.total} records) → {checkpoints.default_path()}"
                if cp
                else "checkpoint: the head has not moved since the last one"
            )
            return
        verdict = chain.verify(opts.get("checkpoint"))
        if verdict.ok:
            self.stdout.write(f"audit chain intact: {verdict.checked} records; tail checked against {verdict.anchor}")
            return
        raise CommandError(
            f"audit chain broken at record #{verdict.broken_id} "
            f"({verdict.reason}); {verdict.checked} records before it verify"
        )

    def _purge(self, opts):
        if opts["before"] is not None:
            cutoff = opts["before"]
            if timezone.is_naive(cutoff):
                cutoff = timezone.make_aware(
                    datetime.combine(cutoff.date(), time()) if cutoff.time() == time() else cutoff
                )
        else:
            days = opts["older_than_days"] or settings.AUDIT_RETENTION_DAYS
            cutoff = timezone.now() - timedelta(days=days)
        try:
            deleted = services.purge_before(cutoff)
        except services.RetentionError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"purged {deleted} audit records before {cutoff:%Y-%m-%d %H:%M}")
