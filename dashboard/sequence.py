"""The one rule every live board applies to a push before using it (snapshot + deltas).

A push carries its group's sequence number (``seq``) and, for row feeds, the highest committed
row id it holds (``watermark``). A board loaded from a snapshot at sequence *s* and watermark
*w* (kept as the board's ``watermark`` until its next snapshot) skips pushes it already covers
(sequence ≤ *s*, or watermark ≤ *w*), applies the next one, and resyncs on a gap — so a dropped
push never leaves a wrong number on screen (tests/test_desk_boards.py drops them on purpose).
"""

from __future__ import annotations

from enum import Enum
from typing import Any, Literal, Protocol, cast, overload


class Step(Enum):
    SKIP = "skip"  # covered by the snapshot (or an earlier push): nothing to do
    GAP = "gap"  # a push was lost: reload the snapshot
    APPLY = "apply"  # the next push: apply its rows


class Sequenced(Protocol):
    seq: int


class Board(Sequenced, Protocol):
    watermark: int


@overload
def step(board: Board, message: dict[str, Any], *, watermarked: Literal[True] = True) -> Step: ...
@overload
def step(board: Sequenced, message: dict[str, Any], *, watermarked: Literal[False]) -> Step: ...
def step(board: Sequenced, message: dict[str, Any], *, watermarked: bool = True) -> Step:
    seq = message["seq"]
    if seq <= board.seq:
        return Step.SKIP
    if seq != board.seq + 1:
        return Step.GAP
    board.seq = seq
    if watermarked:
        marked = cast(Board, board)  # the overloads: a watermarked push goes to a board with one
        # against the snapshot's watermark only, never a later push's: with two processors the
        # pushes are numbered in the order their fan-outs take a number, not the order their
        # batches committed, so a new batch may follow one with a higher watermark (ids rise in
        # commit order: a batch is wholly in the snapshot or wholly after it — docs/events.md)
        if message["watermark"] <= marked.watermark:
            return Step.SKIP  # committed before the snapshot was read: already counted
    return Step.APPLY
