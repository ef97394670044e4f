"""The ceiling the processor is measured against (issue 14): the same Redis and database with no
product logic — XADD → XREADGROUP → one multi-row INSERT → XACK. The processor's capacity divided
by this rate is ``ratio``: how much of what the parts could do the product keeps."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import cast

import orjson
import redis
from django.db import connection, transaction

from streams import envelopes, producer
from streams.consumer import StreamReply

STREAM = "campuscard:bench:bare"
GROUP = "bare"
TABLE = "bench_bare_taps"
COLUMNS = ("event_id", "device_id", "card_uid", "occurred_at", "direction", "decision", "reason")


def _create_table() -> None:
    uuid_type = "uuid" if connection.vendor == "postgresql" else "char(36)"
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {TABLE}")
        cursor.execute(
            f"CREATE TABLE {TABLE} (event_id {uuid_type} PRIMARY KEY, device_id varchar(32), "
            "card_uid varchar(20), occurred_at varchar(40), direction varchar(4), decision varchar(5), "
            "reason varchar(24))"
        )


def _insert(rows: list[tuple[str, ...]]) -> None:
    marks = "(" + ", ".join(["%s"] * len(COLUMNS)) + ")"
    # the table and columns are this module's constants; the values are parameters
    values = ", ".join([marks] * len(rows))
    sql = f"INSERT INTO {TABLE} ({', '.join(COLUMNS)}) VALUES {values} ON CONFLICT (event_id) DO NOTHING"  # noqa: S608
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, [value for row in rows for value in row])


def run(client: redis.Redis, taps: Sequence[envelopes.Tap], keys: Mapping[str, bytes], *, batch: int = 500) -> float:
    """Publish ``taps`` (signed, as readers do), then drain them flat out; events per second."""
    _create_table()
    client.delete(STREAM)
    client.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
    pipe = client.pipeline(transaction=False)
    for n, tap in enumerate(taps, 1):
        pipe.xadd(STREAM, producer.entry(tap, keys[tap.device_id]))  # type: ignore[arg-type]  # redis-py types fields as its own key/value unions
        if n % 2000 == 0:
            pipe.execute()
    pipe.execute()
    done = 0
    start = time.perf_counter()
    while done < len(taps):
        reply = cast(StreamReply, client.xreadgroup(GROUP, "bare-1", {STREAM: ">"}, count=batch, block=1000))
        if not reply:
            break
        entries = reply[0][1]
        rows = []
        for _entry_id, fields in entries:
            event = orjson.loads(fields[b"e"])
            rows.append(tuple(str(event[c]) for c in COLUMNS))
        _insert(rows)
        client.xack(STREAM, GROUP, *[entry_id for entry_id, _fields in entries])
        done += len(entries)
    elapsed = time.perf_counter() - start
    client.delete(STREAM)
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {TABLE}")
    return done / elapsed if elapsed > 0 else 0.0
