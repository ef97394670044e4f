"""The one shape of a tap row on a live page — used for snapshots and for pushed deltas alike,
so a snapshot plus deltas can equal a fresh snapshot. Personal data is masked here (PIPL)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypedDict

from ops.masking import mask_name, mask_uid


class DeviceInfo(TypedDict):
    id: int
    code: str
    name: str
    kind: str
    building: str | None


class HolderInfo(TypedDict):
    id: int
    name: str
    kind: str
    dorm: str | None


def tap_row(
    *,
    event_id: str,
    occurred_at: datetime,
    device: DeviceInfo,
    holder: HolderInfo | None,
    card_uid: str,
    direction: str,
    decision: str,
    reason: str,
    flags: str = "",
) -> dict[str, Any]:
    return {
        "id": event_id,
        "ts": occurred_at.timestamp(),
        "device": device["code"],
        "device_name": device["name"],
        "kind": device["kind"],
        "building": device["building"],
        "holder": mask_name(holder["name"]) if holder else "",
        "holder_kind": holder["kind"] if holder else "",
        # server-side only (live pages keep rows on the server and render masked cells): which
        # holder, and which dorm building they live in — for the dorm desk's counts
        "holder_id": holder["id"] if holder else None,
        "resident_of": holder["dorm"] if holder else None,
        "card": mask_uid(card_uid),
        "direction": direction,
        "decision": decision,
        "reason": reason,
        "flags": flags,
    }
