"""The state of the card-action feed (R-OPS-5): latest actions and today's count per action.
Snapshot, then deltas (same sequence/watermark rules as the gate board)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from dashboard.sequence import Step, step


@dataclass
class CardBoard:
    max_rows: int = 50
    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Shanghai"))
    seq: int = 0
    watermark: int = 0
    rows: deque[dict[str, Any]] = field(default_factory=deque)
    counts: dict[str, int] = field(default_factory=dict)
    since: float = 0.0
    resyncs: int = 0

    def load(self, snapshot: dict[str, Any], *, seq: int) -> None:
        self.seq, self.watermark = seq, snapshot["watermark"]
        self.rows = deque(snapshot["rows"][: self.max_rows], maxlen=self.max_rows)
        self.counts, self.since = dict(snapshot["counts"]), snapshot["since"]

    def apply(self, message: dict[str, Any]) -> bool:
        verdict = step(self, message)
        if verdict is not Step.APPLY:
            return verdict is Step.SKIP
        for row in sorted(message["rows"], key=lambda r: r["id"]):
            if row["ts"] >= self.since + 86400:  # a new day: today's counts start again
                local = datetime.fromtimestamp(row["ts"], self.tz)
                self.since = local.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
                self.counts = {}
            self.rows.appendleft(row)
            self.counts[row["action"]] = self.counts.get(row["action"], 0) + 1
        return True

    def prune(self, now: float) -> None:
        return None  # rows are bounded by maxlen; counts by the number of actions
