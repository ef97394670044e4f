"""The event path's timed work, in a process of its own (``campuscard supervise``; issue 12,
Build 2), so that a processor does per-event work only:

- every ``SUPERVISE_S``: devices gone silent (R-DEV-2) or lagging behind the credential feed
  (R-USE-1), readers still missing a revocation 30 s after it went out (issue 17, Build 6;
  ``ops.pipeline.revocation_watch``), alerts nobody acknowledged in time escalated (R-OPS-3),
  flapping alerts settled;
- hourly: the tap history's monthly partitions made ahead and expired months dropped (issue 14);
- every ``NOTIFY_S``: alerts routed to notifications, and what is due sent, retried or
  cancelled (issue 16; ``ops/alerts/notifications``) — never in the processor's hot path;
- every ``AUDIT_CHECKPOINT_S``: a signed checkpoint of the audit chain's head outside the
  database, when it moved (issue 20, R-SEC-1; ``ops.audit.checkpoints``); one that finds the
  database lost what the last checkpoint signed writes none and raises ``job_failed``;
- every ``SCHEDULE_CHECK_S``: the daily scheduled work due — backups, the audit purge,
  reminders — in a thread of its own (issue 16, Build 4; ``ops.pipeline.scheduled``);
- with ``DEVICE_REDIS_ACL=1`` (issue 12, Build 6): every ``SUPERVISE_S`` the reader agents' Redis
  users are checked and all re-made if any is missing (a Redis restarted empty) or unknown; every
  ``device_acl.FULL_SYNC_S`` they are all brought up to date (a change Redis missed).

Safe to run twice (two hosts for availability): each job takes a claim in Redis per interval
(``SET NX PX``, as healthchecks' ``sendalerts`` takes its checks), so one supervisor runs it and
a dead one's turn passes to the other when its claim lapses. An outage of Redis or the database
is one log line and a retry at the next interval, never a crash.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import redis
from django.conf import settings
from django.db import InterfaceError, OperationalError, connection
from django.utils import timezone

from ops.alerts.choices import AlertKind
from ops.alerts.notifications import services as notifications
from ops.alerts.services import clear_subjects, escalate_overdue, raise_alert, resolve_cleared, settle_flapping
from ops.audit import checkpoints
from ops.pipeline import partitions, scheduled
from ops.pipeline.revocation_watch import watch_revocations
from ops.pipeline.supervision import mark_lagging_devices, mark_silent_devices
from ops.registry import device_acl
from ops.registry.calendar.services import refresh_policy_horizon
from streams import names
from streams.connect import StreamClient
from streams.device_acl import SelectorsUnsupported

log = logging.getLogger(__name__)
TICK_S = 0.5


def supervise_devices_and_alerts() -> None:
    now = timezone.now()
    mark_silent_devices(now=now)
    mark_lagging_devices(now=now)
    watch_revocations(now=now)  # R-USE-1: which reader lacks which loss report (issue 17)
    escalate_overdue(now=now)  # R-OPS-3: nobody acknowledged it in time
    settle_flapping(now=now)
    resolve_cleared(now=now)  # issue 19: a condition cleared and gone for good closes itself


_unsupported_said = False


def _device_acl_job(work: Callable[[], object]) -> None:
    """A Redis older than 7 cannot hold the agents' users: one clear error line, not a traceback
    or an "unreachable" warning every interval; the other jobs run on."""
    global _unsupported_said
    try:
        work()
    except SelectorsUnsupported as exc:
        if not _unsupported_said:
            log.error("DEVICE_REDIS_ACL=1 but %s: no reader agent user is made (upgrade Redis to 7)", exc)
            _unsupported_said = True


def full_device_acl_sync() -> None:
    def work() -> None:
        counts = device_acl.sync_all(actor=None, basis="supervisor: periodic sync of the device users")
        if counts["created"] or counts["updated"] or counts["removed"]:
            log.warning("device ACL users brought up to date: %s", counts)

    _device_acl_job(work)


def check_device_acl() -> None:
    _device_acl_job(device_acl.resync_if_missing)


def send_notifications() -> None:
    outcomes = notifications.run()
    if outcomes["failed"] or outcomes["retrying"]:
        log.warning("notifications: %s", dict(outcomes))


def refresh_door_policy() -> None:
    if refresh_policy_horizon():
        log.info("door policy sent again: the doors' calendar horizon was running short")


def maintain_history() -> None:
    created, dropped = partitions.maintain(now=timezone.now())
    if created or dropped:
        log.info("history partitions: created %s, dropped %s", created, dropped)


AUDIT_CHECKPOINT_JOB = "audit-checkpoint"


def checkpoint_audit() -> None:
    """R-SEC-1 (issue 20): anchor the audit chain's head outside the database. A database that
    lost what the last checkpoint signed (a cut tail) gets no new checkpoint: the error is
    logged and alerted until it is investigated; the other jobs run on."""
    now = timezone.now()
    try:
        checkpoints.write(now=now)
    except (checkpoints.CheckpointError, OSError) as exc:
        log.error("audit checkpoint refused: %s", exc, extra={"event": "audit.checkpoint_refused"})
        raise_alert(
            kind=AlertKind.JOB_FAILED,
            subject=AUDIT_CHECKPOINT_JOB,
            at=now,
            detail={"job": AUDIT_CHECKPOINT_JOB, "error": str(exc)[:500]},
        )
        return
    clear_subjects(kinds=[AlertKind.JOB_FAILED], subjects=[AUDIT_CHECKPOINT_JOB], at=now)


class TimedJobs:
    """``run()`` until SIGTERM; ``run_due()`` runs each job whose interval is up and whose claim
    this supervisor wins, and returns the names of those it ran."""

    def __init__(
        self,
        client: StreamClient,
        *,
        name: str,
        jobs: dict[str, tuple[float, Callable[[], None]]] | None = None,
    ):
        self.redis = client
        self.name = name
        self.scheduled = scheduled.Worker(name)
        self.jobs = jobs or {
            "supervise": (float(settings.SUPERVISE_S), supervise_devices_and_alerts),
            "history-partitions": (float(partitions.CHECK_S), maintain_history),
            "notifications": (float(settings.NOTIFY_S), send_notifications),
            "scheduled": (float(settings.SCHEDULE_CHECK_S), self.scheduled.tick),
            "door-policy": (3600.0, refresh_door_policy),  # the doors' calendar horizon (issue 17)
            AUDIT_CHECKPOINT_JOB: (float(settings.AUDIT_CHECKPOINT_S), checkpoint_audit),  # issue 20
        }
        if jobs is None and device_acl.enabled():
            self.jobs["device-acl"] = (float(settings.SUPERVISE_S), check_device_acl)
            self.jobs["device-acl-full"] = (float(device_acl.FULL_SYNC_S), full_device_acl_sync)
        self._next: dict[str, float] = dict.fromkeys(self.jobs, 0.0)  # every job at the start
        self.stopping = threading.Event()
        self._failing: str | None = None
        self.runs: dict[str, int] = dict.fromkeys(self.jobs, 0)

    def take_turn(self, job: str, every_s: float) -> bool:
        """The claim for this interval: lapses just before the next, so it passes on if we die."""
        return bool(self.redis.set(f"{names.JOBS_PREFIX}{job}", self.name, nx=True, px=int(every_s * 900)))

    def run_due(self) -> list[str]:
        ran = []
        for job, (every_s, work) in self.jobs.items():
            if time.monotonic() < self._next[job]:
                continue
            self._next[job] = time.monotonic() + every_s
            if self.take_turn(job, every_s):
                work()
                self.runs[job] += 1
                ran.append(job)
        return ran

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                self.run_due()
            except (redis.RedisError, OSError, OperationalError, InterfaceError) as exc:
                part = "Redis" if isinstance(exc, redis.RedisError | OSError) else "the database"
                if self._failing != part:
                    log.warning("timed jobs: %s unreachable (%s): retrying at the next interval", part, exc)
                    self._failing = part
                connection.close()  # a broken connection is not reused
            else:
                if self._failing is not None:
                    log.warning("timed jobs: %s reachable again", self._failing)
                    self._failing = None
            self.stopping.wait(TICK_S)
        if self.scheduled.busy():  # its row stays "running"; the job's next slot runs it again
            log.warning("supervisor %s stopped during a scheduled job", self.name)
        log.info("supervisor %s stopped: %s", self.name, self.runs)

    def install_signal_handlers(self) -> None:
        def _stop(signum: int, _frame: Any) -> None:
            self.stopping.set()

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
