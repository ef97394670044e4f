"""The emergency banner on every desk (issue 17, Build 2): a websocket per open desk that sends
the modes in force and pending (``ops.registry.emergency.selectors.banner``) when it opens and
again whenever they change (a push to ``live.emergency`` after each start, approval or end), and
every ``RESYNC_S`` in any case, since pushes are at-most-once. Drawn by ``assets/emergency.js``
at the top of the page. Behind ``RoleGuard``: every operator with a role (re-checked every
``WS_RECHECK_S``); the banner carries the mode, the place, the status, the time and the reason —
no personal data."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.utils import translation

from dashboard.guard import language_of
from dashboard.live import AWAY
from ops.registry.emergency.choices import LIVE_GROUP
from ops.registry.emergency.selectors import banner

PATH = r"^live/emergency/$"
RESYNC_S = 10.0


def _banner(language: str) -> list[dict[str, Any]]:
    with translation.override(language):
        return banner()


class EmergencyBanner(AsyncJsonWebsocketConsumer):
    task: asyncio.Task[None] | None = None
    joined = False

    async def connect(self) -> None:
        self.changed = asyncio.Event()
        await self.accept()
        await self.channel_layer.group_add(LIVE_GROUP, self.channel_name)
        self.joined = True
        self.task = asyncio.create_task(self._serve())

    async def disconnect(self, code: int) -> None:
        if self.task is not None:
            self.task.cancel()
        if self.joined:
            with contextlib.suppress(*AWAY):
                await self.channel_layer.group_discard(LIVE_GROUP, self.channel_name)

    async def live_batch(self, message: dict[str, Any]) -> None:
        """A start, approval or end (``ops.registry.emergency.services.announce``)."""
        self.changed.set()

    async def _serve(self) -> None:
        last: list[dict[str, Any]] | None = None
        language = language_of(dict(self.scope))
        while True:
            try:
                modes = await database_sync_to_async(_banner)(language)
            except AWAY:  # the database away: the banner keeps what it shows; tried again
                pass
            else:
                if modes != last:
                    await self.send_json({"modes": modes})
                    last = modes
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), RESYNC_S)
            self.changed.clear()
