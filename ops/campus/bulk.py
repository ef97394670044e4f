"""The hot-path insert of access events: one ``executemany`` of INSERT … ON CONFLICT DO NOTHING.

The ORM's ``bulk_create`` spent most of the processor's time building model instances and
preparing values field by field (profiled: ~60 % of a batch). Here only the three columns that
need adapting (uuid, two datetimes) go through Django's own adapters; the statement is built
from the model's metadata, so a renamed column cannot drift. Both SQLite (≥ 3.24) and
PostgreSQL support ``ON CONFLICT … DO NOTHING``; the unique ``event_id`` makes it idempotent.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import cache
from typing import Any
from uuid import UUID

from django.db import connection

from ops.campus.models import AccessEvent

COLUMNS = ("event_id", "device", "card", "card_uid", "holder", "occurred_at", "received_at",
           "direction", "decision", "reason", "boot_epoch", "seq")


@cache
def _sql(vendor: str) -> str:
    meta = AccessEvent._meta
    cols = [meta.get_field(name).column for name in COLUMNS]
    quote = connection.ops.quote_name
    # Identifiers come from the model's metadata; values are parameters.
    return (
        f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(c) for c in cols)}) "  # noqa: S608
        f"VALUES ({', '.join(['%s'] * len(cols))}) "
        f"ON CONFLICT ({quote(meta.get_field('event_id').column)}) DO NOTHING"
    )


def insert_access_events(rows: Sequence[tuple[Any, ...]]) -> None:
    """``rows``: tuples in ``COLUMNS`` order, with Python values (UUID, aware datetimes)."""
    if not rows:
        return
    uuid_field = AccessEvent._meta.get_field("event_id")
    adapt_dt = connection.ops.adapt_datetimefield_value
    prepared = []
    for row in rows:
        event_id: UUID = row[0]
        occurred: datetime = row[5]
        received: datetime = row[6]
        prepared.append((uuid_field.get_db_prep_value(event_id, connection), *row[1:5],
                         adapt_dt(occurred), adapt_dt(received), *row[7:]))
    with connection.cursor() as cursor:
        cursor.executemany(_sql(connection.vendor), prepared)


TAP_COMMIT_LOCK = 0x43435450  # "CCTP": the advisory lock that orders tap commits


def serialise_tap_commits() -> None:
    """Make access-event ids rise in commit order, even with several processors.

    Live pages skip pushed batches whose watermark (max id at commit) their snapshot already
    covers; that is only exact if no transaction commits a lower id after a higher one. SQLite
    serialises writers already (BEGIN IMMEDIATE); on PostgreSQL a transaction-scoped advisory
    lock, taken before the insert, does the same. Extra processors then add failover and
    parallel decoding, not parallel tap inserts — one processor sustains the target rate.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [TAP_COMMIT_LOCK])
