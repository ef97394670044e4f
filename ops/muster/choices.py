"""The muster's names: its live group, the key of its change announcements, its audit actions."""

from __future__ import annotations

from enum import StrEnum

from streams import names

# Muster points are desk readers, whose taps the processor sends to this group (ops/pipeline/
# routing.py); the boards listen there, and a muster started or ended (or a muster point changed)
# is announced on the same group so that one sequence orders both: a page that misses either
# sees the gap and reloads.
LIVE_GROUP = names.GROUP_DESK
CHANGED = "muster_changed"  # an announcement's key (its value: what changed); it carries no rows
OBJECT_TYPE = "muster"
REASON_MAX = 200  # characters of a reason or an end note


class AuditAction(StrEnum):
    START = "muster.start"
    END = "muster.end"
    VIEW = "muster.view"  # a board showed the muster's names to this operator
    EXPORT = "muster.export"
