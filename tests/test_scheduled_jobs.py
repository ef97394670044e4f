"""The supervisor's scheduled work (issue 16, Build 4): encrypted backups every day, rotated
(N daily + M weekly) and each proven by a restore into a scratch PostgreSQL database (R-SEC-4);
the audit purge; the July-run reminder to NIC in June (R-END-1); expiry reminders for temporary
cards to their owning department (R-CARD-7, R-END-4). A failed job raises ``job_failed``, one
without a success for two intervals ``job_missed``; both clear when it succeeds. The NIC desk
shows every job's last run, outcome and next due time.

The clock is driven: every run gets its ``now``; nothing sleeps. Real PostgreSQL (pg_dump,
pg_restore, CREATE/DROP DATABASE), real Redis for the desk's feeds."""

from __future__ import annotations

import asyncio
import json
import secrets
from datetime import UTC, datetime, timedelta
from datetime import time as clock
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from asgiref.sync import async_to_sync
from channels.testing import HttpCommunicator
from dash._utils import to_json
from django.core import mail
from django.db import connection
from django.test import Client
from django.utils import timezone

from dashboard.pages import devices as nic_desk
from dashboard.shared_view import SharedView
from ops.accounts.roles import Role
from ops.accounts.services import create_or_update_operator
from ops.alerts.choices import AlertKind, AlertStatus, ChannelKind, LogAction
from ops.alerts.models import Alert, NotificationChannel, RoutingRule
from ops.alerts.notifications import services as notifications
from ops.alerts.services import resolve
from ops.asgi import application
from ops.audit.models import AuditRecord
from ops.pipeline import scheduled
from ops.pipeline.models import ScheduledRun
from ops.pipeline.timed import TimedJobs
from ops.registry.choices import HolderKind
from ops.registry.models import Card, Cardholder, Department
from streams.cards import CardStatus, CardType
from tests.factories import make_campus

pytestmark = pytest.mark.django_db(transaction=True)

CAMPUS = ZoneInfo("Asia/Shanghai")
MONDAY = datetime(2026, 3, 2, tzinfo=CAMPUS)  # ISO week 10 of 2026


def at(day: datetime, hh: int, mm: int = 0) -> datetime:
    return day.replace(hour=hh, minute=mm)


@pytest.fixture
def jobs_off(settings):
    """Every scheduled job off; each test turns on the ones it is about."""
    settings.BACKUP_AT = settings.AUDIT_PURGE_AT = settings.REMINDERS_AT = None
    settings.REPORTS_MAIL_AT = None  # issue 18, Build 4 (tests/test_reports.py)


