"""The supervisor's scheduled work (issue 16, Build 4): jobs due once a day at a local time of
day (``TIME_ZONE``), run by ``campuscard supervise`` (``ops.pipeline.timed``: the job
``scheduled`` looks every ``SCHEDULE_CHECK_S`` and runs what is due in a thread of its own, so a
long backup never holds up silent-device checks or notifications).

- ``backup`` (R-SEC-4; registered by ``ops.backup``, which sits above this room): an encrypted
  archive, restored into a scratch database to prove it, then the archives rotated;
- ``audit-purge`` (R-SEC-1): audit records past ``AUDIT_RETENTION_DAYS`` purged, the chain kept
  verifiable from its anchor (``ops.audit.services.purge_before``);
- ``july-run-reminder`` (R-END-1) and ``temporary-card-reminders`` (R-CARD-7, R-END-4): alerts,
  which the notification rules deliver (``ops.alerts.reminders``).

**Claim.** Each job has one ``ScheduledRun`` row. A job's slot is its latest due time; whoever
moves the row's ``slot`` forward to it with one conditional UPDATE runs it — once, whichever of
several supervisors asks, and even if Redis lost its keys. A supervisor that was down runs the
latest missed slot when it is back (not every missed one). A job first seen waits for its next
slot: deploying the system does not start a backup.

**Outcome.** Each run's start, duration, outcome (error) and what it did are written to the
row, which the NIC desk shows with the next due time. A failed run raises ``job_failed``; a job
whose last success (or, never successful, its first sighting) is older than twice its interval
raises ``job_missed``; both clear when the job next succeeds.

Tests drive the clock: every function takes ``now``.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import redis
from django.conf import settings
from django.db import DatabaseError, connection
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ops.alerts import reminders
from ops.alerts.choices import AlertKind, AlertStatus
from ops.alerts.models import Alert
from ops.alerts.services import clear_subjects, raise_alert
from ops.audit.services import purge_before
from ops.pipeline.choices import RunOutcome
from ops.pipeline.models import ScheduledRun

log = logging.getLogger(__name__)
MISSED_AFTER = 2  # intervals without a success before a job is "missed"


@dataclass(frozen=True)
class Daily:
    """Every day at ``at``, local time (``TIME_ZONE``)."""

    at: dt.time
    interval: ClassVar[timedelta] = timedelta(days=1)

    def _on(self, day: dt.date) -> datetime:
        return datetime.combine(day, self.at, tzinfo=ZoneInfo(settings.TIME_ZONE))

    def last_due(self, now: datetime) -> datetime:
        """The latest due time at or before ``now``: the slot a run now belongs to."""
        today = timezone.localtime(now, ZoneInfo(settings.TIME_ZONE)).date()
        slot = self._on(today)
        return slot if slot <= now else self._on(today - timedelta(days=1))

    def next_due(self, now: datetime) -> datetime:
        today = timezone.localtime(now, ZoneInfo(settings.TIME_ZONE)).date()
        slot = self._on(today)
        return slot if slot > now else self._on(today + timedelta(days=1))


def daily(at: dt.time | None) -> Daily | None:
    return Daily(at) if at is not None else None


@dataclass(frozen=True)
class Job:
    """A scheduled job: ``schedule()`` reads its setting each time (None: off), ``work(now)``
    does it and returns what it did (kept on the row, shown on the desk); raising is failing."""

    name: str
    label: Any  # a lazy translation: rendered in the viewer's language
    schedule: Callable[[], Daily | None]
    work: Callable[[datetime], dict[str, Any]]


def _purge_audit(now: datetime) -> dict[str, Any]:
    # the scheduler's clock, but never past the real one: purge_before refuses a cutoff inside
    # the retention period as measured now
    cutoff = min(now, timezone.now()) - timedelta(days=settings.AUDIT_RETENTION_DAYS)
    return {"deleted": purge_before(cutoff), "before": cutoff.isoformat()}


BUILT_IN = (
    Job(
        "audit-purge",
        _("清除超过保留期的审计记录"),
        lambda: daily(settings.AUDIT_PURGE_AT),
        _purge_audit,
    ),
    Job(
        "july-run-reminder",
        _("七月毕业生注销提醒（六月）"),
        lambda: daily(settings.REMINDERS_AT),
        lambda now: reminders.remind_july_run(now=now),
    ),
    Job(
        "temporary-card-reminders",
        _("临时卡到期提醒"),
        lambda: daily(settings.REMINDERS_AT),
        lambda now: reminders.remind_temporary_cards(now=now),
    ),
)
_registered: dict[str, Job] = {}


def register(job: Job) -> None:
    """A room above this one adds its job (``ops.backup`` its backups, at app start-up)."""
    _registered[job.name] = job


def jobs() -> list[Job]:
    return [*_registered.values(), *BUILT_IN]


def _row(job: Job, schedule: Daily, now: datetime) -> ScheduledRun:
    """The job's row; made at first sight with the current slot taken as passed."""
    row, _created = ScheduledRun.objects.get_or_create(
        job=job.name,
        defaults={"known_since": now, "slot": schedule.last_due(now), "next_due_at": schedule.next_due(now)},
    )
    return row


