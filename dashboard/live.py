"""The one loop every live page runs inside its persistent Dash websocket callback:
subscribe to a Channels group, load a snapshot, apply pushed deltas in frames, resync on a gap.

Bursts are coalesced into one screen update per ``FRAME_S`` so a browser stays smooth at high
event rates. ``layer.receive`` runs in its own task feeding a queue and is never wrapped in a
timeout (cancelling it can lose a message channels_redis already took from Redis).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

log = logging.getLogger(__name__)
FRAME_S = 0.25
IDLE_REFRESH_S = 15.0     # redraw even when quiet, so the chart's time window moves on
GROUP_REFRESH_S = 600.0   # re-join the group: channels_redis expires memberships (24 h)


class Board(Protocol):
    resyncs: int

    def load(self, snapshot: dict[str, Any], *, seq: int) -> None: ...
    def apply(self, message: dict[str, Any]) -> bool: ...
    def prune(self, now: float) -> None: ...


async def run_feed(
    *, group: str, board: Board, load: Callable[[], tuple[int, dict[str, Any]]],
    render: Callable[[Board], Awaitable[None]], is_closed: Callable[[], bool],
) -> None:
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(group, channel)
    joined = time.monotonic()
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def reader() -> None:
        while True:
            inbox.put_nowait(await layer.receive(channel))

    reader_task = asyncio.create_task(reader())

    async def resync() -> None:
        seq, snapshot = await database_sync_to_async(load)()
        board.load(snapshot, seq=seq)
        if hasattr(board, "changed"):
            board.changed = set()

    try:
        await resync()
        await render(board)
        while not is_closed():
            try:
                batch = [await asyncio.wait_for(inbox.get(), timeout=IDLE_REFRESH_S)]
            except TimeoutError:
                batch = []
            await asyncio.sleep(FRAME_S)  # let the rest of a burst arrive: one redraw for all
            while not inbox.empty():
                batch.append(inbox.get_nowait())
            if not all(board.apply(m) for m in batch if m.get("type") == "live.batch"):
                board.resyncs += 1
                await resync()
            elif hasattr(board, "settle"):  # boards that refetch the rows a push named
                await database_sync_to_async(board.settle)()
            board.prune(time.time())
            await render(board)
            if time.monotonic() - joined > GROUP_REFRESH_S:
                await layer.group_add(group, channel)
                joined = time.monotonic()
    finally:
        reader_task.cancel()
        with contextlib.suppress(BaseException):
            await reader_task
        await layer.group_discard(group, channel)
