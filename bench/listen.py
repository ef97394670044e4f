"""The live listener's own process (``bench.pipeline.Listener``): joins the live groups on the
Channels layer and reports, per message, its group, its number and each row's latency — stamped
here, when the message arrives. Imported by the spawned process before Django is set up: nothing
here touches a model."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import django
from channels.layers import get_channel_layer


def listen(groups: list[str], reports: Any, ready: Any, stop: Any) -> None:
    """Join ``groups``, set ``ready``, report ``(group, seq, [(id, latency_s, at)])`` per message
    until ``stop``; None last."""
    django.setup()
    try:
        asyncio.run(_receive(groups, reports, ready, stop))
    finally:
        reports.put(None)


async def _receive(groups: list[str], reports: Any, ready: Any, stop: Any) -> None:
    layer = get_channel_layer()
    assert layer is not None, "CHANNEL_LAYERS is not configured"
    channel = await layer.new_channel()
    for group in groups:
        await layer.group_add(group, channel)
    ready.set()
    while not stop.is_set():
        try:
            message = await asyncio.wait_for(layer.receive(channel), timeout=0.5)
        except TimeoutError:
            continue
        now = time.time()
        reports.put((message["group"], int(message["seq"]), [(r["id"], now - r["ts"], now) for r in message["rows"]]))
    for group in groups:  # a member left behind would be sent every later run's pushes
        await layer.group_discard(group, channel)
