"""A year of taps on PostgreSQL (issue 14): access events are partitioned by month
(declarative range partitioning on ``occurred_at``, made by migration ``registry.0005``).
The processor's supervision tick creates partitions ahead (``ensure_partitions``) and drops
whole months past ``TAP_RETENTION_DAYS`` (``drop_expired``; the setting refuses less than
184 days, R-SEC-1's six months; each drop is audited). A tap whose month has no partition
yet (a reader's clock far ahead) lands in the default partition and is moved into its month
when that month's partition is made, so no tap is ever refused for its date.

SQLite keeps one unpartitioned table: every function here is a no-op there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connection, transaction

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

    def table(self) -> str:
        return f"{AccessEvent._meta.db_table}_p{self.year:04d}{self.month:02d}"


def partitioned() -> bool:
    """Whether the tap table is partitioned here (PostgreSQL after migration registry.0005)."""
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid WHERE c.relname = %s",
            [AccessEvent._meta.db_table],
        )
        return cursor.fetchone() is not None


def months() -> list[Month]:
    """The monthly partitions that exist, oldest first."""
    if not partitioned():
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = %s",
            [AccessEvent._meta.db_table],
        )
        found = [_NAME.search(name) for (name,) in cursor.fetchall()]
    return sorted(Month(int(m[1]), int(m[2])) for m in found if m)


def ensure_partitions(*, now: datetime, ahead: int = AHEAD_MONTHS) -> list[Month]:
    """Create the partitions of this month and the next ``ahead`` months that are missing;
    taps already in the default partition for such a month are moved into it. Returns the
    months created."""
    if not partitioned():
        return []
    have = set(months())
    created: list[Month] = []
    month = Month.of(now)
    for _ in range(ahead + 1):
        if month not in have:
            _create(month)
            created.append(month)
        month = month.next()
    return created


def _create(month: Month) -> None:
    quote = connection.ops.quote_name
    parent, table = quote(AccessEvent._meta.db_table), quote(month.table())
    default = quote(f"{AccessEvent._meta.db_table}_default")
    lo, hi = month.start.isoformat(), month.end.isoformat()
    with transaction.atomic(), connection.cursor() as cursor:
        # made apart and attached, so the rows the default partition holds for this month can
        # move in first (attaching checks the default partition has none left)
        cursor.execute(f"CREATE TABLE {table} (LIKE {parent} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
        cursor.execute(
            f"WITH moved AS (DELETE FROM {default} WHERE occurred_at >= %s AND occurred_at < %s RETURNING *) "  # noqa: S608 (names from the model)
            f"INSERT INTO {table} SELECT * FROM moved",
            [lo, hi],
        )
        cursor.execute(f"ALTER TABLE {parent} ATTACH PARTITION {table} FOR VALUES FROM (%s) TO (%s)", [lo, hi])


class RetentionError(ValueError):
    """A drop that would remove taps younger than ``TAP_RETENTION_DAYS``."""


def drop_expired(*, now: datetime, actor: object = None) -> list[Month]:
    """Drop every monthly partition whose last tap is older than ``TAP_RETENTION_DAYS``
    (a month goes only when all of it is past the limit). Each drop is audited with the number
    of taps it removed."""
    if not partitioned():
        return []
    limit = now - timedelta(days=settings.TAP_RETENTION_DAYS)
    dropped: list[Month] = []
    for month in months():
        if month.end > limit:
            break
        with transaction.atomic(), connection.cursor() as cursor:
            table = connection.ops.quote_name(month.table())
            cursor.execute(f"SELECT count(*) FROM {table}")  # noqa: S608 (a name we made)
            (taps,) = cursor.fetchone()
            parent = connection.ops.quote_name(AccessEvent._meta.db_table)
            cursor.execute(f"ALTER TABLE {parent} DETACH PARTITION {table}")
            cursor.execute(f"DROP TABLE {table}")
            record(
                actor=actor,
                action="taps.partition_drop",
                object_type="access_event_partition",
                object_id=month.table(),
                basis=f"TAP_RETENTION_DAYS={settings.TAP_RETENTION_DAYS}",
                data={"taps": taps, "from": month.start.isoformat(), "to": month.end.isoformat()},
            )
        dropped.append(month)
    return dropped


PARTITION_LOCK = 0x43435041  # "CCPA": one processor at a time makes or drops partitions
CHECK_S = 3600.0  # how often the processor looks (and once when it starts)


def maintain(*, now: datetime) -> tuple[list[Month], list[Month]]:
    """The processor's hourly job: partitions ahead, expired months dropped. With several
    processors, the one that holds the lock does it; the others skip this round."""
    if not partitioned():
        return [], []
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [PARTITION_LOCK])
        (locked,) = cursor.fetchone()
        if not locked:
            return [], []
        return ensure_partitions(now=now), drop_expired(now=now)
