"""The one loop every live page runs inside its persistent Dash websocket callback:
subscribe to a Channels group, load a snapshot, apply pushed deltas in frames, resync on a gap.

Bursts are coalesced into one screen update per ``FRAME_S`` so a browser stays smooth at high
event rates. ``layer.receive`` runs in its own task feeding a queue and is never wrapped in a
timeout (cancelling it can lose a message channels_redis already took from Redis).

The pages of one group in one server process share one subscription (``_Subscription``): one
channel receives each push once and copies it into every page's inbox, in order. Per-page
channels cost one ``layer.receive`` per push per page — with 50 desks open at 200 taps/s that
alone kept the event loop busy (``campuscard bench fanout``, docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

log = logging.getLogger(__name__)
FRAME_S = 0.25
IDLE_REFRESH_S = 15.0  # redraw even when quiet, so the chart's time window moves on
GROUP_REFRESH_S = 600.0  # re-join the group: channels_redis expires memberships (24 h)


class Board(Protocol):
    resyncs: int

    def load(self, snapshot: dict[str, Any], *, seq: int) -> None: ...
    def apply(self, message: dict[str, Any]) -> bool: ...
    def prune(self, now: float) -> None: ...


class _Subscription:
    """One channel in ``group`` for every page of this process that shows it. Pages get the
    same pushes in the same order as with a channel each; boards only read them."""

    # event loop → group → its subscription (daphne has one loop; tests may run several)
    _by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, _Subscription]] = (
        weakref.WeakKeyDictionary()
    )

    def __init__(self, group: str, live: dict[str, _Subscription]) -> None:
        self.group = group
        self.live = live
        self.inboxes: set[asyncio.Queue[dict[str, Any]]] = set()
        self.joined = asyncio.Event()
        self.task = asyncio.create_task(self._run())
        self.task.add_done_callback(self._stopped)

    @classmethod
    async def join(cls, group: str) -> tuple[_Subscription, asyncio.Queue[dict[str, Any]]]:
        """A new inbox that receives every push sent to ``group`` from now on."""
        live = cls._by_loop.setdefault(asyncio.get_running_loop(), {})
        sub = live.get(group)
        if sub is None or sub.task.done():
            sub = live[group] = cls(group, live)
        inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        sub.inboxes.add(inbox)
        joined = asyncio.ensure_future(sub.joined.wait())
        try:
            await asyncio.wait([joined, sub.task], return_when=asyncio.FIRST_COMPLETED)
            if not joined.done():
                sub.task.result()  # raises what stopped it (e.g. Redis unreachable)
        except BaseException:
            joined.cancel()
            sub.leave(inbox)
            raise
        return sub, inbox

    def leave(self, inbox: asyncio.Queue[dict[str, Any]]) -> None:
        self.inboxes.discard(inbox)
        if not self.inboxes:
            if self.live.get(self.group) is self:
                del self.live[self.group]
            self.task.cancel()

    async def _run(self) -> None:
        layer = get_channel_layer()
        assert layer is not None, "CHANNEL_LAYERS is not configured"
        channel = await layer.new_channel()
        await layer.group_add(self.group, channel)
        try:
            self.joined.set()
            refresh = asyncio.create_task(self._refresh(layer, channel))
            try:
                while True:
                    message = await layer.receive(channel)
                    for inbox in self.inboxes:
                        inbox.put_nowait(message)
            finally:
                refresh.cancel()
        finally:
            if self.live.get(self.group) is self:
                del self.live[self.group]
            await layer.group_discard(self.group, channel)

    def _stopped(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("live subscription to %s stopped", self.group, exc_info=task.exception())

    async def _refresh(self, layer: Any, channel: str) -> None:
        while True:
            await asyncio.sleep(GROUP_REFRESH_S)
            await layer.group_add(self.group, channel)


async def run_feed(
    *,
    group: str,
    board: Board,
    load: Callable[[], tuple[int, dict[str, Any]]],
    render: Callable[[Board], Awaitable[None]],
    is_closed: Callable[[], bool],
    frame_s: float = FRAME_S,
) -> None:
    subscription, inbox = await _Subscription.join(group)

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
            await asyncio.sleep(frame_s)  # let the rest of a burst arrive: one redraw for all
            while not inbox.empty():
                batch.append(inbox.get_nowait())
            if not all(board.apply(m) for m in batch if m.get("type") == "live.batch"):
                board.resyncs += 1
                await resync()
            elif hasattr(board, "settle"):  # boards that refetch the rows a push named
                await database_sync_to_async(board.settle)()
            board.prune(time.time())
            await render(board)
    finally:
        subscription.leave(inbox)
