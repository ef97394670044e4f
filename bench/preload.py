"""A year of taps already stored (issue 14, Build 3): ``--preload N`` fills the access-event
table with ``N`` taps spread over the last ``days`` days before a benchmark runs, so the
figures are those of a database in its second semester, not of an empty one.

The rows are made here and streamed with COPY (PostgreSQL: text COPY in time order, so each
monthly partition is filled in turn and its indexes stay in memory; SQLite: chunked
``executemany``). They are plausible taps of the seeded campus: every card taps gates, the
library and, for a boarder, the doors of their own building; about 3 % are refused with one of
the refusal reasons. The table is topped up, not refilled: a database that already holds ``N``
taps (an earlier run's preload) is used as it is and the run says so.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connection, transaction

from ops.pipeline import partitions
from ops.registry.models import AccessEvent, Card, Device
from streams.cards import DeviceKind
from streams.reasons import Reason

CHUNK = 20_000  # rows per COPY write / executemany
DENY_SHARE = 0.03
DENY_REASONS = (
    Reason.UNKNOWN_CARD,
    Reason.LOST,
    Reason.EXPIRED,
    Reason.FUNCTION_NOT_ALLOWED,
    Reason.ANTI_PASSBACK,
)
COLUMNS = (
    "event_id",
    "device_id",
    "card_id",
    "card_uid",
    "holder_id",
    "occurred_at",
    "received_at",
    "direction",
    "decision",
    "reason",
    "flags",
    "boot_epoch",
    "seq",
)


@dataclass(frozen=True)
class Preloaded:
    rows: int  # taps in the table afterwards
    added: int
    seconds: float
    rows_per_s: float


def existing() -> int:
    return AccessEvent.objects.count()


def preload(rows: int, *, days: int = 365, now: datetime | None = None, seed: int = 14) -> Preloaded:
    """Top the tap table up to ``rows`` taps over the ``days`` days before ``now`` (ending an
    hour before it, so the live phases' taps are the newest)."""
    have = existing()
    if have >= rows:
        return Preloaded(have, 0, 0.0, 0.0)
    want = rows - have
    now = now or datetime.now(UTC)
    end = now - timedelta(hours=1)
    start = end - timedelta(days=days)
    t0 = time.perf_counter()
    # the months of the past year get their partitions first (the supervisor makes only the
    # months ahead); without them every row would land in the default partition
    partitions.ensure_partitions(now=start, ahead=days // 28 + 1)
    lines = _rows(want, start, end, random.Random(seed), *_people())  # read before COPY holds the connection
    if connection.vendor == "postgresql":
        _copy(lines)
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {AccessEvent._meta.db_table}")
    else:
        _executemany(lines)
    seconds = time.perf_counter() - t0
    return Preloaded(have + want, want, round(seconds, 1), round(want / seconds, 1) if seconds else 0.0)


def _people() -> tuple[list[tuple[int, str, int, int | None]], dict[str, list[int]], dict[int, list[int]]]:
    """(card id, uid, holder id, dorm building id) for every card; device ids by kind; dorm
    door ids by building."""
    cards: list[tuple[int, str, int, int | None]] = [
        (pk, uid, holder, dorm)
        for pk, uid, holder, dorm in Card.objects.values_list("id", "uid", "holder_id", "holder__dorm_building_id")
    ]
    by_kind: dict[str, list[int]] = {}
    doors: dict[int, list[int]] = {}
    for pk, kind, building in Device.objects.values_list("id", "kind", "building_id"):
        by_kind.setdefault(kind, []).append(pk)
        if kind == DeviceKind.DORM_DOOR and building is not None:
            doors.setdefault(building, []).append(pk)
    if not cards or not by_kind:
        raise RuntimeError("preload needs a seeded campus (cards and devices)")
    return cards, by_kind, doors


def _rows(
    n: int,
    start: datetime,
    end: datetime,
    rng: random.Random,
    cards: list[tuple[int, str, int, int | None]],
    by_kind: dict[str, list[int]],
    doors: dict[int, list[int]],
) -> Any:
    """``n`` taps in time order between ``start`` and ``end``, as text COPY lines (tab-separated,
    ``\\N`` for NULL). Timestamps are formatted by hand: ``isoformat`` per row would be a third
    of the time."""
    gates = by_kind.get(DeviceKind.PEDESTRIAN_GATE, []) + by_kind.get(DeviceKind.VEHICLE_GATE, [])
    library = by_kind.get(DeviceKind.LIBRARY_READER, []) or gates
    gates = gates or next(iter(by_kind.values()))
    t0 = start.timestamp()
    step = (end.timestamp() - t0) / n
    prefix_minute, prefix = -1, ""
    getrandbits, random_ = rng.getrandbits, rng.random
    for i in range(n):
        ts = t0 + (i + random_()) * step
        minute = int(ts // 60)
        if minute != prefix_minute:
            prefix_minute, prefix = minute, datetime.fromtimestamp(minute * 60, UTC).strftime("%Y-%m-%d %H:%M:")
        when = f"{prefix}{ts - minute * 60:09.6f}+00"
        card_id, uid, holder_id, dorm = cards[getrandbits(31) % len(cards)]
        pick = random_()
        if dorm is not None and pick < 0.35 and dorm in doors:
            room = doors[dorm]
        elif pick < 0.5:
            room = library
        else:
            room = gates
        device = room[getrandbits(31) % len(room)]
        direction = "in" if getrandbits(1) else "out"
        if random_() < DENY_SHARE:
            reason = DENY_REASONS[getrandbits(8) % len(DENY_REASONS)]
            decision = "deny"
            if reason == Reason.UNKNOWN_CARD:
                card_field, holder_field, uid = "\\N", "\\N", f"{getrandbits(32):08X}"
            else:
                card_field, holder_field = str(card_id), str(holder_id)
        else:
            reason, decision, card_field, holder_field = Reason.OK, "allow", str(card_id), str(holder_id)
        yield (
            f"{getrandbits(128):032x}\t{device}\t{card_field}\t{uid}\t{holder_field}\t{when}\t{when}\t"
            f"{direction}\t{decision}\t{reason.value}\t\t0\t0\n"
        )


def _copy(lines: Any) -> None:
    table = connection.ops.quote_name(AccessEvent._meta.db_table)
    with transaction.atomic(), connection.cursor() as cursor:
        raw = cursor.cursor  # the psycopg cursor under Django's wrapper
        with raw.copy(f"COPY {table} ({', '.join(COLUMNS)}) FROM STDIN") as copy:
            chunk: list[str] = []
            for line in lines:
                chunk.append(line)
                if len(chunk) == CHUNK:
                    copy.write("".join(chunk))
                    chunk.clear()
            if chunk:
                copy.write("".join(chunk))


def _executemany(lines: Any) -> None:
    table = connection.ops.quote_name(AccessEvent._meta.db_table)
    marks = ", ".join(["%s"] * len(COLUMNS))
    sql = f"INSERT INTO {table} ({', '.join(COLUMNS)}) VALUES ({marks})"  # noqa: S608 (the model's names)

    def row(line: str) -> list[Any]:
        values: list[Any] = [None if v == "\\N" else v for v in line.rstrip("\n").split("\t")]
        values[5] = values[6] = values[5].removesuffix("+00")  # SQLite holds naive UTC text
        return values

    chunk: list[list[Any]] = []
    with transaction.atomic(), connection.cursor() as cursor:
        for line in lines:
            chunk.append(row(line))
            if len(chunk) == CHUNK:
                cursor.executemany(sql, chunk)
                chunk.clear()
        if chunk:
            cursor.executemany(sql, chunk)
