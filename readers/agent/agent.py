"""The reader agent: one process serving the doors (devices) of one controller.

For every card presented it looks the card up in the local credential cache, decides with
:func:`readers.decide.decide`, builds the signed :class:`~streams.envelopes.Tap` and appends it
to the outbox — all before :meth:`ReaderAgent.tap` returns, with no network involved, so a door
keeps working while Redis or the server is down. Three threads do the rest:

- the **forwarder** drains the outbox into ``campuscard:events`` (:mod:`readers.agent.forwarder`);
- **credential sync** loads the snapshot at start (if Redis is reachable; otherwise the cached
  list is used), then follows the credential stream, applying deltas in order; a gap (the next
  delta is not version + 1) reloads the snapshot; Redis errors back off and retry;
- **heartbeats**: every ``heartbeat_s`` one signed heartbeat per device with the credential
  version the cache holds and the outbox size (so the server knows which doors have not yet
  received a revocation, R-USE-1);
- **doors** (only with door-input drivers, issue 17): the unlock windows and held-open limits
  of :mod:`readers.doors` checked every ``DOOR_TICK_S``. An allowed tap or an exit request
  releases the door's lock; ``door_forced``, ``door_held_open`` and ``tamper`` faults (and their
  clearing) are sent like any other message, signed and store-and-forward.

Sequence numbers: each start is a new ``boot_epoch`` (milliseconds since the epoch, forced above
the previous start's, persisted in ``agent.sqlite3``, so a clock set back never repeats an
epoch) and every device's ``seq`` counts from 1 within it. Appends are serialised by one lock, so
the outbox — and therefore the stream — holds each device's messages in ``seq`` order.

Buffer alarm: ``buffer_filling`` (a Fault for every device) when the outbox reaches 80 % of its
capacity, ``buffer_full`` at 100 %; each is cleared (``cleared=True``) when the backlog falls
back below 70 % / 90 %. Nothing is ever refused or dropped at capacity (R-DEV-2): recording every
tap matters more than the disk it takes, and the faults tell an operator.
"""

from __future__ import annotations

import argparse
import functools
import logging
import signal
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address, IPv6Address, ip_address
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from readers.agent.cache import CredentialCache
from readers.agent.config import AgentConfig, DoorConfig, load_config
from readers.agent.emergency import EmergencyHold
from readers.agent.forwarder import Forwarder
from readers.agent.outbox import Outbox
from readers.agent.passback import SharedPassback, ZoneFollower
from readers.agent.sync import CredentialSync
from readers.decide import PASSBACK_OFFLINE, Door, Emergency, Verdict, decide
from readers.doors import DoorAlarm, DoorInput, DoorInputs, DoorMonitor
from readers.sources.base import CardPresented, CardSource, SourceError
from readers.sources.pcsc import PcscSource
from readers.sources.simulated import SimulatedSource
from streams import credentials as feed
from streams import envelopes
from streams import passback as zone_feed
from streams.connect import StreamClient, connect
from streams.reasons import Decision, Direction
from streams.signing import sign

log = logging.getLogger(__name__)

BUFFER_FILLING = "buffer_filling"
BUFFER_FULL = "buffer_full"
STORAGE_FULL = "storage_full"
FILLING_AT, FILLING_CLEAR_BELOW = 0.8, 0.7
FULL_AT, FULL_CLEAR_BELOW = 1.0, 0.9
REFUSED_REPORT_EVERY_S = 60.0
DOOR_TICK_S = 0.1  # how finely unlock windows and held-open limits are timed

Envelope = envelopes.Tap | envelopes.Heartbeat | envelopes.Fault
ClientFactory = Callable[[], redis.Redis]


def client_factory(url: str, **login: str) -> ClientFactory:
    """Redis clients for the agent's threads: short timeouts and no retries inside redis-py
    (the agent backs off itself, and must notice an outage quickly). ``login``: ``username``
    and ``password`` (the agent's own ACL user, ``AgentConfig.redis_login``; issue 12, Build 6)."""

    def make() -> redis.Redis:
        return redis.Redis.from_url(
            url,
            socket_timeout=5,
            socket_connect_timeout=2,
            retry=Retry(NoBackoff(), 0),
            health_check_interval=30,
            **login,
        )

    return make


