"""How busy each kind of reader is at each minute of a campus day (Asia/Shanghai time).

Sums of bell curves over a floor: class-change peaks at the gates, evening returns at the dorm
doors, a library plateau, vehicle rush hours. Values are relative weights, not rates.
"""

from __future__ import annotations

import math

from streams.cards import DeviceKind

# (centre minute of day, width in minutes, height)
_BUMPS: dict[DeviceKind, list[tuple[int, int, float]]] = {
    DeviceKind.PEDESTRIAN_GATE: [
        (7 * 60 + 45, 25, 1.0),
        (9 * 60 + 50, 8, 0.5),
        (11 * 60 + 50, 15, 0.8),
        (13 * 60 + 45, 15, 0.6),
        (15 * 60 + 50, 8, 0.5),
        (17 * 60 + 35, 20, 0.9),
        (21 * 60 + 15, 25, 0.4),
    ],
    DeviceKind.DORM_DOOR: [
        (7 * 60 + 20, 20, 0.6),
        (12 * 60 + 10, 20, 0.5),
        (17 * 60 + 50, 25, 0.4),
        (21 * 60 + 30, 40, 1.0),
        (22 * 60 + 40, 20, 0.6),
    ],
    DeviceKind.LIBRARY_READER: [
        (8 * 60 + 5, 10, 0.6),
        (14 * 60 + 5, 10, 0.5),
        (19 * 60, 40, 0.5),
    ],
    DeviceKind.VEHICLE_GATE: [(7 * 60 + 40, 30, 1.0), (17 * 60 + 40, 30, 0.9)],
    DeviceKind.DESK_READER: [(10 * 60, 90, 0.1), (15 * 60, 90, 0.1)],
}
_OPEN_HOURS: dict[DeviceKind, tuple[int, int, float]] = {
    # (opens, closes, plateau weight between them); outside: a night floor
    DeviceKind.PEDESTRIAN_GATE: (6 * 60, 23 * 60, 0.08),
    DeviceKind.DORM_DOOR: (6 * 60, 23 * 60 + 30, 0.06),
    DeviceKind.LIBRARY_READER: (8 * 60, 22 * 60, 0.3),
    DeviceKind.VEHICLE_GATE: (6 * 60 + 30, 22 * 60, 0.05),
    DeviceKind.DESK_READER: (8 * 60 + 30, 17 * 60, 0.03),
}
NIGHT_FLOOR = 0.01


def weight(kind: DeviceKind, minute_of_day: float) -> float:
    opens, closes, plateau = _OPEN_HOURS[kind]
    base = plateau if opens <= minute_of_day < closes else NIGHT_FLOOR
    for centre, width, height in _BUMPS[kind]:
        base += height * math.exp(-0.5 * ((minute_of_day - centre) / width) ** 2)
    return base


def share_in(kind: DeviceKind, minute_of_day: float) -> float:
    """Probability that a tap at this kind of door is an entry rather than an exit."""
    hour = minute_of_day / 60
    if kind == DeviceKind.DORM_DOOR:
        return 0.85 if hour >= 20 or hour < 2 else (0.25 if 6 <= hour < 9 else 0.5)
    if kind in (DeviceKind.PEDESTRIAN_GATE, DeviceKind.VEHICLE_GATE):
        return 0.8 if 6 <= hour < 10 else (0.25 if 16.5 <= hour < 19 else 0.5)
    return 1.0