def due(*, now: datetime) -> bool:
    """Is any job's slot unclaimed? (Cheap: the supervisor asks before starting a worker.)"""
    for job in jobs():
        schedule = job.schedule()
        if schedule is None:
            continue
        row = _row(job, schedule, now)
        if row.slot is None or row.slot < schedule.last_due(now):
            return True
    return False


def run_due(*, now: datetime, runner: str) -> dict[str, str]:
    """Run each job whose slot has come and whose claim this caller wins; then look for missed
    jobs. Returns the outcome of each job it ran."""
    ran: dict[str, str] = {}
    for job in jobs():
        schedule = job.schedule()
        if schedule is None:
            continue
        row = _row(job, schedule, now)
        slot = schedule.last_due(now)
        claimed = (
            ScheduledRun.objects.filter(pk=row.pk)
            .filter(Q(slot__isnull=True) | Q(slot__lt=slot))
            .update(slot=slot, runner=runner[:100], started_at=now, finished_at=None, outcome=RunOutcome.RUNNING)
        )
        if claimed:
            ran[job.name] = _run(job, schedule, row.pk, now)
    check_missed(now=now)
    return ran


def _run(job: Job, schedule: Daily, pk: int, now: datetime) -> str:
    began = time.monotonic()
    try:
        detail = job.work(now) or {}
    except Exception as exc:  # whatever the job's failure, it is the job's outcome, not the supervisor's end
        seconds = time.monotonic() - began
        error = f"{type(exc).__name__}: {exc}"
        log.error(
            "scheduled job %s failed after %.1f s: %s",
            job.name,
            seconds,
            error,
            exc_info=True,
            extra={"event": "job.failed", "job": job.name},
        )
        _finish(pk, now, seconds, RunOutcome.FAILED, error=error, next_due=schedule.next_due(now))
        raise_alert(
            kind=AlertKind.JOB_FAILED,
            subject=job.name,
            at=now,
            detail={"job": job.name, "error": error[:500], "slot": now.isoformat()},
        )
        return RunOutcome.FAILED
    seconds = time.monotonic() - began
    _finish(pk, now, seconds, RunOutcome.OK, detail=detail, next_due=schedule.next_due(now))
    clear_subjects(kinds=[AlertKind.JOB_FAILED, AlertKind.JOB_MISSED], subjects=[job.name], at=now)
    log.info("scheduled job %s done in %.1f s", job.name, seconds, extra={"event": "job.done", "job": job.name})
    return RunOutcome.OK


def _finish(
    pk: int,
    now: datetime,
    seconds: float,
    outcome: RunOutcome,
    *,
    next_due: datetime,
    error: str = "",
    detail: dict[str, Any] | None = None,
) -> None:
    fields: dict[str, Any] = {
        "finished_at": now + timedelta(seconds=seconds),
        "duration_s": round(seconds, 3),
        "outcome": outcome,
        "error": error[:1000],
        "detail": detail or {},
        "next_due_at": next_due,
    }
    if outcome == RunOutcome.OK:
        fields["last_ok_at"] = now
    ScheduledRun.objects.filter(pk=pk).update(**fields)


def missed(row: ScheduledRun, schedule: Daily, now: datetime) -> bool:
    return now - (row.last_ok_at or row.known_since) > MISSED_AFTER * schedule.interval


def check_missed(*, now: datetime) -> list[str]:
    """Raise ``job_missed`` for each job with no success for twice its interval (once: while
    its alert stands uncleared it is not raised again). Returns the jobs raised for."""
    raised = []
    rows = {r.job: r for r in ScheduledRun.objects.all()}
    for job in jobs():
        schedule, row = job.schedule(), rows.get(job.name)
        if schedule is None or row is None or not missed(row, schedule, now):
            continue
        standing = Alert.objects.filter(kind=AlertKind.JOB_MISSED, subject=job.name, cleared_at__isnull=True).exclude(
            status=AlertStatus.RESOLVED
        )
        if standing.exists():
            continue
        last_ok = row.last_ok_at.isoformat() if row.last_ok_at else None
        raise_alert(
            kind=AlertKind.JOB_MISSED,
            subject=job.name,
            at=now,
            detail={"job": job.name, "last_ok_at": last_ok, "interval_s": schedule.interval.total_seconds()},
        )
        raised.append(job.name)
    return raised


class Worker:
    """The supervisor's hand on the scheduled jobs: ``tick()`` (its timed job ``scheduled``)
    starts a thread for the due ones unless the last is still at work."""

    def __init__(self, runner: str) -> None:
        self.runner = runner
        self.thread: threading.Thread | None = None

    def busy(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def tick(self) -> None:
        if self.busy():
            return  # a long backup: this supervisor's other timed jobs go on meanwhile
        now = timezone.now()
        if not due(now=now):
            check_missed(now=now)
            return
        self.thread = threading.Thread(target=self._work, name="scheduled-jobs", daemon=True)
        self.thread.start()

    def _work(self) -> None:
        try:
            run_due(now=timezone.now(), runner=self.runner)
        except (DatabaseError, redis.RedisError, OSError) as exc:
            log.warning("scheduled jobs: %s: retrying at the next slot check", exc)
        finally:
            connection.close()  # this thread's own connection
