"""Reason codes for an access decision — the vocabulary the edge, the processor and the pages share."""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    OK = "ok"
    UNKNOWN_CARD = "unknown_card"
    LOST = "lost"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    BLACKLISTED = "blacklisted"
    FUNCTION_NOT_ALLOWED = "function_not_allowed"
    ANTI_PASSBACK = "anti_passback"
    OUTSIDE_SCHEDULE = "outside_schedule"


class Decision(StrEnum):
    ALLOW = "allow"
    DENY = "deny"


class Direction(StrEnum):
    IN = "in"
    OUT = "out"
    NONE = "none"  # readers with no direction: library desk, issuance desk
