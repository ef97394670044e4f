"""Listening to the live pushes the way a live page does, for tests."""

from __future__ import annotations

import asyncio

from asgiref.sync import async_to_sync
from channels import DEFAULT_CHANNEL_LAYER
from channels.layers import channel_layers


class Feed:
    """A live page's subscription: its own channel-layer instance and channel in ``group``."""

    def __init__(self, group: str) -> None:
        self.layer = channel_layers.make_backend(DEFAULT_CHANNEL_LAYER)
        self.channel = async_to_sync(self._join)(group)

    async def _join(self, group: str) -> str:
        channel = await self.layer.new_channel()
        await self.layer.group_add(group, channel)
        return channel

    def take(self, n: int, timeout: float = 10.0) -> list[dict]:
        """The next ``n`` pushes, in the order they were sent."""

        async def go() -> list[dict]:
            return [await self.layer.receive(self.channel) for _ in range(n)]

        async def bounded() -> list[dict]:
            return await asyncio.wait_for(go(), timeout)

        return async_to_sync(bounded)()
