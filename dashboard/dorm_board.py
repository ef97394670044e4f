"""One dorm building's desk state: snapshot, then deltas (same sequence/watermark rules as the
gate board). Counts who of the residents is inside from their passages, and late returns."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from dashboard.sequence import Step, step
from ops.registry.dorm import LATE_KEPT, is_late_return
from streams.reasons import Decision


@dataclass
class DormBoard:
    building: str
    max_rows: int = 50
    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Shanghai"))
    seq: int = 0
    watermark: int = 0
    rows: deque[dict[str, Any]] = field(default_factory=deque)
    inside: set[int] = field(default_factory=set)
    passed_at: dict[int, float] = field(default_factory=dict)  # resident → their latest door passage
    late: list[dict[str, Any]] = field(default_factory=list)  # the latest LATE_KEPT
    late_count: int = 0  # all of today's
    info: dict[str, Any] = field(default_factory=dict)
    resyncs: int = 0

    def load(self, snapshot: dict[str, Any], *, seq: int) -> None:
        self.seq, self.watermark = seq, snapshot["watermark"]
        self.rows = deque(snapshot["rows"][: self.max_rows], maxlen=self.max_rows)
        self.inside = set(snapshot["inside"])
        self.passed_at = dict(snapshot["passed_at"])
        self.late = list(snapshot["late"])
        self.late_count = snapshot["late_count"]
        self.info = {
            k: snapshot[k] for k in ("name", "curfew", "residents", "not_seen", "not_seen_names", "not_seen_days")
        }

    def apply(self, message: dict[str, Any]) -> bool:
        verdict = step(self, message)
        if verdict is not Step.APPLY:
            return verdict is Step.SKIP
        for row in sorted(message["rows"], key=lambda r: r["ts"]):
            self.rows.appendleft(row)
        for row in message["rows"]:
            self._count(row)
        return True

    def _count(self, row: dict[str, Any]) -> None:
        resident = row.get("resident_of") == self.building and row.get("holder_id")
        if not resident or row["decision"] != Decision.ALLOW or row["direction"] not in ("in", "out"):
            return
        holder = row["holder_id"]
        # a passage older than the resident's latest (uploaded late by a reader that was
        # offline) does not change where they are — the snapshot's rule (ops.registry.dorm)
        newer = row["ts"] >= self.passed_at.get(holder, float("-inf"))
        if newer:
            self.passed_at[holder] = row["ts"]
        if row["direction"] == "in":
            if newer:
                self.inside.add(holder)
            if is_late_return(row.get("flags") or ""):
                self.late.append(
                    {"id": row["id"], "ts": row["ts"], "holder": row["holder"], "device": row["device_name"]}
                )
                self.late_count += 1
                self.late = self.late[-LATE_KEPT:]  # bounded: a page left open all night
        elif newer:
            self.inside.discard(holder)

    def prune(self, now: float) -> None:
        """Late returns are today's (rows: maxlen; inside: bounded by the residents)."""
        local = datetime.fromtimestamp(now, self.tz)
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
        kept = [r for r in self.late if r["ts"] >= midnight]
        if len(kept) != len(self.late):  # a new day: today's late returns start again
            self.late, self.late_count = kept, len(kept)

    def comparable(self) -> dict[str, Any]:
        return {
            "rows": sorted(r["id"] for r in self.rows),
            "inside": sorted(self.inside),
            "late": sorted(r["id"] for r in self.late),
            "late_count": self.late_count,
        }
