"""``campuscard bench decide``: the access decision at the edge, per tap, with a full cache.

Builds a credential cache of ``cards`` cards — the reader agent's own
``readers.agent.cache.CredentialCache`` (SQLite in a temporary directory) when it is available,
else a plain dict — and a campus of doors with every policy switched on: hard and soft
anti-passback gates sharing areas, dorm doors with a curfew, library readers with opening hours,
vehicle gates and desks. Then ``taps`` taps over one campus day (a realistic mix: unknown cards,
lost / blacklisted / expired cards, people going in and out, a few passing their card back) are
decided one by one, as an agent does: look the card up, ``decide()``, record the passage in the
anti-passback state. Each tap is timed on its own with ``perf_counter_ns``; the figures are the
percentiles of those times. Taps are generated before the clock starts.
"""

from __future__ import annotations

import gc
import random
import tempfile
import time as clock
from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

from bench.common import percentile
from readers.agent.cache import CredentialCache  # written alongside; optional here
from readers.agent.outbox import Outbox
from readers.decide import Credential, Door, EdgeState, decide
from streams.cards import CardStatus, CardType, DeviceKind
from streams.reasons import Direction

DAY_START = datetime(2026, 11, 26, 20, 0, tzinfo=UTC)  # 04:00 on campus: the passback reset
BUILDINGS = [f"D{i}" for i in range(1, 11)]
WARMUP_TAPS = 5_000

Lookup = Callable[[str], Credential | None]


def _doors() -> list[Door]:
    curfew = (time(23, 0), time(6, 0))
    hours = ((time(7, 0), time(22, 30)),)
    doors = [Door(f"G-E-{i:02d}", DeviceKind.PEDESTRIAN_GATE, area="campus", passback="hard") for i in range(6)]
    doors += [Door(f"G-S-{i:02d}", DeviceKind.PEDESTRIAN_GATE, area="south", passback="soft") for i in range(4)]
    doors += [Door(f"V-{i}", DeviceKind.VEHICLE_GATE, area="car-park", passback="hard") for i in range(2)]
    doors += [
        Door(f"{b}-{i:02d}", DeviceKind.DORM_DOOR, building=b, area=b, passback="soft", curfew=curfew)
        for b in BUILDINGS
        for i in range(2)
    ]
    doors += [Door(f"L-{i}", DeviceKind.LIBRARY_READER, schedule=hours) for i in range(4)]
    doors += [Door("DESK-1", DeviceKind.DESK_READER)]
    return doors


def _credentials(count: int, rng: random.Random) -> list[Credential]:
    creds = []
    for i in range(count):
        roll = rng.random()
        card_type = CardType.STUDENT if roll < 0.8 else CardType.STAFF if roll < 0.95 else CardType.TEMPORARY
        bad = rng.random()
        creds.append(
            Credential(
                uid=f"{0xA0000000 + i:08X}",
                card_type=card_type,
                status=(CardStatus.LOST if bad < 0.005 else CardStatus.REPLACED if bad < 0.01 else CardStatus.ACTIVE),
                blacklisted=0.01 <= bad < 0.012,
                valid_from=DAY_START - timedelta(days=rng.randint(1, 900)),
                valid_until=(
                    DAY_START + timedelta(hours=rng.randint(-48, 240)) if card_type == CardType.TEMPORARY else None
                ),
                dorm_building=rng.choice(BUILDINGS) if card_type == CardType.STUDENT else None,
            )
        )
    return creds


def _payload(cred: Credential) -> dict[str, Any]:
    return {
        "uid": cred.uid,
        "card_type": str(cred.card_type),
        "status": str(cred.status),
        "blacklisted": cred.blacklisted,
        "valid_from": cred.valid_from.isoformat(),
        "valid_until": cred.valid_until.isoformat() if cred.valid_until else None,
        "dorm_building": cred.dorm_building,
    }


def _sqlite_cache(creds: list[Credential], directory: Path) -> tuple[Lookup, Callable[[], None]]:
    """The agent's cache, filled with one snapshot; raises ImportError if it is not there."""

    cache = CredentialCache(directory / "credentials.sqlite3")
    cache.replace_all(1, {c.uid: _payload(c) for c in creds})
    if len(cache) != len(creds):
        raise RuntimeError(f"the cache holds {len(cache)} of {len(creds)} cards")
    return cache.lookup, cache.close


