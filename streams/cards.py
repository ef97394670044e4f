"""Card and device vocabularies shared by the edge and the centre (values, not labels)."""

from __future__ import annotations

from enum import StrEnum


class CardType(StrEnum):
    STAFF = "staff"
    STUDENT = "student"
    TEMPORARY = "temporary"


class CardStatus(StrEnum):
    ACTIVE = "active"
    LOST = "lost"
    REPLACED = "replaced"
    CANCELLED = "cancelled"


class DeviceKind(StrEnum):
    PEDESTRIAN_GATE = "pedestrian_gate"
    VEHICLE_GATE = "vehicle_gate"
    DORM_DOOR = "dorm_door"
    LIBRARY_READER = "library_reader"
    DESK_READER = "desk_reader"


GATE_KINDS = frozenset({DeviceKind.PEDESTRIAN_GATE, DeviceKind.VEHICLE_GATE})
