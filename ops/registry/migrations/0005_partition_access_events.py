"""PostgreSQL: access events partitioned by month on ``occurred_at`` (issue 14: a year of
taps). The table is rebuilt as a range-partitioned table with a default partition and one
partition per month from its oldest tap to two months ahead; the rows are copied across.
A partitioned table's primary and unique keys must hold the partition key, so they become
(id, occurred_at) and (event_id, occurred_at); ``id`` stays unique by its identity sequence.
SQLite is left as it is. Later partitions are made by ``ops.pipeline.partitions``."""

from __future__ import annotations

from datetime import UTC, datetime

from django.db import migrations

TABLE = "campus_accessevent"
INDEXES = {  # the indexes Django made, under the same names
    "campus_accessevent_card_id_5d7f198b": "(card_id)",
    "campus_accessevent_device_id_aa616c77": "(device_id)",
    "campus_accessevent_holder_id_8111d92c": "(holder_id)",
    "event_device_time": "(device_id, occurred_at DESC)",
    "event_holder_time": "(holder_id, occurred_at DESC)",
    "event_time": "(occurred_at DESC)",
}
FKS = {
    "campus_accessevent_card_id_5d7f198b_fk_campus_card_id": "(card_id) REFERENCES campus_card(id)",
    "campus_accessevent_device_id_aa616c77_fk_campus_device_id": "(device_id) REFERENCES campus_device(id)",
    "campus_accessevent_holder_id_8111d92c_fk_campus_cardholder_id": "(holder_id) REFERENCES campus_cardholder(id)",
}


def _month_starts(first: datetime, last: datetime) -> list[datetime]:
    y, m = first.year, first.month
    out = []
    while (y, m) <= (last.year, last.month):
        out.append(datetime(y, m, 1, tzinfo=UTC))
        y, m = y + (m == 12), m % 12 + 1
    out.append(datetime(y, m, 1, tzinfo=UTC))  # the end of the last month
    return out


def _rebuild(cursor, *, partitioned: bool) -> None:
    old = f"{TABLE}_old"
    cursor.execute(f"ALTER TABLE {TABLE} RENAME TO {old}")
    tail = " PARTITION BY RANGE (occurred_at)" if partitioned else ""
    cursor.execute(
        f"CREATE TABLE {TABLE} (LIKE {old} INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING IDENTITY){tail}"
    )
    if partitioned:
        cursor.execute(f"CREATE TABLE {TABLE}_default PARTITION OF {TABLE} DEFAULT")
        cursor.execute(f"SELECT min(occurred_at) FROM {old}")  # noqa: S608
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
    key = "id, occurred_at" if partitioned else "id"
    unique = "event_id, occurred_at" if partitioned else "event_id"
    cursor.execute(f"ALTER TABLE {TABLE} ADD CONSTRAINT {TABLE}_pkey PRIMARY KEY ({key})")
    cursor.execute(f"ALTER TABLE {TABLE} ADD CONSTRAINT {TABLE}_event_id_key UNIQUE ({unique})")
    for name, columns in INDEXES.items():
        cursor.execute(f"CREATE INDEX {name} ON {TABLE} {columns}")
    for name, ref in FKS.items():
        cursor.execute(f"ALTER TABLE {TABLE} ADD CONSTRAINT {name} FOREIGN KEY {ref} DEFERRABLE INITIALLY DEFERRED")


def forward(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            _rebuild(cursor, partitioned=True)


def backward(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            _rebuild(cursor, partitioned=False)


class Migration(migrations.Migration):
    dependencies = [("campus", "0004_building_curfew_end_building_curfew_start_and_more")]
    operations = [migrations.RunPython(forward, backward)]
