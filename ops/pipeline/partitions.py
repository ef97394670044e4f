"""A year of taps on PostgreSQL (issue 14): the tables that grow with time are partitioned by
month (declarative range partitioning): access events on ``occurred_at`` (migration
``registry.0005``) and the alert log on ``at`` (migration ``alerts.0005``) — ``HISTORIES``.
The processor's hourly job creates partitions ahead (``ensure_partitions``) and drops whole
months past ``TAP_RETENTION_DAYS`` (``drop_expired``; the setting refuses less than 184 days,
R-SEC-1's six months; each drop is audited). A row whose month has no partition yet (a
reader's clock far ahead) lands in the default partition and is moved into its month when
that month's partition is made, so no tap is ever refused for its date.

SQLite keeps one unpartitioned table: every function here is a no-op there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connection, transaction

from ops.alerts.models import AlertLog
from ops.audit.services import record
from ops.registry.models import AccessEvent

AHEAD_MONTHS = 2  # this month and the next two always exist
_NAME = re.compile(r"_p(\d{4})(\d{2})$")


@dataclass(frozen=True, order=True)
class Month:
    year: int
    month: int

    @classmethod
    def of(cls, when: datetime) -> Month:
        when = when.astimezone(UTC)
        return cls(when.year, when.month)

    def next(self) -> Month:
        return Month(self.year + (self.month == 12), self.month % 12 + 1)

    @property
    def start(self) -> datetime:
        return datetime(self.year, self.month, 1, tzinfo=UTC)

    @property
    def end(self) -> datetime:
        return self.next().start


@dataclass(frozen=True)
class History:
    """A table kept by month: its name, the time column it is partitioned on, and the names
    its drops are audited under."""

    table: str
    column: str
    audit_action: str
    audit_object: str

    def partition(self, month: Month) -> str:
        return f"{self.table}_p{month.year:04d}{month.month:02d}"


TAPS = History(AccessEvent._meta.db_table, "occurred_at", "taps.partition_drop", "access_event_partition")
ALERT_LOG = History(AlertLog._meta.db_table, "at", "alert_log.partition_drop", "alert_log_partition")
HISTORIES = (TAPS, ALERT_LOG)


def partitioned(history: History = TAPS) -> bool:
    """Whether the table is partitioned here (PostgreSQL after its partitioning migration)."""
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid WHERE c.relname = %s",
            [history.table],
        )
        return cursor.fetchone() is not None


def months(history: History = TAPS) -> list[Month]:
    """The monthly partitions that exist, oldest first."""
    if not partitioned(history):
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = %s",
            [history.table],
        )
        found = [_NAME.search(name) for (name,) in cursor.fetchall()]
    return sorted(Month(int(m[1]), int(m[2])) for m in found if m)


def ensure_partitions(*, now: datetime, ahead: int = AHEAD_MONTHS, history: History = TAPS) -> list[Month]:
    """Create the partitions of this month and the next ``ahead`` months that are missing;
    rows already in the default partition for such a month are moved into it. Returns the
    months created."""
    if not partitioned(history):
        return []
    have = set(months(history))
    created: list[Month] = []
    month = Month.of(now)
    for _ in range(ahead + 1):
        if month not in have:
            _create(history, month)
            created.append(month)
        month = month.next()
    return created


def _create(history: History, month: Month) -> None:
    quote = connection.ops.quote_name
    parent, table = quote(history.table), quote(history.partition(month))
    default, column = quote(f"{history.table}_default"), quote(history.column)
    lo, hi = month.start.isoformat(), month.end.isoformat()
    with transaction.atomic(), connection.cursor() as cursor:
        # made apart and attached, so the rows the default partition holds for this month can
        # move in first (attaching checks the default partition has none left)
        cursor.execute(f"CREATE TABLE {table} (LIKE {parent} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
        cursor.execute(
            f"WITH moved AS (DELETE FROM {default} WHERE {column} >= %s AND {column} < %s RETURNING *) "  # noqa: S608 (names from the model)
            f"INSERT INTO {table} SELECT * FROM moved",
            [lo, hi],
        )
        cursor.execute(f"ALTER TABLE {parent} ATTACH PARTITION {table} FOR VALUES FROM (%s) TO (%s)", [lo, hi])


def drop_expired(*, now: datetime, actor: object = None, history: History = TAPS) -> list[Month]:
    """Drop every monthly partition whose last row is older than ``TAP_RETENTION_DAYS``
    (a month goes only when all of it is past the limit). Each drop is audited with the number
    of rows it removed (``taps`` for the tap history, ``rows`` for any other)."""
    if not partitioned(history):
        return []
    limit = now - timedelta(days=settings.TAP_RETENTION_DAYS)
    dropped: list[Month] = []
    for month in months(history):
        if month.end > limit:
            break
        with transaction.atomic(), connection.cursor() as cursor:
            table = connection.ops.quote_name(history.partition(month))
            cursor.execute(f"SELECT count(*) FROM {table}")  # noqa: S608 (a name we made)
            (rows,) = cursor.fetchone()
            parent = connection.ops.quote_name(history.table)
            cursor.execute(f"ALTER TABLE {parent} DETACH PARTITION {table}")
            cursor.execute(f"DROP TABLE {table}")
            record(
                actor=actor,
                action=history.audit_action,
                object_type=history.audit_object,
                object_id=history.partition(month),
                basis=f"TAP_RETENTION_DAYS={settings.TAP_RETENTION_DAYS}",
                data={
                    "taps" if history is TAPS else "rows": rows,
                    "from": month.start.isoformat(),
                    "to": month.end.isoformat(),
                },
            )
        dropped.append(month)
    return dropped


PARTITION_LOCK = 0x43435041  # "CCPA": one processor at a time makes or drops partitions
CHECK_S = 3600.0  # how often the processor looks (and once when it starts)


def maintain(*, now: datetime) -> tuple[list[str], list[str]]:
    """The processor's hourly job, for every table in ``HISTORIES``: partitions ahead, expired
    months dropped. Returns the partitions made and dropped, by table name. With several
    processors, the one that holds the lock does it; the others skip this round."""
    if connection.vendor != "postgresql":
        return [], []
    created: list[str] = []
    dropped: list[str] = []
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [PARTITION_LOCK])
        (locked,) = cursor.fetchone()
        if not locked:
            return [], []
        for history in HISTORIES:
            created += [history.partition(m) for m in ensure_partitions(now=now, history=history)]
            dropped += [history.partition(m) for m in drop_expired(now=now, history=history)]
    return created, dropped
