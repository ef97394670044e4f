"""Pushing a change to live pages after the transaction that made it commits.

Every message carries the group's next sequence number (a page that sees a gap reloads its
snapshot: the Channels layer is at-most-once). In the processor the messages go through its
``Fanout`` thread (one event loop, one connection pool); elsewhere (web requests, commands)
through ``async_to_sync(group_send)``. Best effort: a failed push is logged, never raised — the
database is the record and the next push reveals the gap.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

if TYPE_CHECKING:
    from ops.campus.fanout import Fanout

log = logging.getLogger(__name__)
_fanout: Fanout | None = None


def use_fanout(fanout: Fanout | None) -> None:
    """The processor routes its pushes through its own fan-out thread."""
    global _fanout
    _fanout = fanout


def push(group: str, payload: dict[str, Any]) -> None:
    """Send ``payload`` (plus type, group and seq) to ``group`` once the current transaction
    commits (at once outside a transaction)."""
    transaction.on_commit(lambda: _send(group, payload))


def _send(group: str, payload: dict[str, Any]) -> None:
    from ops.campus.fanout import MESSAGE_TYPE, next_seq
    from ops.campus.redis_client import client

    try:
        message = {"type": MESSAGE_TYPE, "group": group, "seq": next_seq(client(), group), **payload}
        if _fanout is not None and not _fanout.closed:
            _fanout.send(group, message)
        else:
            async_to_sync(get_channel_layer().group_send)(group, message)
    except Exception:
        log.exception("live push to %s failed", group)
