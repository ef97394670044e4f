"""A page's copy of a small, changing set of records (alerts, devices): a snapshot, then pushes
that name the ids that changed; the board refetches those rows from the database (the record)
and drops the ones that no longer belong on the page. A gap in the push sequence means a lost
push: the caller reloads the snapshot. So the page always equals a fresh snapshot, whatever
order the changes committed in."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dashboard.sequence import Step, step

Row = dict[str, Any]


@dataclass
class KeyedBoard:
    fetch: Callable[[list[int]], dict[int, Row]]  # current rows of these ids that belong here
    seq: int = 0
    rows: dict[int, Row] = field(default_factory=dict)
    pending: set[int] = field(default_factory=set)
    resyncs: int = 0
    changed: set[int] = field(default_factory=set)  # ids refreshed by the last settle()
    limit: int = 500  # memory stays flat: beyond this, the rows with the lowest "rank" go

    def load(self, snapshot: dict[str, Any], *, seq: int) -> None:
        self.seq = seq
        self.rows = {r["id"]: r for r in snapshot["rows"]}
        self.pending.clear()
        self.limit = min(self.limit, snapshot.get("limit", self.limit))
        self._trim()

    def apply(self, message: dict[str, Any]) -> bool:
        verdict = step(self, message, watermarked=False)
        if verdict is not Step.APPLY:
            return verdict is Step.SKIP
        self.pending.update(message["ids"])
        return True

    def settle(self) -> None:
        """Refetch what changed (runs in a database thread)."""
        if not self.pending:
            self.changed = set()
            return
        ids, self.pending = sorted(self.pending), set()
        fresh = self.fetch(ids)
        for pk in ids:
            if pk in fresh:
                self.rows[pk] = fresh[pk]
            else:
                self.rows.pop(pk, None)
        self.changed = set(ids)
        self._trim()

    def _trim(self) -> None:
        """Keep the ``limit`` highest-ranked rows (the snapshot's order: rank, then id)."""
        if len(self.rows) > self.limit:
            keep = sorted(self.rows.values(), key=lambda r: (r.get("rank", 0), r["id"]))
            self.rows = {r["id"]: r for r in keep[-self.limit :]}

    def prune(self, now: float) -> None:
        return None
