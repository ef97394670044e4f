"""Send a component's new props to the browser only when what it shows has changed.

The browser's Dash renderer walks every update it receives (paths, callbacks, React diff); at
high event rates that, not the network, is what loads a desk's browser (measured: a security
desk at demo load spent 80 % of its main thread in dash-renderer). So each page paints through a
``Painter``: the caller names what a component shows by a cheap ``key`` (counts, ids, a
version), and the props are built and sent only when the key changes — and, for expensive
components like charts, at most every ``every`` seconds. A paint held back by ``every`` is
sent when the interval is over (the latest state, built then), so the screen never stays
behind."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Hashable
from typing import Any

from dash import set_props
from django.utils import translation

_NEVER = object()
Build = Callable[[], dict[str, Any]]


class Painter:
    def __init__(self, lang: str) -> None:
        self.lang = lang
        self._keys: dict[str, Any] = {}
        self._at: dict[str, float] = {}
        self._held: dict[str, tuple[Hashable, Build]] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}

    def paint(self, component_id: str, key: Hashable, build: Build, *, every: float = 0.0) -> bool:
        if self._keys.get(component_id, _NEVER) == key:
            self._held.pop(component_id, None)
            return False
        wait = every - (time.monotonic() - self._at.get(component_id, -math.inf))
        if every and wait > 0:
            self._held[component_id] = (key, build)
            if component_id not in self._timers:  # the set_props context travels with it
                self._timers[component_id] = asyncio.get_running_loop().call_later(wait, self._release, component_id)
            return False
        self._send(component_id, key, build)
        return True

    def _release(self, component_id: str) -> None:
        self._timers.pop(component_id, None)
        held = self._held.pop(component_id, None)
        if held is not None and self._keys.get(component_id, _NEVER) != held[0]:
            self._send(component_id, *held)

    def _send(self, component_id: str, key: Hashable, build: Build) -> None:
        self._keys[component_id], self._at[component_id] = key, time.monotonic()
        with translation.override(self.lang):
            props = build()
        self._deliver(component_id, props)

    def _deliver(self, component_id: str, props: dict[str, Any]) -> None:
        """Send the props to this page (``SharedPainter`` records them for many pages)."""
        set_props(component_id, props)

    def close(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