def events_client_factory(url: str, cluster: bool, **login: str) -> Callable[[], StreamClient]:
    """Clients for the events stream (a Redis Cluster follows a failover itself)."""

    def make() -> StreamClient:
        return connect(url, cluster=cluster, socket_timeout=5, socket_connect_timeout=2, **login)

    return make


def local_address(url: str) -> IPv4Address | IPv6Address | None:
    """The agent's own IP address as it reaches the server's Redis (issue 18, Build 2): the local
    end of a UDP socket "connected" to that host — no packet is sent. None for a Unix socket or
    when the host cannot be resolved (the heartbeat then leaves the address out)."""
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss") or not parts.hostname:
        return None
    try:
        info = socket.getaddrinfo(parts.hostname, parts.port or 6379, type=socket.SOCK_DGRAM)[0]
        with socket.socket(info[0], socket.SOCK_DGRAM) as probe:
            probe.connect(info[4])
            return ip_address(probe.getsockname()[0].split("%", 1)[0])
    except (OSError, ValueError):
        return None


@dataclass
class _Device:
    config: DoorConfig
    door: Door
    seq: int = 0


def _hold(held: bool, monitor: DoorMonitor, now: float) -> list[DoorAlarm]:
    """A door's lock held released by an unlock-all, or not (issue 17, Build 2)."""
    return monitor.hold(held, now)


