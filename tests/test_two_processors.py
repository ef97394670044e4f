"""With two processors committing at once, the gate page still equals a fresh snapshot:
tap commits are serialised, so access-event ids rise in commit order and the pushed
watermarks never hide a late commit."""

from __future__ import annotations

import threading
import time
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.db import connection

from dashboard.gate_board import GateBoard
from dashboard.pages import gates
from ops.pipeline.processor import ReaderEventProcessor
from ops.push import Fanout
from streams import envelopes, names, signing
from streams.consumer import Entry
from streams.frames import Signed
from tests.factories import device_key, tap
from tests.live import Feed

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.pipeline]


def _signed(event) -> Signed:
    raw = envelopes.dump(event)
    return Signed(event, raw, signing.sign(device_key(event.device_id), raw).encode())


def _board() -> GateBoard:
    board = GateBoard(max_rows=50, minutes=30, tz=ZoneInfo(settings.TIME_ZONE))
    seq, snapshot = gates._load()
    board.load(snapshot, seq=seq)
    return board


def test_a_slow_processor_cannot_commit_a_lower_id_after_a_faster_one(campus, redis_client):
    feed = Feed(names.GROUP_GATES)
    board = _board()
    fanout = Fanout(redis_client)
    inserted, release = threading.Event(), threading.Event()

    class Slow(ReaderEventProcessor):
        def _persist_taps(self, taps, states):
            rows = super()._persist_taps(taps, states)
            inserted.set()
            release.wait(10)  # holds its transaction open after inserting
            return rows

    slow = Slow(redis_client, fanout=fanout, consumer="p1")
    fast = ReaderEventProcessor(redis_client, fanout=fanout, consumer="p2")

    def run(processor, event, entry_id):
        try:
            processor.handle([Entry(entry_id, {}, _signed(event))])
        finally:
            connection.close()

    t1 = threading.Thread(target=run, args=(slow, tap(uid=campus.cards[0].uid, seq=1), "1-0"))
    t1.start()
    assert inserted.wait(10)
    t2 = threading.Thread(target=run, args=(fast, tap(uid=campus.cards[1].uid, seq=2), "2-0"))
    t2.start()
    time.sleep(0.5)  # the fast one tries to commit while the slow one is still open
    release.set()
    t1.join(10)
    t2.join(10)
    fanout.close()

    pushes = feed.take(2)
    assert [p["watermark"] for p in pushes] == sorted({p["watermark"] for p in pushes})
    assert all(board.apply(p) for p in pushes)
    now = time.time()
    assert board.comparable(now) == _board().comparable(now)
    assert board.totals["allow"] == 2
