"""A simulated campus: every registered door and gate tapping with a realistic daily rhythm,
plus the trouble a real campus has — unknown cards, lost and blacklisted cards, devices that
fault, go silent and come back (with a new boot epoch, as a rebooted controller would).

Decisions are made at the "edge" with :func:`readers.decide.decide`, exactly as a reader agent
does. Event times are the real wall clock; ``speed`` only shapes the rhythm, so a demo can sweep
through a campus day in minutes.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import redis

from readers import rhythm
from readers.decide import Credential, Door, Emergency, Policy, decide
from streams import envelopes, names, producer
from streams.cards import CardStatus, CardType, DeviceKind
from streams.connect import StreamClient
from streams.reasons import Direction

log = logging.getLogger(__name__)
CAMPUS_TZ = ZoneInfo("Asia/Shanghai")
Event = envelopes.Tap | envelopes.Heartbeat | envelopes.Fault
PRESENT_PER_SITE = 400  # cards remembered as being at a site
STAY_SHARE = 0.8  # taps at a site by someone already there


@dataclass
class SimDevice:
    door: Door
    boot_epoch: int
    seq: int = 0
    next_heartbeat: float = 0.0
    silent_until: float = 0.0
    fault_until: float = 0.0
    fault_code: str = "reader_error"  # the fault raised, cleared by the same code (issue 17)

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq


@dataclass
class Trouble:
    """How often things go wrong (per event for cards, per device-second for devices)."""

    unknown_card: float = 0.015
    bad_card: float = 0.01  # a lost / blacklisted / cancelled / expired card is tried
    # each device faults every 3 hours and falls silent every 2 on average (issue 19: at one
    # fault every 30 minutes a demo of 60 devices buried the NIC desk within the hour)
    device_fault_per_s: float = 1 / 10800
    device_silence_per_s: float = 1 / 7200
    # a cloned card: a card tapped at a second site too soon after the first (R-SEC-5). None by
    # default: the simulator never makes impossible travel by accident (issue 19)
    clone: float = 0.0
    fault_seconds: tuple[float, float] = (20, 120)
    silence_seconds: tuple[float, float] = (30, 90)


@dataclass
class CampusSimulator:
    credentials: Sequence[Credential]
    doors: Sequence[Door]
    rate: float  # mean taps per second over the whole campus
    keys: Mapping[str, bytes] = field(default_factory=dict)  # device id → HMAC key
    speed: float = 1.0  # simulated seconds per real second (rhythm only)
    heartbeat_s: float = 10.0
    rhythmic: bool = True  # False: flat rate (benchmarks)
    trouble: Trouble = field(default_factory=Trouble)
    seed: int | None = None
    wall: Callable[[], float] = time.time
    # Where a door looks a card up when it decides (issue 12, Build 7): the demo passes a
    # credential cache that follows the signed feed, so a loss report made on a desk is refused
    # at the simulated doors as at real ones. None: the credentials given at the start.
    lookup: Callable[[str], Credential | None] | None = None
    # The emergency modes the simulated doors hold (issue 17, Build 2): the demo passes the hold
    # its credential sync keeps, so a lockdown started on the security desk holds them too.
    emergency: Callable[[], Emergency] | None = None
    # The central door rules and calendar the simulated doors hold (issue 17, Build 1), from the
    # same synced cache: the demo's dorm doors close at curfew as the real ones do. None: each
    # door's own schedule and curfew.
    policy: Callable[[], Policy | None] | None = None
    # The credential version the simulated doors hold, reported in their heartbeats as a real
    # agent reports its cache's (issue 19: heartbeats saying 0 made every device "behind on
    # credentials" after the first loss report). None: 0, no feed followed.
    credential_version: Callable[[], int] | None = None

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        start = self.wall()
        self._start_wall = start
        self._start_sim = datetime.fromtimestamp(start, CAMPUS_TZ)
        self.devices = [
            # in milliseconds, as a reboot's epoch below: a demo restarted after a device's reboot
            # must start above it, or its messages are replays (issue 19)
            SimDevice(d, boot_epoch=int(start * 1000), next_heartbeat=start + self.rng.random() * self.heartbeat_s)
            for d in self.doors
        ]
        self._by_kind: dict[DeviceKind, list[SimDevice]] = {}
        for dev in self.devices:
            self._by_kind.setdefault(dev.door.kind, []).append(dev)
        good = [c for c in self.credentials if self._usable(c)]
        self._bad = [c for c in self.credentials if not self._usable(c)]
        self._all_good = good
        self._good_by_type: dict[CardType, list[Credential]] = {}
        self._residents: dict[str, list[Credential]] = {}
        for cred in good:
            self._good_by_type.setdefault(cred.card_type, []).append(cred)
            if cred.dorm_building:
                self._residents.setdefault(cred.dorm_building, []).append(cred)
        self._carry = 0.0
        self._last_seen: dict[str, tuple[str, float]] = {}
        self._present: dict[str, deque[Credential]] = {}  # site → who tapped there lately
        self._clock = 0.0

    @staticmethod
    def _usable(cred: Credential) -> bool:
        return cred.status == CardStatus.ACTIVE and not cred.blacklisted

    # -- time ---------------------------------------------------------------------------------
    def minute_of_day(self, wall: float) -> float:
        sim_seconds = (wall - self._start_wall) * self.speed
        start = self._start_sim
        return (start.hour * 60 + start.minute + start.second / 60 + sim_seconds / 60) % 1440

    # -- one step -------------------------------------------------------------------------------
    def step(self, wall: float, dt: float) -> list[Event]:
        now = datetime.fromtimestamp(wall, UTC)
        self._clock = wall
        events: list[Event] = []
        events.extend(self._device_life(wall, dt, now))
        expected = self.rate * dt + self._carry
        count = int(expected)
        self._carry = expected - count
        if count:
            events.extend(self._taps(count, wall, now))
        return events

    def _device_life(self, wall: float, dt: float, now: datetime) -> list[Event]:
        out: list[Event] = []
        trouble = self.trouble
        for dev in self.devices:
            if dev.silent_until:
                if wall < dev.silent_until:
                    continue
                # back from silence: it rebooted, so a new boot epoch and seq from zero
                dev.silent_until = 0.0
                dev.boot_epoch = int(wall * 1000)
                dev.seq = 0
                dev.next_heartbeat = wall
            elif self.rng.random() < trouble.device_silence_per_s * dt:
                dev.silent_until = wall + self.rng.uniform(*trouble.silence_seconds)
                continue
            if dev.fault_until and wall >= dev.fault_until:
                dev.fault_until = 0.0
                out.append(self._fault(dev, now, dev.fault_code, cleared=True))
            elif not dev.fault_until and self.rng.random() < trouble.device_fault_per_s * dt:
                dev.fault_until = wall + self.rng.uniform(*trouble.fault_seconds)
                code = dev.fault_code = self.rng.choice(["reader_error", "door_forced", "motor_jam", "tamper"])
                out.append(self._fault(dev, now, code, cleared=False))
            if wall >= dev.next_heartbeat:
                dev.next_heartbeat = wall + self.heartbeat_s
                out.append(
                    envelopes.Heartbeat(
                        event_id=envelopes.new_id(),
                        device_id=dev.door.device_id,
                        boot_epoch=dev.boot_epoch,
                        seq=dev.next_seq(),
                        occurred_at=now,
                        credential_version=self.credential_version() if self.credential_version else 0,
                    )
                )
        return out

    def _fault(self, dev: SimDevice, now: datetime, code: str, *, cleared: bool) -> envelopes.Fault:
        return envelopes.Fault(
            event_id=envelopes.new_id(),
            device_id=dev.door.device_id,
            boot_epoch=dev.boot_epoch,
            seq=dev.next_seq(),
            occurred_at=now,
            code=code,
            cleared=cleared,
        )

    def _taps(self, count: int, wall: float, now: datetime) -> list[Event]:
        minute = self.minute_of_day(wall)
        # a vehicle gate lets staff cars in: with no staff card on the campus it has no traffic
        # (else every student drawn for it sticks at it for minutes, refused — not a campus)
        kinds = [
            k
            for k, devs in self._by_kind.items()
            if any(not d.silent_until for d in devs)
            and (k != DeviceKind.VEHICLE_GATE or self._good_by_type.get(CardType.STAFF))
        ]
        if not kinds:
            return []
        weights = [(rhythm.weight(k, minute) if self.rhythmic else 1.0) * len(self._by_kind[k]) for k in kinds]
        out: list[Event] = []
        for kind in self.rng.choices(kinds, weights, k=count):
            live = [d for d in self._by_kind[kind] if not d.silent_until]
            if not live:
                continue
            dev = self.rng.choice(live)
            cred, uid = self._pick_card(dev.door)
            if self.lookup is not None:
                cred = self.lookup(uid)
            p_in = rhythm.share_in(kind, minute)
            if kind in (DeviceKind.LIBRARY_READER, DeviceKind.DESK_READER):
                direction = Direction.NONE
            else:
                direction = Direction.IN if self.rng.random() < p_in else Direction.OUT
            modes = self.emergency() if self.emergency is not None else None
            rules = self.policy() if self.policy is not None else None
            verdict = decide(cred, dev.door, now, direction=direction, emergency=modes, policy=rules)
            out.append(
                envelopes.Tap(
                    event_id=envelopes.new_id(),
                    device_id=dev.door.device_id,
                    boot_epoch=dev.boot_epoch,
                    seq=dev.next_seq(),
                    occurred_at=now,
                    card_uid=uid,
                    direction=direction,
                    decision=verdict.decision,
                    reason=verdict.reason,
                    flags=verdict.flags,
                )
            )
        return out

    def _pick_card(self, door: Door) -> tuple[Credential | None, str]:
        roll = self.rng.random()
        if roll < self.trouble.unknown_card:
            return None, f"{self.rng.getrandbits(32):08X}"
        if roll < self.trouble.unknown_card + self.trouble.bad_card and self._bad:
            # a lost or blacklisted card is carried by one person too: it does not teleport either
            site = self._site(door)
            for _attempt in range(6):
                bad = self._settled(self.rng.choice(self._bad), site)
                if bad is not None:
                    return self._seen(bad, site), bad.uid
            return None, f"{self.rng.getrandbits(32):08X}"  # all of them busy elsewhere: a stranger's card
        if roll < self.trouble.unknown_card + self.trouble.bad_card + self.trouble.clone:
            clone = self._clone_for(self._site(door))
            if clone is not None:
                return self._seen(clone, self._site(door)), clone.uid
        pool: list[Credential] = []
        if door.kind == DeviceKind.DORM_DOOR and door.building:
            pool = self._residents.get(door.building, [])
        elif door.kind == DeviceKind.VEHICLE_GATE:
            pool = self._good_by_type.get(CardType.STAFF, [])
        if not pool:
            pool = self._all_good
        if not pool:
            return None, f"{self.rng.getrandbits(32):08X}"
        # People do not teleport (the server flags a card at two sites within a minute as a
        # clone suspicion): most taps at a site are by someone already there; the others by
        # someone not seen at another site for two minutes. A busy benchmark at a few thousand
        # taps/s on a campus of a few thousand cards would otherwise make every card a suspect.
        site = self._site(door)
        present = self._present.setdefault(site, deque(maxlen=PRESENT_PER_SITE))
        cred: Credential | None = None
        if present and self.rng.random() < STAY_SHARE:
            cred = self._settled(present[self.rng.randrange(len(present))], site)
        for _attempt in range(6 if cred is None else 0):
            cred = self._settled(self.rng.choice(pool), site)
            if cred is not None:
                break
        if cred is None:  # everyone drawn is busy elsewhere: anyone here, or else a stranger
            cred = next((c for c in present if self._settled(c, site) is not None), None)
        if cred is None:  # never someone seen at another site a moment ago (issue 19)
            return None, f"{self.rng.getrandbits(32):08X}"
        return self._seen(cred, site), cred.uid

    @staticmethod
    def _site(door: Door) -> str:
        return door.building or door.device_id.rsplit("-", 1)[0]

    def _seen(self, cred: Credential, site: str) -> Credential:
        """Remember ``cred`` tapped at ``site`` now."""
        if self._last_seen.get(cred.uid, ("",))[0] != site:
            self._present.setdefault(site, deque(maxlen=PRESENT_PER_SITE)).append(cred)
        self._last_seen.pop(cred.uid, None)  # kept in the order of the last tap (``_clone_for``)
        self._last_seen[cred.uid] = (site, self._clock)
        return cred

    def _clone_for(self, site: str) -> Credential | None:
        """A card seen at another site within the last minute (``Trouble.clone``): its copy is
        tapped here — the impossible travel the server flags (R-SEC-5)."""
        for uid, (where, at) in reversed(self._last_seen.items()):
            if self._clock - at > 60:
                return None
            if where != site:
                return next((c for c in self._all_good if c.uid == uid), None)
        return None

    def _settled(self, cred: Credential, site: str) -> Credential | None:
        """``cred`` if its holder could tap at ``site`` now (there already, or long enough away)."""
        last = self._last_seen.get(cred.uid)
        return cred if last is None or last[0] == site or self._clock - last[1] > 120 else None

    # -- running ----------------------------------------------------------------------------------
    def run(
        self,
        client: StreamClient,
        stop: threading.Event,
        *,
        tick_s: float = 0.1,
        max_events: int | None = None,
        partitions: int = names.EVENT_PARTITIONS,
    ) -> int:
        """Publish until ``stop`` is set (or ``max_events`` sent); returns events published."""
        sent = 0
        last = self.wall()
        while not stop.is_set():
            time.sleep(tick_s)
            wall = self.wall()
            events = self.step(wall, wall - last)
            last = wall
            if max_events is not None:
                events = events[: max_events - sent]
            if events:
                try:
                    producer.publish(client, events, self.keys, partitions=partitions)
                except redis.RedisError as exc:  # keep simulating; the real agent buffers (issue 4)
                    log.warning("could not publish %d events: %s", len(events), exc)
                    continue
                sent += len(events)
            if max_events is not None and sent >= max_events:
                break
        return sent
