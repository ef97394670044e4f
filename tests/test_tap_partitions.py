"""A year of taps (issue 14, AC3): on PostgreSQL access events and the alert log are partitioned
by month, made ahead by the processor, and whole months past TAP_RETENTION_DAYS are dropped and
audited (≥ 184 days: Cybersecurity Law art. 21, R-SEC-1/R-SEC-5 — the record of use stays
provable). SQLite keeps one table each and every maintenance call is a no-op there."""

from __future__ import annotations

import subprocess
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from ops.accounts.models import Operator
from ops.accounts.roles import Role
from ops.alerts.choices import AlertKind, LogAction
from ops.alerts.models import Alert, AlertLog
from ops.alerts.services import acknowledge, raise_alert
from ops.audit.models import AuditRecord
from ops.pipeline import partitions
from ops.pipeline.partitions import ALERT_LOG, Month
from ops.pipeline.taps import insert_access_events
from ops.registry.models import AccessEvent
from tests.conftest import campuscard_cmd

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.pipeline]
postgres_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="partitions exist on PostgreSQL only")


def _tap(device_id: int, at: datetime, event_id: uuid.UUID | None = None) -> tuple:
    return (
        event_id or uuid.uuid4(),
        device_id,
        None,
        "A0000000",
        None,
        at,
        timezone.now(),
        "in",
        "allow",
        "ok",
        "",
        1,
        1,
    )


def _where(event_id: uuid.UUID) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT tableoid::regclass::text FROM campus_accessevent WHERE event_id = %s", [event_id])
        (table,) = cursor.fetchone()
    return table


@postgres_only
def test_the_table_is_partitioned_by_month_with_months_made_ahead(campus):
    now = timezone.now()
    assert partitions.partitioned()
    this = Month.of(now)
    assert {this, this.next(), this.next().next()} <= set(partitions.months())
    later = now + timedelta(days=400)
    created = partitions.ensure_partitions(now=later)
    assert Month.of(later) in created and Month.of(later) in partitions.months()
    assert partitions.ensure_partitions(now=later) == []  # already there: nothing made twice


@postgres_only
def test_a_tap_from_a_month_without_a_partition_is_kept_and_moved_in_when_its_month_is_made(campus):
    far = datetime(2031, 5, 17, 8, 0, tzinfo=UTC)
    event_id = uuid.uuid4()
    assert event_id in insert_access_events([_tap(campus.gate.id, far, event_id)])
    assert _where(event_id) == "campus_accessevent_default"
    partitions.ensure_partitions(now=far, ahead=0)
    assert _where(event_id) == "campus_accessevent_p203105"
    assert AccessEvent.objects.filter(event_id=event_id).count() == 1


def test_a_redelivered_tap_is_stored_once(campus):
    at = timezone.now()
    event_id = uuid.uuid4()
    first = insert_access_events([_tap(campus.gate.id, at, event_id)])
    again = insert_access_events([_tap(campus.gate.id, at, event_id), _tap(campus.gate.id, at)])
    assert event_id in first and event_id not in again and len(again) == 1
    assert AccessEvent.objects.filter(event_id=event_id).count() == 1


@postgres_only
@override_settings(TAP_RETENTION_DAYS=184)
def test_months_past_retention_are_dropped_and_audited_and_younger_ones_kept(campus):
    now = datetime(2027, 9, 15, tzinfo=UTC)
    old, kept = datetime(2027, 1, 20, tzinfo=UTC), datetime(2027, 3, 20, tzinfo=UTC)
    for month in (old, kept):
        partitions.ensure_partitions(now=month, ahead=0)
    insert_access_events([_tap(campus.gate.id, old), _tap(campus.gate.id, old), _tap(campus.gate.id, kept)])
    dropped = partitions.drop_expired(now=now)  # limit 2027-03-15: January and February go, March stays
    assert Month(2027, 1) in dropped and Month(2027, 3) not in dropped
    assert Month(2027, 3) in partitions.months() and Month(2027, 1) not in partitions.months()
    assert AccessEvent.objects.filter(occurred_at__lt=datetime(2027, 2, 1, tzinfo=UTC)).count() == 0
    assert AccessEvent.objects.filter(occurred_at=kept).count() == 1
    audit = AuditRecord.objects.get(action="taps.partition_drop", object_id="campus_accessevent_p202701")
    assert audit.data["taps"] == 2 and audit.basis == "TAP_RETENTION_DAYS=184"


@postgres_only
@override_settings(TAP_RETENTION_DAYS=5000)  # so the months of the tests after this one stay
def test_only_one_processor_maintains_partitions_at_a_time(campus):
    later = timezone.now() + timedelta(days=800)
    cfg = connection.settings_dict
    with psycopg.connect(host=cfg["HOST"], port=cfg["PORT"], user=cfg["USER"], dbname=cfg["NAME"]) as other:
        other.execute("SELECT pg_advisory_lock(%s)", [partitions.PARTITION_LOCK])
        assert partitions.maintain(now=later) == ([], [])
        other.execute("SELECT pg_advisory_unlock(%s)", [partitions.PARTITION_LOCK])
    created, dropped = partitions.maintain(now=later)
    assert dropped == []
    assert partitions.TAPS.partition(Month.of(later)) in created
    assert ALERT_LOG.partition(Month.of(later)) in created  # every history table, in the same round


