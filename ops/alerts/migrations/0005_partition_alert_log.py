"""PostgreSQL: the alert log partitioned by month on ``at`` (issue 14: a year of history; the
alert log grows with every alert's every change, like the taps). The table is rebuilt as a
range-partitioned table with a default partition and one partition per month from its oldest
row to two months ahead; the rows are copied across. A partitioned table's primary key must
hold the partition key, so it becomes (id, at); ``id`` stays unique by its identity sequence.
The indexes and foreign keys are read from the catalogue and made again under their names.
SQLite is left as it is. Later partitions are made by ``ops.pipeline.partitions``."""

from __future__ import annotations

from datetime import UTC, datetime

from django.db import migrations

TABLE = "alerts_alertlog"
COLUMN = "at"


def _month_starts(first: datetime, last: datetime) -> list[datetime]:
    y, m = first.year, first.month
    out = []
    while (y, m) <= (last.year, last.month):
        out.append(datetime(y, m, 1, tzinfo=UTC))
        y, m = y + (m == 12), m % 12 + 1
    out.append(datetime(y, m, 1, tzinfo=UTC))  # the end of the last month
    return out


def _definitions(cursor) -> tuple[list[str], list[tuple[str, str]]]:
    """The table's indexes (other than its primary key) and foreign keys, as SQL."""
    cursor.execute(
        "SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i WHERE i.indrelid = %s::regclass AND NOT i.indisprimary",
        [TABLE],
    )
    indexes = [row[0] for row in cursor.fetchall()]
    cursor.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'f'",
        [TABLE],
    )
    return indexes, list(cursor.fetchall())


def _rebuild(cursor, *, partitioned: bool) -> None:
    old = f"{TABLE}_old"
    indexes, fks = _definitions(cursor)
    cursor.execute(f"ALTER TABLE {TABLE} RENAME TO {old}")
    for name, _ in fks:  # constraint names are per table, but keep them free for the new one
        cursor.execute(f"ALTER TABLE {old} DROP CONSTRAINT {name}")
    cursor.execute(
        "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "WHERE i.indrelid = %s::regclass AND NOT i.indisprimary",
        [old],
    )
    for (name,) in cursor.fetchall():
        cursor.execute(f"DROP INDEX {name}")
    cursor.execute(f"ALTER TABLE {old} DROP CONSTRAINT {TABLE}_pkey")
    tail = f" PARTITION BY RANGE ({COLUMN})" if partitioned else ""
    cursor.execute(f"CREATE TABLE {TABLE} (LIKE {old} INCLUDING DEFAULTS INCLUDING IDENTITY){tail}")
    if partitioned:
        cursor.execute(f"CREATE TABLE {TABLE}_default PARTITION OF {TABLE} DEFAULT")
        cursor.execute(f"SELECT min({COLUMN}) FROM {old}")  # noqa: S608
        (oldest,) = cursor.fetchone()
        now = datetime.now(UTC)
        first = min(oldest.astimezone(UTC), now) if oldest else now
        last_y, last_m = now.year, now.month + 2
        last = datetime(last_y + (last_m - 1) // 12, (last_m - 1) % 12 + 1, 1, tzinfo=UTC)
        starts = _month_starts(first, last)
        for lo, hi in zip(starts, starts[1:], strict=False):
            cursor.execute(
                f"CREATE TABLE {TABLE}_p{lo:%Y%m} PARTITION OF {TABLE} FOR VALUES FROM (%s) TO (%s)",
                [lo.isoformat(), hi.isoformat()],
            )
    cursor.execute(f"INSERT INTO {TABLE} SELECT * FROM {old}")  # noqa: S608
    cursor.execute(
        f"SELECT setval(pg_get_serial_sequence('{TABLE}', 'id'), coalesce(max(id), 0) + 1, false) FROM {TABLE}"  # noqa: S608
    )
    cursor.execute(f"DROP TABLE {old}")
    key = f"id, {COLUMN}" if partitioned else "id"
    cursor.execute(f"ALTER TABLE {TABLE} ADD CONSTRAINT {TABLE}_pkey PRIMARY KEY ({key})")
    for index in indexes:
        cursor.execute(index)
    for name, definition in fks:
        cursor.execute(f"ALTER TABLE {TABLE} ADD CONSTRAINT {name} {definition}")


def forward(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            _rebuild(cursor, partitioned=True)


def backward(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            _rebuild(cursor, partitioned=False)


class Migration(migrations.Migration):
    dependencies = [("alerts", "0004_opened_at_for_old_alerts")]
    operations = [migrations.RunPython(forward, backward)]
