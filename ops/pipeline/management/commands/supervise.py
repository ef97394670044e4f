"""``campuscard supervise``: the event path's timed jobs (silent and lagging devices, alert
escalation and flapping, the tap history's partitions) and the daily scheduled work (backups,
the audit purge, reminders: ``ops.pipeline.scheduled``) until SIGTERM / Ctrl-C. One is enough;
a second may run for availability (each job is claimed per interval)."""

from __future__ import annotations

import socket

from django.core.management.base import BaseCommand

from ops import push
from ops.pipeline.timed import TimedJobs
from ops.redis_client import client


class Command(BaseCommand):
    help = (
        "Run the timed jobs: silent/lagging devices, alert escalation and flapping, history partitions; "
        "and the daily scheduled work: backups, the audit purge, reminders."
    )

    def add_arguments(self, parser):
        parser.add_argument("--name", default=f"{socket.gethostname()}-supervise", help="who holds a job's claim")

    def handle(self, *args, **opts):
        jobs = TimedJobs(client(), name=opts["name"])
        jobs.install_signal_handlers()
        self.stdout.write(f"supervisor {opts['name']} running the timed jobs (Ctrl-C to stop)")
        try:
            jobs.run()
        finally:
            push.close()