@pytest.fixture
def backups(tmp_path, monkeypatch, settings, jobs_off):
    """A private var directory, backup key and backup folder; backups at 02:30."""
    monkeypatch.setenv("CAMPUSCARD_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("CAMPUSCARD_BACKUP_KEY", secrets.token_hex(32))
    monkeypatch.delenv("CAMPUSCARD_BACKUP_KEY_FILE", raising=False)
    settings.BACKUP_DIR = tmp_path / "backups"
    settings.BACKUP_AT = clock(2, 30)
    return Path(settings.BACKUP_DIR)


def _run(now: datetime) -> dict[str, str]:
    """One slot check by each of two supervisors: the second must find nothing left to run."""
    ran = scheduled.run_due(now=now, runner="supervisor-a")
    assert scheduled.run_due(now=now, runner="supervisor-b") == {}
    return ran


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def _archive(day: datetime) -> str:
    """The scheduled archive made at 02:31 campus time on ``day``."""
    return f"campuscard-{at(day, 2, 31).astimezone(UTC):%Y%m%dT%H%M%S}Z.backup"


def _scratch_databases() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT datname FROM pg_database WHERE datname LIKE 'scratch\\_%%'")
        return [r[0] for r in cursor.fetchall()]


def _add_card(number: str, dept: Department, **fields) -> Card:
    holder = Cardholder.objects.create(kind=HolderKind.CONTRACTOR, number=number, name="李四", department=dept)
    defaults = {"card_type": CardType.STUDENT, "status": CardStatus.ACTIVE, "valid_from": timezone.now()}
    return Card.objects.create(uid=f"C{number[-7:]}", holder=holder, **(defaults | fields))


def _temporary_card(number: str, dept: Department, valid_until: datetime) -> Card:
    approval = {"approving_department": dept} if hasattr(Card, "approving_department") else {}
    return _add_card(
        number,
        dept,
        card_type=CardType.TEMPORARY,
        owner_department=dept,
        valid_from=valid_until - timedelta(days=90),
        valid_until=valid_until,
        **approval,
    )


# -- backups: scheduled, verified by a restore, rotated -------------------------------------


def test_a_scheduled_backup_runs_rotates_and_is_verified_by_restore_into_a_scratch_database(backups, settings):
    """The acceptance: over simulated days (the supervisor down now and then), one backup per
    day is made by one of two supervisors, restored into a scratch PostgreSQL database whose key
    tables match the manifest, and the folder keeps exactly 3 daily + 2 weekly archives."""
    if connection.vendor != "postgresql":
        pytest.fail("the restore check into a scratch database needs PostgreSQL")
    settings.BACKUP_KEEP_DAILY, settings.BACKUP_KEEP_WEEKLY = 3, 2
    campus = make_campus(n_cards=6)
    backups.mkdir(parents=True)
    (backups / "notes.txt").write_text("not ours: never rotated")

    assert _run(at(MONDAY, 1)) == {}  # first sight: the first slot is the next one, not now
    assert _names(backups) == ["notes.txt"]

    days = [0, 3, 8, 12, 16, 21, 22, 23]  # W10 Mon Thu · W11 Tue Sat · W12 Wed · W13 Mon Tue Wed
    for i, offset in enumerate(days):
        day = MONDAY + timedelta(days=offset)
        if i and offset == days[i - 1] + 1:
            assert _run(at(day, 2, 29)) == {}  # yesterday's done, today's not yet due
        if i == len(days) - 1:  # the newest backup holds a card more than the ones before
            _add_card("2026GA0000001", campus.dept)
        assert _run(at(day, 2, 31)) == {"backup": "ok"}, ScheduledRun.objects.get(job="backup").error
        assert _run(at(day, 23, 0)) == {}  # once a day, however often asked

    # the newest of each of the 3 latest days, then of each of the 2 ISO weeks before them
    kept = [MONDAY + timedelta(days=d) for d in (12, 16, 21, 22, 23)]
    assert _names(backups) == sorted([_archive(d) for d in kept] + ["notes.txt"])
    rotated = AuditRecord.objects.filter(action="backup.rotate")
    deleted = sorted(name for r in rotated for name in r.data["deleted"])
    assert deleted == sorted(_archive(MONDAY + timedelta(days=d)) for d in (0, 3, 8))

    run = ScheduledRun.objects.get(job="backup")
    assert (
        run.outcome == "ok"
        and run.runner == "supervisor-a"
        and run.last_ok_at == at(MONDAY + timedelta(days=23), 2, 31)
    )
    assert run.next_due_at == at(MONDAY + timedelta(days=24), 2, 30)
    assert run.detail["archive"] == _archive(MONDAY + timedelta(days=23))
    check = run.detail["restore_check"]
    restored = check["row_counts"]
    # what the scratch database held: the live system's rows at the backup, the new card too
    assert restored[Card._meta.db_table] == Card.objects.count() == 7
    assert restored[Cardholder._meta.db_table] == Cardholder.objects.count() == 7
    assert restored[Department._meta.db_table] == 1
    assert restored[AuditRecord._meta.db_table] > 0
    assert check["migrations"] > 0 and check["scratch_database"].startswith("scratch_")
    assert _scratch_databases() == []  # dropped after the check
    checks = AuditRecord.objects.filter(action="backup.check")
    assert checks.count() == len(days) and all(c.data["ok"] for c in checks)


def test_a_failing_job_raises_job_failed_and_it_clears_when_the_job_succeeds(backups, monkeypatch):
    make_campus(n_cards=2)
    assert _run(at(MONDAY, 1)) == {}
    monkeypatch.setenv("CAMPUSCARD_BACKUP_KEY", "not-a-key")  # a mistyped key: every backup fails
    assert _run(at(MONDAY, 2, 31)) == {"backup": "failed"}

    run = ScheduledRun.objects.get(job="backup")
    assert run.outcome == "failed" and "64" in run.error  # the key's message: 64 hex digits
    alert = Alert.objects.get(kind=AlertKind.JOB_FAILED, subject="backup")
    assert alert.status == AlertStatus.OPEN and alert.cleared_at is None and alert.severity == "warning"
    assert not list(backups.glob("*.backup"))

    monkeypatch.setenv("CAMPUSCARD_BACKUP_KEY", secrets.token_hex(32))  # fixed
    assert _run(at(MONDAY + timedelta(days=1), 2, 31)) == {"backup": "ok"}
    alert.refresh_from_db()
    assert alert.cleared_at == at(MONDAY + timedelta(days=1), 2, 31)
    assert alert.log.filter(action=LogAction.CLEARED).count() == 1
    assert ScheduledRun.objects.get(job="backup").error == ""
    assert Alert.objects.filter(kind=AlertKind.JOB_FAILED).count() == 1


def test_a_job_without_a_success_for_two_intervals_raises_job_missed_once(settings, jobs_off):
    """The audit purge: nobody ran it for two days (no supervisor up) — missed; once it runs,
    the alert clears."""
    settings.AUDIT_PURGE_AT = clock(3, 30)
    start = at(MONDAY, 12)
    assert _run(start) == {}  # first sight: known since now
    assert scheduled.check_missed(now=start + timedelta(hours=47)) == []
    assert scheduled.check_missed(now=start + timedelta(hours=49)) == ["audit-purge"]
    assert scheduled.check_missed(now=start + timedelta(hours=50)) == []  # already raised
    alert = Alert.objects.get(kind=AlertKind.JOB_MISSED, subject="audit-purge")
    assert alert.count == 1 and alert.cleared_at is None

    assert _run(start + timedelta(hours=50)) == {"audit-purge": "ok"}  # the supervisor is back
    alert.refresh_from_db()
    assert alert.cleared_at == start + timedelta(hours=50)
    run = ScheduledRun.objects.get(job="audit-purge")
    assert run.detail["deleted"] == 0 and run.last_ok_at == start + timedelta(hours=50)


def test_the_supervisor_runs_a_due_job_in_its_own_thread_and_only_one_supervisor_does(redis_client, settings, jobs_off):
    settings.AUDIT_PURGE_AT = clock(3, 30)
    first, second = TimedJobs(redis_client, name="sup-a"), TimedJobs(redis_client, name="sup-b")
    assert "scheduled" in first.run_due()  # first sight: rows made, nothing due
    assert not first.scheduled.busy()
    ScheduledRun.objects.filter(job="audit-purge").update(slot=timezone.now() - timedelta(days=2))
    first.scheduled.tick()
    assert first.scheduled.thread is not None
    first.scheduled.thread.join(30)
    second.scheduled.tick()
    assert second.scheduled.thread is None  # nothing left due
    run = ScheduledRun.objects.get(job="audit-purge")
    assert run.outcome == "ok" and run.runner == "sup-a"


# -- reminders, through the notification rules -----------------------------------------------


def _mail_rule(name: str, address: str, kind: AlertKind, departments=()) -> RoutingRule:
    channel = NotificationChannel.objects.create(
        name=f"{name} 邮箱", kind=ChannelKind.EMAIL, address=address, rate_per_minute=0
    )
    rule = RoutingRule.objects.create(name=name, kinds=[kind.value], group_window_s=0)
    rule.channels.add(channel)
    rule.owner_departments.add(*departments)
    return rule


def test_the_july_run_reminder_reaches_nic_once_in_june_campus_time(settings, jobs_off, redis_client):
    settings.REMINDERS_AT = clock(9, 0)
    _mail_rule("网信中心·七月注销", "nic@example.edu.cn", AlertKind.JULY_RUN_DUE)
    nic = create_or_update_operator(username="nic-duty", password="pw-nic-duty-1", role=Role.NIC)
    may_30 = datetime(2026, 5, 30, tzinfo=CAMPUS)
    assert _run(at(may_30, 8)) == {}
    assert _run(at(may_30, 9, 1)).get("july-run-reminder") == "ok"
    assert not Alert.objects.filter(kind=AlertKind.JULY_RUN_DUE).exists()  # May: not yet

    for offset in range(1, 34):  # 31 May … 2 July
        day = may_30 + timedelta(days=offset)
        assert _run(at(day, 9, 1)).get("july-run-reminder") == "ok"
        notifications.run(now=at(day, 9, 2))
        reminders = Alert.objects.filter(kind=AlertKind.JULY_RUN_DUE)
        assert reminders.count() == (0 if day.month == 5 else 1), day
        if day == datetime(2026, 6, 2, tzinfo=CAMPUS):  # NIC has read it: it does not come back
            resolve(reminders.get().pk, by=nic, resolution="已安排七月毕业注销")
    alert = Alert.objects.get(kind=AlertKind.JULY_RUN_DUE)
    assert (
        alert.subject == "2026" and alert.count == 1 and alert.first_at == at(datetime(2026, 6, 1, tzinfo=CAMPUS), 9, 1)
    )
    assert [m.to for m in mail.outbox] == [["nic@example.edu.cn"]]
    assert "七月毕业生注销即将到期" in mail.outbox[0].subject

    # campus time, not UTC: 16:30 UTC on 31 May is already 1 June in Shanghai
    from ops.alerts.reminders import remind_july_run

    assert remind_july_run(now=datetime(2027, 5, 31, 16, 30, tzinfo=UTC)) == {"due": True, "raised": True}
    assert remind_july_run(now=datetime(2028, 5, 31, 15, 30, tzinfo=UTC)) == {"due": False}


def test_a_temporary_card_expiry_reminder_reaches_its_department_once(settings, jobs_off, redis_client):
    settings.REMINDERS_AT, settings.TEMP_CARD_REMIND_DAYS = clock(9, 0), 7
    general = Department.objects.create(code="GA", name="总务处")
    library = Department.objects.create(code="LIB", name="图书馆")
    _mail_rule("总务处·临时卡到期", "ga@example.edu.cn", AlertKind.TEMP_CARD_EXPIRING, [general])
    day0 = datetime(2026, 9, 1, tzinfo=CAMPUS)
    ending = _temporary_card("2026GA0000101", general, at(day0 + timedelta(days=10), 8))
    _temporary_card("2026GA0000102", general, at(day0 + timedelta(days=40), 18))  # far off
    theirs = _temporary_card("2026LB0000201", library, at(day0 + timedelta(days=3), 18))
    assert _run(at(day0, 8)) == {}

    sent: list[list[str]] = []
    for offset in range(12):
        day = day0 + timedelta(days=offset)
        assert _run(at(day, 9, 1)).get("temporary-card-reminders") == "ok"
        notifications.run(now=at(day, 9, 2))
        sent.append([m.to[0] for m in mail.outbox])
    reminders = Alert.objects.filter(kind=AlertKind.TEMP_CARD_EXPIRING).order_by("first_at")
    # the library's card on day 0 (its rule: none — not to 总务处), ours once it is 7 days off
    assert [(a.department_id, a.first_at) for a in reminders] == [
        (library.pk, at(day0, 9, 1)),
        (general.pk, at(day0 + timedelta(days=3), 9, 1)),
    ]
    assert all(a.count == 1 for a in reminders)
    assert sent[2] == [] and sent[3] == sent[11] == ["ga@example.edu.cn"]  # once, on day 3
    assert f"#{ending.pk} " in mail.outbox[0].body and f"#{theirs.pk} " not in mail.outbox[0].body
    assert "总务处" in mail.outbox[0].body

    # extended with the unit's letter (R-CARD-7): a new end date, a new reminder when it nears
    Card.objects.filter(pk=ending.pk).update(valid_until=at(day0 + timedelta(days=40), 18))
    assert _run(at(day0 + timedelta(days=35), 9, 1)).get("temporary-card-reminders") == "ok"
    assert Alert.objects.filter(kind=AlertKind.TEMP_CARD_EXPIRING, department=general).count() == 3  # both cards
    notifications.run(now=at(day0 + timedelta(days=35), 9, 2))
    assert len(mail.outbox) == 2


# -- the NIC desk ----------------------------------------------------------------------------


def _desk_jobs() -> dict:
    """The jobs panel as the NIC desk's shared view paints it for every open page."""

    async def go() -> dict:
        view = SharedView.join(("nic-desk", "zh-hans"), "zh-hans", nic_desk._run_desk)
        try:
            for _ in range(200):
                if nic_desk.JOBS in view.painter.props:
                    return view.painter.props[nic_desk.JOBS][1]
                assert not view.task.done(), view.task
                await asyncio.sleep(0.05)
            raise AssertionError("the desk never painted its jobs")
        finally:
            view.leave()

    return async_to_sync(go)()


def _rows(props: dict) -> dict[str, dict]:
    table = json.loads(to_json(props))["children"]
    body = table["props"]["children"][1]["props"]["children"]
    return {
        row["props"]["id"]: {
            "outcome": row["props"]["data-outcome"],
            "cells": [cell["props"]["children"] for cell in row["props"]["children"]],
        }
        for row in body
    }


def test_the_nic_desk_shows_each_jobs_last_run_outcome_and_next_due(backups, monkeypatch, settings, redis_client):
    settings.AUDIT_PURGE_AT = clock(3, 30)
    now = timezone.now()
    assert _run(now - timedelta(days=3)) == {}  # first seen three days ago
    monkeypatch.setenv("CAMPUSCARD_BACKUP_KEY", "not-a-key")
    assert _run(now) == {"backup": "failed", "audit-purge": "ok"}

    rows = _rows(_desk_jobs())
    assert set(rows) == {
        "job-backup",
        "job-audit-purge",
        "job-july-run-reminder",
        "job-temporary-card-reminders",
        "job-reports-mail",
    }
    label, daily, last, outcome, _took, following = rows["job-backup"]["cells"]
    assert label == "加密备份、恢复校验与轮换" and daily == "02:30"
    assert rows["job-backup"]["outcome"] == "failed" and outcome.startswith("失败：BackupError")
    assert last == f"{timezone.localtime(now):%m-%d %H:%M}"
    expected_next = scheduled.Daily(clock(2, 30)).next_due(now)
    assert following == f"{timezone.localtime(expected_next):%m-%d %H:%M}"
    assert rows["job-audit-purge"]["outcome"] == "ok" and rows["job-audit-purge"]["cells"][3] == "成功"
    assert rows["job-july-run-reminder"]["cells"][3] == "未启用"  # REMINDERS_AT empty

    # and the page itself carries the panel, for NIC
    client = Client()
    client.force_login(create_or_update_operator(username="nic-desk", password="pw-nic-desk-1", role=Role.NIC))
    cookie = (
        b"cookie",
        f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}".encode(),
    )

    async def layout() -> Any:
        http = HttpCommunicator(
            application, "GET", nic_desk.PREFIX + "_dash-layout", headers=[(b"host", b"127.0.0.1"), cookie]
        )
        return await http.get_response(timeout=20)

    response = async_to_sync(layout)()
    assert response["status"] == 200
    text = json.dumps(json.loads(response["body"]), ensure_ascii=False)
    assert f'"id": "{nic_desk.JOBS}"' in text and "定时任务" in text
