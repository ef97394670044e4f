"""Which live page(s) a committed tap row belongs to (the processor hands the groups to
``ops.push``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from streams import names
from streams.cards import GATE_KINDS, DeviceKind


def group_rows(rows: Iterable[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Which live page(s) a row belongs to (dorm rows only to their own building's group)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        kind = row["kind"]
        if kind in GATE_KINDS:
            group = names.GROUP_GATES
        elif kind == DeviceKind.DORM_DOOR:
            group = names.dorm_group(row["building"])
        elif kind == DeviceKind.LIBRARY_READER:
            group = names.GROUP_LIBRARY
        else:
            group = names.GROUP_DESK
        out.setdefault(group, []).append(row)
    return out
