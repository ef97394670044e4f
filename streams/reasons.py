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
    # issue 17: central dorm rules. New values reach the processor in the agents' taps: upgrade
    # the server (processor) before the agents, or their taps with these reasons dead-letter.
    CURFEW_CLOSED = "curfew_closed"
    VACATION_CLOSED = "vacation_closed"
    # issue 17, Build 2: an emergency lockdown holds the door (only security staff pass)
    LOCKDOWN = "lockdown"


class Decision(StrEnum):
    ALLOW = "allow"
    DENY = "deny"


class Direction(StrEnum):
    IN = "in"
    OUT = "out"
    NONE = "none"  # readers with no direction: library desk, issuance desk
