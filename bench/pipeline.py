"""``campuscard bench pipeline``: simulated taps → Redis Streams → processor → database →
Channels layer, measured at the far end (a listener on the live groups).

Phase 1 offers ``rate`` taps/s (default 3,500) for ``seconds`` and reports the sustained rate
through the processor and the worst tap→fan-out lag. Phase 2 puts a backlog in the stream (as
after an outage; published with the processors paused) and reports how fast it drains: the
processor's capacity. Phase 3 offers 200 taps/s and reports the tap→fan-out latency percentiles.
Time of a tap = when the simulated reader produced it. Last, with the processors stopped, the
same backlog through a bare pipeline on the same Redis and database (``bench/bare.py``): ``ratio``
= capacity / bare rate.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command

from bench import bare, listen, preload
from bench.common import percentile
from ops.demo.seed import seed_demo_campus
from ops.redis_client import client
from ops.registry import selectors
from ops.registry.models import AccessEvent
from readers.simulator import CampusSimulator, Trouble
from streams import envelopes, names, producer

_SPAWN = multiprocessing.get_context("spawn")  # no fork of a process with threads and connections


@dataclass
class Listener:
    """Receives live batches on every live group and records each tap's fan-out latency.

    The receiving runs in a process of its own (``bench.listen``), as a page's daphne does: in this
    process it shared the interpreter with the signing and publishing loop, and at 4,500 taps/s
    in small batches (two processors) it fell a second behind — a lag of the bench, which the
    benchmark then reported as the product's (measured: the taps were stored within 0.3 s, the
    fan-out's sends took 2–4 ms each, the listener took the rest). Its clock stamps each row when
    the message arrives; a thread here files what it reports."""

    groups: list[str]
    latencies: dict[str, float] = field(default_factory=dict)  # event id → seconds
    received_at: dict[str, float] = field(default_factory=dict)
    pushes: dict[str, set[int]] = field(default_factory=dict)  # group → push sequence numbers seen
    ready: Any = field(default_factory=lambda: _SPAWN.Event())
    stop: Any = field(default_factory=lambda: _SPAWN.Event())
    # the ids a phase waits for, crossed off as they arrive: a waiter that re-scanned its list
    # every 50 ms burnt half a core of the two the drain it timed was running on
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _waiting: set[str] = field(default_factory=set)
    _all_in: threading.Event = field(default_factory=threading.Event)
    _reports: Any = field(default_factory=lambda: _SPAWN.SimpleQueue())
    _process: Any = None

    def expect(self, ids: list[str]) -> threading.Event:
        """An event set once every one of ``ids`` has arrived."""
        with self._lock:
            self._waiting = {i for i in ids if i not in self.received_at}
            self._all_in = threading.Event()
            if not self._waiting:
                self._all_in.set()
            return self._all_in

    def start(self) -> threading.Thread:
        self._process = _SPAWN.Process(
            target=listen.listen, args=(self.groups, self._reports, self.ready, self.stop), daemon=True
        )
        self._process.start()
        thread = threading.Thread(target=self._file_reports, daemon=True)
        thread.start()
        if not self.ready.wait(30):
            raise RuntimeError("the live listener did not join its groups within 30 s")
        return thread

    def _file_reports(self) -> None:
        while (report := self._reports.get()) is not None:
            group, seq, rows = report
            self.pushes.setdefault(group, set()).add(seq)
            with self._lock:
                for event_id, latency, at in rows:
                    self.latencies[event_id] = latency
                    self.received_at[event_id] = at
                    self._waiting.discard(event_id)
                if not self._waiting:
                    self._all_in.set()

    def close(self) -> None:
        """Stop the listening process (it leaves its groups first)."""
        self.stop.set()
        if self._process is not None:
            self._process.join(10)
            if self._process.is_alive():
                self._process.kill()


def _offer(sim: CampusSimulator, rate: float, seconds: float) -> list[str]:
    """Publish taps at ``rate`` for ``seconds``; returns the ids of the taps sent."""
    redis_client = client()
    sim.rate = rate
    sent: list[str] = []
    tick = 0.02
    start = last = time.time()
    while (now := time.time()) - start < seconds:
        events = sim.step(now, now - last)  # heartbeats too: a device's sequence has no gaps
        last = now
        if events:
            producer.publish(redis_client, events, sim.keys, partitions=settings.EVENT_PARTITIONS)
            sent.extend(str(e.event_id) for e in events if isinstance(e, envelopes.Tap))
        time.sleep(max(0.0, tick - (time.time() - now)))
    return sent


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wait_received(listener: Listener, ids: list[str], timeout: float) -> None:
    """Until every one of ``ids`` reached the pages (or ``timeout``): the partitions are drained
    side by side, so the last ids sent are not the last ones to arrive."""
    listener.expect(ids).wait(timeout)
    time.sleep(0.3)


def _wait_leases(processors: int, timeout: float = 20) -> None:
    """Until the processors share every partition between them (each holds some): a run that
    starts while the leases still move measures the start-up, not the pipeline."""
    redis_client = client()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        owners = [redis_client.get(names.lease_key(p)) for p in range(settings.EVENT_PARTITIONS)]
        share = -(-settings.EVENT_PARTITIONS // processors)
        counts = [owners.count(o) for o in set(owners)]
        if None not in owners and len(counts) == processors and max(counts) <= share:
            return
        time.sleep(0.1)
    raise RuntimeError(f"the {processors} processors did not share the partitions within {timeout} s")


def run(
    *,
    rate: float,
    seconds: float,
    latency_rate: float,
    latency_seconds: float,
    processors: int,
    backlog_size: int = 30_000,
    preload_rows: int = 0,
) -> dict[str, Any]:
    call_command("migrate", verbosity=0, interactive=False)
    seed_demo_campus()
    stored = preload.preload(preload_rows) if preload_rows else None
    doors = selectors.doors()
    groups = sorted(
        {names.GROUP_GATES, names.GROUP_LIBRARY, names.GROUP_DESK}
        | {names.dorm_group(d.building) for d in doors if d.kind == "dorm_door" and d.building}
    )
    quiet = Trouble(device_fault_per_s=0, device_silence_per_s=0)
    keys = selectors.device_keys()
    sim = CampusSimulator(
        selectors.credentials(), doors, rate=rate, rhythmic=False, trouble=quiet, heartbeat_s=5.0, seed=7, keys=keys
    )
    listener = Listener(groups)
    listener.start()
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "ops.cli", "process", "--name", f"bench-{i}"],
            env=dict(os.environ),
            stdout=subprocess.DEVNULL,
        )
        for i in range(processors)
    ]
    try:
        time.sleep(1.5)  # processors connected and idle
        _wait_leases(processors)
        t0 = time.time()
        cpu_offered = sum(cpu_seconds(p.pid) for p in procs)
        sent = _offer(sim, rate, seconds)
        # the processors' CPU per event at the offered rate (smaller batches than the drain's)
        cpu_offered = (sum(cpu_seconds(p.pid) for p in procs) - cpu_offered) * 1000 / max(1, len(sent))
        _wait_received(listener, sent, timeout=60)
        done = [listener.received_at[i] for i in sent if i in listener.received_at]
        lags = [listener.latencies[i] for i in sent if i in listener.latencies]
        events_per_s = len(done) / (max(done) - t0) if done else 0.0

        # Capacity: a backlog waiting in the stream (as after an outage), drained flat out. It is
        # published with the processors paused (SIGSTOP), and the clock starts when they go on:
        # the readers that publish a real backlog are other machines, and the bare pipeline's
        # clock (bench/bare.py) also starts after its backlog is in — the two rates compare the
        # same thing, not the product's drain against this process signing and sending.
        backlog = sim.step(time.time(), backlog_size / rate) if backlog_size else []
        sim.rate = rate
        redis_client = client()
        for proc in procs:
            proc.send_signal(signal.SIGSTOP)
        try:
            for start in range(0, len(backlog), 2000):
                producer.publish(
                    redis_client, backlog[start : start + 2000], sim.keys, partitions=settings.EVENT_PARTITIONS
                )
        finally:
            for proc in procs:
                proc.send_signal(signal.SIGCONT)
        t_backlog = time.time()
        cpu_before = sum(cpu_seconds(p.pid) for p in procs)
        backlog_ids = [str(e.event_id) for e in backlog if isinstance(e, envelopes.Tap)]
        _wait_received(listener, backlog_ids, timeout=120)
        drained = [listener.received_at[i] for i in backlog_ids if i in listener.received_at]
        capacity = len(drained) / (max(drained) - t_backlog) if drained else 0.0
        cpu_per_1000 = (sum(cpu_seconds(p.pid) for p in procs) - cpu_before) * 1000 / max(1, len(drained))

        listener.latencies.clear()
        sent2 = _offer(sim, latency_rate, latency_seconds)
        _wait_received(listener, sent2, timeout=30)
        lat = sorted(listener.latencies[i] * 1000 for i in sent2 if i in listener.latencies)
    finally:
        listener.close()
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(15)
    sim.rate = rate
    bare_taps = [e for e in sim.step(time.time(), max(backlog_size, 5000) / rate) if isinstance(e, envelopes.Tap)]
    bare_rate = bare.run(client(), bare_taps, sim.keys)
    # what reached the database, whatever reached the live listener: a push the listener missed
    # leaves its page to resync; a tap missing here is lost
    tap_ids = [*sent, *backlog_ids, *sent2]
    # a push missed by the listener: numbered by its group (ops.push), so a hole between the first
    # and the last number it saw was sent and lost on the way; none there, it was never sent
    push_holes = {
        group: len(range(min(seqs), max(seqs) + 1)) - len(seqs) for group, seqs in listener.pushes.items() if seqs
    }
    taps_stored = sum(
        AccessEvent.objects.filter(event_id__in=tap_ids[i : i + 10_000]).count() for i in range(0, len(tap_ids), 10_000)
    )
    return {
        "offered_rate": rate,
        "taps_sent": len(tap_ids),
        "taps_stored": taps_stored,
        "pushes_received": sum(len(s) for s in listener.pushes.values()),
        "push_holes": sum(push_holes.values()),
        "events": len(sent),
        "delivered": len(done),
        "events_per_s": round(events_per_s, 1),
        "lag_max_s": round(max(lags), 3) if lags else None,
        "lag_p99_s": round(percentile(lags, 99), 3) if lags else None,
        "backlog_events": len(backlog_ids),
        "backlog_drained": len(drained),
        "capacity_events_per_s": round(capacity, 1),
        "latency_rate": latency_rate,
        "latency_events": len(sent2),
        "latency_delivered": len(lat),
        "fanout_p50_ms": round(percentile(lat, 50), 1),
        "fanout_p95_ms": round(percentile(lat, 95), 1),
        "fanout_p99_ms": round(percentile(lat, 99), 1),
        "processors": processors,
        "partitions": settings.EVENT_PARTITIONS,
        "processor_cpu_ms_per_1000": round(cpu_per_1000 * 1000, 1),
        "sustained_cpu_ms_per_1000": round(cpu_offered * 1000, 1),
        "bare_events_per_s": round(bare_rate, 1),
        "ratio": round(capacity / bare_rate, 3) if bare_rate else None,
        "preloaded_taps": stored.rows if stored else 0,
        "preload_added": stored.added if stored else 0,
        "preload_rows_per_s": stored.rows_per_s if stored else None,
    }
