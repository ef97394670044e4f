"""One desk's live state computed once per server process and shared by every page showing it.

With 50 security desks open, each page keeping its own boards and building its own updates
made daphne the bottleneck (``bench fanout``: 90 % of a core, frames late). A ``SharedView``
runs the feeds and renders *once* — into a ``SharedPainter``, which keeps the latest props of
each component with a version number — and each page only sends the components whose version
it has not sent yet. Pages see exactly what they would have computed themselves (all viewers of
a view are entitled to the same content: the view is keyed by what differs, e.g. the language).
The view starts with its first page and stops with its last.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import weakref
from collections.abc import Callable, Coroutine, Hashable
from typing import Any

from dash import set_props
from dash._utils import to_json

from dashboard.paint import Painter

log = logging.getLogger(__name__)
IDLE_CHECK_S = 5.0  # a page re-checks that its websocket is still open at least this often


class SharedPainter(Painter):
    """A ``dashboard.paint.Painter`` (send only when the key changes; charts at most every
    ``every`` seconds) that records the props, versioned, for the pages instead of sending them."""

    def __init__(self, lang: str, *, transient: frozenset[str] = frozenset()) -> None:
        super().__init__(lang)
        self.transient = transient  # events (an alarm), not state: not replayed to a new page
        self.props: dict[str, tuple[int, dict[str, Any]]] = {}
        self._version = 0
        self._changed = asyncio.Event()
        self._wire: dict[str, str] = {}

    def _deliver(self, component_id: str, props: dict[str, Any]) -> None:
        self._version += 1
        self.props[component_id] = (self._version, props)
        self._wire[component_id] = to_json(props)  # serialised once, sent to every page
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def feed_page(self, is_closed: Callable[[], bool], ws: Any = None) -> None:
        """Send this page everything it has not been sent, whenever something changes."""
        sent = {cid: version for cid, (version, _props) in self.props.items() if cid in self.transient}
        send = _wire_sender(ws)
        while not is_closed():
            changed = self._changed
            for component_id, (version, props) in list(self.props.items()):
                if sent.get(component_id) != version:
                    if send is None:
                        set_props(component_id, props)
                    else:
                        send(component_id, self._wire[component_id])
                    sent[component_id] = version
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), timeout=IDLE_CHECK_S)


def _wire_sender(ws: Any) -> Callable[[str, str], None] | None:
    """Queue a ready-serialised ``set_props`` message on a Dash websocket: the message Dash's
    own ``set_prop_sync`` builds, with the props serialised once for all pages instead of once
    per page (with 50 desks that serialising was most of daphne's time). Falls back to
    ``set_props`` if this Dash version's websocket does not look as expected (pinned: 4.4.1;
    tests/test_bench_fanout.py and the desk browser tests exercise this path)."""
    queue = getattr(ws, "_get_outbound_queue", None)
    renderer = getattr(ws, "_renderer_id", None)
    if queue is None or renderer is None:
        return None
    prefix = '{"type":"set_props","rendererId":' + json.dumps(renderer) + ',"payload":{"componentId":'

    def send(component_id: str, props_json: str) -> None:
        outbound = queue()
        if outbound is None or ws.is_shutdown:
            return
        outbound.sync_q.put_nowait(f'{prefix}{json.dumps(component_id)},"props":{props_json}}}}}')

    return send


class SharedView:
    """A running view: ``run(painter)`` is its feeds loop; ``join`` starts it on first use."""

    _views: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Hashable, SharedView]] = (
        weakref.WeakKeyDictionary()
    )

    def __init__(
        self,
        key: Hashable,
        lang: str,
        run: Callable[[SharedPainter, Callable[[], bool]], Coroutine[Any, Any, None]],
        transient: frozenset[str] = frozenset(),
    ) -> None:
        self.key, self.pages = key, 0
        self.painter = SharedPainter(lang, transient=transient)
        self._stopping = False
        self.task = asyncio.create_task(run(self.painter, lambda: self._stopping))
        self.task.add_done_callback(self._ended)

    @classmethod
    def join(
        cls,
        key: Hashable,
        lang: str,
        run: Callable[[SharedPainter, Callable[[], bool]], Coroutine[Any, Any, None]],
        transient: frozenset[str] = frozenset(),
    ) -> SharedView:
        views = cls._views.setdefault(asyncio.get_running_loop(), {})
        view = views.get(key)
        if view is None or view.task.done():
            view = views[key] = cls(key, lang, run, transient)
        view.pages += 1
        return view

    @classmethod
    async def serve(
        cls,
        ws: Any,
        key: Hashable,
        lang: str,
        run: Callable[[SharedPainter, Callable[[], bool]], Coroutine[Any, Any, None]],
        transient: frozenset[str] = frozenset(),
    ) -> None:
        """Feed one page's websocket from the view ``key`` (started if need be) until the page
        closes; the view stops with its last page."""
        view = cls.join(key, lang, run, transient)
        try:
            await view.painter.feed_page(lambda: ws.is_shutdown or view.task.done(), ws)
        finally:
            view.leave()

    def leave(self) -> None:
        self.pages -= 1
        if self.pages <= 0:
            self._stopping = True
            views = self._views.get(asyncio.get_running_loop(), {})
            if views.get(self.key) is self:
                del views[self.key]
            self.task.cancel()
            self.painter.close()

    def _ended(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("shared view %s stopped", self.key, exc_info=task.exception())
