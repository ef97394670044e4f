"""A processor rides out Redis dying and coming back empty (issue 12, Build 5; the brief: an
outage is a clear log line, never a stack-trace loop): it keeps running, says so once, and when
Redis is back it takes its partitions again, recreates the streams and the consumer group, and
stores what the readers send from then on. A private redis-server, killed and restarted here."""

from __future__ import annotations

import signal
import subprocess
import time

import pytest
import redis

from ops.registry.models import AccessEvent
from tests.conftest import campuscard_cmd
from tests.factories import publish, tap
from tests.private_servers import start_redis, stop, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.pipeline]


def test_the_processor_survives_redis_restarting_empty(campus, subprocess_env, tmp_path):
    server, port = start_redis(tmp_path, "--appendonly", "no")
    url = f"redis://127.0.0.1:{port}/0"
    log = tmp_path / "processor.log"
    env = dict(subprocess_env, REDIS_URL=url)
    with log.open("w") as out:
        processor = subprocess.Popen(campuscard_cmd("process", "--name", "p1", "--no-fanout"), env=env, stderr=out)
    client = redis.Redis.from_url(url)
    try:
        publish(client, [tap(uid=campus.cards[i].uid, seq=i + 1) for i in range(5)])
        wait_until(lambda: AccessEvent.objects.count() == 5, 30, "the first taps")
        server.send_signal(signal.SIGKILL)  # Redis dies, and comes back with nothing
        server.wait()
        time.sleep(3)  # the processor meets the outage for a while
        server, _ = start_redis(tmp_path, "--appendonly", "no", port=port)
        publish(client, [tap(uid=campus.cards[i].uid, seq=i + 6) for i in range(5)])
        wait_until(lambda: AccessEvent.objects.count() == 10, 30, "taps sent after the restart")
        assert processor.poll() is None, "the processor stopped"
    finally:
        processor.send_signal(signal.SIGTERM)
        processor.wait(20)
        stop(server)
    text = log.read_text()
    assert text.count("Redis unreachable") == 1, text[-3000:]  # one line for the outage …
    assert "Redis reachable again" in text
    assert "Traceback" not in text, text[-3000:]  # … not a stack trace per retry
