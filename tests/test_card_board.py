"""The card-action feed: a snapshot plus the pushes after it equals a fresh snapshot, and a
dropped push is noticed (the page then reloads)."""

from __future__ import annotations

import pytest

from dashboard.card_board import CardBoard
from dashboard.pages import cards
from ops.accounts.roles import Role
from ops.accounts.services import create_or_update_operator
from ops.pipeline.relay import OutboxRelay
from ops.push import Fanout
from ops.registry.lifecycle import services
from streams import names
from tests.live import Feed

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.pipeline]


def _board() -> CardBoard:
    board = CardBoard()
    seq, snapshot = cards._load()
    board.load(snapshot, seq=seq)
    return board


def _comparable(board: CardBoard) -> tuple:
    return sorted(r["id"] for r in board.rows), board.counts


def test_snapshot_plus_pushes_equals_a_fresh_snapshot_even_after_a_dropped_push(campus, redis_client):
    nic = create_or_update_operator(username="nic", password="pw-nic-123", role=Role.NIC)
    feed = Feed(names.GROUP_CARD_ACTIONS)
    fanout = Fanout(redis_client)
    relay = OutboxRelay(redis_client, fanout=fanout)
    relay.ensure_feed()  # as `campuscard relay` does first: the readers' feed exists
    services.report_loss(card=campus.cards[0], operator=nic, basis="挂失")
    relay.run_once()
    board = _board()  # the page opens here
    services.report_found(card=campus.cards[0], operator=nic, basis="找回")
    relay.run_once()
    services.report_loss(card=campus.cards[1], operator=nic, basis="挂失")
    relay.run_once()
    services.set_blacklist(card=campus.cards[2], blacklisted=True, operator=nic, basis="保卫处通知")
    relay.run_once()
    fanout.close()
    first, second, third, fourth = feed.take(4)
    assert first["seq"] == 1 and board.apply(first)  # already in the snapshot: no double count
    assert board.apply(second)
    assert board.apply(fourth) is False  # third was dropped: resync
    board = _board()
    assert _comparable(board) == _comparable(_board())
    assert board.counts == {"lose": 2, "find": 1, "blacklist": 1}
    _ = third
