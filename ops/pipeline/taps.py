"""The processor's writes: idempotent tap inserts, the lock that orders tap commits, the
devices' sequence state and liveness."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import psycopg
from django.db import connection

from ops.bulk import fast_insert, stage_sql
from ops.registry.event_refs import SERIALISE_TAP_COMMITS
from ops.registry.models import AccessEvent, Building, Card, Cardholder, Device

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


def insert_access_events(rows: Sequence[tuple[Any, ...]], *, started: bool = False) -> dict[uuid.UUID, int]:
    """``rows``: tuples in ``COLUMNS`` order; the unique ``event_id`` makes it idempotent (a
    redelivered event is skipped). Returns event id → row id for the rows that were new.
    ``started``: ``start_tap_batch`` ran in this transaction (its staging table is ready)."""
    # PostgreSQL partitions taps by month (migration 0005): a unique key there must hold the
    # partition key, so it is (event_id, occurred_at) — a redelivered event repeats both
    key = ("event_id", "occurred_at") if connection.vendor == "postgresql" else "event_id"
    inserted = fast_insert(
        AccessEvent, COLUMNS, rows, ignore_conflicts_on=key, returning=("event_id", "id"), stage_ready=started
    )
    return dict(inserted)


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
    sql, params = _cards_query(uids)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {row[1]: dict(zip(CARD_FIELDS, row, strict=True)) for row in cursor.fetchall()}


def _cards_query(uids: set[str]) -> tuple[str, list[Any]]:
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
    return sql, params


def start_tap_batch(uids: set[str], sequences: dict[int, tuple[int, int]]) -> dict[str, dict[str, Any]]:
    """The start of a tap batch's transaction, before ``insert_access_events``: the tap-commit
    lock (``SERIALISE_TAP_COMMITS``: it orders tap commits, and the cards and holders looked up
    under it cannot be deleted before the batch commits — ``ops.registry.event_refs``), the
    devices' sequence state moved on
    (``advance_sequences``, R-DEV-1), the insert's staging table made ready; returns the
    batch's cards (``cards_by_uid``).

    On PostgreSQL all of it is one simple-query message, values bound on the client: one round
    trip where there were five. Each wait on the database hands the interpreter to the
    processor's other threads, and every round trip cost the processor CPU and wall time of its
    own (issue 14: measured in docs/benchmarks.md). Elsewhere, one statement after another."""
    if connection.vendor != "postgresql":  # SQLite: writers are serialised already
        advance_sequences(sequences)
        return cards_by_uid(uids)
    statements = [SERIALISE_TAP_COMMITS, stage_sql(AccessEvent, COLUMNS)]
    with connection.cursor() as cursor:
        both = psycopg.ClientCursor(cursor.cursor.connection)
        if sequences:
            statements.append(both.mogrify(*_sequences_sql(sequences)))
        if uids:
            statements.append(both.mogrify(*_cards_query(uids)))
        both.execute("; ".join(statements))
        if not uids:
            return {}
        while both.nextset():  # the cards' rows are the last result
            pass
        return {row[1]: dict(zip(CARD_FIELDS, row, strict=True)) for row in both.fetchall()}


def advance_sequences(states: dict[int, tuple[int, int]]) -> None:
    """Each device's ``(boot_epoch, last_seq)`` moved on, never back (R-DEV-1): a processor that
    lost its partition's lease while a batch was in hand must not pull the row behind what the
    new owner stored (the new owner resumes from it, ``DeviceSupervisor.adopt``)."""
    if not states:
        return
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(*_sequences_sql(states))
        return
    update_devices(
        "boot_epoch = %s, last_seq = %s",
        [(e, q, i, e, e, q) for i, (e, q) in states.items()],
        where="AND (boot_epoch < %s OR (boot_epoch = %s AND last_seq < %s))",
    )


def _sequences_sql(states: dict[int, tuple[int, int]]) -> tuple[str, list[Any]]:
    """PostgreSQL: one statement over every device (an array per column) — a statement per
    device, even pipelined, was a tenth of the processor's wall time (issue 14)."""
    ids, epochs, seqs = zip(*((i, e, q) for i, (e, q) in states.items()), strict=True)
    sql = (
        f"UPDATE {Device._meta.db_table} AS d SET boot_epoch = v.e, last_seq = v.q "  # noqa: S608 (the model's table)
        "FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[]) AS v(id, e, q) "
        "WHERE d.id = v.id AND (d.boot_epoch < v.e OR (d.boot_epoch = v.e AND d.last_seq < v.q))"
    )
    return sql, [list(ids), list(epochs), list(seqs)]


def update_devices(assignments: str, rows: list[tuple[Any, ...]], where: str = "") -> None:
    """``UPDATE device SET <assignments> WHERE id = %s <where>`` for each row (its values, the id,
    then ``where``'s): one SQL text over every device in one round trip. Django compiling a CASE
    over the devices each second cost the processor a tenth of its time."""
    if not rows:
        return
    latest = "GREATEST" if connection.vendor == "postgresql" else "MAX"  # SQLite's MAX(a, b) is scalar
    sql = f"UPDATE {Device._meta.db_table} SET {assignments.format(latest=latest)} WHERE id = %s {where}"  # noqa: S608 (the model's table)
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)
