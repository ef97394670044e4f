"""The figures a process keeps about itself, for ``/metrics`` (issue 16, Build 3).

Only what lives and dies with a process is kept here: the websocket clients each web worker
serves, per desk. prometheus-client's multiprocess mode keeps them in files under
``PROMETHEUS_MULTIPROC_DIR`` (set by the settings before the library is imported), and the
scrape sums the files of the live workers (``livesum``) — so any one of a host's web workers
answers for all of them. A worker that exits drops its files (``atexit``); one that was killed
is dropped by the next scrape (``ops.metrics.views``), or by the next process given its id.

Everything the processors, the relay and the supervisor do is already in Redis or the database
and is read there at scrape time (``ops.metrics.collector``): no per-event call, no extra
process to scrape.
"""

from __future__ import annotations

import atexit
import os

from prometheus_client import Gauge
from prometheus_client.multiprocess import mark_process_dead


def _forget_this_process() -> None:
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if path:
        mark_process_dead(os.getpid(), path)


# A file with this process's id can only be a dead one's (a container restarted after a crash,
# its server pid 1 again): its sockets are gone, so its counts must not be taken over.
_forget_this_process()
atexit.register(_forget_this_process)

WEBSOCKET_CLIENTS = Gauge(
    "campuscard_websocket_clients",
    "Open websockets of the live desks (each an operator's page), per desk",
    ["desk"],
    multiprocess_mode="livesum",
)
# the live desks (dashboard/routing.py; a test holds the two together): each worker that imports
# this exports a 0 for every desk, so a desk nobody watches is 0 rather than absent
DESKS = ("gates", "cards", "devices", "dorm", "muster")
for _desk in DESKS:
    WEBSOCKET_CLIENTS.labels(desk=_desk)
