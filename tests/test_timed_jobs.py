"""The event path's timed jobs run in ``campuscard supervise`` (issue 12, Build 2), not in the
processors: with two supervisors each job runs once per interval, a dead supervisor's turn
passes to the other when its claim lapses, and an outage of Redis or the database is one log
line and a retry, never a crash."""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
import redis
from django.db import OperationalError

from ops.alerts.choices import AlertKind
from ops.alerts.models import Alert
from ops.pipeline.timed import TimedJobs
from ops.registry.choices import DeviceState
from ops.registry.models import Device
from tests.private_servers import start_redis, stop, wait_until

pytestmark = [pytest.mark.pipeline]


def _counting(runs: list[str], who: str, every_s: float) -> dict:
    return {"job": (every_s, lambda: runs.append(who))}


def test_with_two_supervisors_each_job_runs_once_per_interval(redis_client):
    runs: list[str] = []
    first = TimedJobs(redis_client, name="a", jobs=_counting(runs, "a", 60))
    second = TimedJobs(redis_client, name="b", jobs=_counting(runs, "b", 60))
    assert first.run_due() == ["job"]
    assert second.run_due() == []  # a holds this interval's claim
    assert first.run_due() == [] and second.run_due() == []  # neither is due again yet
    assert runs == ["a"]


def test_a_dead_supervisors_turn_passes_to_the_other_when_its_claim_lapses(redis_client):
    runs: list[str] = []
    every_s = 0.4
    first = TimedJobs(redis_client, name="a", jobs=_counting(runs, "a", every_s))
    second = TimedJobs(redis_client, name="b", jobs=_counting(runs, "b", every_s))
    first.run_due()
    second.run_due()
    assert runs == ["a"]
    # a dies here: it never asks again. b's next interval comes, a's claim has lapsed (0.9 of one)
    time.sleep(every_s + 0.05)
    assert second.run_due() == ["job"]
    time.sleep(every_s + 0.05)
    assert second.run_due() == ["job"]
    assert runs == ["a", "b", "b"]
    assert redis_client.pttl("campuscard:jobs:job") <= int(every_s * 900)


@pytest.mark.django_db(transaction=True)
def test_the_default_jobs_mark_a_silent_device_once(campus, redis_client, settings):
    """R-DEV-2: the supervisor, not a processor, finds the device gone silent."""
    settings.SUPERVISE_S = 60
    Device.objects.filter(code="G-E-01").update(
        last_seen_at=datetime.now(UTC) - timedelta(hours=1), heartbeat_s=10, state=DeviceState.ONLINE
    )
    jobs = TimedJobs(redis_client, name="a")
    assert set(jobs.run_due()) == {
        "supervise",
        "history-partitions",
        "notifications",
        "scheduled",
        "door-policy",
        "audit-checkpoint",  # issue 20: the audit chain's head anchored outside the database
    }
    assert Device.objects.get(code="G-E-01").state == DeviceState.SILENT
    assert Alert.objects.filter(kind=AlertKind.UPLOAD_STOPPED, subject="G-E-01").count() == 1
    assert TimedJobs(redis_client, name="b").run_due() == []  # a holds both claims


def _run_in_thread(jobs: TimedJobs) -> threading.Thread:
    thread = threading.Thread(target=jobs.run, daemon=True)
    thread.start()
    return thread


def test_redis_away_is_one_log_line_and_the_jobs_resume_when_it_is_back(tmp_path, caplog):
    server, port = start_redis(tmp_path / "redis")
    client = redis.Redis(port=port, socket_timeout=1, socket_connect_timeout=1)
    runs: list[str] = []
    jobs = TimedJobs(client, name="a", jobs=_counting(runs, "a", 0.3))
    caplog.set_level(logging.WARNING, logger="ops.pipeline.timed")
    thread = _run_in_thread(jobs)
    try:
        wait_until(lambda: len(runs) >= 1, 10, "a first run")
        stop(server)

        def away() -> list[logging.LogRecord]:
            return [r for r in caplog.records if "Redis unreachable" in r.getMessage()]

        wait_until(away, 15, "the warning that Redis is away")
        time.sleep(2)  # several more ticks and intervals with Redis gone: still one line
        assert thread.is_alive()
        assert len(away()) == 1, [r.getMessage() for r in caplog.records]
        before = len(runs)
        server, _ = start_redis(tmp_path / "redis", port=port)
        wait_until(lambda: len(runs) > before, 15, "the job to run again")
        assert any("Redis reachable again" in r.getMessage() for r in caplog.records)
        assert not [r for r in caplog.records if r.exc_info]  # no traceback
    finally:
        jobs.stopping.set()
        thread.join(10)
        stop(server)
        client.close()
    assert not thread.is_alive()


def test_the_database_away_is_one_log_line_and_the_supervisor_keeps_going(redis_client, caplog):
    failing = threading.Event()
    failing.set()
    runs: list[str] = []

    def job() -> None:
        if failing.is_set():
            raise OperationalError("connection to server at 127.0.0.1, port 5432 failed")
        runs.append("ok")

    jobs = TimedJobs(redis_client, name="a", jobs={"job": (0.3, job)})
    caplog.set_level(logging.WARNING, logger="ops.pipeline.timed")
    thread = _run_in_thread(jobs)
    try:
        time.sleep(1.5)
        assert thread.is_alive()
        away = [r for r in caplog.records if "the database unreachable" in r.getMessage()]
        assert len(away) == 1, [r.getMessage() for r in caplog.records]
        failing.clear()
        wait_until(lambda: runs, 10, "the job to succeed")
        assert any("the database reachable again" in r.getMessage() for r in caplog.records)
    finally:
        jobs.stopping.set()
        thread.join(10)
    assert not thread.is_alive()
