"""The muster board's state (issue 17): the running musters in the viewer's scope, their people
and who of them is safe — a snapshot (``ops.muster.selectors.board_snapshot``), then deltas.

Deltas are the taps at desk readers (``names.GROUP_DESK``, where the muster points are): a
pushed tap by a person on a roster, allowed, at a muster point, from the muster's
``counted_from`` on, marks them safe — the snapshot's rule, so snapshot + deltas equal a fresh
snapshot (tests/test_muster.py). A muster started or ended, or the muster points changed, is
announced on the same group without rows: the board reloads (``apply`` returns False, as for a
gap). A push lost with nothing after it — say, the announcement of a muster just started —
would leave the board behind until the next tap at a desk reader, which may be long in coming;
``settle`` (run after every frame and every idle refresh, ``dashboard.live``) reloads when the
group's counter has stayed ahead of the board across two looks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dashboard.sequence import Step, step
from ops.muster.choices import CHANGED
from streams.reasons import Decision


@dataclass
class MusterBoard:
    counter: Callable[[], int] | None = None  # the group's sequence number now (a Redis read)
    loader: Callable[[], tuple[int, dict[str, Any]]] | None = None  # (seq, snapshot), as run_feed's
    seq: int = 0
    watermark: int = 0
    resyncs: int = 0
    musters: dict[int, dict[str, Any]] = field(default_factory=dict)  # id → muster (snapshot row)
    points: dict[str, str] = field(default_factory=dict)  # muster-point device code → place
    safe: dict[int, dict[int, tuple[float, str]]] = field(default_factory=dict)  # muster → holder → (ts, place)
    rosters: dict[int, list[int]] = field(default_factory=dict)  # holder → the musters they are on
    _behind_at: int | None = None  # the board's seq when the group's counter was first seen ahead

    def load(self, snapshot: dict[str, Any], *, seq: int) -> None:
        self.seq, self.watermark = seq, snapshot["watermark"]
        self.points = dict(snapshot["points"])
        self.musters = {m["id"]: m for m in snapshot["musters"]}
        self.safe = {m["id"]: dict(m["safe"]) for m in snapshot["musters"]}
        self.rosters = {}
        for m in snapshot["musters"]:
            for person in m["persons"]:
                self.rosters.setdefault(person["id"], []).append(m["id"])
        self._behind_at = None

    def apply(self, message: dict[str, Any]) -> bool:
        if message.get(CHANGED):
            # a muster started or ended, or the points changed: reload (True only if the
            # snapshot already covers it)
            return step(self, message, watermarked=False) is Step.SKIP
        verdict = step(self, message)
        if verdict is not Step.APPLY:
            return verdict is Step.SKIP
        for row in sorted(message["rows"], key=lambda r: r["ts"]):
            self._mark(row)
        return True

    def _mark(self, row: dict[str, Any]) -> None:
        place = self.points.get(row["device"])
        if place is None or row["decision"] != Decision.ALLOW:
            return
        for muster_id in self.rosters.get(row.get("holder_id") or 0, ()):
            if row["ts"] < self.musters[muster_id]["counted_from"]:
                continue
            marks = self.safe[muster_id]
            first = marks.get(row["holder_id"])
            if first is None or row["ts"] < first[0]:
                marks[row["holder_id"]] = (row["ts"], place)

    def settle(self) -> None:
        """Reload when a push went missing with nothing after it (module doc). Runs in a
        database thread."""
        if self.counter is None or self.loader is None:
            return
        if self.counter() <= self.seq:
            self._behind_at = None
        elif self._behind_at != self.seq:
            self._behind_at = self.seq  # maybe a push on its way: look again next time
        else:
            seq, snapshot = self.loader()
            self.load(snapshot, seq=seq)
            self.resyncs += 1

    def prune(self, now: float) -> None:
        return None  # bounded by the rosters of the running musters

    def counts(self, muster_id: int) -> tuple[int, int]:
        """(people to account for, of them safe)."""
        return len(self.musters[muster_id]["persons"]), len(self.safe[muster_id])

    def comparable(self) -> dict[str, Any]:
        return {
            "musters": sorted(self.musters),
            "safe": {m: sorted((h, ts) for h, (ts, _place) in marks.items()) for m, marks in sorted(self.safe.items())},
        }
