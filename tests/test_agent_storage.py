"""A reader agent's local files stay small on a controller's small storage (issue 12: a busy
door's SQLite WAL filled a 2 MB volume in 5 s): the outbox's WAL is folded back and cut while a
door appends and the forwarder reads and deletes, as in service."""

from __future__ import annotations

import threading

from readers.agent.outbox import Outbox
from readers.agent.storage import WAL_LIMIT_BYTES


def test_the_outbox_wal_stays_small_under_a_busy_door(tmp_path):
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    wal = tmp_path / "outbox.sqlite3-wal"
    stop = threading.Event()
    largest = 0

    def forward() -> None:  # the forwarder: read the oldest, delete them, over and over
        while not stop.is_set():
            rows = outbox.peek(200)
            if rows:
                outbox.delete_through(rows[-1][0])

    forwarder = threading.Thread(target=forward)
    forwarder.start()
    try:
        payload = b'{"type":"tap","x":"' + b"x" * 350 + b'"}'  # an envelope's size
        for n in range(30_000):  # ~12 MB through the outbox
            outbox.append(payload, "m" * 64)
            if n % 500 == 0 and wal.exists():
                largest = max(largest, wal.stat().st_size)
    finally:
        stop.set()
        forwarder.join()
        outbox.close()
    # with SQLite's defaults the WAL grows to several MB here; kept to a fold's worth plus the limit
    assert largest <= 2 * WAL_LIMIT_BYTES, f"the WAL reached {largest} bytes"