def _log_table(log_id: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT tableoid::regclass::text FROM alerts_alertlog WHERE id = %s", [log_id])
        (table,) = cursor.fetchone()
    return table


@postgres_only
def test_the_alert_log_is_partitioned_by_month_and_the_timeline_still_reads(campus):
    operator = get_user_model().objects.create_user(username="nic-part")
    Operator.objects.create(user=operator, role=Role.NIC)
    this = Month.of(timezone.now())
    assert partitions.partitioned(ALERT_LOG)
    assert {this, this.next(), this.next().next()} <= set(partitions.months(ALERT_LOG))
    raise_alert(kind=AlertKind.REPLAY, subject=campus.gate.code, at=timezone.now(), device_id=campus.gate.pk)
    alert = Alert.objects.get(subject=campus.gate.code)
    acknowledge(alert.pk, by=operator, comment="看过了")
    timeline = list(alert.log.values_list("action", flat=True))
    assert timeline == [LogAction.RAISED, LogAction.ACKNOWLEDGED]
    assert {_log_table(pk) for pk in alert.log.values_list("pk", flat=True)} == {ALERT_LOG.partition(this)}
    alert.delete()  # the log goes with its alert, across partitions
    assert not AlertLog.objects.filter(alert_id=alert.pk).exists()


@postgres_only
@override_settings(TAP_RETENTION_DAYS=184)
def test_alert_log_months_past_retention_are_dropped_and_audited(campus):
    old, kept = datetime(2027, 1, 20, tzinfo=UTC), datetime(2027, 3, 20, tzinfo=UTC)
    for month in (old, kept):
        partitions.ensure_partitions(now=month, ahead=0, history=ALERT_LOG)
    raise_alert(kind=AlertKind.REPLAY, subject="OLD", at=old)
    raise_alert(kind=AlertKind.REPLAY, subject="KEPT", at=kept)
    assert _log_table(AlertLog.objects.get(alert__subject="OLD").pk) == "alerts_alertlog_p202701"
    dropped = partitions.drop_expired(now=datetime(2027, 9, 15, tzinfo=UTC), history=ALERT_LOG)
    assert Month(2027, 1) in dropped and Month(2027, 3) not in dropped
    assert not AlertLog.objects.filter(alert__subject="OLD").exists()
    assert AlertLog.objects.filter(alert__subject="KEPT").count() == 1
    assert Alert.objects.filter(subject="OLD").exists()  # the alert itself (its summary) stays
    audit = AuditRecord.objects.get(action="alert_log.partition_drop", object_id="alerts_alertlog_p202701")
    assert audit.data["rows"] == 1 and audit.basis == "TAP_RETENTION_DAYS=184"


def test_sqlite_keeps_one_table_and_maintenance_does_nothing(campus):
    if connection.vendor == "postgresql":
        pytest.skip("the SQLite pass covers this")
    assert not partitions.partitioned()
    assert partitions.ensure_partitions(now=timezone.now()) == []
    assert partitions.drop_expired(now=timezone.now() + timedelta(days=5000)) == []
    assert partitions.maintain(now=timezone.now()) == ([], [])
    assert not partitions.partitioned(ALERT_LOG)
    raise_alert(kind=AlertKind.REPLAY, subject=campus.gate.code, at=timezone.now())
    assert AlertLog.objects.filter(alert__subject=campus.gate.code).count() == 1


def test_a_retention_below_six_months_is_refused(tmp_path):
    env = {
        "TAP_RETENTION_DAYS": "100",
        "CAMPUSCARD_VAR_DIR": str(tmp_path),
        "PATH": "/usr/bin:/bin",
        "REDIS_URL": "redis://127.0.0.1:1/0",  # never reached: no embedded Redis left running after the refusal
    }
    done = subprocess.run([*campuscard_cmd("check")], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "TAP_RETENTION_DAYS=100 must be at least 184" in done.stderr


def test_the_tap_table_carries_only_the_indexes_its_reads_use():
    """Every index on the tap table is paid on every insert (issue 14): device_id and holder_id
    have none of their own, the composite (device|holder, time) indexes lead with them."""
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, "campus_accessevent")
    indexed = sorted(tuple(c["columns"]) for c in constraints.values() if c["index"] and not c["primary_key"])
    assert ("device_id",) not in indexed and ("holder_id",) not in indexed
    assert ("device_id", "occurred_at") in indexed and ("holder_id", "occurred_at") in indexed
    assert {"event_device_time", "event_holder_time", "event_time", "event_unknown_card_uid"} <= set(constraints)
    assert ("card_uid",) in indexed  # partial: only the taps of cards never registered