class ReaderAgent:
    """``start()`` / ``stop()``; :meth:`tap` decides and records one card (also the entry point
    for simulators and tests). ``sources``: the card sources to watch (their ``reader`` names
    map to doors by the config's ``reader``); ``None`` builds a PC/SC source for the doors with
    ``source = "pcsc"``. ``door_inputs``: the door-input drivers (:mod:`readers.doors`);
    ``None``: those of the card sources that are door-input drivers too (the simulator)."""

    def __init__(
        self,
        config: AgentConfig,
        redis_client_factory: ClientFactory | None = None,
        state_dir: str | Path | None = None,
        sources: Sequence[CardSource] | None = None,
        door_inputs: Sequence[DoorInputs] | None = None,
    ) -> None:
        self.config = config
        login = config.redis_login()  # its own ACL user, if so configured (issue 12, Build 6)
        self.client_factory = redis_client_factory or client_factory(config.redis_url, **login)
        # the events stream: the same Redis unless the config names another (a Redis Cluster)
        same = config.events_redis_url in ("", config.redis_url) and not config.events_cluster
        self.events_client_factory: Callable[[], StreamClient] = (
            self.client_factory
            if same
            else events_client_factory(config.events_redis_url, config.events_cluster, **login)
        )
        self.state_dir = Path(state_dir if state_dir is not None else config.state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.cache = CredentialCache(self.state_dir / "credentials.sqlite3")
        self.emergency = EmergencyHold(self.state_dir / "emergency.sqlite3")  # issue 17, Build 2
        self.emergency.on_change = self._emergency_doors
        self._stopping = threading.Event()
        # issue 12: only card changes a trusted feed key signed; refusals reported as faults
        self.sync = CredentialSync(
            self.cache,
            feed.FeedVerifier(config.feed_keys),
            self.client_factory,
            stopping=self._stopping,
            on_refused=self._report_refused,
            emergency=self.emergency,
        )
        self._refused_reported_at = -REFUSED_REPORT_EVERY_S
        self._refused_unreported = 0
        self.outbox = Outbox(self.state_dir / "outbox.sqlite3", capacity=config.outbox_capacity)
        self.boot_epoch = self._new_boot_epoch()
        self.devices = {d.device_id: _Device(d, d.door) for d in config.doors}
        # anti-passback memory, durable and shared with the zone's other agents (issue 17, Build 5)
        self.edge_state = SharedPassback(self.state_dir / "passback.sqlite3")
        self.zones = zone_feed.zones_of((d.device_id, d.door.area, d.door.passback) for d in config.doors)
        self.zone_follower = ZoneFollower(self.edge_state, self.zones, self.client_factory, stopping=self._stopping)
        self.by_reader = {d.reader: self.devices[d.device_id] for d in config.doors if d.reader}
        self.sources = list(sources) if sources is not None else self._pcsc_sources() + self._simulated_sources()
        self.door_inputs: list[DoorInputs] = (
            list(door_inputs) if door_inputs is not None else [s for s in self.sources if isinstance(s, DoorInputs)]
        )
        self.door_monitors = {
            d.device_id: DoorMonitor(unlock_s=d.unlock_s, held_open_s=d.held_open_s) for d in config.doors
        }
        self._door_lock = threading.RLock()  # re-entrant: a driver may report from inside set_lock
        self.forwarder: Forwarder | None = None
        self._emit_lock = threading.Lock()
        self._alarm_lock = threading.Lock()
        self._alarms: set[str] = set()
        self._threads: list[threading.Thread] = []
        self._failed_sources: list[CardSource] = []
        self.address: IPv4Address | IPv6Address | None = None  # its own IP address, as its heartbeats report it

    # -- identity ---------------------------------------------------------------------------------
    def _new_boot_epoch(self) -> int:
        db = sqlite3.connect(self.state_dir / "agent.sqlite3", isolation_level=None)
        try:
            db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            row = db.execute("SELECT value FROM meta WHERE key = 'boot_epoch'").fetchone()
            epoch = max(int(time.time() * 1000), int(row[0]) + 1 if row else 0)
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('boot_epoch', ?)", (str(epoch),))
            return epoch
        finally:
            db.close()

    # -- recording --------------------------------------------------------------------------------
    def tap(
        self, device_id: str, uid: str, direction: Direction | str | None = None, *, at: datetime | None = None
    ) -> Verdict:
        """Decide for card ``uid`` at ``device_id`` and record the signed Tap in the outbox
        (committed before this returns). ``direction`` defaults to the door's configured one.
        Returns the :class:`~readers.decide.Verdict` (``decision, reason, flags``)."""
        device = self.devices[device_id]
        at = at if at is not None else datetime.now(UTC)
        uid = uid.upper()
        dir_ = Direction(direction) if direction is not None else device.config.direction
        verdict: Verdict | None = None

        def build(seq: int) -> envelopes.Tap:
            nonlocal verdict
            # under the emit lock: two gates of one anti-passback area see each other's taps
            verdict = decide(
                self.cache.lookup(uid),
                device.door,
                at,
                self.edge_state,
                direction=dir_,
                policy=self.cache.policy,
                emergency=self.emergency.current,
            )
            if device.door.passback != "off" and dir_ != Direction.NONE and not self.zone_follower.connected:
                # judged from this agent's own knowledge: the zone's shared state is out of reach
                verdict = verdict._replace(flags=(*verdict.flags, PASSBACK_OFFLINE))
            return envelopes.Tap(
                event_id=envelopes.new_id(),
                device_id=device_id,
                boot_epoch=self.boot_epoch,
                seq=seq,
                occurred_at=at,
                card_uid=uid,
                direction=dir_,
                decision=verdict.decision,
                reason=verdict.reason,
                flags=verdict.flags,
            )

        def recorded() -> None:  # remembered for anti-passback only once the tap is in the outbox
            assert verdict is not None
            self.edge_state.record(verdict, uid, device.door, at, direction=dir_)

        try:
            self._emit(device, build, after=recorded)
        except Exception:
            # the door decides whatever happens to its storage (issue 12): the verdict stands,
            # the failure is logged and reported as the outbox's own fault
            if verdict is None:
                raise
            log.exception("tap at %s decided (%s) but not recorded", device_id, verdict.reason)
        assert verdict is not None
        if verdict.decision == Decision.ALLOW and self.door_inputs:  # the door opens for the card (issue 17)
            self._door_step(device_id, DoorMonitor.release)
        self._check_storage()
        return verdict

    def _check_storage(self) -> None:
        """``storage_full`` (a fault from every door) while the disk is full and events wait in
        memory; cleared once they are written."""
        full = self.outbox.disk_full
        with self._alarm_lock:
            if full == (STORAGE_FULL in self._alarms):
                return
            (self._alarms.add if full else self._alarms.discard)(STORAGE_FULL)
        detail = f"{self.outbox.held} events held in memory, {self.outbox.lost} dropped"
        (log.error if full else log.info)("%s%s: %s", STORAGE_FULL, "" if full else " cleared", detail)
        for device_id in self.devices:
            try:
                self.fault(device_id, STORAGE_FULL, detail, cleared=not full)
            except Exception:
                log.exception("could not report %s", STORAGE_FULL)

    def heartbeat(self, device_id: str) -> None:
        device = self.devices[device_id]
        self._emit(
            device,
            lambda seq: envelopes.Heartbeat(
                event_id=envelopes.new_id(),
                device_id=device_id,
                boot_epoch=self.boot_epoch,
                seq=seq,
                occurred_at=datetime.now(UTC),
                credential_version=self.cache.version,
                buffered=len(self.outbox),
                # where it is (issue 18, Build 2; R-DEV-1): compared with what NIC approved
                address=self.address,
                site=device.config.site or self.config.site or None,
            ),
        )

    def fault(self, device_id: str, code: str, detail: str = "", *, cleared: bool = False) -> None:
        device = self.devices[device_id]
        self._emit(
            device,
            lambda seq: envelopes.Fault(
                event_id=envelopes.new_id(),
                device_id=device_id,
                boot_epoch=self.boot_epoch,
                seq=seq,
                occurred_at=datetime.now(UTC),
                code=code,
                detail=detail[:200],
                cleared=cleared,
            ),
            check=False,
        )

    def _emit(
        self,
        device: _Device,
        build: Callable[[int], Envelope],
        *,
        check: bool = True,
        after: Callable[[], None] | None = None,
    ) -> None:
        with self._emit_lock:  # seq order == outbox order
            seq = device.seq + 1
            payload = envelopes.dump(build(seq))
            mac = sign(device.config.key, payload)
            self.outbox.append(payload, mac, device=device.config.device_id, epoch=self.boot_epoch, seq=seq)
            device.seq = seq
            if after is not None:
                after()
        if self.forwarder is not None:
            self.forwarder.wake()
        if check:
            self._check_buffer()

    def _check_buffer(self, _sent: int = 0) -> None:
        ratio = self.outbox.fill_ratio
        changes: list[tuple[str, bool]] = []
        with self._alarm_lock:
            for code, at, below in (
                (BUFFER_FILLING, FILLING_AT, FILLING_CLEAR_BELOW),
                (BUFFER_FULL, FULL_AT, FULL_CLEAR_BELOW),
            ):
                if code not in self._alarms and ratio >= at:
                    self._alarms.add(code)
                    changes.append((code, False))
                elif code in self._alarms and ratio < below:
                    self._alarms.discard(code)
                    changes.append((code, True))
        if not changes:
            return
        detail = f"{len(self.outbox)} of {self.outbox.capacity} events buffered"
        for code, cleared in changes:
            (log.info if cleared else log.error)("%s%s: %s", code, " cleared" if cleared else "", detail)
            for device_id in self.devices:
                self.fault(device_id, code, detail, cleared=cleared)

    # -- card sources -----------------------------------------------------------------------------
    def _pcsc_sources(self) -> list[CardSource]:
        readers = [d.reader for d in self.config.doors if d.source == "pcsc" and d.reader]
        if not readers:
            return []

        return [PcscSource(readers=readers, on_error=self._source_error)]

    def _simulated_sources(self) -> list[CardSource]:
        readers = [d.reader or d.device_id for d in self.config.doors if d.source == "simulator"]
        if not readers:
            return []

        for d in self.config.doors:  # a simulated door without a reader name uses its device id
            if d.source == "simulator" and not d.reader:
                self.by_reader[d.device_id] = self.devices[d.device_id]
        return [SimulatedSource(readers, self.cache.known_uids, on_error=self._source_error)]

    def _on_card(self, event: CardPresented) -> None:
        device = self.by_reader.get(event.reader)
        if device is None:
            log.warning("card %s on reader %r, which no configured door uses: ignored", event.uid, event.reader)
            return
        verdict = self.tap(device.config.device_id, event.uid, at=event.at)
        log.debug("%s: card %s → %s", device.config.device_id, event.uid, verdict)

    def _source_error(self, error: SourceError) -> None:
        if error.permanent:
            for device in self.by_reader.values():
                self.fault(device.config.device_id, "reader_error", str(error))

    def _start_sources(self, sources: Sequence[CardSource]) -> list[CardSource]:
        failed = []
        for source in sources:
            try:
                source.start(self._on_card)
            except SourceError as exc:
                log.error("card source %r did not start: %s (retrying every heartbeat)", source, exc)
                failed.append(source)
                self._source_error(SourceError(f"{source!r}: {exc.message}", permanent=True))
        return failed

    # -- door inputs (readers.doors, issue 17) ----------------------------------------------------
    def _on_door(self, event: DoorInput) -> None:
        device = self.devices.get(event.door) or self.by_reader.get(event.door)
        if device is None:
            log.warning("door input %s from %r, which no configured door is: ignored", event.signal, event.door)
            return
        self._door_step(device.config.device_id, lambda monitor, now: monitor.apply(event.signal, now))

    def _door_step(self, device_id: str, step: Callable[[DoorMonitor, float], list[DoorAlarm]]) -> None:
        """Apply ``step`` to the door's monitor; drive its lock output if that changed, and send
        the faults it raised or cleared — in order, under the door lock."""
        with self._door_lock:
            monitor = self.door_monitors[device_id]
            released = monitor.lock_released
            alarms = step(monitor, time.monotonic())
            if monitor.lock_released != released:
                for driver in self.door_inputs:
                    try:
                        driver.set_lock(device_id, monitor.lock_released)
                    except Exception:
                        log.exception("lock output of %s failed", device_id)
            for alarm in alarms:
                (log.info if alarm.cleared else log.warning)(
                    "%s: %s%s (%s)", device_id, alarm.code, " cleared" if alarm.cleared else "", alarm.detail
                )
                try:
                    self.fault(device_id, alarm.code, alarm.detail, cleared=alarm.cleared)
                except Exception:
                    log.exception("could not report %s at %s", alarm.code, device_id)

    def _emergency_doors(self, emergency: Emergency) -> None:
        """An unlock-all holds the locks of the doors it covers released; its end (or a lockdown)
        engages them again (issue 17, Build 2)."""
        if not self.door_inputs:
            return
        for device_id, device in self.devices.items():
            held = emergency.at(device.door) == "unlock_all"
            self._door_step(device_id, functools.partial(_hold, held))

    def _door_loop(self) -> None:
        while not self._stopping.wait(DOOR_TICK_S):
            for device_id in self.door_monitors:
                self._door_step(device_id, DoorMonitor.tick)

    def _start_door_inputs(self) -> None:
        for driver in self.door_inputs:
            try:
                driver.watch_doors(self._on_door)
            except SourceError as exc:
                log.error("door inputs %r did not start: %s", driver, exc)
                self._source_error(SourceError(f"{driver!r}: {exc.message}", permanent=exc.permanent))

    # -- credential sync (readers.agent.sync) -------------------------------------------------
    @property
    def sync_connected(self) -> bool:
        return self.sync.connected

    @property
    def synced(self) -> threading.Event:
        return self.sync.synced

    @property
    def refused_changes(self) -> int:
        return self.sync.refused_changes

    def _report_refused(self, detail: str) -> None:
        """A ``forged_credential`` fault from the agent's first door: the server raises the alert.
        At most one a minute (a whole feed signed by a key this agent lacks would otherwise be a
        fault per card); the next one says how many were refused meanwhile."""
        now = time.monotonic()
        if now - self._refused_reported_at < REFUSED_REPORT_EVERY_S:
            self._refused_unreported += 1
            return
        if self._refused_unreported:
            detail = f"{detail} (and {self._refused_unreported} more since the last report)"
        self._refused_reported_at, self._refused_unreported = now, 0
        try:
            self.fault(next(iter(self.devices)), feed.FORGED_FAULT, detail)
        except Exception:
            log.exception("could not report the refused credential entry")

    # -- heartbeats -------------------------------------------------------------------------------
    def _heartbeat_loop(self) -> None:
        while True:
            self.address = local_address(self.config.events_redis_url or self.config.redis_url)
            for device_id in self.devices:
                try:
                    self.heartbeat(device_id)
                except Exception:
                    log.exception("heartbeat of %s failed", device_id)
            try:
                self.outbox.flush_held()  # a disk that was full may have room again
                self._check_storage()
            except Exception:
                log.exception("outbox check failed")
            if self._failed_sources:
                self._failed_sources = self._start_sources(self._failed_sources)
            with self._emit_lock:  # anti-passback resets daily: a day-old passage is moot
                self.edge_state.prune(datetime.now(UTC) - timedelta(days=1))
            if self._stopping.wait(self.config.heartbeat_s):
                return

    # -- life -------------------------------------------------------------------------------------
    def start(self) -> None:
        log.info(
            "reader agent starting: %d doors, boot epoch %d, credential version %d, %d events buffered",
            len(self.devices),
            self.boot_epoch,
            self.cache.version,
            len(self.outbox),
        )
        self._stopping.clear()
        self.forwarder = Forwarder(
            self.outbox,
            self.events_client_factory,
            batch=self.config.forward_batch,
            agent_id=self.config.agent_id,
            partitions=self.config.event_partitions,
            replicas=self.config.wait_replicas,
            on_sent=self._check_buffer,
            confirm=self.config.confirm,
            devices=[d.device_id for d in self.config.doors],
        )
        self.forwarder.start()
        loops: list[tuple[str, Callable[[], None]]] = [
            ("credential-sync", self.sync.run),
            ("heartbeats", self._heartbeat_loop),
            ("passback-zones", self.zone_follower.run),
        ]
        if self.door_inputs:
            loops.append(("doors", self._door_loop))
        for name, target in loops:
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        self._check_buffer()
        self._failed_sources = self._start_sources(self.sources)
        self._start_door_inputs()
        self._emergency_doors(self.emergency.current)  # a mode held across a restart

    def stop(self, flush_timeout_s: float = 2.0) -> None:
        """Stop the sources (no tap after this), the threads, then send what Redis takes within
        ``flush_timeout_s``; the rest stays in the outbox for the next start."""
        self._stopping.set()
        for thread in self._threads:
            thread.join()
        self._threads.clear()
        for source in self.sources:
            source.stop()
        for driver in self.door_inputs:
            driver.stop_doors()
        if self.forwarder is not None:
            self.forwarder.stop(flush_timeout_s)
            self.forwarder.close()
            self.forwarder = None

    def close(self) -> None:
        self.stop()
        self.cache.close()
        self.emergency.close()
        self.outbox.close()
        self.edge_state.close()

    def __enter__(self) -> ReaderAgent:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def status(self) -> dict[str, Any]:
        return {
            "boot_epoch": self.boot_epoch,
            "credential_version": self.cache.version,
            "policy_version": self.cache.policy.version if self.cache.policy is not None else 0,
            "emergency_revision": self.emergency.revision,
            "emergency_modes": [f"{m.kind}#{m.id}" for m in self.emergency.current.modes],
            "cards": len(self.cache),
            "buffered": len(self.outbox),
            "forwarding": bool(self.forwarder and self.forwarder.connected),
            "credential_sync": self.sync_connected,
            "passback_zones": {zone: self.zone_follower.connected for zone in self.zones},
            "alarms": sorted(self._alarms),
            "door_alarms": {d: sorted(m.active) for d, m in self.door_monitors.items() if m.active},
        }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m readers.agent.agent", description=__doc__.splitlines()[0])
    parser.add_argument("config", help="the agent's .toml or .json config")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = load_config(args.config)
    except (OSError, ValueError) as exc:
        parser.error(str(exc))
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    agent = ReaderAgent(config)
    agent.start()
    try:
        while not done.wait(60):
            log.info("status: %s", agent.status())
    finally:
        agent.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
