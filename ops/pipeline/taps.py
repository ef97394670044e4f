"""The processor's writes: idempotent tap inserts and the lock that orders tap commits."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from django.db import connection

from ops.bulk import fast_insert
from ops.registry.models import AccessEvent, Building, Card, Cardholder

COLUMNS = (
    "event_id",
    "device",
    "card",
    "card_uid",
    "holder",
    "occurred_at",
    "received_at",
    "direction",
    "decision",
    "reason",
    "flags",
    "boot_epoch",
    "seq",
)


def insert_access_events(rows: Sequence[tuple[Any, ...]]) -> dict[uuid.UUID, int]:
    """``rows``: tuples in ``COLUMNS`` order; the unique ``event_id`` makes it idempotent (a
    redelivered event is skipped). Returns event id → row id for the rows that were new."""
    # PostgreSQL partitions taps by month (migration 0005): a unique key there must hold the
    # partition key, so it is (event_id, occurred_at) — a redelivered event repeats both
    key = ("event_id", "occurred_at") if connection.vendor == "postgresql" else "event_id"
    inserted = fast_insert(AccessEvent, COLUMNS, rows, ignore_conflicts_on=key, returning=("event_id", "id"))
    return dict(inserted)


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


CARD_FIELDS = (
    "id",
    "uid",
    "holder_id",
    "holder__name",
    "holder__kind",
    "status",
    "card_type",
    "holder__dorm_building__code",
    "holder__photo_sha256",
)


def cards_by_uid(uids: set[str]) -> dict[str, dict[str, Any]]:
    """The batch's cards, by UID, with what the live rows and the card watch need (keys:
    ``CARD_FIELDS``). One statement in SQL the processor keeps: building the same query
    through the ORM for every batch was a tenth of the processor's time (issue 14)."""
    if not uids:
        return {}
    card, holder, building = Card._meta.db_table, Cardholder._meta.db_table, Building._meta.db_table
    params: list[Any]
    if connection.vendor == "postgresql":
        where, params = "c.uid = ANY(%s)", [sorted(uids)]
    else:
        where, params = f"c.uid IN ({', '.join(['%s'] * len(uids))})", sorted(uids)
    sql = (
        "SELECT c.id, c.uid, c.holder_id, h.name, h.kind, c.status, c.card_type, b.code, h.photo_sha256 "  # noqa: S608 (names from the models)
        f"FROM {card} c JOIN {holder} h ON h.id = c.holder_id LEFT JOIN {building} b ON b.id = h.dorm_building_id "
        f"WHERE {where}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {row[1]: dict(zip(CARD_FIELDS, row, strict=True)) for row in cursor.fetchall()}
