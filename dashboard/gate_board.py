"""The state of the gate page: a snapshot, then deltas. Pure Python (no I/O), so a test can
prove that a snapshot plus the deltas after it equals a fresh snapshot.

``apply`` returns False when it sees a gap in the per-group sequence (a push was dropped —
the Channels layer is at-most-once); the caller then reloads the snapshot.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from dashboard.sequence import Step, step
from streams.reasons import Decision


@dataclass
class GateBoard:
    max_rows: int = 50
    minutes: int = 30
    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Shanghai"))
    seq: int = 0
    watermark: int = 0
    rows: deque[dict[str, Any]] = field(default_factory=deque)
    counts: dict[str, dict[int, int]] = field(default_factory=dict)
    inout: dict[str, dict[int, list[int]]] = field(default_factory=dict)  # gate → minute → [in, out]
    totals: dict[str, Any] = field(default_factory=dict)
    resyncs: int = 0

    def load(self, snapshot: dict[str, Any], *, seq: int) -> None:
        self.seq = seq
        self.watermark = snapshot["watermark"]
        self.rows = deque(snapshot["rows"][: self.max_rows], maxlen=self.max_rows)
        self.counts = {gate: dict(per) for gate, per in snapshot["counts"].items()}
        self.inout = {gate: {m: list(v) for m, v in per.items()} for gate, per in snapshot["inout"].items()}
        self.totals = {**snapshot["totals"], "reasons": dict(snapshot["totals"]["reasons"])}

    def apply(self, message: dict[str, Any]) -> bool:
        verdict = step(self, message)
        if verdict is not Step.APPLY:
            return verdict is Step.SKIP  # False: a push was lost, resync
        for row in sorted(message["rows"], key=lambda r: r["ts"]):
            self._add(row)
        return True

    def _add(self, row: dict[str, Any]) -> None:
        self.rows.appendleft(row)
        minute = int(row["ts"] // 60)
        per_gate = self.counts.setdefault(row["device"], {})
        per_gate[minute] = per_gate.get(minute, 0) + 1
        if row["decision"] == Decision.ALLOW and row["direction"] in ("in", "out"):
            flow = self.inout.setdefault(row["device"], {}).setdefault(minute, [0, 0])
            flow[0 if row["direction"] == "in" else 1] += 1
        day_start = self._midnight(row["ts"])
        if day_start > self.totals.get("since", 0):
            self.totals = {"allow": 0, "deny": 0, "reasons": {}, "since": day_start}
        if row["ts"] >= self.totals["since"]:
            if row["decision"] == Decision.ALLOW:
                self.totals["allow"] += 1
            else:
                self.totals["deny"] += 1
                reasons = self.totals["reasons"]
                reasons[row["reason"]] = reasons.get(row["reason"], 0) + 1

    def _midnight(self, ts: float) -> float:
        local = datetime.fromtimestamp(ts, self.tz)
        return local.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()

    def prune(self, now: float) -> None:
        """Keep only the chart's window (bounded memory for a page left open all day)."""
        oldest = int(now // 60) - self.minutes
        for gate in list(self.counts):
            per = {m: n for m, n in self.counts[gate].items() if m > oldest}
            if per:
                self.counts[gate] = per
            else:
                del self.counts[gate]
        for gate in list(self.inout):
            flows = {m: v for m, v in self.inout[gate].items() if m > oldest}
            if flows:
                self.inout[gate] = flows
            else:
                del self.inout[gate]

    def flow(self, gate: str, *, now: float, minutes: int = 5) -> tuple[int, int]:
        """People in and out through ``gate`` over the last ``minutes`` (allowed passages)."""
        since = int(now // 60) - minutes
        per = self.inout.get(gate, {})
        return (sum(v[0] for m, v in per.items() if m > since), sum(v[1] for m, v in per.items() if m > since))

    def comparable(self, now: float) -> dict[str, Any]:
        """What the page shows, in a form two boards can be compared by (tests)."""
        self.prune(now)
        return {
            "rows": sorted(r["id"] for r in self.rows),
            "counts": {g: dict(sorted(p.items())) for g, p in sorted(self.counts.items())},
            "inout": {g: dict(sorted(p.items())) for g, p in sorted(self.inout.items())},
            "totals": {k: self.totals[k] for k in ("allow", "deny", "reasons")},
        }