def _taps(
    creds: list[Credential], doors: list[Door], taps: int, rng: random.Random
) -> list[tuple[str, Door, datetime, Direction | None]]:
    """A day of taps in time order. Each card alternates in/out per area (as people do), with
    2 % of taps repeating the last direction (a card passed back) and 1.5 % unknown cards."""
    by_kind: dict[DeviceKind, list[Door]] = {}
    for door in doors:
        by_kind.setdefault(door.kind, []).append(door)
    kinds = list(by_kind)
    weights = [
        {
            DeviceKind.PEDESTRIAN_GATE: 50,
            DeviceKind.DORM_DOOR: 30,
            DeviceKind.LIBRARY_READER: 12,
            DeviceKind.VEHICLE_GATE: 6,
            DeviceKind.DESK_READER: 2,
        }[k]
        for k in kinds
    ]
    dorm_doors: dict[str | None, list[Door]] = {}
    for door in by_kind.get(DeviceKind.DORM_DOOR, []):
        dorm_doors.setdefault(door.building, []).append(door)
    inside: dict[tuple[str, str], bool] = {}
    step = timedelta(days=1) / taps
    out = []
    for i, kind in enumerate(rng.choices(kinds, weights, k=taps)):
        now = DAY_START + step * i
        cred = rng.choice(creds)
        uid = cred.uid if rng.random() >= 0.015 else f"{rng.getrandbits(32):08X}"
        door = rng.choice(by_kind[kind])
        if kind == DeviceKind.DORM_DOOR and cred.dorm_building in dorm_doors and rng.random() < 0.95:
            door = rng.choice(dorm_doors[cred.dorm_building])
        direction: Direction | None = None
        if kind not in (DeviceKind.LIBRARY_READER, DeviceKind.DESK_READER):
            key = (uid, door.passback_area)
            is_in = inside.get(key, rng.random() < 0.5)
            if rng.random() >= 0.02:
                is_in = not is_in
            inside[key] = is_in
            direction = Direction.IN if is_in else Direction.OUT
        out.append((uid, door, now, direction))
    return out


def _measure(lookup: Lookup, taps: list[tuple[str, Door, datetime, Direction | None]], state: EdgeState) -> list[int]:
    ns = clock.perf_counter_ns
    times: list[int] = []
    append = times.append
    for uid, door, now, direction in taps:
        t0 = ns()
        cred = lookup(uid)
        verdict = decide(cred, door, now, state, direction=direction)
        if cred is not None:
            state.record(verdict, cred.uid, door, now, direction=direction)
        append(ns() - t0)
    return times


def run(*, cards: int = 100_000, taps: int = 200_000, seed: int = 11) -> dict[str, Any]:
    """Decide ``taps`` taps against a cache of ``cards`` cards; figures in milliseconds."""
    if cards < 1 or taps < 1:
        raise ValueError("cards and taps must be positive")
    rng = random.Random(seed)
    doors = _doors()
    creds = _credentials(cards, rng)
    workload = _taps(creds, doors, taps, rng)
    with tempfile.TemporaryDirectory(prefix="campuscard-bench-decide-") as tmp:
        try:
            lookup, close = _sqlite_cache(creds, Path(tmp))
            kind = "sqlite"
        except ImportError:
            by_uid = {c.uid: c for c in creds}
            lookup, close, kind = by_uid.get, (lambda: None), "dict"
        try:
            _measure(lookup, workload[:WARMUP_TAPS], EdgeState())
            state = EdgeState()
            gc.collect()
            times = _measure(lookup, workload, state)
        finally:
            close()
    ms = [t / 1e6 for t in times]
    return {
        "cards": cards,
        "taps": taps,
        "p50_ms": round(percentile(ms, 50), 4),
        "p99_ms": round(percentile(ms, 99), 4),
        "max_ms": round(max(ms), 3),
        "cache": kind,
        "outbox_appends_per_s": round(outbox_appends_per_s(), 1),
    }


def outbox_appends_per_s(n: int = 5000) -> float:
    """The other half of a tap at the door: its signed message kept in the agent's outbox
    (store-and-forward, SQLite) — ``n`` appends of a tap-sized message. Target (issue 4): ≥ 5,000/s."""
    with tempfile.TemporaryDirectory(prefix="campuscard-bench-outbox-") as tmp, Outbox(Path(tmp) / "o.sqlite3") as o:
        payload, mac = b"x" * 350, "f" * 64
        start = clock.perf_counter()
        for _ in range(n):
            o.append(payload, mac)
        return n / (clock.perf_counter() - start)


if __name__ == "__main__":  # quick look without the CLI: python -m bench.decide
    import json

    print(json.dumps(run()))
