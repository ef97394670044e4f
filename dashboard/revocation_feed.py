"""The card page's revocation panel, live (issue 17, Build 6; R-USE-1): a websocket per open card
page that sends the card's tracker (``ops.registry.revocations.card_tracker``) when it opens and
again whenever it may have changed:

- a device push (``live.devices``): the processor wrote readers' heartbeats, so a reported
  credential version may have moved — only the readers are read again;
- a card change published (``live.cards``, sent by the relay with the feed versions it gave):
  the card's revocations are read again too;
- every ``RESYNC_S`` in any case, since pushes are at-most-once.

Changes are coalesced to one read per ``FRAME_S``, and a snapshot is sent only when it differs
from the last one. The panel carries device codes and names and a masked card number: no personal
data. Behind ``RoleGuard`` (staff allowed to view cards; re-checked every ``WS_RECHECK_S``); the
card itself must be one the viewer may open (``selectors.cards_visible_to``), otherwise the
handshake is refused (HTTP 403)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from dashboard.live import AWAY
from ops.registry.revocations import Revocation, card_revocations, card_tracker
from ops.registry.selectors import cards_visible_to
from streams import names

PATH = r"^live/revocations/(?P<card_id>\d+)/$"
GROUPS = (names.GROUP_DEVICES, names.GROUP_CARD_ACTIONS)
FRAME_S = 0.25
RESYNC_S = 10.0


def _visible_uid(user: Any, card_id: int) -> str | None:
    return cards_visible_to(user).filter(pk=card_id).values_list("uid", flat=True).first()


def _snapshot(uid: str, revocations: list[Revocation] | None) -> tuple[dict[str, Any], list[Revocation]]:
    if revocations is None:
        revocations = card_revocations(uid)
    return card_tracker(uid, revocations), revocations


class CardRevocationFeed(AsyncJsonWebsocketConsumer):
    uid = ""
    task: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        card_id = int(self.scope["url_route"]["kwargs"]["card_id"])
        uid = await database_sync_to_async(_visible_uid)(self.scope["user"], card_id)
        if uid is None:
            await self.close(code=4403)  # before accept: the handshake answers 403
            return
        self.uid = uid
        self.changed = asyncio.Event()
        self.reload = True
        await self.accept()
        for group in GROUPS:
            await self.channel_layer.group_add(group, self.channel_name)
        self.task = asyncio.create_task(self._serve())

    async def disconnect(self, code: int) -> None:
        if self.task is not None:
            self.task.cancel()
        if self.uid:
            for group in GROUPS:
                with contextlib.suppress(*AWAY):
                    await self.channel_layer.group_discard(group, self.channel_name)

    async def live_batch(self, message: dict[str, Any]) -> None:
        """A push to one of the groups (``ops.push``): read again at the next frame."""
        if message.get("group") == names.GROUP_CARD_ACTIONS:
            self.reload = True
        self.changed.set()

    async def _serve(self) -> None:
        revocations: list[Revocation] | None = None
        last: dict[str, Any] | None = None
        while True:
            if self.reload:
                revocations, self.reload = None, False
            try:
                snapshot, revocations = await database_sync_to_async(_snapshot)(self.uid, revocations)
            except AWAY:  # the database away: the page keeps what it shows; tried again
                self.reload = True
            else:
                if snapshot != last:
                    await self.send_json(snapshot)
                    last = snapshot
            try:
                await asyncio.wait_for(self.changed.wait(), RESYNC_S)
            except TimeoutError:
                self.reload = True
            self.changed.clear()
            await asyncio.sleep(FRAME_S)
