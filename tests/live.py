"""Listening to the live pushes the way a live page does, for tests."""

from __future__ import annotations

import asyncio
from typing import Any

from asgiref.sync import async_to_sync
from channels import DEFAULT_CHANNEL_LAYER
from channels.layers import channel_layers

from ops.pipeline.processor import ReaderEventProcessor
from ops.push import Fanout
from tests.factories import publish


class Readers:
    """Readers publishing events, and the real processor with its real fan-out behind them."""

    def __init__(self, redis_client: Any) -> None:
        self.redis = redis_client
        self.fanout = Fanout(redis_client)

    def process(self, events: list[Any]) -> None:
        """One batch through Redis Streams → processor → database → Channels layer (the readers
        share one agent, so the batch keeps the order given)."""
        publish(self.redis, events, agent="test-agent")
        ReaderEventProcessor(self.redis, fanout=self.fanout, consumer="t", block_ms=50).run(max_idle_polls=2)

    def close(self) -> None:
        self.fanout.close()


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
