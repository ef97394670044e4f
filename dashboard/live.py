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
import contextlib
import logging
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import redis
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.db import InterfaceError, OperationalError
from django.utils.translation import gettext as _

log = logging.getLogger(__name__)
FRAME_S = 0.25
IDLE_REFRESH_S = 15.0  # redraw even when quiet, so the chart's time window moves on
# re-join the group: channels_redis expires memberships (24 h), and a Redis that restarted
# empty behind a connection that survived has forgotten it (the page then sees a gap and reloads)
GROUP_REFRESH_S = 5.0
RETRY_START_S, RETRY_MAX_S = 0.2, 5.0
RELOAD_RETRY_S = 1.0  # a reload the database (or Redis) refused is tried again this often
# the database stopped, restarting or its connection cut (or Redis away while reloading)
AWAY: tuple[type[BaseException], ...] = (OperationalError, InterfaceError, redis.RedisError, OSError)
DOWN, RESYNC = "live.down", "live.resync"  # from the subscription to its pages


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
        """Receive until cancelled. Redis away (issue 12: a desk froze after a Redis restart) is
        one warning and a ``live.down`` to every page, then retries with backoff; back, the
        subscription joins again and sends ``live.resync``: each page reloads its snapshot (what
        was pushed meanwhile is lost, and a Redis that restarted empty forgot the group)."""
        layer = get_channel_layer()
        assert layer is not None, "CHANNEL_LAYERS is not configured"
        backoff, down, first = RETRY_START_S, False, True
        try:
            while True:
                channel = None
                try:
                    channel = await layer.new_channel()
                    await layer.group_add(self.group, channel)
                    if first:
                        self.joined.set()
                        first = False
                    elif down:
                        log.warning("live subscription to %s is back: pages reload", self.group)
                        self._tell({"type": RESYNC})
                    down, backoff = False, RETRY_START_S
                    refresh = asyncio.create_task(self._refresh(layer, channel))
                    try:
                        while True:
                            message = await layer.receive(channel)
                            self._tell(message)
                    finally:
                        refresh.cancel()
                except (redis.RedisError, OSError) as exc:
                    if first:
                        raise  # the first page to open it hears why
                    if not down:
                        log.warning("live subscription to %s lost Redis (%s): retrying", self.group, exc)
                        self._tell({"type": DOWN})
                        down = True
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, RETRY_MAX_S)
                finally:
                    if channel is not None and not down:
                        with contextlib.suppress(redis.RedisError, OSError):
                            await layer.group_discard(self.group, channel)
        finally:
            if self.live.get(self.group) is self:
                del self.live[self.group]

    def _tell(self, message: dict[str, Any]) -> None:
        for inbox in self.inboxes:
            inbox.put_nowait(message)

    def _stopped(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("live subscription to %s stopped", self.group, exc_info=task.exception())

    async def _refresh(self, layer: Any, channel: str) -> None:
        while True:
            await asyncio.sleep(GROUP_REFRESH_S)
            await layer.group_add(self.group, channel)


def live_status(board: object, now: str) -> dict[str, str]:
    """The page's live indicator: "实时 · 12:00:01", or that the live feed is down (Redis away)
    and the page shows what it had — never "live" over a frozen page (issue 12)."""
    if getattr(board, "offline", False):
        down = _("实时推送中断，正在重连")
        return {"children": f"{down} · {now}", "className": "status stale"}
    live = _("实时")
    return {"children": f"{live} · {now}", "className": "status live"}


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
    owed = False  # a reload (or a refetch) that failed: the board reloads once it can

    async def resync() -> None:
        seq, snapshot = await database_sync_to_async(load)()
        board.load(snapshot, seq=seq)
        if hasattr(board, "changed"):
            board.changed = set()

    def away(exc: BaseException) -> None:
        """The database stopped or restarting (issue 12, acceptance 4): one warning, the page
        says its feed is interrupted (``live_status``), and the board reloads once the database
        answers — the loop must not end (every page of a shared view would freeze)."""
        nonlocal owed
        if not owed:
            log.warning("live page %s cannot reload (%s): retrying", group, exc)
        owed = True
        setattr(board, "offline", True)  # noqa: B010  (boards carry the flag undeclared: below)

    try:
        await resync()
        await render(board)
        while not is_closed():
            try:
                wait = RELOAD_RETRY_S if owed else IDLE_REFRESH_S
                batch = [await asyncio.wait_for(inbox.get(), timeout=wait)]
            except TimeoutError:
                batch = []
            await asyncio.sleep(frame_s)  # let the rest of a burst arrive: one redraw for all
            while not inbox.empty():
                batch.append(inbox.get_nowait())
            try:
                if batch and batch[-1].get("type") == DOWN:
                    # the page says so (``live_status``) until the subscription is back; boards
                    # of every kind carry the flag, so it is set, not declared
                    setattr(board, "offline", True)  # noqa: B010
                elif (
                    owed
                    or any(m.get("type") == RESYNC for m in batch)
                    or not all(board.apply(m) for m in batch if m.get("type") == "live.batch")
                ):
                    await resync()
                    if owed:
                        log.warning("live page %s reloaded after the outage", group)
                    owed = False
                    setattr(board, "offline", False)  # noqa: B010
                    board.resyncs += 1
                elif hasattr(board, "settle"):  # boards that refetch the rows a push named
                    await database_sync_to_async(board.settle)()
            except AWAY as exc:
                away(exc)
            board.prune(time.time())
            await render(board)
    finally:
        subscription.leave(inbox)
